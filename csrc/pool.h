/* The pooling operator (max and average, NHWC): the in-bounds part of every
 * window is walked directly, so the work is the output times the part of
 * the window inside the input, whatever the padding. No Python here. */
#ifndef PYCONV_POOL_H
#define PYCONV_POOL_H

#include <stddef.h>

#include "conv.h"

enum pyconv_pool_kind { PYCONV_POOL_MAX = 0, PYCONV_POOL_AVG = 1 };

/* NHWC input and output, C-contiguous. Every pad must be smaller than the
 * window, so every window holds at least one input pixel. */
struct pyconv_pool_params {
    size_t batch, in_h, in_w, channels;
    size_t kernel_h, kernel_w, stride_h, stride_w;
    size_t pad_top, pad_bottom, pad_left, pad_right;
    enum pyconv_pool_kind kind;
    enum pyconv_dtype dtype;
};

/* Everything the operator needs; filled by pyconv_pool_create (no memory of
 * its own, so a caller's local variable will do). */
struct pyconv_pool_op {
    struct pyconv_pool_params p;
    size_t out_h, out_w;
    size_t seg;    /* output pixels of one row per task */
    size_t n_segs; /* tasks per output row */
    size_t px_cost; /* elements read for one output pixel, at most */
    pyconv_f32_pool_fn f32;
    pyconv_f64_pool_fn f64;
    const void *input;
    void *output;
};

/* Checks every size (overflow included) and computes the output's size;
 * PYCONV_EINVAL with a message in err when unusable. */
int pyconv_pool_output_shape(const struct pyconv_pool_params *p, size_t *out_h, size_t *out_w,
                             char err[PYCONV_ERRLEN]);

/* Validates and picks the microkernel of `uk`. */
int pyconv_pool_create(const struct pyconv_pool_params *p, const struct pyconv_ukernels *uk,
                       struct pyconv_pool_op *op, char err[PYCONV_ERRLEN]);

void pyconv_pool_setup(struct pyconv_pool_op *op, const void *input, void *output);

/* Computes the output on up to n_threads threads (bit-identical for any
 * count: every output is reduced by one task in one fixed order); polls
 * `interrupted` like pyconv_conv_run and returns PYCONV_EINTR if it asked. */
int pyconv_pool_run(struct pyconv_pool_op *op, size_t n_threads, pyconv_interrupt_fn interrupted,
                    void *ctx);

#endif
