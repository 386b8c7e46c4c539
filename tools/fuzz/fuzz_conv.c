/* libFuzzer target for the C operator (csrc/conv.c) without Python.
 *
 * Random bytes become a convolution: sizes, pads, strides, dilations,
 * activation, dtype, instruction set and thread count, now and then with
 * huge or invalid values. The target checks that
 *   - pyconv_conv_output_shape refuses exactly what cannot be computed
 *     (and that every buffer of what it accepts has a size that fits size_t),
 *   - pyconv_conv_create refuses what output_shape refuses,
 *   - create/setup/run/destroy on buffers allocated to exactly the sizes the
 *     operator was told (so AddressSanitizer sees any read or write outside
 *     them) give exactly the result of a naive loop (values are small
 *     integers, so every summation order is exact; NaN and Inf are injected
 *     now and then and must come out where the naive loop puts them).
 * Any disagreement calls abort(), which libFuzzer reports as a crash. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv.h"
#include "fuzz_reader.h"

#define MAX_BYTES ((size_t)1 << 22) /* per buffer: keeps executions fast */

static void fail(const char *what, const struct pyconv_conv_params *p)
{
    fprintf(stderr,
            "fuzz_conv: %s\n  batch %zu in %zux%zux%zu out_c %zu kernel %zux%zu stride %zux%zu "
            "dilation %zux%zu pads t%zu b%zu l%zu r%zu act %d dtype %d\n",
            what, p->batch, p->in_h, p->in_w, p->in_c, p->out_c, p->kernel_h, p->kernel_w,
            p->stride_h, p->stride_w, p->dilation_h, p->dilation_w, p->pad_top, p->pad_bottom,
            p->pad_left, p->pad_right, (int)p->activation, (int)p->dtype);
    abort();
}

/* The expected output size along one dimension, in exact 128-bit arithmetic;
 * 0 when there is none. */
static unsigned __int128 expected_dim(size_t n, size_t k, size_t s, size_t d, size_t before,
                                      size_t after)
{
    if (n == 0 || k == 0 || s == 0 || d == 0)
        return 0;
    unsigned __int128 k_eff = (unsigned __int128)(k - 1) * d + 1;
    unsigned __int128 padded = (unsigned __int128)n + before + after;
    if (padded < k_eff)
        return 0;
    return (padded - k_eff) / s + 1;
}

static double value_at(const void *buf, int f64, size_t i)
{
    return f64 ? ((const double *)buf)[i] : (double)((const float *)buf)[i];
}

static void store(void *buf, int f64, size_t i, double v)
{
    if (f64)
        ((double *)buf)[i] = v;
    else
        ((float *)buf)[i] = (float)v;
}

/* Interrupt callback that never stops the run (exercises the polling path). */
static int never_interrupt(void *ctx)
{
    (void)ctx;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reader r = {data, size};
    struct pyconv_conv_params p;
    memset(&p, 0, sizeof(p));
    p.batch = take_size(&r, 0, 3);
    p.in_h = take_size(&r, 0, 12);
    p.in_w = take_size(&r, 0, 12);
    p.in_c = take_size(&r, 0, 9);
    p.out_c = take_size(&r, 0, 19);
    p.kernel_h = take_size(&r, 0, 7);
    p.kernel_w = take_size(&r, 0, 7);
    p.stride_h = take_size(&r, 0, 4);
    p.stride_w = take_size(&r, 0, 4);
    p.dilation_h = take_size(&r, 0, 4);
    p.dilation_w = take_size(&r, 0, 4);
    p.pad_top = take_size(&r, 0, 7);
    p.pad_bottom = take_size(&r, 0, 7);
    p.pad_left = take_size(&r, 0, 7);
    p.pad_right = take_size(&r, 0, 7);
    p.activation = (enum pyconv_activation)take_range(&r, 0, 3); /* 3 is invalid */
    p.dtype = (enum pyconv_dtype)take_range(&r, 0, 2);           /* 2 is invalid */
    static const char *const isa_names[] = {"", "scalar", "avx2", "avx512", "bogus"};
    const char *isa = isa_names[take(&r) % 5];
    size_t n_threads = take_range(&r, 1, 4);
    unsigned specials = take(&r); /* bit 0: NaN/Inf in the input; bit 1: in the weights */
    int with_bias = take(&r) & 1;
    if (getenv("PYCONV_FUZZ_VERBOSE") != NULL)
        fprintf(stderr,
                "params: batch %zu in %zux%zux%zu out_c %zu kernel %zux%zu stride %zux%zu "
                "dilation %zux%zu pads t%zu b%zu l%zu r%zu act %d dtype %d isa '%s' threads "
                "%zu specials %u bias %d\n",
                p.batch, p.in_h, p.in_w, p.in_c, p.out_c, p.kernel_h, p.kernel_w, p.stride_h,
                p.stride_w, p.dilation_h, p.dilation_w, p.pad_top, p.pad_bottom, p.pad_left,
                p.pad_right, (int)p.activation, (int)p.dtype, isa, n_threads, specials,
                with_bias);

    /* 1. output_shape accepts exactly the computable parameters */
    size_t oh = 0, ow = 0;
    char err[PYCONV_ERRLEN];
    memset(err, 0, sizeof(err));
    int rc = pyconv_conv_output_shape(&p, &oh, &ow, err);
    unsigned __int128 eh = expected_dim(p.in_h, p.kernel_h, p.stride_h, p.dilation_h, p.pad_top,
                                        p.pad_bottom);
    unsigned __int128 ew = expected_dim(p.in_w, p.kernel_w, p.stride_w, p.dilation_w,
                                        p.pad_left, p.pad_right);
    int valid_codes = (p.activation <= PYCONV_ACT_RELU6) && (p.dtype <= PYCONV_F64);
    int computable = eh > 0 && ew > 0 && p.in_c > 0 && valid_codes;
    if (rc == PYCONV_OK) {
        if (!computable)
            fail("output_shape accepted parameters that have no output", &p);
        if (oh != eh || ow != ew)
            fail("output_shape computed a wrong output size", &p);
        if (err[0] != '\0')
            fail("output_shape wrote an error message but succeeded", &p);
        /* every size the operator forms must fit, also when batch is 0 */
        size_t es = p.dtype == PYCONV_F64 ? 8 : 4;
        int per_image_overflows =
            prod(prod(prod(p.in_h, p.in_w), p.in_c), es) == SIZE_MAX ||
            prod(prod(prod(oh, ow), p.out_c), es) == SIZE_MAX;
        if (per_image_overflows)
            fail("output_shape accepted an image whose byte size overflows size_t", &p);
    } else {
        if (rc != PYCONV_EINVAL)
            fail("output_shape returned a status other than OK/EINVAL", &p);
        if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
            fail("output_shape failed without a terminated message", &p);
        /* a refusal of a computable convolution is allowed only when some
         * buffer size would overflow: check that one does */
        if (computable) {
            size_t es = p.dtype == PYCONV_F64 ? 8 : 4;
            size_t ks = prod(p.kernel_h, p.kernel_w);
            /* the sizes the operator checks, in its order (the output's pixel
             * count may overflow although out_c is 0: a refusal is fine then) */
            size_t h = eh >> 64 ? SIZE_MAX : (size_t)eh, w = ew >> 64 ? SIZE_MAX : (size_t)ew;
            size_t in_image = prod(prod(prod(p.in_h, p.in_w), p.in_c), es);
            size_t out_image = prod(prod(prod(h, w), p.out_c), es);
            /* packed weights: out_c rounded up to the widest tile, taps x
             * in_c + 1 rows; indirection: pixels + the tallest tile */
            size_t oc_up = sum(p.out_c, PYCONV_MAX_NR - 1);
            size_t cols = oc_up == SIZE_MAX ? SIZE_MAX : prod(oc_up / PYCONV_MAX_NR, PYCONV_MAX_NR);
            int overflows =
                in_image == SIZE_MAX || out_image == SIZE_MAX ||
                prod(p.batch, in_image) == SIZE_MAX || prod(p.batch, out_image) == SIZE_MAX ||
                prod(prod(sum(prod(ks, p.in_c), 1), cols), es) == SIZE_MAX ||
                prod(prod(sum(prod(h, w), PYCONV_MAX_MR), ks), sizeof(void *)) == SIZE_MAX;
            /* the padded size and the effective kernel must fit size_t too */
            unsigned __int128 ph = (unsigned __int128)p.in_h + p.pad_top + p.pad_bottom;
            unsigned __int128 pw = (unsigned __int128)p.in_w + p.pad_left + p.pad_right;
            unsigned __int128 kh = (unsigned __int128)(p.kernel_h - 1) * p.dilation_h + 1;
            unsigned __int128 kw = (unsigned __int128)(p.kernel_w - 1) * p.dilation_w + 1;
            int fits = ph >> 64 == 0 && pw >> 64 == 0 && kh >> 64 == 0 && kw >> 64 == 0;
            if (fits && !overflows)
                fail("output_shape refused a computable convolution whose sizes fit", &p);
        }
    }

    const struct pyconv_ukernels *uk = pyconv_select_ukernels(isa);
    if (uk == NULL)
        return 0; /* unknown name or an ISA this CPU lacks */

    /* 2. create refuses what output_shape refuses (never touching the buffers) */
    static const float dummy[1];
    if (rc != PYCONV_OK) {
        struct pyconv_conv_op *op = (struct pyconv_conv_op *)1;
        if (pyconv_conv_create(&p, uk, dummy, NULL, &op, err) != PYCONV_EINVAL || op != NULL)
            fail("create accepted what output_shape refused", &p);
        return 0;
    }

    /* 3. run on exactly-sized buffers when they are small enough */
    const int f64 = p.dtype == PYCONV_F64;
    const size_t es = f64 ? sizeof(double) : sizeof(float);
    size_t in_elems = prod(prod(prod(p.batch, p.in_h), p.in_w), p.in_c);
    size_t w_elems = prod(prod(prod(p.kernel_h, p.kernel_w), p.in_c), p.out_c);
    size_t out_elems = prod(prod(prod(p.batch, oh), ow), p.out_c);
    size_t ks = prod(p.kernel_h, p.kernel_w);
    size_t work = prod(prod(out_elems, ks), p.in_c); /* naive multiply-adds */
    /* the operator also allocates the indirection buffer and packed weights */
    size_t ind = prod(prod(sum(prod(oh, ow), PYCONV_MAX_MR), ks), sizeof(void *));
    size_t packed = prod(sum(prod(ks, p.in_c), 1), sum(p.out_c, PYCONV_MAX_NR));
    if (prod(in_elems, es) > MAX_BYTES || prod(w_elems, es) > MAX_BYTES ||
        prod(out_elems, es) > MAX_BYTES || ind > MAX_BYTES || prod(packed, es) > MAX_BYTES ||
        work > ((size_t)1 << 21))
        return 0;

    /* exact sizes, never rounded up: malloc(0) still gives a pointer ASan guards */
    void *x = malloc(in_elems * es);
    void *w = malloc(w_elems * es);
    void *b = with_bias ? malloc(p.out_c * es) : NULL;
    void *y = malloc(out_elems * es);
    /* double copies for the reference, which must see the values create saw */
    double *x_ref = malloc((in_elems + 1) * sizeof(double));
    double *w_ref = malloc((w_elems + 1) * sizeof(double));
    double *b_ref = malloc((p.out_c + 1) * sizeof(double));
    if (x == NULL || w == NULL || y == NULL || (with_bias && b == NULL) || x_ref == NULL ||
        w_ref == NULL || b_ref == NULL)
        abort();
    /* small integers from the remaining bytes: every summation order is exact */
    for (size_t i = 0; i < in_elems; i++)
        store(x, f64, i, (double)((int)(take(&r) % 7) - 3));
    for (size_t i = 0; i < w_elems; i++)
        store(w, f64, i, (double)((int)(take(&r) % 5) - 2));
    for (size_t i = 0; with_bias && i < p.out_c; i++)
        store(b, f64, i, (double)((int)(take(&r) % 9) - 4));
    if ((specials & 1) && in_elems > 0) {
        store(x, f64, take(&r) * 7919u % in_elems, NAN);
        store(x, f64, take(&r) * 104729u % in_elems, (specials & 4) ? -INFINITY : INFINITY);
    }
    if ((specials & 2) && w_elems > 0)
        store(w, f64, take(&r) * 31u % w_elems, (specials & 8) ? INFINITY : NAN);
    for (size_t i = 0; i < in_elems; i++)
        x_ref[i] = value_at(x, f64, i);
    for (size_t i = 0; i < w_elems; i++)
        w_ref[i] = value_at(w, f64, i);
    for (size_t i = 0; i < p.out_c; i++)
        b_ref[i] = with_bias ? value_at(b, f64, i) : 0.0;
    memset(y, 0xA5, out_elems * es); /* garbage: every element must be written */

    /* the fused epilogue, from the bytes left (none for older seeds): bit 4
     * turns it on, bits 0-3 choose pre, scale, shift, residual */
    unsigned epi = take(&r);
    void *ep[4] = {NULL, NULL, NULL, NULL};
    if (epi & 16) {
        for (int i = 0; i < 4; i++) {
            if (!(epi & (1u << i)))
                continue;
            size_t len = i < 3 ? p.out_c : out_elems;
            ep[i] = malloc(len * es);
            if (ep[i] == NULL)
                abort();
            for (size_t j = 0; j < len; j++)
                store(ep[i], f64, j, (double)((int)(take(&r) % 5) - 2));
        }
    }

    struct pyconv_conv_op *op = NULL;
    rc = pyconv_conv_create(&p, uk, w, b, &op, err);
    if (rc != PYCONV_OK || op == NULL)
        fail("create failed on parameters output_shape accepted", &p);
    pyconv_conv_setup(op, x, y);
    if (epi & 16) {
        struct pyconv_epilogue e = {ep[0], ep[1], ep[2], ep[3]};
        pyconv_conv_set_epilogue(op, &e);
        if (epi & 32)
            pyconv_conv_set_epilogue(op, &e); /* setting it twice changes nothing */
    }
    rc = pyconv_conv_run(op, n_threads, (specials & 16) ? never_interrupt : NULL, NULL);
    if (rc != PYCONV_OK)
        fail("run failed", &p);
    /* the first run packed weights and bias: changing them afterwards must
     * not matter to a second run, which must give the same bytes */
    void *y_first = malloc(out_elems * es + 1);
    if (y_first == NULL)
        abort();
    memcpy(y_first, y, out_elems * es);
    for (size_t i = 0; i < w_elems; i++)
        store(w, f64, i, 1e30);
    for (size_t i = 0; with_bias && i < p.out_c; i++)
        store(b, f64, i, -1e30);
    memset(y, 0x5A, out_elems * es);
    rc = pyconv_conv_run(op, n_threads, NULL, NULL);
    if (rc != PYCONV_OK)
        fail("second run failed", &p);
    if (memcmp(y, y_first, out_elems * es) != 0)
        fail("a second run differs from the first (weights not packed once?)", &p);
    free(y_first);
    pyconv_conv_destroy(op);

    /* 4. the input is untouched and the output is the naive loop's, exactly */
    for (size_t i = 0; i < in_elems; i++) {
        double v = value_at(x, f64, i);
        if (!(v == x_ref[i] || (isnan(v) && isnan(x_ref[i]))))
            fail("the input was modified", &p);
    }
    const double lo = p.activation == PYCONV_ACT_NONE ? -INFINITY : 0.0;
    const double hi = p.activation == PYCONV_ACT_RELU6 ? 6.0 : INFINITY;
    size_t at = 0;
    for (size_t n = 0; n < p.batch; n++)
        for (size_t oy = 0; oy < oh; oy++)
            for (size_t ox = 0; ox < ow; ox++)
                for (size_t o = 0; o < p.out_c; o++, at++) {
                    double acc = b_ref[o];
                    /* taps in the padding multiply zeros (0 * Inf is NaN, as
                     * on TF's explicitly zero-padded input) */
                    for (size_t ky = 0; ky < p.kernel_h; ky++) {
                        __int128 iy = (__int128)oy * p.stride_h + (__int128)ky * p.dilation_h -
                                      (__int128)p.pad_top;
                        for (size_t kx = 0; kx < p.kernel_w; kx++) {
                            __int128 ix = (__int128)ox * p.stride_w +
                                          (__int128)kx * p.dilation_w - (__int128)p.pad_left;
                            int inside = iy >= 0 && iy < (__int128)p.in_h && ix >= 0 &&
                                         ix < (__int128)p.in_w;
                            const double *px =
                                inside ? x_ref + ((n * p.in_h + (size_t)iy) * p.in_w +
                                                  (size_t)ix) * p.in_c
                                       : NULL;
                            const double *wt = w_ref + (ky * p.kernel_w + kx) * p.in_c * p.out_c;
                            for (size_t c = 0; c < p.in_c; c++)
                                acc += (inside ? px[c] : 0.0) * wt[c * p.out_c + o];
                        }
                    }
                    if (ep[0] != NULL)
                        acc = acc + value_at(ep[0], f64, o);
                    if (ep[1] != NULL)
                        acc = acc * value_at(ep[1], f64, o);
                    if (ep[2] != NULL)
                        acc = acc + value_at(ep[2], f64, o);
                    if (ep[3] != NULL)
                        acc = acc + value_at(ep[3], f64, at);
                    /* comparisons keep NaN, as the kernels must */
                    acc = acc < lo ? lo : acc;
                    acc = acc > hi ? hi : acc;
                    double got = value_at(y, f64, at);
                    if (!(got == acc || (isnan(got) && isnan(acc)))) {
                        fprintf(stderr, "output %zu: got %g, expected %g (isa %s, %zu threads)\n",
                                at, got, acc, uk->isa, n_threads);
                        fail("the output differs from the naive loop", &p);
                    }
                }
    for (int i = 0; i < 4; i++)
        free(ep[i]);
    free(x);
    free(w);
    free(b);
    free(y);
    free(x_ref);
    free(w_ref);
    free(b_ref);
    return 0;
}
