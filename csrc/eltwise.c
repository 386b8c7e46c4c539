/* The elementwise epilogue operator: runs of contiguous elements sharing
 * their parameters' indexing, cut into tasks of at most SEG elements. */
#include "eltwise.h"

#include <stdio.h>
#include <string.h>

#include "threads.h"
#include "util.h"

#define SEG ((size_t)1 << 14)

void pyconv_activation_bounds(enum pyconv_activation act, double *lo, double *hi)
{
    *lo = -__builtin_inf();
    *hi = __builtin_inf();
    if (act == PYCONV_ACT_RELU || act == PYCONV_ACT_RELU6)
        *lo = 0.0;
    if (act == PYCONV_ACT_RELU6)
        *hi = 6.0;
}

int pyconv_eltwise_create(const struct pyconv_eltwise_params *p, const struct pyconv_ukernels *uk,
                          struct pyconv_eltwise_op *op, char err[PYCONV_ERRLEN])
{
    memset(op, 0, sizeof(*op));
    if (p->dtype != PYCONV_F32 && p->dtype != PYCONV_F64)
        return fail(err, "unknown dtype code %d", (int)p->dtype);
    if (p->activation != PYCONV_ACT_NONE && p->activation != PYCONV_ACT_RELU &&
        p->activation != PYCONV_ACT_RELU6)
        return fail(err, "unknown activation code %d", (int)p->activation);
    size_t es = dtype_size(p->dtype), v;
    if (__builtin_mul_overflow(p->outer, p->channels, &v) ||
        __builtin_mul_overflow(v, p->inner, &v) || __builtin_mul_overflow(v, es, &v))
        return fail(err, "the arrays of this operation would be larger than memory can address");
    if (uk == NULL || (p->dtype == PYCONV_F64 ? uk->f64_eltwise == NULL : uk->f32_eltwise == NULL))
        return fail(err, "internal error: no elementwise microkernel for this dtype");
    op->p = *p;
    if (p->inner == 1) {
        op->run_len = p->channels;
        op->n_runs = p->outer;
    } else {
        op->run_len = p->inner;
        op->n_runs = p->outer * p->channels;
    }
    op->seg = op->run_len < SEG ? op->run_len : SEG;
    op->n_segs = op->seg ? (op->run_len + op->seg - 1) / op->seg : 0;
    double lo, hi;
    pyconv_activation_bounds(p->activation, &lo, &hi);
    if (p->dtype == PYCONV_F64) {
        op->f64 = uk->f64_eltwise;
        op->minmax.f64[0] = lo;
        op->minmax.f64[1] = hi;
    } else {
        op->f32 = uk->f32_eltwise;
        op->minmax.f32[0] = (float)lo;
        op->minmax.f32[1] = (float)hi;
    }
    return PYCONV_OK;
}

void pyconv_eltwise_setup(struct pyconv_eltwise_op *op, const void *x, const void *pre,
                          const void *scale, const void *shift, const void *res, void *y)
{
    op->x = x;
    op->pre = pre;
    op->scale = scale;
    op->shift = shift;
    op->res = res;
    op->y = y;
}

/* A task is one segment of one run; the parameters of a run are indexed
 * per element (NHWC) or are its channel's single value (NCHW). */
static void run_tasks(void *ctx, size_t first, size_t count)
{
    struct pyconv_eltwise_op *op = ctx;
    const int per_element = op->p.inner == 1;
    const size_t es = dtype_size(op->p.dtype);
    for (size_t task = first; task < first + count; task++) {
        size_t run = task / op->n_segs, e0 = task % op->n_segs * op->seg;
        size_t n = op->run_len - e0 < op->seg ? op->run_len - e0 : op->seg;
        size_t off = (run * op->run_len + e0) * es; /* bytes into x, res, y */
        size_t poff = (per_element ? e0 : run % op->p.channels) * es; /* into the parameters */
#define AT(ptr, bytes) ((ptr) != NULL ? (const char *)(ptr) + (bytes) : NULL)
        if (op->f64 != NULL)
            op->f64(n, (const double *)AT(op->x, off), (const double *)AT(op->pre, poff),
                    (const double *)AT(op->scale, poff), (const double *)AT(op->shift, poff),
                    (const double *)AT(op->res, off), (double *)((char *)op->y + off),
                    (size_t)per_element, op->minmax.f64);
        else
            op->f32(n, (const float *)AT(op->x, off), (const float *)AT(op->pre, poff),
                    (const float *)AT(op->scale, poff), (const float *)AT(op->shift, poff),
                    (const float *)AT(op->res, off), (float *)((char *)op->y + off),
                    (size_t)per_element, op->minmax.f32);
#undef AT
    }
}

int pyconv_eltwise_run(struct pyconv_eltwise_op *op, size_t n_threads,
                       pyconv_interrupt_fn interrupted, void *ctx)
{
    size_t n_tasks = op->n_runs * op->n_segs;
    if (n_tasks == 0)
        return PYCONV_OK;
    return pyconv_parallel_for(n_tasks, op->seg, n_threads, run_tasks, op, interrupted, ctx);
}
