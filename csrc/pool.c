/* The pooling operator. Tasks are pieces of output rows; for each output
 * pixel the window is clipped to the input and handed to the microkernel as
 * a rectangle of rows x cols pixels: padding is never read, never wins a
 * max and is never counted in an average (TF's SAME rule, used for every
 * padding). */
#include "pool.h"

#include <stdio.h>
#include <string.h>

#include "threads.h"
#include "util.h"

/* Elements read by one task, at most: small enough that Ctrl-C is polled
 * every ~millisecond even for huge windows. */
#define TASK_ELEMENTS ((size_t)1 << 16)

/* Output size along one dimension; unlike conv's dim_output (util.h) the
 * pads must be smaller than the window and there is no dilation. */
static int pool_dim_output(size_t n, size_t k, size_t s, size_t before, size_t after,
                           size_t *out, const char *dim, char err[PYCONV_ERRLEN])
{
    size_t padded;
    if (before >= k || after >= k)
        return fail(err,
                    "%s: pads (%zu, %zu) must be smaller than the window (%zu): a window "
                    "wholly in the padding has nothing to pool",
                    dim, before, after, k);
    if (__builtin_add_overflow(n, before, &padded) || __builtin_add_overflow(padded, after, &padded))
        return fail(err, "%s: the padded size overflows", dim);
    if (padded < k)
        return fail(err, "%s: the window (%zu) is larger than the padded input (%zu + %zu + %zu)",
                    dim, k, n, before, after);
    *out = (padded - k) / s + 1;
    return PYCONV_OK;
}

int pyconv_pool_output_shape(const struct pyconv_pool_params *p, size_t *out_h, size_t *out_w,
                             char err[PYCONV_ERRLEN])
{
    if (p->in_h == 0 || p->in_w == 0)
        return fail(err, "input height and width must be at least 1, got %zu x %zu", p->in_h,
                    p->in_w);
    if (p->kernel_h == 0 || p->kernel_w == 0)
        return fail(err, "window size must be at least 1, got %zu x %zu", p->kernel_h,
                    p->kernel_w);
    if (p->stride_h == 0 || p->stride_w == 0)
        return fail(err, "strides must be at least 1, got %zu x %zu", p->stride_h, p->stride_w);
    if (p->dtype != PYCONV_F32 && p->dtype != PYCONV_F64)
        return fail(err, "unknown dtype code %d", (int)p->dtype);
    if (p->kind != PYCONV_POOL_MAX && p->kind != PYCONV_POOL_AVG)
        return fail(err, "unknown pooling kind %d", (int)p->kind);
    int rc = pool_dim_output(p->in_h, p->kernel_h, p->stride_h, p->pad_top, p->pad_bottom,
                             out_h, "height", err);
    if (rc == PYCONV_OK)
        rc = pool_dim_output(p->in_w, p->kernel_w, p->stride_w, p->pad_left, p->pad_right,
                             out_w, "width", err);
    if (rc != PYCONV_OK)
        return rc;
    /* every element offset the operator forms, per image first (batch 0
     * would hide an image too large to address) */
    size_t es = dtype_size(p->dtype), v;
    int of = __builtin_mul_overflow(p->in_h, p->in_w, &v) ||
             __builtin_mul_overflow(v, p->channels, &v) || __builtin_mul_overflow(v, es, &v) ||
             __builtin_mul_overflow(v, p->batch, &v) ||
             __builtin_mul_overflow(*out_h, *out_w, &v) ||
             __builtin_mul_overflow(v, p->channels, &v) || __builtin_mul_overflow(v, es, &v) ||
             __builtin_mul_overflow(v, p->batch, &v) ||
             __builtin_mul_overflow(*out_h, p->stride_h, &v) ||
             __builtin_mul_overflow(*out_w, p->stride_w, &v);
    if (of)
        return fail(err, "the arrays of this pooling would be larger than memory can address");
    return PYCONV_OK;
}

int pyconv_pool_create(const struct pyconv_pool_params *p, const struct pyconv_ukernels *uk,
                       struct pyconv_pool_op *op, char err[PYCONV_ERRLEN])
{
    memset(op, 0, sizeof(*op));
    int rc = pyconv_pool_output_shape(p, &op->out_h, &op->out_w, err);
    if (rc != PYCONV_OK)
        return rc;
    if (uk == NULL)
        return fail(err, "internal error: no microkernels");
    op->p = *p;
    const int avg = p->kind == PYCONV_POOL_AVG;
    if (p->dtype == PYCONV_F64)
        op->f64 = avg ? uk->f64_avgpool : uk->f64_maxpool;
    else
        op->f32 = avg ? uk->f32_avgpool : uk->f32_maxpool;
    if (op->f32 == NULL && op->f64 == NULL)
        return fail(err, "internal error: no pooling microkernel for this dtype");
    /* the clipped window is at most the whole input; no product overflows:
     * it is at most an image's element count, checked above */
    size_t rows = p->kernel_h < p->in_h ? p->kernel_h : p->in_h;
    size_t cols = p->kernel_w < p->in_w ? p->kernel_w : p->in_w;
    op->px_cost = rows * cols * (p->channels ? p->channels : 1);
    op->seg = TASK_ELEMENTS / op->px_cost;
    if (op->seg == 0)
        op->seg = 1;
    if (op->seg > op->out_w)
        op->seg = op->out_w;
    op->n_segs = (op->out_w + op->seg - 1) / op->seg;
    return PYCONV_OK;
}

void pyconv_pool_setup(struct pyconv_pool_op *op, const void *input, void *output)
{
    op->input = input;
    op->output = output;
}

/* The in-bounds rows [first, first + count) of the window starting at
 * o * stride - pad_before (the pads are smaller than the window and the
 * output size leaves no window past the input, so count >= 1). */
static void clip(size_t o, size_t stride, size_t pad_before, size_t k, size_t n, size_t *first,
                 size_t *count)
{
    size_t start = o * stride;
    size_t lo = start < pad_before ? 0 : start - pad_before;
    size_t hi = start + k - pad_before;
    if (hi > n)
        hi = n;
    *first = lo;
    *count = hi - lo;
}

static void run_tasks(void *ctx, size_t first, size_t count)
{
    struct pyconv_pool_op *op = ctx;
    const struct pyconv_pool_params *p = &op->p;
    const size_t c = p->channels, row_stride = p->in_w * c;
    for (size_t task = first; task < first + count; task++) {
        size_t seg = task % op->n_segs, line = task / op->n_segs; /* line = n * out_h + oy */
        size_t n = line / op->out_h, oy = line % op->out_h;
        size_t y0, rows;
        clip(oy, p->stride_h, p->pad_top, p->kernel_h, p->in_h, &y0, &rows);
        size_t ox_end = (seg + 1) * op->seg < op->out_w ? (seg + 1) * op->seg : op->out_w;
        for (size_t ox = seg * op->seg; ox < ox_end; ox++) {
            size_t x0, cols;
            clip(ox, p->stride_w, p->pad_left, p->kernel_w, p->in_w, &x0, &cols);
            size_t in_off = ((n * p->in_h + y0) * p->in_w + x0) * c;
            size_t out_off = ((n * op->out_h + oy) * op->out_w + ox) * c;
            if (op->f64 != NULL)
                op->f64(rows, cols, c, (const double *)op->input + in_off, row_stride,
                        (double)(rows * cols), (double *)op->output + out_off);
            else
                op->f32(rows, cols, c, (const float *)op->input + in_off, row_stride,
                        (float)(rows * cols), (float *)op->output + out_off);
        }
    }
}

int pyconv_pool_run(struct pyconv_pool_op *op, size_t n_threads, pyconv_interrupt_fn interrupted,
                    void *ctx)
{
    if (op->p.channels == 0 || op->p.batch == 0)
        return PYCONV_OK;
    size_t n_tasks = op->p.batch * op->out_h * op->n_segs;
    return pyconv_parallel_for(n_tasks, op->seg * op->px_cost, n_threads, run_tasks, op,
                               interrupted, ctx);
}
