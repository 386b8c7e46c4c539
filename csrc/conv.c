/* The indirect convolution operator (Dukhan 2019): every (output pixel, tap)
 * gets a pointer to an input channel vector, or to a shared zero vector where
 * the tap falls into the padding; microkernels then run a GEMM over those
 * pointers and weights packed once per plan. */
#define _GNU_SOURCE /* sysconf(_SC_LEVEL2_CACHE_SIZE) */
#include "conv.h"
#include "eltwise.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buffers.h"
#include "threads.h"
#include "util.h"
#include "wcache.h"

struct pyconv_conv_op {
    struct pyconv_conv_params p;
    size_t out_h, out_w;
    size_t elsize;      /* bytes per element */
    size_t mr, nr;      /* microkernel tile */
    size_t ks;          /* taps = kernel_h * kernel_w */
    size_t pixels;      /* out_h * out_w per image */
    size_t n_ptiles;    /* pixel tiles per image */
    size_t n_cblocks;   /* NR-wide output channel blocks (per group, times the groups) */
    size_t n_conv_groups, group_in_c, group_out_c, group_cblocks; /* grouped convolution */
    size_t group;       /* channel blocks per task: their packed weights fit in L2 */
    size_t n_groups;    /* ceil(n_cblocks / group) */
    size_t wblock;      /* elements of one packed NR block */
    size_t in_image;    /* bytes of one input image */
    void *packed;       /* n_cblocks * wblock elements, filled by the first run */
    const void *weights, *bias; /* what to pack (bias may be NULL) */
    int is_packed;      /* packed holds exactly weights and bias */
    int cached_valid;   /* packed came from the cache holding an earlier packing */
    atomic_int stale;   /* that packing differs from weights or bias */
    struct pyconv_wcache_entry *wentry; /* packed's cache entry, or NULL if private */
    size_t capacity;    /* bytes of the block this struct heads (pyconv_buffer_acquire) */
    size_t packed_bytes; /* bytes of packed (pyconv_wcache_acquire) */
    const void **indirection; /* n_ptiles * ks * mr pointers */
    int indirection_built; /* indirection points into the current input */
    unsigned char *merged; /* per pixel tile: 1 if its rows' taps along x are merged */
    size_t *yrange, *xrange; /* per output row / column: its live taps [lo, hi) */
    uint32_t *order;    /* with can_skip and long sums: the pixels in tile order (else NULL) */
    int build_in_tasks; /* this run's tasks build their own tiles (see pyconv_conv_run) */
    size_t zero_len;    /* elements of the zero vector */
    void *zero;         /* zero_len zeros */
    const void *input;
    void *output;
    pyconv_f32_igemm_fn f32_igemm; /* the chosen tile's kernel (one of them is set) */
    pyconv_f64_igemm_fn f64_igemm;
    /* Taps wholly in the padding (see build_tiles): */
    pyconv_f32_igemm_taps_fn f32_igemm_taps; /* the tile's tap-list twin */
    pyconv_f64_igemm_taps_fn f64_igemm_taps;
    int can_skip;       /* the plan lists each tile's live taps */
    int skip;           /* and the run uses the lists: the weights are finite */
    uint32_t *n_live;   /* per pixel tile: its taps with a pointer not to zero */
    uint32_t *live;     /* per pixel tile, ks entries: those taps, ascending */
    size_t trailer;     /* byte offset in packed of the weights' finiteness word */
    atomic_int nonfinite; /* this run's packing saw a weight that is NaN or +-Inf */
    atomic_int scanned; /* this run packed (and scanned) the weights */
    union {
        float f32[2];
        double f64[2];
    } minmax, ep_minmax, add_minmax; /* the microkernel's clamp; the epilogue's; add_out's */
    int ep_terms; /* the epilogue has pre/scale/shift/residual (else only add_out) */
    struct pyconv_epilogue ep; /* used when has_ep */
    int has_ep;
    pyconv_f32_eltwise_fn f32_eltwise; /* the epilogue's kernel, of the tile's set */
    pyconv_f64_eltwise_fn f64_eltwise;
};

int pyconv_conv_output_shape(const struct pyconv_conv_params *p, size_t *out_h, size_t *out_w,
                             char err[PYCONV_ERRLEN])
{
    if (p->in_h == 0 || p->in_w == 0)
        return fail(err, "input height and width must be at least 1, got %zu x %zu", p->in_h,
                    p->in_w);
    if (p->in_c == 0)
        return fail(err, "input channels must be at least 1");
    if (p->kernel_h == 0 || p->kernel_w == 0)
        return fail(err, "kernel size must be at least 1, got %zu x %zu", p->kernel_h,
                    p->kernel_w);
    if (p->stride_h == 0 || p->stride_w == 0)
        return fail(err, "strides must be at least 1, got %zu x %zu", p->stride_h, p->stride_w);
    if (p->dilation_h == 0 || p->dilation_w == 0)
        return fail(err, "dilations must be at least 1, got %zu x %zu", p->dilation_h,
                    p->dilation_w);
    if (p->groups > 1 && (p->in_c % p->groups != 0 || p->out_c % p->groups != 0))
        return fail(err, "%zu groups must divide the input channels (%zu) and the outputs (%zu)",
                    p->groups, p->in_c, p->out_c);
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
    /* Every byte count the operator or its caller will form must fit size_t. */
    int of = 0;
    size_t es = dtype_size(p->dtype);
    /* per image first: with batch 0 the whole-batch products are 0 and
     * would hide an image too large to address */
    size_t in_image = mul(mul(mul(p->in_h, p->in_w, &of), p->in_c, &of), es, &of);
    size_t out_image = mul(mul(mul(*out_h, *out_w, &of), p->out_c, &of), es, &of);
    mul(p->batch, in_image, &of);
    mul(p->batch, out_image, &of);
    /* packed weights: out_c rounded up to the widest tile, (taps * in_c + 1)
     * rows; indirection: pixels rounded up to the tallest tile, one pointer
     * per tap (the exact sizes, for the chosen tile, are checked again by
     * pyconv_conv_create) */
    size_t ks = mul(p->kernel_h, p->kernel_w, &of);
    size_t cols = mul(add(p->out_c, PYCONV_MAX_NR - 1, &of) / PYCONV_MAX_NR, PYCONV_MAX_NR, &of);
    mul(mul(add(mul(ks, p->in_c, &of), 1, &of), cols, &of), es, &of);
    mul(mul(add(mul(*out_h, *out_w, &of), PYCONV_MAX_MR, &of), ks, &of), sizeof(void *), &of);
    if (of)
        return fail(err, "the buffers of this convolution would be larger than memory can address");
    return PYCONV_OK;
}

/* Packed layout per NR block of output channels: NR biases, then for every
 * tap and input channel NR weights. Channels beyond out_c are zero. Every
 * byte is written once. The work is split by rows of the HWIO weights (one
 * tap and input channel, all output channels): each row is read once,
 * sequentially, and its pieces go to every block.
 *
 * With `check`, nothing is written: the same pieces are compared with a
 * cached packing instead, and the result is non-zero if any byte of the
 * weights or bias differs (the zero lanes are ours alone, written by the
 * complete packing that made the cached block valid). */
/* Grouped convolution: block cb belongs to group *g = cb / group_cblocks and
 * covers its output channels [n0, n0 + *cols), n0 returned; with one group
 * these are the NR-wide blocks of out_c. Blocks never straddle two groups. */
static size_t block_channels(const struct pyconv_conv_op *op, size_t cb, size_t *cols, size_t *g)
{
    size_t gi = cb / op->group_cblocks, first = (cb % op->group_cblocks) * op->nr;
    size_t left = op->group_out_c - first;
    *cols = left < op->nr ? left : op->nr;
    *g = gi;
    return gi * op->group_out_c + first;
}

static int pack_or_check_rows(struct pyconv_conv_op *op, size_t first, size_t count, int check)
{
    const struct pyconv_conv_params *p = &op->p;
    const size_t es = op->elsize, nr = op->nr, oc = p->out_c;
    const size_t blk = op->wblock * es;
    char *packed = (char *)op->packed;
    int differs = 0;
    size_t nc, gi;
    if (first == 0 && (op->bias != NULL || !check)) {
        for (size_t cb = 0; cb < op->n_cblocks && !differs; cb++) {
            char *dst = packed + cb * blk;
            size_t n0 = block_channels(op, cb, &nc, &gi);
            if (op->bias == NULL) { /* packing without bias: zeros */
                memset(dst, 0, nr * es);
                continue;
            }
            const char *src = (const char *)op->bias + n0 * es;
            if (check) {
                differs = memcmp(dst, src, nc * es);
            } else {
                memcpy(dst, src, nc * es);
                memset(dst + nc * es, 0, (nr - nc) * es);
            }
        }
    }
    for (size_t row = first; row < first + count && !differs; row++) {
        const char *src_row = (const char *)op->weights + row * oc * es;
        char *dst = packed + (nr + row * nr) * es;
        for (size_t cb = 0; cb < op->n_cblocks && !differs; cb++) {
            const char *src = src_row + block_channels(op, cb, &nc, &gi) * es;
            if (check) {
                differs = memcmp(dst, src, nc * es);
            } else {
                memcpy(dst, src, nc * es);
                memset(dst + nc * es, 0, (nr - nc) * es);
            }
            dst += blk;
        }
    }
    return differs;
}

/* Whether rows [first, first + count) of the weights hold a NaN or an
 * infinity (an exponent of all ones). */
static int rows_nonfinite(const struct pyconv_conv_op *op, size_t first, size_t count)
{
    const size_t n = count * op->p.out_c;
    const char *w = (const char *)op->weights + first * op->p.out_c * op->elsize;
    unsigned bad = 0;
    if (op->p.dtype == PYCONV_F64) {
        const uint64_t e = 0x7ff0000000000000u;
        for (size_t i = 0; i < n; i++) {
            uint64_t b;
            memcpy(&b, w + i * 8, 8);
            bad |= (b & e) == e;
        }
    } else {
        const uint32_t e = 0x7f800000u;
        for (size_t i = 0; i < n; i++) {
            uint32_t b;
            memcpy(&b, w + i * 4, 4);
            bad |= (b & e) == e;
        }
    }
    return bad != 0;
}

static void pack_rows_cb(void *ctx, size_t first, size_t count)
{
    struct pyconv_conv_op *op = ctx;
    pack_or_check_rows(op, first, count, 0);
    /* for the word after the packing: may padding taps be skipped (0 * w is
     * +-0 only for finite w) */
    if (rows_nonfinite(op, first, count))
        atomic_store_explicit(&op->nonfinite, 1, memory_order_relaxed);
    atomic_store_explicit(&op->scanned, 1, memory_order_relaxed);
}

static void check_rows_cb(void *ctx, size_t first, size_t count)
{
    struct pyconv_conv_op *op = ctx;
    if (pack_or_check_rows(op, first, count, 1))
        atomic_store_explicit(&op->stale, 1, memory_order_relaxed);
}

/* Bytes of this core's L2 cache (asked once; 1 MiB when the system won't say). */
size_t pyconv_l2_bytes(void)
{
    static atomic_size_t cached;
    size_t bytes = atomic_load_explicit(&cached, memory_order_relaxed);
    if (bytes == 0) {
        long v = -1;
#ifdef _SC_LEVEL2_CACHE_SIZE
        v = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
        bytes = v >= 64 * 1024 ? (size_t)v : (size_t)1 << 20;
        atomic_store_explicit(&cached, bytes, memory_order_relaxed);
    }
    return bytes;
}

/* Tile i of the set for one dtype; 0 if that slot is empty or unusable. */
int pyconv_igemm_tile_info(const struct pyconv_ukernels *uk, int f64, size_t i, size_t *mr, size_t *nr,
                     unsigned *speed)
{
    if (f64 ? uk->f64[i].igemm == NULL : uk->f32[i].igemm == NULL)
        return 0;
    *mr = f64 ? uk->f64[i].mr : uk->f32[i].mr;
    *nr = f64 ? uk->f64[i].nr : uk->f32[i].nr;
    *speed = f64 ? uk->f64[i].speed : uk->f32[i].speed;
    return *mr >= 1 && *mr <= PYCONV_MAX_MR && *nr >= 1 && *nr <= PYCONV_MAX_NR && *speed >= 1;
}

/* The tile with the least padded work over the output (whole tiles of rows
 * per image, whole blocks of channels) per unit of speed; the earlier on
 * ties. PYCONV_MAX_TILES if the set has none. */
size_t pyconv_igemm_pick_tile(const struct pyconv_ukernels *uk, int f64, size_t pixels, size_t out_c)
{
    size_t best = PYCONV_MAX_TILES, mr, nr;
    unsigned speed;
    double best_cost = 0.0;
    for (size_t i = 0; i < PYCONV_MAX_TILES && pyconv_igemm_tile_info(uk, f64, i, &mr, &nr, &speed); i++) {
        double cost = (double)((pixels + mr - 1) / mr * mr) *
                      (double)((out_c + nr - 1) / nr * nr) / speed;
        if (best == PYCONV_MAX_TILES || cost < best_cost) {
            best = i;
            best_cost = cost;
        }
    }
    return best;
}

/* Along one dimension, the taps [*lo, *hi) of output o that read the input:
 * 0 <= o * stride + tap * dilation - pad < n_in (sums fit: the padded size
 * was checked). */
static void tap_range(size_t o, size_t n_in, size_t k, size_t stride, size_t dilation,
                      size_t pad, size_t *lo, size_t *hi)
{
    size_t x = o * stride;
    size_t a = pad > x ? (pad - x + dilation - 1) / dilation : 0;
    size_t b = pad + n_in > x ? (pad + n_in - x + dilation - 1) / dilation : 0;
    a = a < k ? a : k;
    b = b < k ? b : k;
    *lo = a;
    *hi = b > a ? b : a;
}

/* The fraction of (output, tap) pairs along one dimension that read the
 * input, tap by tap (the sizes are not yet known to fit memory: no loop over
 * the outputs, and a kernel larger than 4096 is not looked at). */
static double live_fraction(size_t n_in, size_t n_out, size_t k, size_t stride, size_t dilation,
                            size_t pad)
{
    if (k > 4096)
        return 1.0;
    double live = 0.0;
    for (size_t t = 0; t < k; t++) {
        /* outputs o with 0 <= o * stride + t * dilation - pad < n_in */
        size_t off = t * dilation; /* fits: the padded size was checked */
        size_t lo = off >= pad ? 0 : (pad - off + stride - 1) / stride;
        size_t end = n_in + pad > off ? (n_in + pad - off + stride - 1) / stride : 0;
        end = end < n_out ? end : n_out;
        live += end > lo ? (double)(end - lo) : 0.0;
    }
    return live / ((double)n_out * (double)k);
}

/* Whether to list each pixel tile's live taps (build_tiles) so that the
 * kernels skip the taps in the padding: when at least 1/16 of the (pixel,
 * tap) pairs read only padding (dilated layers, small maps); not for the
 * usual 3x3 layer on a large map, whose few border tiles gain nothing. */
static int worth_skipping(const struct pyconv_conv_params *p, size_t out_h, size_t out_w)
{
    if (out_h == 0 || out_w == 0)
        return 0;
    double live = live_fraction(p->in_h, out_h, p->kernel_h, p->stride_h, p->dilation_h,
                                p->pad_top) *
                  live_fraction(p->in_w, out_w, p->kernel_w, p->stride_w, p->dilation_w,
                                p->pad_left);
    return live <= 15.0 / 16.0;
}

/* What pyconv_conv_create allocates, for the tile it picks. */
struct plan_sizes {
    size_t out_h, out_w, best, mr, nr, ks, n_cblocks, wblock, n_ptiles;
    size_t head, packed_bytes, zero_len, zero_bytes, ind_bytes, total;
    size_t trailer, live_bytes; /* finiteness word in packed; tap lists */
    size_t range_bytes;         /* live tap ranges per output row and column */
    size_t live_at, range_at;   /* where those are in the block */
    size_t order_bytes, order_at; /* pixel order (0 bytes: row-major) */
    int can_skip;
};

static int plan_sizes(const struct pyconv_conv_params *p, const struct pyconv_ukernels *uk,
                      struct plan_sizes *z, char err[PYCONV_ERRLEN])
{
    int rc = pyconv_conv_output_shape(p, &z->out_h, &z->out_w, err);
    if (rc != PYCONV_OK)
        return rc;
    if (uk == NULL)
        return fail(err, "internal error: no microkernels");

    const int f64 = p->dtype == PYCONV_F64;
    z->best = pyconv_igemm_pick_tile(uk, f64, z->out_h * z->out_w, p->out_c);
    unsigned speed;
    if (z->best == PYCONV_MAX_TILES || !pyconv_igemm_tile_info(uk, f64, z->best, &z->mr, &z->nr, &speed))
        return fail(err, "internal error: no usable microkernel for this dtype");

    /* One allocation per call holds the operator, the zero vector and the
     * indirection buffer; the packed weights come from the weight cache
     * (sizes were overflow-checked by pyconv_conv_output_shape; their sum is
     * checked here). */
    int of = 0;
    const size_t es = dtype_size(p->dtype), mr = z->mr, nr = z->nr;
    z->ks = p->kernel_h * p->kernel_w;
    /* grouped: each group's outputs in blocks of their own, rows of its in_c / groups */
    const size_t groups = p->groups > 1 ? p->groups : 1;
    z->n_cblocks = groups * ((p->out_c / groups + nr - 1) / nr);
    z->wblock = add(nr, mul(mul(z->ks, p->in_c / groups, &of), nr, &of), &of);
    z->n_ptiles = (z->out_h * z->out_w + mr - 1) / mr;
    z->head = round_up64(sizeof(struct pyconv_conv_op));
    /* the packing, then 64 bytes for the word saying whether it is finite */
    z->trailer = round_up64(mul(mul(z->n_cblocks, z->wblock, &of), es, &of));
    z->packed_bytes = add(z->trailer, 64, &of);
    /* merged taps read kernel_w pixels' channels through one pointer */
    z->zero_len = mul(p->dilation_w == 1 ? p->kernel_w : 1, p->in_c, &of);
    z->zero_bytes = round_up64(mul(z->zero_len, es, &of));
    z->ind_bytes = round_up64(mul(mul(z->n_ptiles, z->ks, &of), mr * sizeof(void *), &of));
    const struct pyconv_f32_tile *t32 = &uk->f32[z->best];
    const struct pyconv_f64_tile *t64 = &uk->f64[z->best];
    z->can_skip = (f64 ? t64->igemm_taps != NULL : t32->igemm_taps != NULL) &&
                  z->ks <= UINT32_MAX && worth_skipping(p, z->out_h, z->out_w);
    /* per tile: its live tap count, then its list (ks entries) */
    z->live_bytes = z->can_skip
                        ? round_up64(mul(mul(z->n_ptiles, add(z->ks, 1, &of), &of), 4, &of))
                        : 0;
    size_t total = add(add(add(z->head, z->zero_bytes, &of), z->ind_bytes, &of), z->n_ptiles, &of);
    z->live_at = round_up64(total);
    z->range_bytes = mul(mul(add(z->out_h, z->out_w, &of), 2, &of), sizeof(size_t), &of);
    z->range_at = add(z->live_at, z->live_bytes, &of);
    /* Pixels grouped by their live taps (see pixel_order) when the sums are
     * long enough for the kernel's detour through a scratch tile not to
     * matter: 1.07-1.17x less work than row-major tiles on ASPP layers. */
    int grouped = z->can_skip && mul(z->ks, p->in_c / groups, &of) >= 512 &&
                  z->out_h * z->out_w <= UINT32_MAX;
    z->order_bytes = grouped ? round_up64(mul(mul(z->out_h, z->out_w, &of), 4, &of)) : 0;
    z->order_at = add(z->range_at, round_up64(z->range_bytes), &of);
    total = add(z->order_at, z->order_bytes, &of);
    z->total = round_up64(total);
    if (of || z->total > PTRDIFF_MAX || z->packed_bytes > PTRDIFF_MAX)
        return fail(err, "the buffers of this convolution would be larger than memory can address");
    return PYCONV_OK;
}

int pyconv_conv_workspace(const struct pyconv_conv_params *p, const struct pyconv_ukernels *uk,
                          size_t *packed_bytes, size_t *block_bytes, char err[PYCONV_ERRLEN])
{
    struct plan_sizes z;
    int rc = plan_sizes(p, uk, &z, err);
    if (rc == PYCONV_OK) {
        *packed_bytes = z.packed_bytes;
        *block_bytes = z.total;
    }
    return rc;
}

/* Output rows whose live taps are the same form runs (the top rows, the
 * middle, the bottom: the live range only shrinks towards the edges), and so
 * do columns; the map is a grid of rectangles of pixels with one pattern of
 * live taps each. Tiles cut from the pixels rectangle by rectangle (each
 * row-major) then skip nearly as many taps as single pixels could, where
 * row-major tiles mix the patterns of a row's two ends and of the edges they
 * straddle. Each pixel's sum is the same whatever tile it is in. */
static size_t range_run(const size_t *range, size_t i, size_t n)
{
    size_t j = i + 1;
    while (j < n && range[2 * j] == range[2 * i] && range[2 * j + 1] == range[2 * i + 1])
        j++;
    return j;
}

static void pixel_order(struct pyconv_conv_op *op)
{
    size_t i = 0;
    for (size_t y0 = 0, y1; y0 < op->out_h; y0 = y1) {
        y1 = range_run(op->yrange, y0, op->out_h);
        for (size_t x0 = 0, x1; x0 < op->out_w; x0 = x1) {
            x1 = range_run(op->xrange, x0, op->out_w);
            for (size_t y = y0; y < y1; y++)
                for (size_t x = x0; x < x1; x++)
                    op->order[i++] = (uint32_t)(y * op->out_w + x);
        }
    }
}

int pyconv_conv_create(const struct pyconv_conv_params *p, const struct pyconv_ukernels *uk,
                       const void *weights, const void *bias, struct pyconv_conv_op **op_out,
                       char err[PYCONV_ERRLEN])
{
    *op_out = NULL;
    struct plan_sizes z;
    int rc = plan_sizes(p, uk, &z, err);
    if (rc != PYCONV_OK)
        return rc;
    if (weights == NULL)
        return fail(err, "internal error: no weights");
    const int f64 = p->dtype == PYCONV_F64;
    const size_t best = z.best, mr = z.mr, nr = z.nr, es = dtype_size(p->dtype), ks = z.ks;
    const size_t out_h = z.out_h, out_w = z.out_w, n_cblocks = z.n_cblocks, wblock = z.wblock;
    const size_t n_ptiles = z.n_ptiles, head = z.head, packed_bytes = z.packed_bytes;
    const size_t zero_len = z.zero_len, zero_bytes = z.zero_bytes, ind_bytes = z.ind_bytes;
    const size_t total = z.total;
    /* from the cache of large blocks, like outputs: a fresh mapping would be
     * zeroed page by page every call, and a malloc'd one fragments the heap */
    size_t capacity;
    char *block = pyconv_buffer_acquire(total, &capacity);
    if (block == NULL)
        return PYCONV_ENOMEM;
    struct pyconv_conv_op *op = (struct pyconv_conv_op *)block;
    memset(op, 0, sizeof(*op));
    op->capacity = capacity;
    op->packed_bytes = packed_bytes;
    struct pyconv_wcache_key key = {weights, bias, (size_t)p->dtype, p->kernel_h, p->kernel_w,
                                    p->in_c, p->out_c, nr, 0, 0, 0};
    op->packed = pyconv_wcache_acquire_trusted(&key, packed_bytes, &op->wentry,
                                               &op->cached_valid, p->weights_readonly);
    if (op->packed == NULL) {
        pyconv_buffer_release(block, capacity);
        return PYCONV_ENOMEM;
    }
    atomic_init(&op->stale, 0);
    if (op->cached_valid == 2) { /* verified earlier under trusted pins: no check */
        op->is_packed = 1;
        op->cached_valid = 0;
    }
    op->zero = block + head;
    op->indirection = (const void **)(block + head + zero_bytes);
    op->merged = (unsigned char *)(block + head + zero_bytes + ind_bytes);
    op->can_skip = z.can_skip;
    if (z.can_skip) {
        op->n_live = (uint32_t *)(block + z.live_at);
        op->live = op->n_live + n_ptiles;
        op->f32_igemm_taps = uk->f32[best].igemm_taps;
        op->f64_igemm_taps = uk->f64[best].igemm_taps;
    }
    op->trailer = z.trailer;
    atomic_init(&op->nonfinite, 0);
    atomic_init(&op->scanned, 0);
    op->zero_len = zero_len;
    op->p = *p;
    if (f64)
        op->f64_igemm = uk->f64[best].igemm;
    else
        op->f32_igemm = uk->f32[best].igemm;
    op->f32_eltwise = uk->f32_eltwise;
    op->f64_eltwise = uk->f64_eltwise;
    op->out_h = out_h;
    op->out_w = out_w;
    op->elsize = es;
    op->mr = mr;
    op->nr = nr;
    op->ks = ks;
    op->pixels = out_h * out_w;
    op->n_ptiles = n_ptiles;
    op->n_cblocks = n_cblocks;
    op->n_conv_groups = p->groups > 1 ? p->groups : 1;
    op->group_in_c = p->in_c / op->n_conv_groups;
    op->group_out_c = p->out_c / op->n_conv_groups;
    op->group_cblocks = op->n_conv_groups > 0 && n_cblocks ? n_cblocks / op->n_conv_groups : 1;
    op->wblock = wblock;
    /* A task sweeps one pixel tile over a group of channel blocks whose
     * packed weights fit in L2, where consecutive tiles find them again
     * (measured: all of L2 beats half of it); groups are evened out. */
    size_t fit = pyconv_l2_bytes() / (op->wblock * op->elsize);
    if (fit == 0)
        fit = 1;
    op->n_groups = (op->n_cblocks + fit - 1) / fit; /* 0 when out_c is 0: no tasks */
    op->group = op->n_groups ? (op->n_cblocks + op->n_groups - 1) / op->n_groups : 1;
    op->n_groups = (op->n_cblocks + op->group - 1) / op->group;
    op->in_image = p->in_h * p->in_w * p->in_c * op->elsize;

    /* live taps per output row and column; the pixels in tile order */
    op->yrange = (size_t *)(block + z.range_at);
    op->xrange = op->yrange + 2 * out_h;
    for (size_t o = 0; o < out_h; o++)
        tap_range(o, p->in_h, p->kernel_h, p->stride_h, p->dilation_h, p->pad_top,
                  &op->yrange[2 * o], &op->yrange[2 * o + 1]);
    for (size_t o = 0; o < out_w; o++)
        tap_range(o, p->in_w, p->kernel_w, p->stride_w, p->dilation_w, p->pad_left,
                  &op->xrange[2 * o], &op->xrange[2 * o + 1]);
    if (z.order_bytes != 0) {
        op->order = (uint32_t *)(block + z.order_at);
        pixel_order(op);
    }
    memset(op->zero, 0, zero_len * es);
    op->weights = weights;
    op->bias = bias;

    double lo, hi;
    pyconv_activation_bounds(p->activation, &lo, &hi);
    if (f64) {
        op->minmax.f64[0] = lo;
        op->minmax.f64[1] = hi;
    } else {
        op->minmax.f32[0] = (float)lo;
        op->minmax.f32[1] = (float)hi;
    }
    op->ep_minmax = op->minmax;
    *op_out = op;
    return PYCONV_OK;
}

/* One entry per (pixel tile, tap, row), pointing into image 0; the kernel
 * adds the image's byte offset. Rows past the last pixel repeat it.
 *
 * Without dilation along x, the kernel_w taps of a window row read
 * consecutive pixels, whose channels are contiguous in NHWC, and the packed
 * weights of those taps are consecutive too: such a tap row is one pointer
 * to kernel_w * in_c elements (or to the zero vector when the row lies in the
 * padding). A tile is merged so when no row's window is cut by the left or
 * right edge. The kernel then runs kernel_h taps of kernel_w * in_c
 * channels: fewer, longer reductions (it matters when in_c is small) with
 * the same multiply-adds in the same order, so the sums are identical.
 *
 * With can_skip (worth_skipping: dilated layers, small maps), each tile also
 * lists its live taps, those with at least one row not pointing to the zero
 * vector; a tap wholly in the padding contributes only +0.0 * w terms, which
 * the run's kernels leave out when the weights are finite (tile_kernel says
 * why the bits stay those of the full sum).
 *
 * Built by the first run after setup, on all its threads, one task per pixel
 * tile, polling for Ctrl-C like the rest of the run (a buffer of gigabytes
 * takes seconds to write). */
static void build_tiles(struct pyconv_conv_op *op, size_t first, size_t count)
{
    const struct pyconv_conv_params *p = &op->p;
    const size_t mr = op->mr, row_bytes = p->in_w * p->in_c * op->elsize;
    const size_t px_bytes = p->in_c * op->elsize, kh = p->kernel_h, kw = p->kernel_w;
    const size_t dky = p->dilation_h * row_bytes, dkx = p->dilation_w * px_bytes;
    /* a group's channels are not contiguous across pixels: no merging then */
    const int can_merge = p->dilation_w == 1 && kw > 1 && op->n_conv_groups == 1;
    const char *input = (const char *)op->input;
    /* Per row: the byte offset of its window's corner (unsigned arithmetic:
     * it wraps when the corner is left of/above the image, and is exact for
     * every tap inside) and its live taps, ky in [ylo, ylo + yn), kx in
     * [xlo, xlo + xn) (from the plan's tables, so no division here). */
    size_t off[PYCONV_MAX_MR], ylo[PYCONV_MAX_MR], yn[PYCONV_MAX_MR];
    size_t xlo[PYCONV_MAX_MR], xn[PYCONV_MAX_MR];
    size_t oy = first * mr / op->out_w, ox = first * mr % op->out_w; /* the first tile's pixel */
    for (size_t t = first; t < first + count; t++) {
        const void **ind = op->indirection + t * op->ks * mr;
        int merge = can_merge, interior = 1;
        for (size_t m = 0; m < mr; m++) {
            if (t * mr + m < op->pixels) {
                if (op->order != NULL) { /* grouped pixels: the m-th of the tile */
                    oy = op->order[t * mr + m] / op->out_w;
                    ox = op->order[t * mr + m] % op->out_w;
                }
                off[m] = (oy * p->stride_h - p->pad_top) * row_bytes +
                         (ox * p->stride_w - p->pad_left) * px_bytes;
                ylo[m] = op->yrange[2 * oy];
                yn[m] = op->yrange[2 * oy + 1] - ylo[m];
                xlo[m] = op->xrange[2 * ox];
                xn[m] = op->xrange[2 * ox + 1] - xlo[m];
                if (++ox == op->out_w) {
                    ox = 0;
                    oy++;
                }
            } else { /* past the last pixel: repeat it */
                off[m] = off[m - 1];
                ylo[m] = ylo[m - 1];
                yn[m] = yn[m - 1];
                xlo[m] = xlo[m - 1];
                xn[m] = xn[m - 1];
            }
            /* cut by an edge: some of the window's columns inside, some not */
            if (xn[m] != 0 && xn[m] != kw)
                merge = 0;
            interior &= yn[m] == kh && xn[m] == kw;
        }
        op->merged[t] = (unsigned char)merge;
        const size_t nkx = merge ? 1 : kw;
        uint32_t *live = op->can_skip ? op->live + t * op->ks : NULL;
        if (interior) { /* every tap of every row inside: no test */
            for (size_t ky = 0; ky < kh; ky++)
                for (size_t kx = 0; kx < nkx; kx++) {
                    const size_t d = ky * dky + kx * dkx;
                    for (size_t m = 0; m < mr; m++)
                        *ind++ = input + (off[m] + d);
                }
            if (live != NULL)
                op->n_live[t] = (uint32_t)(kh * nkx); /* all: the list is not read */
            continue;
        }
        /* row by row: per window row, zeros, the live run, zeros (no test
         * per pointer) */
        const void **tile = ind;
        for (size_t m = 0; m < mr; m++) {
            const size_t x0 = merge ? 0 : xlo[m], x1 = merge ? (xn[m] ? 1 : 0) : xlo[m] + xn[m];
            for (size_t ky = 0; ky < kh; ky++) {
                const void **at = tile + ky * nkx * mr + m;
                if (ky - ylo[m] >= yn[m] || x1 == x0) { /* unsigned: above wraps */
                    for (size_t kx = 0; kx < nkx; kx++)
                        at[kx * mr] = op->zero;
                    continue;
                }
                for (size_t kx = 0; kx < x0; kx++)
                    at[kx * mr] = op->zero;
                const char *q = input + (off[m] + ky * dky + x0 * dkx);
                for (size_t kx = x0; kx < x1; kx++, q += dkx)
                    at[kx * mr] = q;
                for (size_t kx = x1; kx < nkx; kx++)
                    at[kx * mr] = op->zero;
            }
        }
        if (live != NULL) { /* taps with some row inside */
            uint32_t n_live = 0;
            for (size_t tap = 0; tap < kh * nkx; tap++) {
                const void *const *rowp = tile + tap * mr;
                int inside = 0;
                for (size_t m = 0; m < mr; m++)
                    inside |= rowp[m] != op->zero;
                if (inside)
                    live[n_live++] = (uint32_t)tap;
            }
            op->n_live[t] = n_live;
        }
    }
}

/* The fused epilogue over the tiles a task just stored (rows x cols at
 * pixel px0 of image n, channel n0), in place, row by row. */
static void epilogue_tile(struct pyconv_conv_op *op, size_t n, size_t px0, size_t n0, size_t rows,
                          size_t cols)
{
    const size_t es = op->elsize, oc = op->p.out_c;
    const struct pyconv_epilogue *ep = &op->ep;
#define AT(ptr, elems) ((ptr) != NULL ? (const char *)(ptr) + (elems) * es : NULL)
    for (size_t m = 0; m < rows; m++) {
        size_t px = op->order != NULL ? op->order[px0 + m] : px0 + m;
        size_t at = (n * op->pixels + px) * oc + n0; /* element of the output */
        char *c = (char *)op->output + at * es;
        if (op->ep_terms) {
            if (op->p.dtype == PYCONV_F64)
                op->f64_eltwise(cols, (const double *)c, (const double *)AT(ep->pre, n0),
                                (const double *)AT(ep->scale, n0),
                                (const double *)AT(ep->shift, n0),
                                (const double *)AT(ep->residual, at), (double *)c, 1,
                                op->ep_minmax.f64);
            else
                op->f32_eltwise(cols, (const float *)c, (const float *)AT(ep->pre, n0),
                                (const float *)AT(ep->scale, n0), (const float *)AT(ep->shift, n0),
                                (const float *)AT(ep->residual, at), (float *)c, 1,
                                op->ep_minmax.f32);
        }
        if (ep->add_out != NULL) {
            char *d = (char *)ep->add_out + at * es;
            if (op->p.dtype == PYCONV_F64)
                op->f64_eltwise(cols, (const double *)c, NULL, NULL, NULL,
                                (const double *)AT(ep->add_to, at), (double *)d, 1,
                                op->add_minmax.f64);
            else
                op->f32_eltwise(cols, (const float *)c, NULL, NULL, NULL,
                                (const float *)AT(ep->add_to, at), (float *)d, 1,
                                op->add_minmax.f32);
        }
    }
#undef AT
}

void pyconv_conv_set_epilogue(struct pyconv_conv_op *op, const struct pyconv_epilogue *ep)
{
    op->ep = *ep;
    op->has_ep = 1;
    if (ep->add_out != NULL) {
        double lo, hi;
        pyconv_activation_bounds(ep->add_activation, &lo, &hi);
        if (op->p.dtype == PYCONV_F64) {
            op->add_minmax.f64[0] = lo;
            op->add_minmax.f64[1] = hi;
        } else {
            op->add_minmax.f32[0] = (float)lo;
            op->add_minmax.f32[1] = (float)hi;
        }
    }
    op->ep_terms = ep->pre != NULL || ep->scale != NULL || ep->shift != NULL ||
                   ep->residual != NULL;
    if (!op->ep_terms)
        return; /* only add_out: the microkernel keeps its own clamp */
    /* the clamp moves behind the epilogue's terms (ep_minmax, set by create) */
    if (op->p.dtype == PYCONV_F64) {
        op->minmax.f64[0] = -__builtin_inf();
        op->minmax.f64[1] = __builtin_inf();
    } else {
        op->minmax.f32[0] = -__builtin_inff();
        op->minmax.f32[1] = __builtin_inff();
    }
}

static void build_tiles_cb(void *ctx, size_t first, size_t count)
{
    build_tiles(ctx, first, count);
}

void pyconv_conv_setup(struct pyconv_conv_op *op, const void *input, void *output)
{
    op->input = input;
    op->output = output;
    op->indirection_built = 0; /* for this input: built by the next run */
}

/* Whether the rows x cols tile at c (row stride ld elements) holds a -0.0. */
static int has_negative_zero(const struct pyconv_conv_op *op, const char *c, size_t rows,
                             size_t cols, size_t ld)
{
    unsigned found = 0;
    for (size_t m = 0; m < rows; m++) {
        const char *r = c + m * ld * op->elsize;
        if (op->p.dtype == PYCONV_F64) {
            for (size_t i = 0; i < cols; i++) {
                uint64_t b;
                memcpy(&b, r + i * 8, 8);
                found |= b == 0x8000000000000000u;
            }
        } else {
            for (size_t i = 0; i < cols; i++) {
                uint32_t b;
                memcpy(&b, r + i * 4, 4);
                found |= b == 0x80000000u;
            }
        }
    }
    return found != 0;
}

/* One kernel call: rows x cols outputs at c from the tile's pointers a (ks
 * taps of kc channels) and packed block w; with `live` (n_live of the ks
 * taps, the others wholly in the padding) only those taps are summed.
 *
 * Skipping a padding tap leaves its terms +0.0 * w out of the sum. With
 * finite weights (run checks) each such term is a zero, which adds nothing to
 * a non-zero sum and only can turn a sum of -0.0 into +0.0. So, by
 * induction over the terms (and the flushes of blocked sums, kept at the
 * same term positions by the kernel), at every step the skipping sum equals
 * the full one, or is -0.0 where the full one is +0.0: the two can differ
 * only in a final -0.0 (which the clamp keeps). The tile is then computed
 * again in full, so the bits are always those of the full sum. Row r of the
 * outputs is at c + r * oc elements. */
/* inlined: as a function of its own with 12 arguments it was a detour
 * through the stack between kernel calls, measured 1.5x slower on VGG's
 * conv1_1 (27-term sums) at batch 8 */
static inline __attribute__((always_inline)) void
tile_kernel(const struct pyconv_conv_op *op, size_t rows, size_t cols, size_t kc, size_t ks,
            const void *const *a, const char *w, char *c, size_t oc, size_t a_offset,
            const uint32_t *live, size_t n_live)
{
    if (live != NULL) {
        if (op->p.dtype == PYCONV_F64)
            op->f64_igemm_taps(rows, cols, kc, n_live, (const double *const *)a,
                               (const double *)w, (double *)c, oc, a_offset,
                               (const double *)op->zero, op->minmax.f64, live, ks);
        else
            op->f32_igemm_taps(rows, cols, kc, n_live, (const float *const *)a,
                               (const float *)w, (float *)c, oc, a_offset,
                               (const float *)op->zero, op->minmax.f32, live, ks);
        if (!has_negative_zero(op, c, rows, cols, oc))
            return;
    }
    if (op->p.dtype == PYCONV_F64)
        op->f64_igemm(rows, cols, kc, ks, (const double *const *)a, (const double *)w,
                      (double *)c, oc, a_offset, (const double *)op->zero, op->minmax.f64);
    else
        op->f32_igemm(rows, cols, kc, ks, (const float *const *)a, (const float *)w,
                      (float *)c, oc, a_offset, (const float *)op->zero, op->minmax.f32);
}

/* tile_kernel for a tile of grouped pixels (op->order): into a scratch tile,
 * then each row to its pixel. Apart from run_tasks so that its frame, and
 * the stack under the kernel calls of every other layer, stays as small as
 * before (with the 4 KiB scratch in run_tasks VGG's conv1_1 ran 1.3x slower
 * at batch 8). */
static __attribute__((noinline)) void scattered_tile(const struct pyconv_conv_op *op, size_t n,
                                                     size_t px0, size_t n0, size_t rows,
                                                     size_t cols, size_t kc, size_t ks,
                                                     const void *const *a, const char *w,
                                                     size_t a_offset, const uint32_t *live,
                                                     size_t n_live)
{
    union {
        char bytes[PYCONV_MAX_MR * PYCONV_MAX_NR * sizeof(double)];
        double align;
    } scratch;
    const size_t es = op->elsize;
    tile_kernel(op, rows, cols, kc, ks, a, w, scratch.bytes, op->nr, a_offset, live, n_live);
    for (size_t m = 0; m < rows; m++)
        memcpy((char *)op->output + ((n * op->pixels + op->order[px0 + m]) * op->p.out_c + n0) * es,
               scratch.bytes + m * op->nr * es, cols * es);
}

/* Tasks are (channel group, image, pixel tile), pixel tile fastest: the
 * group's packed weights stay in L2 while the tiles stream past them, and a
 * task reuses its tile's input rows for every block of the group. */
static void run_tasks(struct pyconv_conv_op *op, size_t first, size_t count)
{
    const struct pyconv_conv_params *p = &op->p;
    const size_t mr = op->mr, es = op->elsize;
    const size_t tiles = p->batch * op->n_ptiles;
    for (size_t task = first; task < first + count; task++) {
        size_t g = task / tiles;
        size_t rest = task % tiles;
        size_t n = rest / op->n_ptiles;
        size_t t = rest % op->n_ptiles;
        size_t px0 = t * mr;
        size_t rows = op->pixels - px0 < mr ? op->pixels - px0 : mr;
        if (op->build_in_tasks)
            build_tiles(op, t, 1);
        const void *const *a = op->indirection + t * op->ks * mr;
        size_t kc = op->group_in_c, ks = op->ks;
        if (op->merged[t]) {
            kc *= p->kernel_w;
            ks = p->kernel_h;
        }
        /* the tile's live taps, if some are not (and not none: an all-padding
         * tile is rare and its bias alone must still pass through the sum) */
        const uint32_t *live = NULL;
        size_t n_live = 0;
        if (op->skip && op->n_live[t] < ks && op->n_live[t] > 0) {
            live = op->live + t * op->ks;
            n_live = op->n_live[t];
        }
        size_t cb_end = (g + 1) * op->group < op->n_cblocks ? (g + 1) * op->group : op->n_cblocks;
        size_t ep_n0 = 0, ep_n1 = 0;
        for (size_t cb = g * op->group; cb < cb_end; cb++) {
            size_t cols, gi;
            size_t n0 = block_channels(op, cb, &cols, &gi);
            /* the group's input channels: an offset added to every non-zero pointer */
            size_t a_offset = n * op->in_image + gi * op->group_in_c * es;
            if (cb == g * op->group)
                ep_n0 = n0;
            ep_n1 = n0 + cols;
            const char *w = (const char *)op->packed + cb * op->wblock * es;
            if (op->order != NULL) { /* rows of scattered pixels: through a scratch tile */
                scattered_tile(op, n, px0, n0, rows, cols, kc, ks, a, w, a_offset, live, n_live);
                continue;
            }
            char *c = (char *)op->output + ((n * op->pixels + px0) * p->out_c + n0) * es;
            tile_kernel(op, rows, cols, kc, ks, a, w, c, p->out_c, a_offset, live, n_live);
        }
        if (op->has_ep) /* the task's rows, all its channel blocks: still in L1 */
            epilogue_tile(op, n, px0, ep_n0, rows, ep_n1 - ep_n0);
    }
}

static void run_tasks_cb(void *ctx, size_t first, size_t count)
{
    run_tasks(ctx, first, count);
}

int pyconv_conv_run(struct pyconv_conv_op *op, size_t n_threads, pyconv_interrupt_fn interrupted,
                    void *ctx)
{
    size_t n_tasks = op->n_groups * op->p.batch * op->n_ptiles;
    if (n_tasks == 0)
        return PYCONV_OK;
    /* One image and one channel group: every tile is used by one task, which
     * builds it just before (no pass of its own, and the pointers are still
     * in L1 when the kernel reads them: measured 20-60 us of a 0.5-1 ms
     * ResNet conv1 at batch 1). Otherwise a pass over the tiles first. */
    op->build_in_tasks = !op->indirection_built && op->p.batch == 1 && op->n_groups == 1;
    if (!op->indirection_built && !op->build_in_tasks) {
        /* pointers written per tile as the cost */
        int rc = pyconv_parallel_for(op->n_ptiles, op->ks * op->mr, n_threads, build_tiles_cb,
                                     op, interrupted, ctx);
        if (rc != PYCONV_OK)
            return rc;
        op->indirection_built = 1;
    }
    if (!op->is_packed) {
        /* rows of weights; bytes per row as the cost: both are streams of bytes */
        size_t rows = op->ks * op->group_in_c, row_bytes = op->p.out_c * op->elsize;
        int rc = PYCONV_OK;
        if (op->cached_valid) {
            rc = pyconv_parallel_for(rows, row_bytes, n_threads, check_rows_cb, op, interrupted,
                                     ctx);
            if (rc != PYCONV_OK)
                return rc;
            op->cached_valid = 0;
            op->is_packed = !atomic_load(&op->stale);
        }
        if (!op->is_packed) {
            rc = pyconv_parallel_for(rows, row_bytes, n_threads, pack_rows_cb, op, interrupted,
                                     ctx);
            if (rc != PYCONV_OK)
                return rc;
            op->is_packed = 1;
        }
    }
    /* The finiteness of the weights, in the word after the packing: written by
     * the run that packed them, read by those that reuse the packing. */
    uint32_t finite;
    char *word = (char *)op->packed + op->trailer;
    if (atomic_load_explicit(&op->scanned, memory_order_relaxed)) {
        finite = atomic_load_explicit(&op->nonfinite, memory_order_relaxed) ? 2 : 1;
        memcpy(word, &finite, sizeof(finite));
        atomic_store_explicit(&op->scanned, 0, memory_order_relaxed);
    } else {
        memcpy(&finite, word, sizeof(finite));
    }
    op->skip = op->can_skip && finite == 1;
    /* multiply-adds per task, to size chunks of roughly equal work */
    size_t task_macs = op->group * op->mr * op->nr * op->ks * op->group_in_c;
    int rc = pyconv_parallel_for(n_tasks, task_macs, n_threads, run_tasks_cb, op, interrupted, ctx);
    if (rc == PYCONV_OK && op->build_in_tasks)
        op->indirection_built = 1; /* every task ran: every tile is built */
    op->build_in_tasks = 0;
    return rc;
}

void pyconv_conv_destroy(struct pyconv_conv_op *op)
{
    /* a run stopped while packing leaves the block half packed: not valid */
    pyconv_wcache_release(op->wentry, op->packed, op->packed_bytes, op->is_packed);
    pyconv_buffer_release(op, op->capacity); /* the block from pyconv_conv_create */
}
