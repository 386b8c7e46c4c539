/* The transposed convolution operator, by sub-convolutions (the
 * "subconvolution" path of XNNPACK's deconvolution): an output pixel y along
 * one dimension receives input i through tap k exactly when
 * y + pad = i * stride + k, so only the taps k = (y + pad) mod stride
 * + j * stride (j = 0, 1, ...) reach it, from inputs (y + pad) / stride - j.
 * The output therefore splits into stride_h * stride_w phases, each a small
 * stride-1 direct convolution over the input with its own taps. Every phase
 * gets weights packed in the igemm layout and tiles of MR of its pixels over
 * an indirection buffer, so conv.c's microkernels do the arithmetic; no
 * zero-stuffed input is built and no multiply-add touches a stuffed zero.
 * With at most COLUMNS_MAX_OUT_C output channels the operator takes the
 * column path instead (one GEMM into per-tap columns, then a gather; below).
 * Weights holding NaN/Inf take exact_tasks (TF's products, see there). */
#include "deconv.h"

#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buffers.h"
#include "eltwise.h"
#include "threads.h"
#include "util.h"
#include "wcache.h"

static void set_minmax(struct pyconv_deconv_op *op);

#ifdef __SSE2__
#include <emmintrin.h>
#include <xmmintrin.h>
#endif

/* the widest NR a kernel set may use here: the scatter tile lives on the stack */
#define MAX_NR 64

/* Up to MR output pixels of one phase. */
struct deconv_tile {
    size_t ind;    /* its first entry in the indirection buffer */
    size_t ks;     /* taps; 0 for a phase no tap reaches (its output is the bias) */
    size_t wphase; /* element offset of its phase's packed weights */
    size_t wblock; /* elements of one NR block of its phase */
    size_t rows;   /* pixels, 1..MR */
    size_t step;   /* output pixels between consecutive rows if constant, else 0 */
};

struct pyconv_deconv_op {
    struct pyconv_deconv_params p;
    size_t elsize, mr, nr;
    size_t pixels;           /* out_h * out_w */
    size_t n_cblocks;        /* NR-wide output channel blocks */
    size_t group, n_groups;  /* channel blocks per task (their weights fit in L2), groups */
    size_t n_tiles;
    size_t in_image;         /* bytes of one input image */
    size_t wphase_h, wphase_w; /* phases that have taps: min(stride, kernel) per dimension */
    size_t *wphase_off;      /* wphase_h * wphase_w packed offsets (elements) */
    struct deconv_tile *tiles;
    size_t *pix;             /* n_tiles * mr output pixel indices (rows past the tile repeat) */
    const void **indirection;
    void *zero;              /* in_c zeros */
    void *packed;
    size_t packed_bytes;
    const void *weights, *bias;
    int is_packed, cached_valid;
    int nonfinite;           /* the packed weights hold NaN or Inf: run exact_tasks */
    /* the column path (few output channels, see create_columns) */
    int columns;
    size_t n_cols;           /* kernel_h * kernel_w * out_c: the GEMM's width */
    size_t in_pixels, n_ptiles; /* in_h * in_w; MR-row tiles of them per image */
    void *col;               /* batch * in_pixels * n_cols elements */
    size_t col_capacity;
    atomic_int stale, found_nonfinite;
    struct pyconv_wcache_entry *wentry;
    size_t capacity;
    const void *input;
    void *output;
    pyconv_f32_igemm_fn f32_igemm;
    pyconv_f64_igemm_fn f64_igemm;
    union {
        float f32[2];
        double f64[2];
    } minmax;
};


/* Taps of phase `phase` (0..stride-1) along a dimension with kernel k. */
static size_t phase_taps(size_t phase, size_t k, size_t s)
{
    return phase < k ? (k - 1 - phase) / s + 1 : 0;
}

/* The forward convolution of an `out`-sized image must give `in`. */
static int check_dim(size_t in, size_t out, size_t k, size_t s, size_t before, size_t after,
                     const char *dim, char err[PYCONV_ERRLEN])
{
    int of = 0;
    size_t padded = add(add(out, before, &of), after, &of);
    if (of)
        return fail(err, "%s: the padded output size overflows", dim);
    if (padded < k)
        return fail(err,
                    "%s: the kernel (%zu) is larger than the padded output "
                    "(%zu + %zu + %zu = %zu)",
                    dim, k, out, before, after, padded);
    size_t computed = (padded - k) / s + 1;
    if (computed != in)
        return fail(err,
                    "%s: an output of %zu with pads %zu and %zu, kernel %zu and stride %zu "
                    "comes from an input of %zu, but the input has %zu",
                    dim, out, before, after, k, s, computed, in);
    return PYCONV_OK;
}

int pyconv_deconv_check(const struct pyconv_deconv_params *p, char err[PYCONV_ERRLEN])
{
    if (p->in_h == 0 || p->in_w == 0)
        return fail(err, "input height and width must be at least 1, got %zu x %zu", p->in_h,
                    p->in_w);
    if (p->out_h == 0 || p->out_w == 0)
        return fail(err, "output height and width must be at least 1, got %zu x %zu", p->out_h,
                    p->out_w);
    if (p->in_c == 0)
        return fail(err, "input channels must be at least 1");
    if (p->kernel_h == 0 || p->kernel_w == 0)
        return fail(err, "kernel size must be at least 1, got %zu x %zu", p->kernel_h,
                    p->kernel_w);
    if (p->stride_h == 0 || p->stride_w == 0)
        return fail(err, "strides must be at least 1, got %zu x %zu", p->stride_h, p->stride_w);
    if (p->dtype != PYCONV_F32 && p->dtype != PYCONV_F64)
        return fail(err, "unknown dtype code %d", (int)p->dtype);
    if (p->activation != PYCONV_ACT_NONE && p->activation != PYCONV_ACT_RELU &&
        p->activation != PYCONV_ACT_RELU6)
        return fail(err, "unknown activation code %d", (int)p->activation);
    int rc = check_dim(p->in_h, p->out_h, p->kernel_h, p->stride_h, p->pad_top, p->pad_bottom,
                       "height", err);
    if (rc == PYCONV_OK)
        rc = check_dim(p->in_w, p->out_w, p->kernel_w, p->stride_w, p->pad_left, p->pad_right,
                       "width", err);
    if (rc != PYCONV_OK)
        return rc;
    int of = 0;
    size_t es = p->dtype == PYCONV_F64 ? sizeof(double) : sizeof(float);
    size_t in_image = mul(mul(mul(p->in_h, p->in_w, &of), p->in_c, &of), es, &of);
    size_t pixels = mul(p->out_h, p->out_w, &of);
    size_t out_image = mul(mul(pixels, p->out_c, &of), es, &of);
    mul(p->batch, in_image, &of);
    mul(p->batch, out_image, &of);
    size_t ks = mul(p->kernel_h, p->kernel_w, &of);
    /* packed weights: every tap once, plus a bias block per phase and block */
    mul(mul(add(mul(ks, p->in_c, &of), ks, &of), add(p->out_c, MAX_NR, &of), &of), es, &of);
    /* tiles, their pixels and (bounded by) their indirection entries */
    mul(pixels, sizeof(struct deconv_tile) + PYCONV_MAX_MR * sizeof(size_t), &of);
    mul(mul(mul(pixels, PYCONV_MAX_MR, &of), ks, &of), sizeof(void *), &of);
    if (of)
        return fail(err, "the buffers of this transposed convolution would be larger than "
                         "memory can address");
    return PYCONV_OK;
}

#define COLUMNS_MAX_OUT_C 8 /* out_c up to this: the column path (below) */
static int create_columns(const struct pyconv_deconv_params *p, const struct pyconv_ukernels *uk,
                          const void *weights, const void *bias,
                          struct pyconv_deconv_op **op_out, char err[PYCONV_ERRLEN]);

int pyconv_deconv_create(const struct pyconv_deconv_params *p, const struct pyconv_ukernels *uk,
                         const void *weights, const void *bias,
                         struct pyconv_deconv_op **op_out, char err[PYCONV_ERRLEN])
{
    *op_out = NULL;
    int rc = pyconv_deconv_check(p, err);
    if (rc != PYCONV_OK)
        return rc;
    if (uk == NULL || weights == NULL)
        return fail(err, "internal error: no microkernels or weights");
    if (p->out_c <= COLUMNS_MAX_OUT_C)
        return create_columns(p, uk, weights, bias, op_out, err);
    const int f64 = p->dtype == PYCONV_F64;
    const size_t es = f64 ? sizeof(double) : sizeof(float);
    const size_t sh = p->stride_h, sw = p->stride_w, kh = p->kernel_h, kw = p->kernel_w;
    /* a phase has about pixels / (sh * sw) pixels: the tile is chosen for that */
    const size_t oph = sh < p->out_h ? sh : p->out_h, opw = sw < p->out_w ? sw : p->out_w;
    const size_t best = pyconv_igemm_pick_tile(uk, f64, p->out_h * p->out_w / (oph * opw),
                                               p->out_c);
    size_t mr, nr;
    unsigned speed;
    if (best == PYCONV_MAX_TILES || !pyconv_igemm_tile_info(uk, f64, best, &mr, &nr, &speed) ||
        nr > MAX_NR)
        return fail(err, "internal error: no usable microkernel for this dtype");

    /* Sizes: tiles per output phase, indirection entries, packed weights. */
    int of = 0;
    const size_t n_cblocks = (p->out_c + nr - 1) / nr;
    const size_t wph = sh < kh ? sh : kh, wpw = sw < kw ? sw : kw;
    size_t n_tiles = 0, n_ind = 0, packed_elems = 0, max_wblock = 0;
    for (size_t i0 = 0; i0 < oph; i0++) {
        size_t ntys = phase_taps((i0 + p->pad_top) % sh, kh, sh);
        size_t rows = (p->out_h - 1 - i0) / sh + 1;
        for (size_t j0 = 0; j0 < opw; j0++) {
            size_t ks = ntys * phase_taps((j0 + p->pad_left) % sw, kw, sw);
            size_t px = mul(rows, (p->out_w - 1 - j0) / sw + 1, &of);
            size_t tiles = px / mr + (px % mr != 0);
            n_tiles = add(n_tiles, tiles, &of);
            n_ind = add(n_ind, mul(mul(tiles, ks, &of), mr, &of), &of);
        }
    }
    for (size_t fy = 0; fy < wph; fy++)
        for (size_t fx = 0; fx < wpw; fx++) {
            size_t ks = phase_taps(fy, kh, sh) * phase_taps(fx, kw, sw);
            size_t wblock = add(nr, mul(mul(ks, p->in_c, &of), nr, &of), &of);
            max_wblock = wblock > max_wblock ? wblock : max_wblock;
            packed_elems = add(packed_elems, mul(n_cblocks, wblock, &of), &of);
        }
    const size_t head = round_up64(sizeof(struct pyconv_deconv_op));
    const size_t off_bytes = round_up64(mul(wph * wpw, sizeof(size_t), &of));
    const size_t tile_bytes = round_up64(mul(n_tiles, sizeof(struct deconv_tile), &of));
    const size_t pix_bytes = round_up64(mul(mul(n_tiles, mr, &of), sizeof(size_t), &of));
    const size_t ind_bytes = round_up64(mul(n_ind, sizeof(void *), &of));
    const size_t zero_bytes = round_up64(mul(p->in_c, es, &of));
    /* the last cache line holds a flag: 1 if the packing has NaN or Inf */
    const size_t packed_bytes = add(round_up64(mul(packed_elems, es, &of)), 64, &of);
    size_t total = add(add(add(add(head, off_bytes, &of), tile_bytes, &of), pix_bytes, &of),
                       add(ind_bytes, zero_bytes, &of), &of);
    if (of || total > PTRDIFF_MAX || packed_bytes > PTRDIFF_MAX)
        return fail(err, "the buffers of this transposed convolution would be larger than "
                         "memory can address");
    size_t capacity;
    char *block = pyconv_buffer_acquire(total, &capacity);
    if (block == NULL)
        return PYCONV_ENOMEM;
    struct pyconv_deconv_op *op = (struct pyconv_deconv_op *)block;
    memset(op, 0, sizeof(*op));
    op->capacity = capacity;
    op->packed_bytes = packed_bytes;
    struct pyconv_wcache_key key = {weights, bias, (size_t)p->dtype, kh, kw, p->in_c, p->out_c,
                                    nr, 2, sh, sw};
    op->packed = pyconv_wcache_acquire(&key, packed_bytes, &op->wentry, &op->cached_valid);
    if (op->packed == NULL) {
        pyconv_buffer_release(block, capacity);
        return PYCONV_ENOMEM;
    }
    atomic_init(&op->stale, 0);
    atomic_init(&op->found_nonfinite, 0);
    char *at = block + head;
    op->wphase_off = (size_t *)at;
    at += off_bytes;
    op->tiles = (struct deconv_tile *)at;
    at += tile_bytes;
    op->pix = (size_t *)at;
    at += pix_bytes;
    op->indirection = (const void **)at;
    at += ind_bytes;
    op->zero = at;
    memset(op->zero, 0, p->in_c * es);
    op->p = *p;
    op->elsize = es;
    op->mr = mr;
    op->nr = nr;
    op->pixels = p->out_h * p->out_w;
    op->n_cblocks = n_cblocks;
    op->n_tiles = n_tiles;
    op->in_image = p->in_h * p->in_w * p->in_c * es;
    op->wphase_h = wph;
    op->wphase_w = wpw;
    op->weights = weights;
    op->bias = bias;
    if (f64)
        op->f64_igemm = uk->f64[best].igemm;
    else
        op->f32_igemm = uk->f32[best].igemm;

    size_t off = 0;
    for (size_t q = 0; q < wph * wpw; q++) {
        size_t ks = phase_taps(q / wpw, kh, sh) * phase_taps(q % wpw, kw, sw);
        op->wphase_off[q] = off;
        off += n_cblocks * (nr + ks * p->in_c * nr);
    }
    /* Tiles, phase by phase (so consecutive tasks share packed weights),
     * each phase's pixels in row-major order. */
    size_t t = 0, ind = 0;
    for (size_t i0 = 0; i0 < oph; i0++) {
        size_t fy = (i0 + p->pad_top) % sh, rows = (p->out_h - 1 - i0) / sh + 1;
        for (size_t j0 = 0; j0 < opw; j0++) {
            size_t fx = (j0 + p->pad_left) % sw, cols = (p->out_w - 1 - j0) / sw + 1;
            size_t ks = phase_taps(fy, kh, sh) * phase_taps(fx, kw, sw);
            size_t wblock = nr + ks * p->in_c * nr;
            size_t wphase = ks ? op->wphase_off[fy * wpw + fx] : 0;
            for (size_t first = 0; first < rows * cols; first += mr, t++) {
                struct deconv_tile *tile = &op->tiles[t];
                size_t *pix = op->pix + t * mr;
                tile->rows = rows * cols - first < mr ? rows * cols - first : mr;
                tile->ks = ks;
                tile->wphase = wphase;
                tile->wblock = wblock;
                tile->ind = ind;
                ind += ks * mr;
                for (size_t m = 0; m < mr; m++) {
                    size_t k = first + (m < tile->rows ? m : tile->rows - 1);
                    pix[m] = (i0 + k / cols * sh) * p->out_w + j0 + k % cols * sw;
                }
                size_t step = tile->rows > 1 ? pix[1] - pix[0] : 1;
                for (size_t m = 2; m < tile->rows && step; m++)
                    if (pix[m] - pix[m - 1] != step)
                        step = 0;
                tile->step = step;
            }
        }
    }
    /* A task runs one tile over a group of channel blocks whose packed
     * weights fit in L2 (as conv.c); groups are evened out. */
    size_t fit = pyconv_l2_bytes() / (max_wblock * es);
    if (fit == 0)
        fit = 1;
    op->n_groups = (n_cblocks + fit - 1) / fit; /* 0 when out_c is 0: no tasks */
    op->group = op->n_groups ? (n_cblocks + op->n_groups - 1) / op->n_groups : 1;
    op->n_groups = (n_cblocks + op->group - 1) / op->group;

    set_minmax(op);
    *op_out = op;
    return PYCONV_OK;
}

/* Entries per (tile, tap, row) into image 0 (the kernel adds the image's
 * offset), or the zero vector where the input position is outside. Taps of
 * a phase are ordered (j_y, j_x) as packed: input (b_y - j_y, b_x - j_x)
 * with b = (output + pad) / stride. */
void pyconv_deconv_setup(struct pyconv_deconv_op *op, const void *input, void *output)
{
    const struct pyconv_deconv_params *p = &op->p;
    const size_t mr = op->mr, px_bytes = p->in_c * op->elsize;
    op->input = input;
    op->output = output;
    if (op->columns) { /* one tap: each row's input pixel; rows past the last repeat it */
        for (size_t i = 0; i < op->n_ptiles * mr; i++)
            op->indirection[i] = (const char *)input +
                                 (i < op->in_pixels ? i : op->in_pixels - 1) * px_bytes;
        return;
    }
    for (size_t t = 0; t < op->n_tiles; t++) {
        const struct deconv_tile *tile = &op->tiles[t];
        if (tile->ks == 0)
            continue;
        const size_t *pix = op->pix + t * mr;
        const void **a = op->indirection + tile->ind;
        /* every pixel of a tile is in the same phase */
        size_t ty = pix[0] / p->out_w + p->pad_top, tx = pix[0] % p->out_w + p->pad_left;
        size_t nty = phase_taps(ty % p->stride_h, p->kernel_h, p->stride_h);
        size_t ntx = phase_taps(tx % p->stride_w, p->kernel_w, p->stride_w);
        size_t by[PYCONV_MAX_MR], bx[PYCONV_MAX_MR];
        for (size_t m = 0; m < mr; m++) {
            by[m] = (pix[m] / p->out_w + p->pad_top) / p->stride_h;
            bx[m] = (pix[m] % p->out_w + p->pad_left) / p->stride_w;
        }
        for (size_t jy = 0; jy < nty; jy++)
            for (size_t jx = 0; jx < ntx; jx++)
                for (size_t m = 0; m < mr; m++) {
                    /* unsigned: positions above/left of the image wrap and fail the test */
                    size_t iy = by[m] - jy, ix = bx[m] - jx;
                    *a++ = iy < p->in_h && ix < p->in_w
                               ? (const char *)input + (iy * p->in_w + ix) * px_bytes
                               : op->zero;
                }
    }
}

/* Packed layout per tap phase (f_y, f_x), per NR block of output channels:
 * NR biases, then for every tap of the phase and input channel NR weights
 * (channels beyond out_c zero). The weights are [tap][out_c][in_c], so
 * packing transposes each (tap, block) piece; it is done in squares of
 * BLOCK_C input channels by NR output channels, so every cache line read or
 * written is used whole. The unit of work is one (tap, block). With `check`,
 * compares instead of writing and returns non-zero if a byte of the weights
 * or bias differs (the zero lanes are ours alone). */
#define BLOCK_C 16

/* nc rows of ic elements at src (the weights' rows: one output channel each)
 * into ic rows of nr lanes at dst (the packing), in squares of BLOCK_C x nr;
 * lanes nc..nr zeroed. With `check`, compares instead (returns non-zero if a
 * bit differs). *finite is cleared when a copied value is NaN or Inf. */
static int transpose_block(char *dst, const char *src, size_t nc, size_t nr, size_t ic,
                           size_t es, int check, int *finite)
{
    int differs = 0;
    for (size_t c0 = 0; c0 < ic && !differs; c0 += BLOCK_C) {
        size_t c1 = c0 + BLOCK_C < ic ? c0 + BLOCK_C : ic;
        if (check) {
            /* branch-free: the bits of every pair are XORed into one word */
            if (es == sizeof(double)) {
                uint64_t diff = 0, a, b;
                for (size_t lane = 0; lane < nc; lane++) {
                    const char *row = src + lane * ic * es, *col = dst + lane * es;
                    for (size_t c = c0; c < c1; c++) {
                        memcpy(&a, row + c * es, sizeof(a));
                        memcpy(&b, col + c * nr * es, sizeof(b));
                        diff |= a ^ b;
                    }
                }
                differs = diff != 0;
            } else {
                uint32_t diff = 0, a, b;
                size_t lane = 0;
#ifdef __SSE2__
                /* 4 lanes x 4 channels at a time: four source rows, transposed in
                 * registers, against four packed rows (SSE2 is part of x86-64) */
                if ((c1 - c0) % 4 == 0) {
                    __m128 acc = _mm_setzero_ps();
                    for (; lane + 4 <= nc; lane += 4) {
                        const float *r0 = (const float *)(src + lane * ic * es);
                        const float *d0 = (const float *)(dst + lane * es);
                        for (size_t c = c0; c < c1; c += 4) {
                            __m128 s0 = _mm_loadu_ps(r0 + c), s1 = _mm_loadu_ps(r0 + ic + c);
                            __m128 s2 = _mm_loadu_ps(r0 + 2 * ic + c);
                            __m128 s3 = _mm_loadu_ps(r0 + 3 * ic + c);
                            _MM_TRANSPOSE4_PS(s0, s1, s2, s3);
                            acc = _mm_or_ps(acc, _mm_xor_ps(s0, _mm_loadu_ps(d0 + c * nr)));
                            acc = _mm_or_ps(acc, _mm_xor_ps(s1, _mm_loadu_ps(d0 + (c + 1) * nr)));
                            acc = _mm_or_ps(acc, _mm_xor_ps(s2, _mm_loadu_ps(d0 + (c + 2) * nr)));
                            acc = _mm_or_ps(acc, _mm_xor_ps(s3, _mm_loadu_ps(d0 + (c + 3) * nr)));
                        }
                    }
                    diff |= (uint32_t)_mm_movemask_epi8(
                                _mm_cmpeq_epi8(_mm_castps_si128(acc), _mm_setzero_si128())) !=
                            0xFFFF;
                }
#endif
                for (; lane < nc; lane++) {
                    const char *row = src + lane * ic * es, *col = dst + lane * es;
                    for (size_t c = c0; c < c1; c++) {
                        memcpy(&a, row + c * es, sizeof(a));
                        memcpy(&b, col + c * nr * es, sizeof(b));
                        diff |= a ^ b;
                    }
                }
                differs = diff != 0;
            }
            continue;
        }
        for (size_t lane = 0; lane < nc; lane++) {
            const char *row = src + lane * ic * es;
            for (size_t c = c0; c < c1; c++) {
                memcpy(dst + (c * nr + lane) * es, row + c * es, es);
                *finite &= es == sizeof(double) ? isfinite(((const double *)row)[c])
                                               : isfinite(((const float *)row)[c]);
            }
        }
        if (nc < nr)
            for (size_t c = c0; c < c1; c++)
                memset(dst + (c * nr + nc) * es, 0, (nr - nc) * es);
    }
    return differs;
}

static int pack_or_check_units(struct pyconv_deconv_op *op, size_t first, size_t count,
                               int check)
{
    const struct pyconv_deconv_params *p = &op->p;
    const size_t es = op->elsize, nr = op->nr, oc = p->out_c, ic = p->in_c;
    const size_t sh = p->stride_h, sw = p->stride_w, kw = p->kernel_w;
    char *packed = (char *)op->packed;
    int differs = 0, finite = 1;
    if (first == 0 && (op->bias != NULL || !check)) {
        for (size_t q = 0; q < op->wphase_h * op->wphase_w && !differs; q++) {
            size_t ks = phase_taps(q / op->wphase_w, p->kernel_h, sh) *
                        phase_taps(q % op->wphase_w, kw, sw);
            size_t wblock = nr + ks * ic * nr;
            for (size_t cb = 0; cb < op->n_cblocks && !differs; cb++) {
                char *dst = packed + (op->wphase_off[q] + cb * wblock) * es;
                size_t nc = oc - cb * nr < nr ? oc - cb * nr : nr;
                if (op->bias == NULL) {
                    memset(dst, 0, nr * es);
                    continue;
                }
                const char *src = (const char *)op->bias + cb * nr * es;
                if (check) {
                    differs = memcmp(dst, src, nc * es);
                } else {
                    memcpy(dst, src, nc * es);
                    memset(dst + nc * es, 0, (nr - nc) * es);
                }
            }
        }
    }
    for (size_t unit = first; unit < first + count && !differs; unit++) {
        size_t tap = unit / op->n_cblocks, cb = unit % op->n_cblocks;
        size_t ky = tap / kw, kx = tap % kw;
        size_t fy = ky % sh, fx = kx % sw;
        size_t ntx = phase_taps(fx, kw, sw);
        size_t ks = phase_taps(fy, p->kernel_h, sh) * ntx;
        size_t wblock = nr + ks * ic * nr;
        size_t tap_in_phase = ky / sh * ntx + kx / sw;
        size_t nc = oc - cb * nr < nr ? oc - cb * nr : nr;
        char *dst = packed + (op->wphase_off[fy * op->wphase_w + fx] + cb * wblock + nr +
                              tap_in_phase * ic * nr) * es;
        const char *src = (const char *)op->weights + (tap * oc + cb * nr) * ic * es;
        differs = transpose_block(dst, src, nc, nr, ic, es, check, &finite);
    }
    if (!finite)
        atomic_store_explicit(&op->found_nonfinite, 1, memory_order_relaxed);
    return differs;
}

/* ---- the column path ----
 * With few output channels most lanes of an NR-wide tile would multiply
 * zeros. Then the operator computes, as one GEMM through the same
 * microkernels (one tap), every input pixel times every (tap, output
 * channel) - kernel_h * kernel_w * out_c columns - and each output element
 * gathers its taps' columns in a fixed order (bias, then taps by (ky, kx)).
 * Only real input pixels form products, so NaN and Inf weights reach
 * exactly the outputs TF's do. Chosen by out_c alone, so every ISA and
 * thread count gives the same bits. */
static void set_minmax(struct pyconv_deconv_op *op)
{
    double lo, hi;
    pyconv_activation_bounds(op->p.activation, &lo, &hi);
    if (op->p.dtype == PYCONV_F64) {
        op->minmax.f64[0] = lo;
        op->minmax.f64[1] = hi;
    } else {
        op->minmax.f32[0] = (float)lo;
        op->minmax.f32[1] = (float)hi;
    }
}

static int create_columns(const struct pyconv_deconv_params *p, const struct pyconv_ukernels *uk,
                          const void *weights, const void *bias,
                          struct pyconv_deconv_op **op_out, char err[PYCONV_ERRLEN])
{
    const int f64 = p->dtype == PYCONV_F64;
    const size_t es = f64 ? sizeof(double) : sizeof(float);
    int of = 0;
    /* sizes fit: pyconv_deconv_check bounded them */
    const size_t n_cols = p->kernel_h * p->kernel_w * p->out_c;
    const size_t in_pixels = p->in_h * p->in_w;
    const size_t best = pyconv_igemm_pick_tile(uk, f64, in_pixels, n_cols ? n_cols : 1);
    size_t mr, nr;
    unsigned speed;
    if (best == PYCONV_MAX_TILES || !pyconv_igemm_tile_info(uk, f64, best, &mr, &nr, &speed))
        return fail(err, "internal error: no usable microkernel for this dtype");
    const size_t n_cblocks = (n_cols + nr - 1) / nr;
    const size_t wblock = add(nr, mul(p->in_c, nr, &of), &of);
    const size_t n_ptiles = (in_pixels + mr - 1) / mr;
    const size_t head = round_up64(sizeof(struct pyconv_deconv_op));
    const size_t zero_bytes = round_up64(mul(p->in_c, es, &of));
    const size_t ind_bytes = round_up64(mul(mul(n_ptiles, mr, &of), sizeof(void *), &of));
    /* packed: the GEMM's blocks, a copy of the bias, the non-finite flag's line */
    const size_t bias_off = round_up64(mul(mul(n_cblocks, wblock, &of), es, &of));
    const size_t packed_bytes = add(add(bias_off, round_up64(p->out_c * es), &of), 64, &of);
    /* COLUMNS_MAX_OUT_C more: the gather reads that many lanes from any column */
    const size_t col_elems = add(mul(mul(p->batch, in_pixels, &of), n_cols, &of),
                                 COLUMNS_MAX_OUT_C, &of);
    const size_t col_bytes = mul(col_elems, es, &of);
    const size_t total = add(add(head, zero_bytes, &of), ind_bytes, &of);
    if (of || total > PTRDIFF_MAX || packed_bytes > PTRDIFF_MAX || col_bytes > PTRDIFF_MAX)
        return fail(err, "the buffers of this transposed convolution would be larger than "
                         "memory can address");
    size_t capacity;
    char *block = pyconv_buffer_acquire(total, &capacity);
    if (block == NULL)
        return PYCONV_ENOMEM;
    struct pyconv_deconv_op *op = (struct pyconv_deconv_op *)block;
    memset(op, 0, sizeof(*op));
    op->capacity = capacity;
    op->col = pyconv_buffer_acquire(col_bytes, &op->col_capacity);
    if (op->col == NULL) {
        pyconv_buffer_release(block, capacity);
        return PYCONV_ENOMEM;
    }
    memset((char *)op->col + col_bytes - COLUMNS_MAX_OUT_C * es, 0, COLUMNS_MAX_OUT_C * es);
    struct pyconv_wcache_key key = {weights, bias, (size_t)p->dtype, p->kernel_h, p->kernel_w,
                                    p->in_c, p->out_c, nr, 3, 0, 0};
    op->packed_bytes = packed_bytes;
    op->packed = pyconv_wcache_acquire(&key, packed_bytes, &op->wentry, &op->cached_valid);
    if (op->packed == NULL) {
        pyconv_buffer_release(op->col, op->col_capacity);
        pyconv_buffer_release(block, capacity);
        return PYCONV_ENOMEM;
    }
    atomic_init(&op->stale, 0);
    atomic_init(&op->found_nonfinite, 0);
    op->zero = block + head;
    memset(op->zero, 0, p->in_c * es);
    op->indirection = (const void **)(block + head + zero_bytes);
    op->p = *p;
    op->columns = 1;
    op->elsize = es;
    op->mr = mr;
    op->nr = nr;
    op->pixels = p->out_h * p->out_w;
    op->n_cblocks = n_cblocks;
    op->n_cols = n_cols;
    op->in_pixels = in_pixels;
    op->n_ptiles = n_ptiles;
    op->in_image = in_pixels * p->in_c * es;
    op->weights = weights;
    op->bias = bias;
    if (f64)
        op->f64_igemm = uk->f64[best].igemm;
    else
        op->f32_igemm = uk->f32[best].igemm;
    set_minmax(op);
    *op_out = op;
    return PYCONV_OK;
}

/* Unit cb of the packing: NR rows of the weights seen as [n_cols][in_c]. */
static int pack_or_check_columns(struct pyconv_deconv_op *op, size_t first, size_t count,
                                 int check)
{
    const size_t es = op->elsize, nr = op->nr, ic = op->p.in_c, oc = op->p.out_c;
    const size_t wblock = nr + ic * nr;
    char *packed = (char *)op->packed;
    char *bias_copy = packed + round_up64(op->n_cblocks * wblock * es);
    int differs = 0;
    if (first == 0) {
        if (check) {
            differs = op->bias != NULL && memcmp(bias_copy, op->bias, oc * es) != 0;
        } else {
            if (op->bias != NULL)
                memcpy(bias_copy, op->bias, oc * es);
            else
                memset(bias_copy, 0, oc * es);
        }
    }
    for (size_t cb = first; cb < first + count && !differs; cb++) {
        char *dst = packed + cb * wblock * es;
        const char *src = (const char *)op->weights + cb * nr * ic * es;
        size_t nc = op->n_cols - cb * nr < nr ? op->n_cols - cb * nr : nr;
        if (!check)
            memset(dst, 0, nr * es); /* the GEMM has no bias: it is added once per output */
        int finite = 1; /* NaN and Inf need nothing special here */
        differs = transpose_block(dst + nr * es, src, nc, nr, ic, es, check, &finite);
    }
    return differs;
}

static void columns_gemm(struct pyconv_deconv_op *op, size_t first, size_t count)
{
    const size_t mr = op->mr, nr = op->nr, es = op->elsize, ic = op->p.in_c;
    const size_t wblock = nr + ic * nr;
    static const float none32[2] = {-__builtin_inff(), __builtin_inff()};
    static const double none64[2] = {-__builtin_inf(), __builtin_inf()};
    for (size_t task = first; task < first + count; task++) {
        size_t n = task / op->n_ptiles, t = task % op->n_ptiles;
        size_t rows = op->in_pixels - t * mr < mr ? op->in_pixels - t * mr : mr;
        const void *const *a = op->indirection + t * mr;
        for (size_t cb = 0; cb < op->n_cblocks; cb++) {
            size_t cols = op->n_cols - cb * nr < nr ? op->n_cols - cb * nr : nr;
            const char *w = (const char *)op->packed + cb * wblock * es;
            char *c = (char *)op->col + ((n * op->in_pixels + t * mr) * op->n_cols + cb * nr) * es;
            if (op->p.dtype == PYCONV_F64)
                op->f64_igemm(rows, cols, ic, 1, (const double *const *)a, (const double *)w,
                              (double *)c, op->n_cols, n * op->in_image, (const double *)op->zero,
                              none64);
            else
                op->f32_igemm(rows, cols, ic, 1, (const float *const *)a, (const float *)w,
                              (float *)c, op->n_cols, n * op->in_image, (const float *)op->zero,
                              none32);
        }
    }
}

/* Task (image, output row): every element is its bias plus the columns of the
 * taps that reach it from inside the input, in (ky, kx) order, then clamped.
 * y + pad = iy * stride + ky: ky runs from (y + pad) mod stride in steps of
 * the stride while iy goes down by one (wrapping above the image: skipped).
 * Written once per element type. */
#define DEFINE_GATHER(NAME, T, MINMAX)                                                          \
    static void NAME(struct pyconv_deconv_op *op, size_t first, size_t count)                  \
    {                                                                                          \
        const struct pyconv_deconv_params *p = &op->p;                                         \
        const size_t oc = p->out_c, ncol = op->n_cols;                                         \
        const T *bias = (const T *)((const char *)op->packed +                                 \
                                    round_up64(op->n_cblocks * (op->nr + p->in_c * op->nr) *   \
                                               sizeof(T)));                                    \
        const T lo = op->minmax.MINMAX[0], hi = op->minmax.MINMAX[1];                          \
        const T *col = (const T *)op->col;                                                     \
        for (size_t task = first; task < first + count; task++) {                              \
            size_t n = task / p->out_h, y = task % p->out_h;                                   \
            size_t ty = y + p->pad_top;                                                        \
            T *out = (T *)op->output + (n * op->pixels + y * p->out_w) * oc;                   \
            for (size_t x = 0; x < p->out_w; x++, out += oc) {                                 \
                T acc[COLUMNS_MAX_OUT_C] = {0};                                                \
                for (size_t o = 0; o < oc; o++)                                                \
                    acc[o] = bias[o];                                                          \
                size_t tx = x + p->pad_left;                                                   \
                for (size_t ky = ty % p->stride_h, iy = ty / p->stride_h; ky < p->kernel_h;    \
                     ky += p->stride_h, iy--) {                                                \
                    if (iy >= p->in_h)                                                         \
                        continue;                                                              \
                    const T *row = col + (n * op->in_pixels + iy * p->in_w) * ncol +           \
                                   ky * p->kernel_w * oc;                                      \
                    for (size_t kx = tx % p->stride_w, ix = tx / p->stride_w;                  \
                         kx < p->kernel_w; kx += p->stride_w, ix--) {                          \
                        if (ix >= p->in_w)                                                     \
                            continue;                                                          \
                        const T *c = row + ix * ncol + kx * oc;                                \
                        /* all lanes, a constant count the compiler vectorizes; those past  \
                         * oc hold the next columns' sums and are never stored */            \
                        for (size_t o = 0; o < COLUMNS_MAX_OUT_C; o++)                         \
                            acc[o] += c[o];                                                    \
                    }                                                                          \
                }                                                                              \
                for (size_t o = 0; o < oc; o++) {                                              \
                    T v = acc[o] < lo ? lo : acc[o]; /* comparisons keep NaN */                \
                    out[o] = v > hi ? hi : v;                                                  \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }

DEFINE_GATHER(columns_gather_f32, float, f32)
DEFINE_GATHER(columns_gather_f64, double, f64)

static void columns_gemm_cb(void *ctx, size_t first, size_t count)
{
    columns_gemm(ctx, first, count);
}

static void columns_gather_cb(void *ctx, size_t first, size_t count)
{
    struct pyconv_deconv_op *op = ctx;
    if (op->p.dtype == PYCONV_F64)
        columns_gather_f64(op, first, count);
    else
        columns_gather_f32(op, first, count);
}
/* ---- end of the column path ---- */

static void pack_columns_cb(void *ctx, size_t first, size_t count)
{
    pack_or_check_columns(ctx, first, count, 0);
}

static void check_columns_cb(void *ctx, size_t first, size_t count)
{
    struct pyconv_deconv_op *op = ctx;
    if (pack_or_check_columns(op, first, count, 1))
        atomic_store_explicit(&op->stale, 1, memory_order_relaxed);
}

static void pack_rows_cb(void *ctx, size_t first, size_t count)
{
    pack_or_check_units(ctx, first, count, 0);
}

static void check_rows_cb(void *ctx, size_t first, size_t count)
{
    struct pyconv_deconv_op *op = ctx;
    if (pack_or_check_units(op, first, count, 1))
        atomic_store_explicit(&op->stale, 1, memory_order_relaxed);
}

/* Output of a phase no tap reaches: the bias (packed with phase 0, which
 * always has taps), clamped like the kernels clamp. */
static void fill_bias(struct pyconv_deconv_op *op, const size_t *pix, size_t rows, size_t n,
                      size_t cb)
{
    const struct pyconv_deconv_params *p = &op->p;
    const size_t es = op->elsize, n0 = cb * op->nr, oc = p->out_c;
    const size_t cols = oc - n0 < op->nr ? oc - n0 : op->nr;
    const size_t wblock0 = op->nr + phase_taps(0, p->kernel_h, p->stride_h) *
                                        phase_taps(0, p->kernel_w, p->stride_w) * p->in_c * op->nr;
    const char *bias = (const char *)op->packed + cb * wblock0 * es;
    for (size_t m = 0; m < rows; m++) {
        char *c = (char *)op->output + ((n * op->pixels + pix[m]) * oc + n0) * es;
        for (size_t j = 0; j < cols; j++) {
            if (p->dtype == PYCONV_F64) {
                double v = ((const double *)bias)[j];
                v = v < op->minmax.f64[0] ? op->minmax.f64[0] : v;
                v = v > op->minmax.f64[1] ? op->minmax.f64[1] : v;
                ((double *)c)[j] = v;
            } else {
                float v = ((const float *)bias)[j];
                v = v < op->minmax.f32[0] ? op->minmax.f32[0] : v;
                v = v > op->minmax.f32[1] ? op->minmax.f32[1] : v;
                ((float *)c)[j] = v;
            }
        }
    }
}

/* Tasks are (channel group, image, tile), tile fastest. A tile whose rows
 * are evenly spaced in the output is stored in place (row stride = that
 * spacing); otherwise the kernel stores into a small tile on the stack that
 * is then copied to the rows' pixels. Each output element is one kernel
 * sum either way, so the result does not depend on how tasks are split. */
static void run_tasks(struct pyconv_deconv_op *op, size_t first, size_t count)
{
    const struct pyconv_deconv_params *p = &op->p;
    const size_t mr = op->mr, nr = op->nr, es = op->elsize, oc = p->out_c;
    const size_t tiles = p->batch * op->n_tiles;
    _Alignas(64) unsigned char scratch[PYCONV_MAX_MR * MAX_NR * sizeof(double)];
    for (size_t task = first; task < first + count; task++) {
        size_t g = task / tiles, rest = task % tiles;
        size_t n = rest / op->n_tiles, t = rest % op->n_tiles;
        const struct deconv_tile *tile = &op->tiles[t];
        const size_t *pix = op->pix + t * mr;
        const void *const *a = op->indirection + tile->ind;
        size_t a_offset = n * op->in_image;
        size_t cb_end = (g + 1) * op->group < op->n_cblocks ? (g + 1) * op->group : op->n_cblocks;
        for (size_t cb = g * op->group; cb < cb_end; cb++) {
            if (tile->ks == 0) {
                fill_bias(op, pix, tile->rows, n, cb);
                continue;
            }
            size_t n0 = cb * nr, cols = oc - n0 < nr ? oc - n0 : nr;
            const char *w = (const char *)op->packed + (tile->wphase + cb * tile->wblock) * es;
            char *c = (char *)op->output + ((n * op->pixels + pix[0]) * oc + n0) * es;
            size_t c_stride = tile->step * oc;
            if (tile->step == 0) {
                c = (char *)scratch;
                c_stride = nr;
            }
            if (p->dtype == PYCONV_F64)
                op->f64_igemm(tile->rows, cols, p->in_c, tile->ks, (const double *const *)a,
                              (const double *)w, (double *)c, c_stride, a_offset,
                              (const double *)op->zero, op->minmax.f64);
            else
                op->f32_igemm(tile->rows, cols, p->in_c, tile->ks, (const float *const *)a,
                              (const float *)w, (float *)c, c_stride, a_offset,
                              (const float *)op->zero, op->minmax.f32);
            if (tile->step == 0)
                for (size_t m = 0; m < tile->rows; m++)
                    memcpy((char *)op->output + ((n * op->pixels + pix[m]) * oc + n0) * es,
                           scratch + m * nr * es, cols * es);
        }
    }
}

/* The path for weights holding NaN or Inf. The kernels multiply the zero
 * vector by every tap of a phase, and 0 * Inf is NaN; TF's transposed
 * convolution only forms the products of real input pixels, so a tap whose
 * input lies outside the image contributes nothing. Here each output element
 * sums, in the kernels' order (bias, taps, channels, one fused multiply-add
 * each), only the taps whose input is inside: the same values wherever the
 * weights are finite (the skipped products are exact zeros), TF's NaN/Inf
 * pattern where they are not. Slow, and only for such weights. */
static void exact_tasks(struct pyconv_deconv_op *op, size_t first, size_t count)
{
    const struct pyconv_deconv_params *p = &op->p;
    const size_t mr = op->mr, nr = op->nr, es = op->elsize, oc = p->out_c, ic = p->in_c;
    const size_t tiles = p->batch * op->n_tiles;
    const int f64 = p->dtype == PYCONV_F64;
    for (size_t task = first; task < first + count; task++) {
        size_t g = task / tiles, rest = task % tiles;
        size_t n = rest / op->n_tiles, t = rest % op->n_tiles;
        const struct deconv_tile *tile = &op->tiles[t];
        const size_t *pix = op->pix + t * mr;
        size_t cb_end = (g + 1) * op->group < op->n_cblocks ? (g + 1) * op->group : op->n_cblocks;
        for (size_t cb = g * op->group; cb < cb_end; cb++) {
            if (tile->ks == 0) {
                fill_bias(op, pix, tile->rows, n, cb);
                continue;
            }
            size_t n0 = cb * nr, cols = oc - n0 < nr ? oc - n0 : nr;
            const char *w = (const char *)op->packed + (tile->wphase + cb * tile->wblock) * es;
            for (size_t m = 0; m < tile->rows; m++) {
                size_t ty = pix[m] / p->out_w + p->pad_top, tx = pix[m] % p->out_w + p->pad_left;
                size_t by = ty / p->stride_h, bx = tx / p->stride_w;
                size_t nty = phase_taps(ty % p->stride_h, p->kernel_h, p->stride_h);
                size_t ntx = phase_taps(tx % p->stride_w, p->kernel_w, p->stride_w);
                char *c = (char *)op->output + ((n * op->pixels + pix[m]) * oc + n0) * es;
                for (size_t j = 0; j < cols; j++) {
                    double acc64 = f64 ? ((const double *)w)[j] : 0.0;
                    float acc32 = f64 ? 0.0f : ((const float *)w)[j];
                    for (size_t jy = 0; jy < nty; jy++) {
                        size_t iy = by - jy; /* wraps above the image */
                        for (size_t jx = 0; jx < ntx && iy < p->in_h; jx++) {
                            size_t ix = bx - jx;
                            if (ix >= p->in_w)
                                continue;
                            const char *x = (const char *)op->input + n * op->in_image +
                                            (iy * p->in_w + ix) * ic * es;
                            size_t wt = nr + (jy * ntx + jx) * ic * nr + j;
                            for (size_t ci = 0; ci < ic; ci++) {
                                if (f64)
                                    acc64 = fma(((const double *)x)[ci],
                                                ((const double *)w)[wt + ci * nr], acc64);
                                else
                                    acc32 = fmaf(((const float *)x)[ci],
                                                 ((const float *)w)[wt + ci * nr], acc32);
                            }
                        }
                    }
                    if (f64) {
                        acc64 = acc64 < op->minmax.f64[0] ? op->minmax.f64[0] : acc64;
                        acc64 = acc64 > op->minmax.f64[1] ? op->minmax.f64[1] : acc64;
                        ((double *)c)[j] = acc64;
                    } else {
                        acc32 = acc32 < op->minmax.f32[0] ? op->minmax.f32[0] : acc32;
                        acc32 = acc32 > op->minmax.f32[1] ? op->minmax.f32[1] : acc32;
                        ((float *)c)[j] = acc32;
                    }
                }
            }
        }
    }
}

static void run_tasks_cb(void *ctx, size_t first, size_t count)
{
    run_tasks(ctx, first, count);
}

static void exact_tasks_cb(void *ctx, size_t first, size_t count)
{
    exact_tasks(ctx, first, count);
}

int pyconv_deconv_run(struct pyconv_deconv_op *op, size_t n_threads,
                      pyconv_interrupt_fn interrupted, void *ctx)
{
    size_t n_tasks = op->columns ? op->p.batch * op->n_ptiles * (op->p.out_c != 0)
                                 : op->n_groups * op->p.batch * op->n_tiles;
    if (n_tasks == 0)
        return PYCONV_OK;
    if (!op->is_packed) {
        /* units of (tap, channel block) or of column blocks; bytes per unit as the cost */
        size_t rows = op->columns ? op->n_cblocks
                                  : op->p.kernel_h * op->p.kernel_w * op->n_cblocks;
        size_t row_bytes = op->p.in_c * op->nr * op->elsize;
        void (*check_cb)(void *, size_t, size_t) = op->columns ? check_columns_cb : check_rows_cb;
        void (*pack_cb)(void *, size_t, size_t) = op->columns ? pack_columns_cb : pack_rows_cb;
        int rc;
        unsigned char *flag = (unsigned char *)op->packed + op->packed_bytes - 64;
        if (op->cached_valid) {
            rc = pyconv_parallel_for(rows, row_bytes, n_threads, check_cb, op, interrupted, ctx);
            if (rc != PYCONV_OK)
                return rc;
            op->cached_valid = 0;
            op->is_packed = !atomic_load(&op->stale);
        }
        if (!op->is_packed) {
            rc = pyconv_parallel_for(rows, row_bytes, n_threads, pack_cb, op, interrupted, ctx);
            if (rc != PYCONV_OK)
                return rc;
            *flag = (unsigned char)atomic_load(&op->found_nonfinite);
            op->is_packed = 1;
        }
        op->nonfinite = *flag != 0;
    }
    if (op->columns) {
        size_t gemm_macs = op->mr * op->n_cblocks * op->nr * op->p.in_c;
        int rc = pyconv_parallel_for(n_tasks, gemm_macs, n_threads, columns_gemm_cb, op,
                                     interrupted, ctx);
        if (rc != PYCONV_OK)
            return rc;
        size_t row_adds = op->p.out_w * op->n_cols;
        return pyconv_parallel_for(op->p.batch * op->p.out_h, row_adds, n_threads,
                                   columns_gather_cb, op, interrupted, ctx);
    }
    /* multiply-adds per task (a phase's share of the taps), to size chunks */
    size_t taps = phase_taps(0, op->p.kernel_h, op->p.stride_h) *
                  phase_taps(0, op->p.kernel_w, op->p.stride_w);
    size_t task_macs = op->group * op->mr * op->nr * taps * op->p.in_c;
    return pyconv_parallel_for(n_tasks, task_macs, n_threads,
                               op->nonfinite ? exact_tasks_cb : run_tasks_cb, op, interrupted,
                               ctx);
}

void pyconv_deconv_destroy(struct pyconv_deconv_op *op)
{
    pyconv_wcache_release(op->wentry, op->packed, op->packed_bytes, op->is_packed);
    if (op->columns)
        pyconv_buffer_release(op->col, op->col_capacity);
    pyconv_buffer_release(op, op->capacity);
}
