/* The depthwise convolution operator. Each output row gets an indirection
 * buffer of input pointers (the shared zero vector where a tap falls in the
 * padding), laid out as XNNPACK's dwconv: per row, "column slots" of
 * kernel_h pointers each (one per kernel row), pixel ox's taps being the
 * kernel_w slots from ox * step_w on. Without dilation along x, step_w is
 * the stride, so neighbouring pixels share their overlapping columns and the
 * buffer is about kernel_h pointers per input column, not kernel_h *
 * kernel_w per output pixel. The microkernels then read weights packed per
 * channel tile (bias first, then every tap in that order). For 3x3 kernels
 * without dilation along x and stride 1 or 2, the interior pixels of each
 * row (no tap left or right of the image) go to the row kernel instead,
 * which reads three input rows directly (a zero row for rows in the
 * padding); the edge pixels stay on the indirection buffer.
 *
 * A depth multiplier above 1 expands each image once (channel c repeated
 * multiplier times, so channel c * multiplier + m sits where its output
 * goes) and runs the same kernels over the expanded image. */
#include "dwconv.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "buffers.h"
#include "eltwise.h"
#include "threads.h"
#include "util.h"
#include "wcache.h"

/* Output channels per task: a task is (image, output row, block of
 * channels); blocks keep several tasks per row for the late layers of
 * MobileNet (7x7 rows of 1024 channels), where rows alone are too few. */
#define BLOCK_CHANNELS 256

struct pyconv_dwconv_op {
    struct pyconv_dwconv_params p;
    size_t out_h, out_w;
    size_t elsize;       /* bytes per element */
    size_t channels;     /* output channels = channels * multiplier */
    size_t ct;           /* the kernel's channel tile */
    size_t ks;           /* taps = kernel_h * kernel_w */
    size_t n_tiles;      /* ceil(channels / ct) */
    size_t row_ptrs;     /* pointers per output row: slots * kernel_h */
    size_t a_step;       /* pointers between neighbouring pixels: step_w * kernel_h,
                          * step_w the column slots between them (row_slots) */
    size_t block;        /* output channels per task (a multiple of ct) */
    size_t n_blocks;     /* ceil(channels / block) */
    size_t in_image;     /* bytes of one input image (as given) */
    size_t out_image;    /* bytes of one output image */
    size_t tile_elems;   /* elements of one packed tile: (ks + 1) * ct */
    void *packed;        /* n_tiles packed tiles, filled by the first run */
    size_t packed_bytes;
    const void *weights, *bias;
    int is_packed, cached_valid;
    atomic_int stale;
    struct pyconv_wcache_entry *wentry;
    const void **indirection; /* out_h * row_ptrs pointers into image 0 (or the expansion) */
    void *zero;          /* channels zeros */
    void *expanded;      /* one expanded image (multiplier > 1), else NULL */
    size_t expanded_capacity;
    const void *input;
    void *output;
    size_t image;        /* the image being computed when multiplier > 1 */
    size_t capacity;     /* bytes of the block this struct heads */
    pyconv_f32_dwconv_fn f32_dwconv;
    pyconv_f64_dwconv_fn f64_dwconv;
    /* 3x3, dilation 1 along x, stride 1 or 2 along x: the row kernel takes the
     * interior pixels [row_lo, row_hi) of every row (NULL: not used) */
    pyconv_f32_dwconv3x3_fn f32_row3x3;
    pyconv_f64_dwconv3x3_fn f64_row3x3;
    size_t row_lo, row_hi;
    union {
        float f32[2];
        double f64[2];
    } minmax;
};

/* Column slots of one row's indirection (see the top of the file). */
static size_t row_slots(const struct pyconv_dwconv_params *p, size_t out_w, int *of)
{
    size_t step_w = p->dilation_w == 1 ? p->stride_w : p->kernel_w;
    return add(mul(out_w - 1, step_w, of), p->kernel_w, of);
}

int pyconv_dwconv_output_shape(const struct pyconv_dwconv_params *p, size_t *out_h,
                               size_t *out_w, char err[PYCONV_ERRLEN])
{
    if (p->in_h == 0 || p->in_w == 0)
        return fail(err, "input height and width must be at least 1, got %zu x %zu", p->in_h,
                    p->in_w);
    if (p->channels == 0)
        return fail(err, "input channels must be at least 1");
    if (p->kernel_h == 0 || p->kernel_w == 0)
        return fail(err, "kernel size must be at least 1, got %zu x %zu", p->kernel_h,
                    p->kernel_w);
    if (p->stride_h == 0 || p->stride_w == 0)
        return fail(err, "strides must be at least 1, got %zu x %zu", p->stride_h, p->stride_w);
    if (p->dilation_h == 0 || p->dilation_w == 0)
        return fail(err, "dilations must be at least 1, got %zu x %zu", p->dilation_h,
                    p->dilation_w);
    if (p->dtype != PYCONV_F32 && p->dtype != PYCONV_F64)
        return fail(err, "unknown dtype code %d", (int)p->dtype);
    if (p->activation != PYCONV_ACT_NONE && p->activation != PYCONV_ACT_RELU &&
        p->activation != PYCONV_ACT_RELU6)
        return fail(err, "unknown activation code %d", (int)p->activation);
    int rc = dim_output(p->in_h, p->kernel_h, p->stride_h, p->dilation_h, p->pad_top,
                        p->pad_bottom, out_h, "height", err);
    if (rc == PYCONV_OK)
        rc = dim_output(p->in_w, p->kernel_w, p->stride_w, p->dilation_w, p->pad_left,
                        p->pad_right, out_w, "width", err);
    if (rc != PYCONV_OK)
        return rc;
    /* Every byte count the operator or its caller forms must fit size_t;
     * per image first (batch 0 would hide an image too large to address). */
    int of = 0;
    size_t es = dtype_size(p->dtype);
    size_t oc = mul(p->channels, p->multiplier, &of);
    size_t in_pixels = mul(p->in_h, p->in_w, &of);
    size_t in_image = mul(mul(in_pixels, p->channels, &of), es, &of);
    size_t out_image = mul(mul(mul(*out_h, *out_w, &of), oc, &of), es, &of);
    mul(p->batch, in_image, &of);
    mul(p->batch, out_image, &of);
    mul(mul(in_pixels, oc, &of), es, &of); /* an expanded image */
    size_t ks = mul(p->kernel_h, p->kernel_w, &of);
    /* packed weights: tiles of up to 64 channels, bias + ks taps each */
    mul(mul(add(ks, 1, &of), add(oc, 64, &of), &of), es, &of);
    mul(mul(mul(*out_h, row_slots(p, *out_w, &of), &of), p->kernel_h, &of), sizeof(void *),
        &of);
    if (of)
        return fail(err, "the buffers of this depthwise convolution would be larger than "
                         "memory can address");
    return PYCONV_OK;
}

int pyconv_dwconv_create(const struct pyconv_dwconv_params *p, const struct pyconv_ukernels *uk,
                         const void *weights, const void *bias, struct pyconv_dwconv_op **op_out,
                         char err[PYCONV_ERRLEN])
{
    *op_out = NULL;
    size_t out_h, out_w;
    int rc = pyconv_dwconv_output_shape(p, &out_h, &out_w, err);
    if (rc != PYCONV_OK)
        return rc;
    if (uk == NULL || weights == NULL)
        return fail(err, "internal error: no microkernels or weights");
    const int f64 = p->dtype == PYCONV_F64;
    const size_t ct = f64 ? uk->f64_dwconv.ct : uk->f32_dwconv.ct;
    if ((f64 ? uk->f64_dwconv.fn == NULL : uk->f32_dwconv.fn == NULL) || ct == 0 || ct > 64)
        return fail(err, "internal error: no usable dwconv microkernel for this dtype");

    /* sizes below were overflow-checked by pyconv_dwconv_output_shape; their sum is checked here */
    int of = 0;
    const size_t es = f64 ? sizeof(double) : sizeof(float);
    const size_t channels = p->channels * p->multiplier;
    const size_t ks = p->kernel_h * p->kernel_w;
    const size_t n_tiles = (channels + ct - 1) / ct;
    const size_t step_w = p->dilation_w == 1 ? p->stride_w : p->kernel_w;
    const size_t row_ptrs = row_slots(p, out_w, &of) * p->kernel_h;
    const size_t head = round_up64(sizeof(struct pyconv_dwconv_op));
    /* the row kernel reads a zero row where a kernel row lies in the padding */
    const int use_row = (f64 ? uk->f64_dwconv.row3x3 != NULL : uk->f32_dwconv.row3x3 != NULL) &&
                        p->kernel_h == 3 && p->kernel_w == 3 && p->dilation_w == 1 &&
                        (p->stride_w == 1 || p->stride_w == 2);
    size_t row_lo = 0, row_hi = 0; /* interior pixels: no tap left or right of the image */
    if (use_row && p->in_w + p->pad_left >= 3 && p->in_w >= 3) {
        row_lo = (p->pad_left + p->stride_w - 1) / p->stride_w;
        row_hi = (p->in_w - 3 + p->pad_left) / p->stride_w + 1;
        if (row_hi > out_w)
            row_hi = out_w;
        if (row_lo >= row_hi)
            row_lo = row_hi = 0;
    }
    const size_t zero_len = row_hi > row_lo ? mul(p->in_w, channels, &of) : channels;
    const size_t zero_bytes = round_up64(mul(zero_len, es, &of));
    const size_t ind_bytes = round_up64(mul(mul(out_h, row_ptrs, &of), sizeof(void *), &of));
    const size_t tile_elems = (ks + 1) * ct;
    const size_t packed_bytes = round_up64(mul(mul(n_tiles, tile_elems, &of), es, &of));
    const size_t total = add(add(head, zero_bytes, &of), ind_bytes, &of);
    const size_t expanded_bytes =
        p->multiplier > 1 ? mul(mul(mul(p->in_h, p->in_w, &of), channels, &of), es, &of) : 0;
    if (of || total > PTRDIFF_MAX || packed_bytes > PTRDIFF_MAX || expanded_bytes > PTRDIFF_MAX)
        return fail(err, "the buffers of this depthwise convolution would be larger than "
                         "memory can address");
    size_t capacity;
    char *block = pyconv_buffer_acquire(total, &capacity);
    if (block == NULL)
        return PYCONV_ENOMEM;
    struct pyconv_dwconv_op *op = (struct pyconv_dwconv_op *)block;
    memset(op, 0, sizeof(*op));
    op->capacity = capacity;
    if (expanded_bytes > 0) {
        op->expanded = pyconv_buffer_acquire(expanded_bytes, &op->expanded_capacity);
        if (op->expanded == NULL) {
            pyconv_buffer_release(block, capacity);
            return PYCONV_ENOMEM;
        }
    }
    struct pyconv_wcache_key key = {weights, bias, (size_t)p->dtype, p->kernel_h, p->kernel_w,
                                    p->channels, channels, ct, 1, 0, 0};
    op->packed_bytes = packed_bytes;
    op->packed = pyconv_wcache_acquire_trusted(&key, packed_bytes, &op->wentry,
                                               &op->cached_valid, p->weights_readonly);
    if (op->packed == NULL) {
        if (op->expanded != NULL)
            pyconv_buffer_release(op->expanded, op->expanded_capacity);
        pyconv_buffer_release(block, capacity);
        return PYCONV_ENOMEM;
    }
    atomic_init(&op->stale, 0);
    if (op->cached_valid == 2) { /* verified earlier under trusted pins: no check */
        op->is_packed = 1;
        op->cached_valid = 0;
    }
    op->p = *p;
    op->out_h = out_h;
    op->out_w = out_w;
    op->elsize = es;
    op->channels = channels;
    op->ct = ct;
    op->ks = ks;
    op->n_tiles = n_tiles;
    op->row_ptrs = row_ptrs;
    op->a_step = step_w * p->kernel_h;
    /* (a multiplier of 0 gives no channels and no tasks; block stays non-zero) */
    op->block = channels <= BLOCK_CHANNELS ? (n_tiles ? n_tiles : 1) * ct
                                           : (BLOCK_CHANNELS + ct - 1) / ct * ct;
    op->n_blocks = (channels + op->block - 1) / op->block;
    op->in_image = p->in_h * p->in_w * p->channels * es;
    op->out_image = out_h * out_w * channels * es;
    op->tile_elems = tile_elems;
    op->zero = block + head;
    op->indirection = (const void **)(block + head + zero_bytes);
    memset(op->zero, 0, zero_len * es);
    op->row_lo = row_lo;
    op->row_hi = row_hi;
    if (row_hi > row_lo) {
        op->f32_row3x3 = f64 ? NULL : uk->f32_dwconv.row3x3;
        op->f64_row3x3 = f64 ? uk->f64_dwconv.row3x3 : NULL;
    }
    op->weights = weights;
    op->bias = bias;
    if (f64)
        op->f64_dwconv = uk->f64_dwconv.fn;
    else
        op->f32_dwconv = uk->f32_dwconv.fn;

    double lo, hi;
    pyconv_activation_bounds(p->activation, &lo, &hi);
    if (f64) {
        op->minmax.f64[0] = lo;
        op->minmax.f64[1] = hi;
    } else {
        op->minmax.f32[0] = (float)lo;
        op->minmax.f32[1] = (float)hi;
    }
    *op_out = op;
    return PYCONV_OK;
}

void pyconv_dwconv_setup(struct pyconv_dwconv_op *op, const void *input, void *output)
{
    const struct pyconv_dwconv_params *p = &op->p;
    op->input = input;
    op->output = output;
    /* with a multiplier the kernels read the expanded image (one channel per output channel) */
    const char *base = op->expanded != NULL ? (const char *)op->expanded : (const char *)input;
    const size_t px_bytes = (op->expanded != NULL ? op->channels : p->channels) * op->elsize;
    const size_t row_bytes = p->in_w * px_bytes;
    const size_t slots = op->row_ptrs / p->kernel_h;
    const void **ind = op->indirection;
    /* Unsigned arithmetic: positions left of/above the image wrap to huge
     * values and fail the bound test like those past it. */
    for (size_t oy = 0; oy < op->out_h; oy++) {
        const size_t top = oy * p->stride_h - p->pad_top;
        for (size_t j = 0; j < slots; j++) {
            size_t ix;
            if (p->dilation_w == 1)
                ix = j - p->pad_left;
            else
                ix = (j / p->kernel_w) * p->stride_w - p->pad_left +
                     (j % p->kernel_w) * p->dilation_w;
            for (size_t ky = 0; ky < p->kernel_h; ky++) {
                size_t iy = top + ky * p->dilation_h;
                *ind++ = (iy < p->in_h && ix < p->in_w) ? base + iy * row_bytes + ix * px_bytes
                                                        : op->zero;
            }
        }
    }
}

/* Tile i: ct biases (zeros without bias or past the channels), then the
 * taps in the indirection's order (kernel column-major: t = kx * kh + ky).
 * With `check`, nothing is written and the result is non-zero if a byte of
 * the weights or bias differs from the cached packing. */
static int pack_or_check_tiles(struct pyconv_dwconv_op *op, size_t first, size_t count,
                               int check)
{
    const struct pyconv_dwconv_params *p = &op->p;
    const size_t es = op->elsize, ct = op->ct, oc = op->channels;
    const size_t kh = p->kernel_h, kw = p->kernel_w;
    int differs = 0;
    for (size_t i = first; i < first + count && !differs; i++) {
        char *dst = (char *)op->packed + i * op->tile_elems * es;
        const size_t c0 = i * ct, nc = oc - c0 < ct ? oc - c0 : ct;
        if (op->bias != NULL) {
            const char *src = (const char *)op->bias + c0 * es;
            if (check)
                differs = memcmp(dst, src, nc * es);
            else
                memcpy(dst, src, nc * es);
        } else if (!check) {
            memset(dst, 0, nc * es);
        }
        if (!check)
            memset(dst + nc * es, 0, (ct - nc) * es);
        dst += ct * es;
        for (size_t kx = 0; kx < kw && !differs; kx++) {
            for (size_t ky = 0; ky < kh && !differs; ky++) {
                const char *src = (const char *)op->weights + ((ky * kw + kx) * oc + c0) * es;
                if (check) {
                    differs = memcmp(dst, src, nc * es);
                } else {
                    memcpy(dst, src, nc * es);
                    memset(dst + nc * es, 0, (ct - nc) * es);
                }
                dst += ct * es;
            }
        }
    }
    return differs;
}

static void pack_tiles_cb(void *ctx, size_t first, size_t count)
{
    pack_or_check_tiles(ctx, first, count, 0);
}

static void check_tiles_cb(void *ctx, size_t first, size_t count)
{
    struct pyconv_dwconv_op *op = ctx;
    if (pack_or_check_tiles(op, first, count, 1))
        atomic_store_explicit(&op->stale, 1, memory_order_relaxed);
}

/* Rows [first, first + count) of image op->image, every channel repeated
 * multiplier times, into the expanded image. */
static void expand_rows_cb(void *ctx, size_t first, size_t count)
{
    struct pyconv_dwconv_op *op = ctx;
    const struct pyconv_dwconv_params *p = &op->p;
    const size_t c = p->channels, dm = p->multiplier, es = op->elsize;
    const size_t pixels = count * p->in_w, px0 = first * p->in_w;
    const char *src = (const char *)op->input + op->image * op->in_image + px0 * c * es;
    char *dst = (char *)op->expanded + px0 * c * dm * es;
    if (es == sizeof(float)) {
        const float *s = (const float *)src;
        float *d = (float *)dst;
        for (size_t i = 0; i < pixels * c; i++)
            for (size_t m = 0; m < dm; m++)
                *d++ = s[i];
    } else {
        const double *s = (const double *)src;
        double *d = (double *)dst;
        for (size_t i = 0; i < pixels * c; i++)
            for (size_t m = 0; m < dm; m++)
                *d++ = s[i];
    }
}

/* Output pixels [px0, px1) of a row by the generic kernel. */
static void run_generic(const struct pyconv_dwconv_op *op, const void *const *a, const char *w,
                        char *c, size_t nc, size_t a_offset, size_t px0, size_t px1)
{
    if (px1 <= px0)
        return;
    a += px0 * op->a_step;
    c += px0 * op->channels * op->elsize;
    if (op->p.dtype == PYCONV_F64)
        op->f64_dwconv(nc, px1 - px0, op->ks, (const double *const *)a, op->a_step,
                       (const double *)w, (double *)c, op->channels, a_offset,
                       (const double *)op->zero, op->minmax.f64);
    else
        op->f32_dwconv(nc, px1 - px0, op->ks, (const float *const *)a, op->a_step,
                       (const float *)w, (float *)c, op->channels, a_offset,
                       (const float *)op->zero, op->minmax.f32);
}

/* The interior pixels of output row oy by the 3x3 row kernel. */
static void run_row3x3(const struct pyconv_dwconv_op *op, size_t n, size_t oy, size_t c0,
                       const char *w, char *c, size_t nc)
{
    const struct pyconv_dwconv_params *p = &op->p;
    const size_t es = op->elsize, chans = op->channels;
    const char *base = op->expanded != NULL ? (const char *)op->expanded
                                            : (const char *)op->input + n * op->in_image;
    const size_t row_bytes = p->in_w * chans * es;
    /* the first interior pixel's window starts at column lo * stride - pad_left >= 0 */
    const size_t col = (op->row_lo * p->stride_w - p->pad_left) * chans + c0;
    const void *rows[3];
    for (size_t ky = 0; ky < 3; ky++) {
        size_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
        rows[ky] = (iy < p->in_h ? base + iy * row_bytes : (const char *)op->zero) + col * es;
    }
    c += op->row_lo * chans * es;
    const size_t pixels = op->row_hi - op->row_lo;
    if (p->dtype == PYCONV_F64)
        op->f64_row3x3(nc, pixels, (const double *const *)rows, p->stride_w, chans,
                       (const double *)w, (double *)c, chans, op->minmax.f64);
    else
        op->f32_row3x3(nc, pixels, (const float *const *)rows, p->stride_w, chans,
                       (const float *)w, (float *)c, chans, op->minmax.f32);
}

/* Tasks (image, output row, channel block), block fastest; with a
 * multiplier the image is op->image and tasks cover one image. */
static void run_tasks_cb(void *ctx, size_t first, size_t count)
{
    struct pyconv_dwconv_op *op = ctx;
    const size_t es = op->elsize;
    const size_t per_image = op->out_h * op->n_blocks;
    for (size_t task = first; task < first + count; task++) {
        size_t n = task / per_image, rest = task % per_image;
        size_t oy = rest / op->n_blocks, b = rest % op->n_blocks;
        size_t c0 = b * op->block;
        size_t nc = op->channels - c0 < op->block ? op->channels - c0 : op->block;
        size_t a_offset = c0 * es;
        if (op->expanded == NULL)
            a_offset += n * op->in_image;
        else
            n = op->image;
        const void *const *a = op->indirection + oy * op->row_ptrs;
        const char *w = (const char *)op->packed + (c0 / op->ct) * op->tile_elems * es;
        char *c = (char *)op->output + n * op->out_image +
                  (oy * op->out_w * op->channels + c0) * es;
        if (op->row_hi > op->row_lo) {
            run_generic(op, a, w, c, nc, a_offset, 0, op->row_lo);
            run_row3x3(op, n, oy, c0, w, c, nc);
            run_generic(op, a, w, c, nc, a_offset, op->row_hi, op->out_w);
        } else {
            run_generic(op, a, w, c, nc, a_offset, 0, op->out_w);
        }
    }
}

int pyconv_dwconv_run(struct pyconv_dwconv_op *op, size_t n_threads,
                      pyconv_interrupt_fn interrupted, void *ctx)
{
    const struct pyconv_dwconv_params *p = &op->p;
    if (p->batch == 0 || op->channels == 0)
        return PYCONV_OK;
    int rc = PYCONV_OK;
    if (!op->is_packed) {
        size_t tile_cost = op->tile_elems; /* bytes streamed ~ elements */
        if (op->cached_valid) {
            rc = pyconv_parallel_for(op->n_tiles, tile_cost, n_threads, check_tiles_cb, op,
                                     interrupted, ctx);
            if (rc != PYCONV_OK)
                return rc;
            op->cached_valid = 0;
            op->is_packed = !atomic_load(&op->stale);
        }
        if (!op->is_packed) {
            rc = pyconv_parallel_for(op->n_tiles, tile_cost, n_threads, pack_tiles_cb, op,
                                     interrupted, ctx);
            if (rc != PYCONV_OK)
                return rc;
            op->is_packed = 1;
        }
    }
    /* multiply-adds per task, to size chunks of roughly equal work */
    const size_t task_macs = op->out_w * op->block * op->ks;
    const size_t per_image = op->out_h * op->n_blocks;
    if (op->expanded == NULL)
        return pyconv_parallel_for(p->batch * per_image, task_macs, n_threads, run_tasks_cb, op,
                                   interrupted, ctx);
    for (size_t n = 0; n < p->batch && rc == PYCONV_OK; n++) {
        op->image = n;
        rc = pyconv_parallel_for(p->in_h, p->in_w * op->channels, n_threads, expand_rows_cb, op,
                                 interrupted, ctx);
        if (rc == PYCONV_OK)
            rc = pyconv_parallel_for(per_image, task_macs, n_threads, run_tasks_cb, op,
                                     interrupted, ctx);
    }
    return rc;
}

void pyconv_dwconv_destroy(struct pyconv_dwconv_op *op)
{
    /* a run stopped while packing leaves the block half packed: not valid */
    pyconv_wcache_release(op->wentry, op->packed, op->packed_bytes, op->is_packed);
    if (op->expanded != NULL)
        pyconv_buffer_release(op->expanded, op->expanded_capacity);
    pyconv_buffer_release(op, op->capacity);
}
