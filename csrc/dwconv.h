/* The depthwise convolution operator: plan (indirection buffer, packed
 * weights) and run (call the dwconv microkernels over output rows). Every
 * input channel c is convolved with its own `multiplier` filters; output
 * channel c * multiplier + m uses filter [:, :, c, m], as
 * tf.nn.depthwise_conv2d. No Python here. */
#ifndef PYCONV_DWCONV_H
#define PYCONV_DWCONV_H

#include <stddef.h>

#include "conv.h"

/* Layout: NHWC input [batch, in_h, in_w, channels], weights
 * [kernel_h, kernel_w, channels, multiplier], bias [channels * multiplier] or
 * none, NHWC output [batch, out_h, out_w, channels * multiplier], all
 * C-contiguous. */
struct pyconv_dwconv_params {
    size_t batch, in_h, in_w, channels, multiplier;
    size_t kernel_h, kernel_w;
    size_t stride_h, stride_w, dilation_h, dilation_w;
    size_t pad_top, pad_bottom, pad_left, pad_right;
    enum pyconv_activation activation;
    enum pyconv_dtype dtype;
    int weights_readonly; /* as in pyconv_conv_params */
};

/* Checks every size and computes the output's spatial size; PYCONV_EINVAL
 * with a message when the parameters are unusable or a buffer size would
 * overflow size_t. */
int pyconv_dwconv_output_shape(const struct pyconv_dwconv_params *p, size_t *out_h,
                               size_t *out_w, char err[PYCONV_ERRLEN]);

struct pyconv_dwconv_op;

/* Plans a depthwise convolution: validates, picks the microkernel and
 * allocates the indirection buffer and packed weights. Weights and bias
 * (may be NULL) are packed (or a cached packing checked) by the first run,
 * so they must stay valid and unchanged until then. */
int pyconv_dwconv_create(const struct pyconv_dwconv_params *p, const struct pyconv_ukernels *uk,
                         const void *weights, const void *bias, struct pyconv_dwconv_op **op_out,
                         char err[PYCONV_ERRLEN]);

/* Points the operator at an input and an output (builds the indirection
 * buffer into image 0 of this input). */
void pyconv_dwconv_setup(struct pyconv_dwconv_op *op, const void *input, void *output);

/* Computes the output on up to n_threads threads; PYCONV_EINTR if
 * `interrupted` asked to stop (the output is then incomplete). */
int pyconv_dwconv_run(struct pyconv_dwconv_op *op, size_t n_threads,
                      pyconv_interrupt_fn interrupted, void *ctx);

void pyconv_dwconv_destroy(struct pyconv_dwconv_op *op);

#endif
