/* libFuzzer target for the operators between convolutions, without Python:
 * the pooling operator (csrc/pool.c) and the elementwise epilogue
 * (csrc/eltwise.c), on every ISA and 1-4 threads.
 *
 * Random bytes become sizes, window, strides, pads (now and then huge),
 * kind, dtype (with invalid codes), activation and the eltwise terms. The
 * target checks that pyconv_pool_output_shape accepts exactly the poolings
 * that have an output with every pad smaller than the window (computed in
 * 128-bit arithmetic), that refusals carry a terminated message, and that
 * runs on exactly-sized buffers (ASan sees any byte outside them) write every
 * output element, leave the input alone and equal a naive loop bit for bit:
 * values are small integers with NaN and +-inf injected, the naive max follows
 * TF's rule (from the lowest finite value, only greater values replace it)
 * and the naive average sums in the same row-major order in the same dtype.
 * Any disagreement abort()s. */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eltwise.h"
#include "pool.h"
#include "fuzz_reader.h"

#define MAX_ELEMS ((size_t)1 << 16)

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_pool: %s\n", what);
    abort();
}

static double get(const void *buf, int f64, size_t i)
{
    return f64 ? ((const double *)buf)[i] : (double)((const float *)buf)[i];
}

static void put(void *buf, int f64, size_t i, double v)
{
    if (f64)
        ((double *)buf)[i] = v;
    else
        ((float *)buf)[i] = (float)v;
}

static int same(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

/* a * b * c * d * e fits size_t at every step (as the operator forms it) */
static int fits5(size_t a, size_t b, size_t c, size_t d, size_t e)
{
    const size_t f[4] = {b, c, d, e};
    unsigned __int128 v = a;
    for (int i = 0; i < 4; i++) {
        v *= f[i];
        if (v >> 64)
            return 0;
    }
    return 1;
}

/* a * b * c * d, or SIZE_MAX beyond MAX_ELEMS (0 if any factor is 0) */
static size_t elems(size_t a, size_t b, size_t c, size_t d)
{
    if (a == 0 || b == 0 || c == 0 || d == 0)
        return 0;
    const size_t f[3] = {b, c, d};
    unsigned __int128 v = a;
    for (int i = 0; i < 3; i++) {
        if (v > MAX_ELEMS)
            return SIZE_MAX;
        v *= f[i];
    }
    return v > MAX_ELEMS ? SIZE_MAX : (size_t)v;
}

static void small_values(struct reader *r, void *buf, int f64, size_t n, unsigned specials)
{
    for (size_t i = 0; i < n; i++)
        put(buf, f64, i, (double)((int)(take(r) % 9) - 4));
    if (n > 0 && (specials & 1)) {
        put(buf, f64, take(r) * 7919u % n, NAN);
        put(buf, f64, take(r) * 104729u % n, -INFINITY);
        put(buf, f64, take(r) * 31u % n, (specials & 2) ? INFINITY : -INFINITY);
    }
}

static void fuzz_pool(struct reader *r, const struct pyconv_ukernels *uk, size_t threads)
{
    struct pyconv_pool_params p;
    memset(&p, 0, sizeof(p));
    p.batch = take_size(r, 0, 3);
    p.in_h = take_size(r, 0, 9);
    p.in_w = take_size(r, 0, 9);
    p.channels = take_size(r, 0, 40);
    p.kernel_h = take_size(r, 0, 12);
    p.kernel_w = take_size(r, 0, 12);
    p.stride_h = take_size(r, 0, 4);
    p.stride_w = take_size(r, 0, 4);
    p.pad_top = take_size(r, 0, 11);
    p.pad_bottom = take_size(r, 0, 11);
    p.pad_left = take_size(r, 0, 11);
    p.pad_right = take_size(r, 0, 11);
    p.kind = (enum pyconv_pool_kind)take_range(r, 0, 2); /* 2 is invalid */
    p.dtype = (enum pyconv_dtype)take_range(r, 0, 2);    /* 2 is invalid */
    unsigned specials = take(r);

    /* the output, independently: 0 when there is none */
    unsigned __int128 out[2] = {0, 0};
    size_t n[2] = {p.in_h, p.in_w}, k[2] = {p.kernel_h, p.kernel_w};
    size_t s[2] = {p.stride_h, p.stride_w};
    size_t pb[2] = {p.pad_top, p.pad_left}, pa[2] = {p.pad_bottom, p.pad_right};
    for (int d = 0; d < 2; d++) {
        unsigned __int128 padded = (unsigned __int128)n[d] + pb[d] + pa[d];
        if (n[d] > 0 && k[d] > 0 && s[d] > 0 && pb[d] < k[d] && pa[d] < k[d] && padded >= k[d] &&
            padded >> 64 == 0)
            out[d] = (padded - k[d]) / s[d] + 1;
    }
    int computable = out[0] > 0 && out[1] > 0 && p.kind <= PYCONV_POOL_AVG && p.dtype <= PYCONV_F64;
    char err[PYCONV_ERRLEN];
    memset(err, 0, sizeof(err));
    struct pyconv_pool_op op;
    int rc = pyconv_pool_create(&p, uk, &op, err);
    if (rc != PYCONV_OK) {
        if (rc != PYCONV_EINVAL || err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
            fail("pool refused without EINVAL and a terminated message");
        if (computable) { /* only when a size overflows */
            size_t es = p.dtype == PYCONV_F64 ? 8 : 4;
            size_t oh = (size_t)out[0], ow = (size_t)out[1]; /* < 2**64: padded fits */
            int overflow = !fits5(p.in_h, p.in_w, p.channels, es, 1) ||
                           !fits5(p.in_h, p.in_w, p.channels, es, p.batch) ||
                           !fits5(oh, ow, p.channels, es, 1) ||
                           !fits5(oh, ow, p.channels, es, p.batch) ||
                           !fits5(oh, p.stride_h, 1, 1, 1) || !fits5(ow, p.stride_w, 1, 1, 1);
            if (!overflow)
                fail("pool refused a computable pooling whose sizes fit");
        }
        return;
    }
    if (!computable)
        fail("pool accepted a pooling without output or with a pad >= the window");
    if (op.out_h != out[0] || op.out_w != out[1])
        fail("pool computed a wrong output size");
    size_t in_n = elems(p.batch, p.in_h, p.in_w, p.channels);
    size_t out_n = elems(p.batch, op.out_h, op.out_w, p.channels);
    if (in_n == SIZE_MAX || out_n == SIZE_MAX || elems(out_n, k[0] < n[0] ? k[0] : n[0],
                                                       k[1] < n[1] ? k[1] : n[1], 1) == SIZE_MAX)
        return;
    const int f64 = p.dtype == PYCONV_F64;
    const size_t es = f64 ? 8 : 4;
    void *x = malloc(in_n * es), *y = malloc(out_n * es), *x0 = malloc(in_n * es + 1);
    if (x == NULL || y == NULL || x0 == NULL)
        abort();
    small_values(r, x, f64, in_n, specials);
    memcpy(x0, x, in_n * es);
    memset(y, 0xA5, out_n * es);
    pyconv_pool_setup(&op, x, y);
    if (pyconv_pool_run(&op, threads, NULL, NULL) != PYCONV_OK)
        fail("pool run failed");
    if (memcmp(x, x0, in_n * es) != 0)
        fail("pool modified its input");
    const size_t C = p.channels;
    size_t at = 0;
    /* an empty output may still have huge sides: nothing to compare */
    for (size_t b = 0; out_n > 0 && b < p.batch; b++)
        for (size_t oy = 0; oy < op.out_h; oy++)
            for (size_t ox = 0; ox < op.out_w; ox++)
                for (size_t c = 0; c < C; c++, at++) {
                    double best = f64 ? -DBL_MAX : -FLT_MAX, sumd = 0.0;
                    float sumf = 0.0f;
                    size_t count = 0;
                    /* the window's rows and columns inside the input, in signed
                     * 128-bit arithmetic (the window itself may be huge) */
                    __int128 y0 = (__int128)oy * p.stride_h - (__int128)p.pad_top;
                    __int128 x0 = (__int128)ox * p.stride_w - (__int128)p.pad_left;
                    __int128 y1 = y0 + (__int128)p.kernel_h, x1 = x0 + (__int128)p.kernel_w;
                    for (__int128 iy = y0 < 0 ? 0 : y0; iy < y1 && iy < (__int128)p.in_h; iy++) {
                        for (__int128 ix = x0 < 0 ? 0 : x0; ix < x1 && ix < (__int128)p.in_w;
                             ix++) {
                            double v = get(x, f64, ((b * p.in_h + (size_t)iy) * p.in_w +
                                                    (size_t)ix) * C + c);
                            if (v > best)
                                best = v;
                            sumd += v;
                            sumf += (float)v;
                            count++;
                        }
                    }
                    if (count == 0)
                        fail("a window without input pixels was accepted");
                    double want = p.kind == PYCONV_POOL_MAX
                                      ? best
                                      : (f64 ? sumd / (double)count
                                             : (double)(sumf / (float)count));
                    if (!same(get(y, f64, at), want))
                        fail("pool output differs from the naive loop");
                }
    free(x);
    free(y);
    free(x0);
}

static void fuzz_eltwise(struct reader *r, const struct pyconv_ukernels *uk, size_t threads)
{
    struct pyconv_eltwise_params p;
    p.outer = take_size(r, 0, 9);
    p.channels = take_size(r, 0, 40);
    p.inner = take_size(r, 1, 20);
    p.activation = (enum pyconv_activation)take_range(r, 0, 3); /* 3 is invalid */
    p.dtype = (enum pyconv_dtype)take_range(r, 0, 2);
    unsigned terms = take(r), specials = take(r);
    char err[PYCONV_ERRLEN];
    memset(err, 0, sizeof(err));
    struct pyconv_eltwise_op op;
    int rc = pyconv_eltwise_create(&p, uk, &op, err);
    int codes = p.activation <= PYCONV_ACT_RELU6 && p.dtype <= PYCONV_F64;
    /* the byte count in 128 bits, step by step (each step < 2**64 * 2**64) */
    unsigned __int128 bytes = (unsigned __int128)p.outer * p.channels;
    int fits = bytes >> 64 == 0;
    bytes = fits ? bytes * p.inner : 0;
    fits = fits && bytes >> 64 == 0;
    bytes = fits ? bytes * (p.dtype == PYCONV_F64 ? 8 : 4) : 0;
    fits = fits && bytes >> 64 == 0;
    if (rc != PYCONV_OK) {
        if (err[0] == '\0' || (codes && fits))
            fail("eltwise refused a valid operation");
        return;
    }
    if (!fits)
        fail("eltwise accepted an operation whose byte count overflows");
    if (!codes)
        fail("eltwise accepted an invalid code");
    size_t total = elems(p.outer, p.channels, p.inner, 1);
    if (total == SIZE_MAX || p.channels > MAX_ELEMS) /* an empty array may have huge sides */
        return;
    const int f64 = p.dtype == PYCONV_F64;
    const size_t es = f64 ? 8 : 4, C = p.channels;
    void *x = malloc(total * es), *res = (terms & 8) ? malloc(total * es) : NULL;
    void *y = malloc(total * es);
    void *prm[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++)
        if (terms & (1u << i)) {
            prm[i] = malloc(C * es);
            if (prm[i] == NULL)
                abort();
            small_values(r, prm[i], f64, C, 0);
        }
    if (x == NULL || y == NULL || ((terms & 8) && res == NULL))
        abort();
    small_values(r, x, f64, total, specials);
    if (res != NULL)
        small_values(r, res, f64, total, specials >> 2);
    int in_place = (terms & 16) != 0;
    void *x0 = malloc(total * es + 1);
    if (x0 == NULL)
        abort();
    memcpy(x0, x, total * es);
    if (!in_place)
        memset(y, 0xA5, total * es);
    pyconv_eltwise_setup(&op, x, prm[0], prm[1], prm[2], res, in_place ? x : y);
    if (pyconv_eltwise_run(&op, threads, NULL, NULL) != PYCONV_OK)
        fail("eltwise run failed");
    const void *got = in_place ? x : y;
    if (!in_place && memcmp(x, x0, total * es) != 0)
        fail("eltwise modified its input");
    double lo = -INFINITY, hi = INFINITY;
    if (p.activation != PYCONV_ACT_NONE)
        lo = 0.0;
    if (p.activation == PYCONV_ACT_RELU6)
        hi = 6.0;
    for (size_t i = 0; i < total; i++) {
        size_t c = p.inner == 1 ? i % C : i / p.inner % C;
        /* small integers: every step exact in both dtypes */
        double t = get(x0, f64, i);
        if (prm[0] != NULL)
            t = t + get(prm[0], f64, c);
        if (prm[1] != NULL)
            t = t * get(prm[1], f64, c);
        if (prm[2] != NULL)
            t = t + get(prm[2], f64, c);
        if (res != NULL)
            t = t + get(res, f64, i);
        t = lo > t ? lo : t; /* NaN passes */
        t = hi < t ? hi : t;
        if (!same(get(got, f64, i), t) && !(t == 0 && get(got, f64, i) == 0))
            fail("eltwise output differs from the naive loop");
    }
    for (int i = 0; i < 3; i++)
        free(prm[i]);
    free(x);
    free(x0);
    free(y);
    free(res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reader r = {data, size};
    static const char *const isa_names[] = {"", "scalar", "avx2", "avx512", "bogus"};
    const char *isa = isa_names[take(&r) % 5];
    size_t threads = take_range(&r, 1, 4);
    int which = take(&r) & 1;
    const struct pyconv_ukernels *uk = pyconv_select_ukernels(isa);
    if (uk == NULL)
        return 0;
    if (which == 0)
        fuzz_pool(&r, uk, threads);
    else
        fuzz_eltwise(&r, uk, threads);
    return 0;
}
