/* The convolution operator: plan (pack weights, build the indirection buffer)
 * and run (call microkernels over output tiles). No Python here. */
#ifndef PYCONV_CONV_H
#define PYCONV_CONV_H

#include <stddef.h>

#include "ukernels/ukernels.h"

enum pyconv_dtype { PYCONV_F32 = 0, PYCONV_F64 = 1 };
enum pyconv_activation { PYCONV_ACT_NONE = 0, PYCONV_ACT_RELU = 1, PYCONV_ACT_RELU6 = 2 };
enum pyconv_status { PYCONV_OK = 0, PYCONV_EINVAL, PYCONV_ENOMEM, PYCONV_EINTR };

#define PYCONV_ERRLEN 256

/* Everything the operator needs to know about one convolution. Layout is
 * NHWC input, HWIO weights, NHWC output, all C-contiguous. */
struct pyconv_conv_params {
    size_t batch, in_h, in_w, in_c, out_c;
    size_t kernel_h, kernel_w;
    size_t stride_h, stride_w, dilation_h, dilation_w;
    size_t pad_top, pad_bottom, pad_left, pad_right;
    enum pyconv_activation activation;
    enum pyconv_dtype dtype;
    /* grouped convolution (tf.nn.conv2d with in_c a multiple of the filters'):
     * in_c / groups input and out_c / groups output channels per group, filters
     * [kernel_h, kernel_w, in_c / groups, out_c]; 0 or 1: one group */
    size_t groups;
    /* the caller vouches that weights and bias are read-only right now: a
     * packing verified under trusted pins is reused unchecked (wcache.h) */
    int weights_readonly;
};

/* Checks every size and computes the output's spatial size. Returns
 * PYCONV_EINVAL with a message in err when the parameters are unusable or any
 * buffer size would overflow size_t. */
int pyconv_conv_output_shape(const struct pyconv_conv_params *p, size_t *out_h, size_t *out_w,
                             char err[PYCONV_ERRLEN]);

/* The bytes pyconv_conv_create would allocate with these kernels: the packed
 * weights (for the tile it would pick) and the block holding the operator,
 * zero vector and indirection buffer. For estimates made before allocating
 * anything; same errors as pyconv_conv_create. */
int pyconv_conv_workspace(const struct pyconv_conv_params *p, const struct pyconv_ukernels *uk,
                          size_t *packed_bytes, size_t *block_bytes, char err[PYCONV_ERRLEN]);

struct pyconv_conv_op;

/* Plans a convolution: validates, picks the microkernel tile and allocates
 * the packed-weight and indirection buffers. The weights (HWIO) and bias
 * (may be NULL) are packed by the first pyconv_conv_run, on all its
 * threads, so they must stay valid and unchanged until then. */
int pyconv_conv_create(const struct pyconv_conv_params *p, const struct pyconv_ukernels *uk,
                       const void *weights, const void *bias, struct pyconv_conv_op **op_out,
                       char err[PYCONV_ERRLEN]);

/* Points the operator at an input and an output buffer. The indirection
 * buffer for this input is built by the next pyconv_conv_run, on its threads
 * and interruptible like the rest of the run. */
void pyconv_conv_setup(struct pyconv_conv_op *op, const void *input, void *output);

/* Called between chunks of work on the calling thread; non-zero stops the run. */
typedef int (*pyconv_interrupt_fn)(void *ctx);

/* Computes the output with up to n_threads threads. Returns PYCONV_EINTR if
 * `interrupted` asked to stop (the output is then incomplete). */
int pyconv_conv_run(struct pyconv_conv_op *op, size_t n_threads, pyconv_interrupt_fn interrupted,
                    void *ctx);

void pyconv_conv_destroy(struct pyconv_conv_op *op);

/* Shared with the other operators that run the igemm microkernels. */
/* Tile i of the set for one dtype (f64 0/1): its MR, NR and speed; 0 if that
 * slot is empty or unusable. */
int pyconv_igemm_tile_info(const struct pyconv_ukernels *uk, int f64, size_t i, size_t *mr,
                           size_t *nr, unsigned *speed);
/* The tile with the least padded work for `pixels` x `out_c` outputs per unit
 * of speed; PYCONV_MAX_TILES if the set has none. */
size_t pyconv_igemm_pick_tile(const struct pyconv_ukernels *uk, int f64, size_t pixels,
                              size_t out_c);
/* Bytes of this core's L2 cache (1 MiB when the system won't say). */
size_t pyconv_l2_bytes(void);

/* The fused epilogue (DESIGN.md, "epilogues are the fusion point"): each
 * output tile, right after the microkernel stored it and while it is in L1,
 * becomes clamp(((acc + pre[c]) * scale[c] + shift[c]) + residual) with the
 * elementwise microkernel of the same set, so the result is bit for bit the
 * convolution followed by pyconv_eltwise. acc includes the bias; the clamp
 * is the operator's activation (moved out of the microkernel). pre, scale,
 * shift (out_c elements) and residual (NHWC, the output's shape) may each
 * be NULL and must stay valid until the run ends. Call before the run
 * (again: the last description counts). */
struct pyconv_epilogue {
    const void *pre, *scale, *shift, *residual;
    /* Optional second output, written while the tile is in L1:
     * add_out = clamp(output + add_to, add_activation), add_to and add_out of
     * the output's shape (ResNet's relu(shortcut + conv3) beside conv3's own
     * output, which stays an end point). Same kernel and order as the
     * separate elementwise pass, so the same bits. NULL: none. */
    const void *add_to;
    void *add_out;
    enum pyconv_activation add_activation;
};
void pyconv_conv_set_epilogue(struct pyconv_conv_op *op, const struct pyconv_epilogue *ep);

#endif
