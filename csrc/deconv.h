/* The transposed convolution operator (TF's conv2d_transpose, the gradient
 * of conv2d with respect to its input): plan, setup, run, like conv.h. No
 * Python here. */
#ifndef PYCONV_DECONV_H
#define PYCONV_DECONV_H

#include <stddef.h>

#include "conv.h"

/* One transposed convolution. Input NHWC [batch, in_h, in_w, in_c], weights
 * [kernel_h, kernel_w, out_c, in_c] (TF's layout: out before in), output NHWC
 * [batch, out_h, out_w, out_c], all C-contiguous. The pads are those of the
 * forward convolution that maps an out_h x out_w image to in_h x in_w: they
 * must satisfy (out + before + after - kernel) / stride + 1 == in, which the
 * operator checks (out_h and out_w are given because several output sizes
 * map to the same input size). Output pixel (y, x) receives input pixel
 * (i, j) through tap (ky, kx) where y = i * stride_h + ky - pad_top and
 * x = j * stride_w + kx - pad_left. */
struct pyconv_deconv_params {
    size_t batch, in_h, in_w, in_c, out_c, out_h, out_w;
    size_t kernel_h, kernel_w;
    size_t stride_h, stride_w;
    size_t pad_top, pad_bottom, pad_left, pad_right;
    enum pyconv_activation activation;
    enum pyconv_dtype dtype;
};

/* Checks every size: PYCONV_EINVAL with a message in err when the parameters
 * are unusable, the output size disagrees with the pads or any buffer size
 * would overflow size_t. */
int pyconv_deconv_check(const struct pyconv_deconv_params *p, char err[PYCONV_ERRLEN]);

struct pyconv_deconv_op;

/* Plans: validates, picks the microkernel tile, splits the output into its
 * stride_h * stride_w phases and tiles them. The weights and bias (may be
 * NULL) are packed by the first run; they must stay valid until then. */
int pyconv_deconv_create(const struct pyconv_deconv_params *p, const struct pyconv_ukernels *uk,
                         const void *weights, const void *bias,
                         struct pyconv_deconv_op **op_out, char err[PYCONV_ERRLEN]);

/* Points the operator at an input and an output (builds the indirection buffer). */
void pyconv_deconv_setup(struct pyconv_deconv_op *op, const void *input, void *output);

/* Computes the output with up to n_threads threads; PYCONV_EINTR if
 * `interrupted` asked to stop. */
int pyconv_deconv_run(struct pyconv_deconv_op *op, size_t n_threads,
                      pyconv_interrupt_fn interrupted, void *ctx);

void pyconv_deconv_destroy(struct pyconv_deconv_op *op);

#endif
