/* The elementwise epilogue operator: what runs between convolutions at
 * inference (batch norm with the moving statistics, bias, residual add,
 * ReLU/ReLU6) as one pass over an array viewed as [outer, channels, inner]:
 *   y = clamp(((x + pre[c]) * scale[c] + shift[c]) + res, activation)
 * NHWC data is [N*H*W, C, 1], NCHW data [N, C, H*W]. No Python here. */
#ifndef PYCONV_ELTWISE_H
#define PYCONV_ELTWISE_H

#include <stddef.h>

#include "conv.h"

struct pyconv_eltwise_params {
    size_t outer, channels, inner;
    enum pyconv_activation activation;
    enum pyconv_dtype dtype;
};

/* Filled by pyconv_eltwise_create (no memory of its own). */
struct pyconv_eltwise_op {
    struct pyconv_eltwise_params p;
    size_t run_len;  /* elements per run: channels (inner == 1) or inner */
    size_t n_runs;   /* outer or outer * channels */
    size_t seg;      /* elements per task, at most */
    size_t n_segs;   /* tasks per run */
    pyconv_f32_eltwise_fn f32;
    pyconv_f64_eltwise_fn f64;
    union {
        float f32[2];
        double f64[2];
    } minmax;
    const void *x, *pre, *scale, *shift, *res;
    void *y;
};

/* The clamp of an activation as {lo, hi} (+-inf for none). */
void pyconv_activation_bounds(enum pyconv_activation act, double *lo, double *hi);

int pyconv_eltwise_create(const struct pyconv_eltwise_params *p, const struct pyconv_ukernels *uk,
                          struct pyconv_eltwise_op *op, char err[PYCONV_ERRLEN]);

/* pre, scale, shift (channels elements each) and res (same shape as x) may
 * be NULL; y may be x. */
void pyconv_eltwise_setup(struct pyconv_eltwise_op *op, const void *x, const void *pre,
                          const void *scale, const void *shift, const void *res, void *y);

/* Bit-identical for every thread count (elementwise, one task per element);
 * polls `interrupted` like the other operators. */
int pyconv_eltwise_run(struct pyconv_eltwise_op *op, size_t n_threads,
                       pyconv_interrupt_fn interrupted, void *ctx);

#endif
