/* Winograd F(4x4, 3x3) and F(2x2, 3x3) operator (see winograd.h). A task
 * takes a block of `tb` output tiles (of m x m pixels, m = 4 or 2, over the
 * whole batch): it transforms their alpha x alpha input tiles (alpha = m + 2)
 * into V[xi][tb][in_c] (xi = alpha^2 = 36 or 16), multiplies each V[xi] by
 * the transformed weights U[xi] (in_c x out_c, packed like conv.c's NR blocks
 * with zero biases, in blocks of WINO_SUM_BLOCK_* input channels) into
 * M[xi][tb][out_c] with the igemm microkernel, and transforms M back to
 * m x m outputs (plus bias, then the clamp or the fused epilogue). Every
 * tile's arithmetic is the same whichever task or thread runs it: the bits
 * do not depend on the thread count. The block and its scratch stay in L2
 * (NNPACK's structure); U is kept in the weight cache between calls. */
#include "winograd.h"

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

/* Input channels per block of the GEMM's sums, per variant (each block costs
 * a partial tile and its addition). Errors, max|d| / max(1, max|y|) for
 * 64-2048 channels (tools/wino_error.py): F(4x4) 1.5e-6..2.2e-6 with 64
 * (128: up to 3.1e-6, 256: up to 3.7e-6; with the points 0, +-1, +-2 and one
 * block: up to 2.9e-5). F(2x2) 0.3e-6..0.6e-6 with
 * 64 or 256 (one block: up to 1.6e-6), direct 0.9e-6..1.8e-6; 256 would make
 * F(2x2) 1.05-1.25x faster with 128-512 channels, but moves the Inception-v3
 * training-mode net fixture's output to 9.9e-5 of its 1e-4 under 'auto'
 * (64: 9.2e-5, direct 8.6e-5): kept at 64 until that fixture has room. */
#define WINO_SUM_BLOCK_F4 64
#define WINO_SUM_BLOCK_F2 64
#define XI 36         /* the most transformed positions per tile (6 x 6, F(4x4, 3x3)) */
#define MAX_SLOTS 64  /* per-thread scratch blocks kept by the operator */
/* the weight cache key's op for F(4x4, 3x3) and F(2x2, 3x3) (wcache.h) */
#define WCACHE_OP_F4X3 4
#define WCACHE_OP_F2X3 5

struct slot {
    atomic_int busy;
    float *mem; /* slot_floats, allocated by its first user */
    size_t capacity;
};

struct pyconv_wino_op {
    struct pyconv_conv_params p;
    size_t m, alpha, xi; /* F(m x m, 3x3): output tile m, input tile alpha = m + 2, xi = alpha^2 */
    size_t out_h, out_w, tiles_h, tiles_w, tiles_img, n_tiles, tb, n_tasks;
    size_t run_tb; /* tiles per task in this run, a multiple of mr, <= tb */
    size_t mr, nr, n_cblocks, wblock, slot_floats;
    size_t kblock, n_kblocks; /* the GEMM's sum over in_c: blocks of kblock channels */
    pyconv_f32_igemm_fn igemm;
    struct pyconv_f32_winograd tr;
    pyconv_f32_eltwise_fn eltwise;
    /* from the weight cache (wcache.c, op WCACHE_OP_F4X3 or _F2X3):
     * the transformed weights U, xi * n_cblocks * wblock floats, then at
     * raw_offset a copy of the HWIO weights they were transformed from, which
     * a later call compares byte for byte with its weights (like conv.c's
     * packed weights) before trusting U */
    float *packed;
    size_t packed_bytes, raw_offset, zero_capacity;
    struct pyconv_wcache_entry *wentry; /* NULL: a private block */
    const float *weights, *bias;
    int is_packed, input_checked;
    int cached_valid;   /* packed came from the cache holding an earlier packing */
    atomic_int stale;   /* that packing's weights differ from these */
    atomic_int nonfinite, nomem;
    float minmax[2], ep_minmax[2];
    struct pyconv_epilogue ep;
    int has_ep;
    const float *input;
    float *output;
    float *zero; /* in_c zeros: the padding */
    struct slot slots[MAX_SLOTS];
};


int pyconv_wino_applicable(const struct pyconv_conv_params *p)
{
    return p->dtype == PYCONV_F32 && p->kernel_h == 3 && p->kernel_w == 3 && p->stride_h == 1 &&
           p->stride_w == 1 && p->dilation_h == 1 && p->dilation_w == 1 && p->groups <= 1;
}

/* Non-zero if any of n floats is a NaN or an infinity (exponent all ones). */
static int any_nonfinite(const float *x, size_t n)
{
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, x + i, sizeof b);
        bad |= (b & 0x7f800000u) == 0x7f800000u;
    }
    return bad != 0;
}

int pyconv_wino_create(const struct pyconv_conv_params *p, const struct pyconv_ukernels *uk,
                       size_t tile, const float *weights, const float *bias, struct pyconv_wino_op **op_out,
                       char err[PYCONV_ERRLEN])
{
    *op_out = NULL;
    size_t out_h, out_w;
    int rc = pyconv_conv_output_shape(p, &out_h, &out_w, err);
    if (rc != PYCONV_OK)
        return rc;
    if (!pyconv_wino_applicable(p))
        return fail(err, "internal error: Winograd needs float32, 3x3, stride 1, dilation 1");
    if (tile != 2 && tile != 4)
        return fail(err, "internal error: Winograd output tile %zu (2 or 4)", tile);
    const struct pyconv_f32_winograd *tr = uk == NULL ? NULL
                                           : tile == 4 ? &uk->f32_winograd
                                                       : &uk->f32_winograd2x3;
    if (uk == NULL || uk->f32[0].igemm == NULL || tr->input == NULL || weights == NULL)
        return fail(err, "internal error: no microkernels or weights");
    const size_t m = tile, alpha = tile + 2, XN = alpha * alpha;
    const size_t mr = uk->f32[0].mr, nr = uk->f32[0].nr, ic = p->in_c, oc = p->out_c;
    if (mr < 1 || mr > PYCONV_MAX_MR || nr < 1 || nr > PYCONV_MAX_NR)
        return fail(err, "internal error: unusable microkernel tile");
    int of = 0;
    const size_t tiles_h = (out_h + m - 1) / m, tiles_w = (out_w + m - 1) / m;
    const size_t tiles_img = mul(tiles_h, tiles_w, &of);
    const size_t n_tiles = mul(p->batch, tiles_img, &of);
    /* tiles per task, at most: 8 igemm tiles of rows, so that each U[xi] (up
     * to 1 MiB) read from memory serves 8 * mr tiles (sizing the task's V and
     * M to L2 instead left 7 tiles per task with 512 channels, every task
     * streaming all of U: 0.7-1.0x direct there, 1.2-1.6x now), with the
     * task's scratch under 16 MiB; run lowers it to give every thread work */
    size_t per_tile = mul(XN * sizeof(float), add(ic, oc, &of), &of);
    size_t k = per_tile ? ((size_t)16 << 20) / mul(per_tile, mr, &of) : 1;
    k = k < 1 ? 1 : k > 8 ? 8 : k;
    size_t tb = k * mr;
    size_t need = n_tiles < tb ? (n_tiles + mr - 1) / mr * mr : tb; /* small layers */
    tb = need ? need : mr;
    const size_t n_cblocks = (oc + nr - 1) / nr;
    /* the tuple GEMM sums over in_c in blocks of sum_block channels,
     * each block's weights behind NR zero biases (the microkernel's start) */
    const size_t sum_block = tile == 4 ? WINO_SUM_BLOCK_F4 : WINO_SUM_BLOCK_F2;
    const size_t kblock = ic < sum_block ? ic : sum_block;
    const size_t n_kblocks = (ic + kblock - 1) / kblock;
    const size_t wblock = mul(n_kblocks, add(nr, mul(kblock, nr, &of), &of), &of);
    const size_t packed_floats = mul(mul(XN, n_cblocks, &of), wblock, &of);
    const size_t wide = ic > oc ? ic : oc;
    size_t slot = mul(mul(XN, tb, &of), add(ic, oc, &of), &of);
    slot = add(slot, add(mul(XN, wide, &of), mul(m * m, oc, &of), &of), &of);
    slot = add(slot, PYCONV_MAX_MR * PYCONV_MAX_NR, &of); /* a block's partial tile */
    size_t raw_offset = add(mul(packed_floats, sizeof(float), &of), 63, &of) / 64 * 64;
    size_t raw_bytes = mul(mul(9, ic, &of), mul(oc, sizeof(float), &of), &of);
    size_t packed_bytes = add(add(raw_offset, raw_bytes, &of), 63, &of) / 64 * 64;
    mul(slot, sizeof(float), &of);
    size_t zero_bytes = add(mul(ic, sizeof(float), &of), 63, &of) / 64 * 64;
    if (of || packed_bytes > PTRDIFF_MAX || slot > PTRDIFF_MAX / sizeof(float))
        return fail(err, "the buffers of this convolution would be larger than memory can address");

    struct pyconv_wino_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return PYCONV_ENOMEM;
    /* the transformed weights from the weight cache, as conv.c's packed
     * ones (no bias in the key: the output transform adds it); the zero
     * vector from the cached blocks of buffers.c */
    struct pyconv_wcache_key key = {weights, NULL, (size_t)p->dtype, 3, 3, ic, oc, nr,
                                    tile == 4 ? WCACHE_OP_F4X3 : WCACHE_OP_F2X3, 0, 0};
    op->packed = pyconv_wcache_acquire_trusted(&key, packed_bytes, &op->wentry, &op->cached_valid,
                                               p->weights_readonly);
    op->zero = pyconv_buffer_acquire(zero_bytes, &op->zero_capacity);
    if (op->packed == NULL || op->zero == NULL) {
        pyconv_wcache_release(op->wentry, op->packed, packed_bytes, 0);
        if (op->zero != NULL)
            pyconv_buffer_release(op->zero, op->zero_capacity);
        free(op);
        return PYCONV_ENOMEM;
    }
    memset(op->zero, 0, zero_bytes);
    op->packed_bytes = packed_bytes;
    op->raw_offset = raw_offset;
    atomic_init(&op->stale, 0);
    if (op->cached_valid == 2) { /* verified earlier under trusted pins: no check */
        op->is_packed = 1;
        op->cached_valid = 0;
    }
    op->p = *p;
    op->m = m;
    op->alpha = alpha;
    op->xi = XN;
    op->out_h = out_h;
    op->out_w = out_w;
    op->tiles_h = tiles_h;
    op->tiles_w = tiles_w;
    op->tiles_img = tiles_img;
    op->n_tiles = n_tiles;
    op->tb = tb;
    op->n_tasks = (n_tiles + tb - 1) / tb; /* at most; run's tasks may be shorter */
    op->mr = mr;
    op->nr = nr;
    op->n_cblocks = n_cblocks;
    op->wblock = wblock;
    op->kblock = kblock;
    op->n_kblocks = n_kblocks;
    op->slot_floats = slot;
    op->igemm = uk->f32[0].igemm;
    op->tr = *tr;
    op->eltwise = uk->f32_eltwise;
    op->weights = weights;
    op->bias = bias;
    atomic_init(&op->nonfinite, 0);
    atomic_init(&op->nomem, 0);
    for (size_t i = 0; i < MAX_SLOTS; i++)
        atomic_init(&op->slots[i].busy, 0);
    double lo, hi;
    pyconv_activation_bounds(p->activation, &lo, &hi);
    op->minmax[0] = (float)lo;
    op->minmax[1] = (float)hi;
    *op_out = op;
    return PYCONV_OK;
}

void pyconv_wino_setup(struct pyconv_wino_op *op, const float *input, float *output)
{
    op->input = input;
    op->output = output;
    op->input_checked = 0;
}

void pyconv_wino_set_epilogue(struct pyconv_wino_op *op, const struct pyconv_epilogue *ep)
{
    op->ep = *ep;
    op->has_ep = 1;
    op->ep_minmax[0] = op->minmax[0];
    op->ep_minmax[1] = op->minmax[1];
    op->minmax[0] = -__builtin_inff();
    op->minmax[1] = __builtin_inff();
}

/* A scratch block of slot_floats for the calling chunk; *own set when it had
 * to be allocated for this chunk alone (more threads than slots). */
static float *claim(struct pyconv_wino_op *op, size_t *index)
{
    for (size_t i = 0; i < MAX_SLOTS; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&op->slots[i].busy, &expected, 1)) {
            if (op->slots[i].mem == NULL)
                op->slots[i].mem = pyconv_buffer_acquire(op->slot_floats * sizeof(float),
                                                         &op->slots[i].capacity);
            if (op->slots[i].mem == NULL) {
                atomic_store(&op->slots[i].busy, 0);
                return NULL;
            }
            *index = i;
            return op->slots[i].mem;
        }
    }
    return NULL;
}

static void unclaim(struct pyconv_wino_op *op, size_t index)
{
    atomic_store(&op->slots[index].busy, 0);
}

/* Weight transform: one input channel per task, its 36 rows of out_c
 * transformed weights scattered into the NR blocks. */
static void pack_cb(void *ctx, size_t first, size_t count)
{
    struct pyconv_wino_op *op = ctx;
    const size_t ic = op->p.in_c, oc = op->p.out_c, nr = op->nr;
    size_t si;
    float *tmp = claim(op, &si);
    if (tmp == NULL) {
        atomic_store(&op->nomem, 1);
        return;
    }
    for (size_t c = first; c < first + count; c++) {
        const float *g[9];
        int bad = 0;
        for (size_t t = 0; t < 9; t++) {
            g[t] = op->weights + (t * ic + c) * oc;
            bad |= any_nonfinite(g[t], oc);
        }
        if (bad)
            atomic_store_explicit(&op->nonfinite, 1, memory_order_relaxed);
        float *raw = (float *)((char *)op->packed + op->raw_offset);
        for (size_t t = 0; t < 9; t++)
            memcpy(raw + (t * ic + c) * oc, g[t], oc * sizeof(float));
        op->tr.kernel(oc, g, tmp, oc);
        for (size_t xi = 0; xi < op->xi; xi++) {
            for (size_t cb = 0; cb < op->n_cblocks; cb++) {
                float *blk = op->packed + (xi * op->n_cblocks + cb) * op->wblock +
                             c / op->kblock * (nr + op->kblock * nr);
                size_t n0 = cb * nr, cols = oc - n0 < nr ? oc - n0 : nr;
                if (c % op->kblock == 0)
                    memset(blk, 0, nr * sizeof(float)); /* the biases: added after */
                float *dst = blk + nr + c % op->kblock * nr;
                memcpy(dst, tmp + xi * oc + n0, cols * sizeof(float));
                memset(dst + cols, 0, (nr - cols) * sizeof(float));
            }
        }
    }
    unclaim(op, si);
}

/* A cached packing's copy of the weights against these, byte for byte, by
 * rows of out_c (a tap and input channel). */
static void check_weights_cb(void *ctx, size_t first, size_t count)
{
    struct pyconv_wino_op *op = ctx;
    const size_t oc = op->p.out_c;
    const float *raw = (const float *)((const char *)op->packed + op->raw_offset);
    if (memcmp(raw + first * oc, op->weights + first * oc, count * oc * sizeof(float)) != 0)
        atomic_store_explicit(&op->stale, 1, memory_order_relaxed);
}

static void check_cb(void *ctx, size_t first, size_t count)
{
    struct pyconv_wino_op *op = ctx;
    const size_t row = op->p.in_w * op->p.in_c;
    if (any_nonfinite(op->input + first * row, count * row))
        atomic_store_explicit(&op->nonfinite, 1, memory_order_relaxed);
}

static void run_task(struct pyconv_wino_op *op, size_t task, float *scratch)
{
    const struct pyconv_conv_params *p = &op->p;
    const size_t ic = p->in_c, oc = p->out_c, tb = op->tb, mr = op->mr, nr = op->nr;
    const size_t run_tb = op->run_tb; /* tiles of this task; tb: the scratch's stride */
    const size_t m = op->m, alpha = op->alpha, XN = op->xi;
    float *V = scratch, *M = V + XN * tb * ic, *tmp = M + XN * tb * oc;
    float *dummy = tmp + XN * (ic > oc ? ic : oc);
    float *part = dummy + m * m * oc; /* mr x nr: a channel block's products */
    const size_t t0 = task * run_tb;
    const size_t cnt = op->n_tiles - t0 < run_tb ? op->n_tiles - t0 : run_tb;
    /* input transform */
    for (size_t i = 0; i < cnt; i++) {
        size_t g = t0 + i, n = g / op->tiles_img, r = g % op->tiles_img;
        size_t ty = r / op->tiles_w, tx = r % op->tiles_w;
        /* unsigned: positions above/left of the image wrap and fail the test */
        size_t iy0 = ty * m - p->pad_top, ix0 = tx * m - p->pad_left;
        const float *d[XI];
        for (size_t a = 0; a < alpha; a++)
            for (size_t b = 0; b < alpha; b++) {
                size_t iy = iy0 + a, ix = ix0 + b;
                d[a * alpha + b] = iy < p->in_h && ix < p->in_w
                                   ? op->input + ((n * p->in_h + iy) * p->in_w + ix) * ic
                                   : op->zero;
            }
        op->tr.input(ic, d, tmp, V + i * ic, tb * ic);
    }
    /* the tuple GEMM: M[xi] = V[xi] U[xi], no clamp, summed over blocks of
     * kblock input channels in a fixed order: ((block 0 + block 1) + block 2)
     * + ... A single float32 accumulator over all of in_c made the error grow
     * with it (F(4x4): 1.6e-5 of max|y| at 512 channels, 2.9e-5 at 2048, over
     * the 1e-5 of the TF fixtures; blocks of 64 and better points: 2.2e-6, winograd.h) */
    static const float none[2] = {-__builtin_inff(), __builtin_inff()};
    const size_t kstride = op->nr + op->kblock * op->nr; /* floats per block of weights */
    for (size_t xi = 0; xi < XN; xi++) {
        for (size_t cb = 0; cb < op->n_cblocks; cb++) {
            const float *w = op->packed + (xi * op->n_cblocks + cb) * op->wblock;
            size_t n0 = cb * nr, cols = oc - n0 < nr ? oc - n0 : nr;
            for (size_t r0 = 0; r0 < cnt; r0 += mr) {
                size_t rows = cnt - r0 < mr ? cnt - r0 : mr;
                const float *a[PYCONV_MAX_MR];
                for (size_t r = 0; r < mr; r++)
                    a[r] = V + (xi * tb + r0 + (r < rows ? r : rows - 1)) * ic;
                float *c = M + (xi * tb + r0) * oc + n0;
                size_t kc = ic < op->kblock ? ic : op->kblock;
                op->igemm(rows, cols, kc, 1, a, w, c, oc, 0, op->zero, none);
                for (size_t j = 1; j < op->n_kblocks; j++) {
                    size_t k0 = j * op->kblock;
                    kc = ic - k0 < op->kblock ? ic - k0 : op->kblock;
                    for (size_t r = 0; r < mr; r++)
                        a[r] += op->kblock;
                    op->igemm(rows, cols, kc, 1, a, w + j * kstride, part, nr, 0, op->zero,
                              none);
                    for (size_t r = 0; r < rows; r++) /* c += part, row by row */
                        op->eltwise(cols, c + r * oc, NULL, NULL, NULL, part + r * nr,
                                    c + r * oc, 0, none);
                }
            }
        }
    }
    /* output transform, bias, clamp or epilogue */
    for (size_t i = 0; i < cnt; i++) {
        size_t g = t0 + i, n = g / op->tiles_img, r = g % op->tiles_img;
        size_t ty = r / op->tiles_w, tx = r % op->tiles_w;
        float *out[16];
        size_t at[16]; /* element offset of each output pixel; SIZE_MAX outside */
        for (size_t a = 0; a < m; a++)
            for (size_t b = 0; b < m; b++) {
                size_t oy = ty * m + a, ox = tx * m + b;
                int inside = oy < op->out_h && ox < op->out_w;
                at[a * m + b] = inside ? ((n * op->out_h + oy) * op->out_w + ox) * oc : SIZE_MAX;
                out[a * m + b] = inside ? op->output + at[a * m + b] : dummy + (a * m + b) * oc;
            }
        op->tr.output(oc, M + i * oc, tb * oc, tmp, out, op->bias, op->minmax);
        if (!op->has_ep)
            continue;
        const struct pyconv_epilogue *ep = &op->ep;
        for (size_t a = 0; a < m * m; a++) {
            if (at[a] == SIZE_MAX)
                continue;
            op->eltwise(oc, out[a], ep->pre, ep->scale, ep->shift,
                        ep->residual != NULL ? (const float *)ep->residual + at[a] : NULL, out[a], 1,
                        op->ep_minmax);
        }
    }
}

static void run_cb(void *ctx, size_t first, size_t count)
{
    struct pyconv_wino_op *op = ctx;
    size_t si;
    float *scratch = claim(op, &si);
    if (scratch == NULL) {
        atomic_store(&op->nomem, 1);
        return;
    }
    for (size_t t = first; t < first + count; t++)
        run_task(op, t, scratch);
    unclaim(op, si);
}

int pyconv_wino_run(struct pyconv_wino_op *op, size_t n_threads, pyconv_interrupt_fn interrupted,
                    void *ctx)
{
    const struct pyconv_conv_params *p = &op->p;
    if (op->n_tasks == 0 || p->out_c == 0)
        return PYCONV_OK;
    /* tasks of at most tb tiles, at least one per thread where the tiles
     * allow it (a tile's bits never depend on the tiles it is run with: each
     * igemm row and each transform is computed alone) */
    size_t threads = n_threads ? n_threads : 1, mr = op->mr;
    size_t share = (op->n_tiles + threads - 1) / threads;
    share = (share + mr - 1) / mr * mr;
    op->run_tb = share < op->tb ? share : op->tb;
    const size_t n_tasks = (op->n_tiles + op->run_tb - 1) / op->run_tb;
    int rc;
    if (!op->input_checked) {
        rc = pyconv_parallel_for(p->batch * p->in_h, p->in_w * p->in_c, n_threads, check_cb, op,
                                 interrupted, ctx);
        if (rc != PYCONV_OK)
            return rc;
        op->input_checked = 1;
    }
    if (atomic_load(&op->nonfinite)) /* before the weights: they may stay untouched */
        return PYCONV_WINO_NONFINITE;
    if (!op->is_packed) {
        /* a valid cached packing was made from finite weights equal to its
         * copy: if these are still those bytes, U is theirs (conv.c's rule) */
        if (op->cached_valid) {
            rc = pyconv_parallel_for(9 * p->in_c, p->out_c * sizeof(float), n_threads,
                                     check_weights_cb, op, interrupted, ctx);
            if (rc != PYCONV_OK)
                return rc;
            op->cached_valid = 0;
            op->is_packed = !atomic_load(&op->stale);
        }
        if (!op->is_packed) {
            rc = pyconv_parallel_for(p->in_c, 9 * op->xi * p->out_c, n_threads, pack_cb, op,
                                     interrupted, ctx);
            if (rc != PYCONV_OK)
                return rc;
            if (atomic_load(&op->nomem))
                return PYCONV_ENOMEM;
            /* non-finite weights: the block is released as not valid */
            if (atomic_load(&op->nonfinite))
                return PYCONV_WINO_NONFINITE;
            op->is_packed = 1;
        }
    }
    size_t cost = op->xi * op->run_tb * p->in_c * p->out_c;
    rc = pyconv_parallel_for(n_tasks, cost, n_threads, run_cb, op, interrupted, ctx);
    if (rc != PYCONV_OK)
        return rc;
    return atomic_load(&op->nomem) ? PYCONV_ENOMEM : PYCONV_OK;
}

void pyconv_wino_destroy(struct pyconv_wino_op *op)
{
    if (op == NULL)
        return;
    for (size_t i = 0; i < MAX_SLOTS; i++)
        if (op->slots[i].mem != NULL)
            pyconv_buffer_release(op->slots[i].mem, op->slots[i].capacity);
    /* valid: packed here, or a cached packing left unchecked (a non-finite
     * input stopped the run first); a run stopped while packing, or non-finite
     * weights, leave none */
    pyconv_wcache_release(op->wentry, op->packed, op->packed_bytes,
                          op->is_packed || op->cached_valid);
    pyconv_buffer_release(op->zero, op->zero_capacity);
    free(op);
}
