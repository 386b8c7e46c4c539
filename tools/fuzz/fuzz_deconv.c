/* libFuzzer target for the transposed convolution operator (csrc/deconv.c)
 * without Python.
 *
 * Random bytes become a transposed convolution: input size and channels,
 * output channels, kernel, strides, the four pads and the output size
 * (usually one the pads agree with, sometimes any, now and then huge values),
 * activation and dtype (including invalid codes), instruction set and 1-4
 * threads. The target checks that
 *   - pyconv_deconv_check accepts exactly the consistent parameters (computed
 *     here in 128-bit arithmetic) unless a buffer size overflows size_t;
 *   - pyconv_deconv_create refuses what the check refuses;
 *   - create/setup/run/destroy on exactly-sized buffers give exactly the
 *     result of a naive scatter loop (every input pixel times the kernel,
 *     added into the output window; small integer values, so every summation
 *     order is exact), with NaN/Inf injected now and then into the input or
 *     the weights (products are only formed with real input pixels, as in
 *     TensorFlow), leave the input untouched, write every output element, and
 *     a second run after the weights changed gives the same bytes.
 * Any disagreement calls abort(). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deconv.h"

struct reader {
    const uint8_t *p;
    size_t n;
};

static unsigned take(struct reader *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

static size_t take_range(struct reader *r, size_t lo, size_t hi)
{
    return lo + take(r) % (hi - lo + 1);
}

static size_t take_size(struct reader *r, size_t lo, size_t hi)
{
    static const size_t huge[] = {
        (size_t)1 << 31, (size_t)1 << 32, ((size_t)1 << 32) + 1, (size_t)1 << 62,
        ((size_t)1 << 63) - 1, (size_t)1 << 63, SIZE_MAX / 2, SIZE_MAX - 1, SIZE_MAX,
        SIZE_MAX / 3,
    };
    unsigned flag = take(r);
    if (flag >= 250)
        return huge[take(r) % (sizeof(huge) / sizeof(huge[0]))];
    return take_range(r, lo, hi);
}

static size_t prod(size_t a, size_t b)
{
    size_t r;
    if (a == SIZE_MAX || b == SIZE_MAX)
        return SIZE_MAX;
    return __builtin_mul_overflow(a, b, &r) ? SIZE_MAX : r;
}

static size_t sum(size_t a, size_t b)
{
    size_t r;
    if (a == SIZE_MAX || b == SIZE_MAX)
        return SIZE_MAX;
    return __builtin_add_overflow(a, b, &r) ? SIZE_MAX : r;
}

#define MAX_BYTES ((size_t)1 << 22)

static void fail(const char *what, const struct pyconv_deconv_params *p)
{
    fprintf(stderr,
            "fuzz_deconv: %s\n  batch %zu in %zux%zux%zu out %zux%zux%zu kernel %zux%zu stride "
            "%zux%zu pads t%zu b%zu l%zu r%zu act %d dtype %d\n",
            what, p->batch, p->in_h, p->in_w, p->in_c, p->out_h, p->out_w, p->out_c,
            p->kernel_h, p->kernel_w, p->stride_h, p->stride_w, p->pad_top, p->pad_bottom,
            p->pad_left, p->pad_right, (int)p->activation, (int)p->dtype);
    abort();
}

/* The forward convolution of `out` gives `in` (exact arithmetic). */
static int consistent(size_t in, size_t out, size_t k, size_t s, size_t before, size_t after)
{
    if (in == 0 || out == 0 || k == 0 || s == 0)
        return 0;
    unsigned __int128 padded = (unsigned __int128)out + before + after;
    if (padded < k)
        return 0;
    return (padded - k) / s + 1 == in;
}

/* An output size the pads agree with, mostly; anything now and then. */
static size_t pick_out(struct reader *r, size_t in, size_t k, size_t s, size_t before,
                       size_t after)
{
    unsigned mode = take(r) % 8;
    if (mode == 0 || in == 0 || k == 0 || s == 0 || in > 64 || k > 64 || s > 64 ||
        before > 64 || after > 64)
        return take_size(r, 0, 40);
    long long out = (long long)(in - 1) * (long long)s + (long long)k - (long long)before -
                    (long long)after + (long long)(take(r) % s);
    return out >= 1 ? (size_t)out : take_range(r, 0, 3);
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

static int never_interrupt(void *ctx)
{
    (void)ctx;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reader r = {data, size};
    struct pyconv_deconv_params p;
    memset(&p, 0, sizeof(p));
    p.batch = take_size(&r, 0, 3);
    p.in_h = take_size(&r, 0, 7);
    p.in_w = take_size(&r, 0, 7);
    p.in_c = take_size(&r, 0, 9);
    p.out_c = take_size(&r, 0, 19);
    p.kernel_h = take_size(&r, 0, 6);
    p.kernel_w = take_size(&r, 0, 6);
    p.stride_h = take_size(&r, 0, 4);
    p.stride_w = take_size(&r, 0, 4);
    p.pad_top = take_size(&r, 0, 6);
    p.pad_bottom = take_size(&r, 0, 6);
    p.pad_left = take_size(&r, 0, 6);
    p.pad_right = take_size(&r, 0, 6);
    p.out_h = pick_out(&r, p.in_h, p.kernel_h, p.stride_h, p.pad_top, p.pad_bottom);
    p.out_w = pick_out(&r, p.in_w, p.kernel_w, p.stride_w, p.pad_left, p.pad_right);
    p.activation = (enum pyconv_activation)take_range(&r, 0, 3); /* 3 is invalid */
    p.dtype = (enum pyconv_dtype)take_range(&r, 0, 2);           /* 2 is invalid */
    static const char *const isa_names[] = {"", "scalar", "avx2", "avx512", "bogus"};
    const char *isa = isa_names[take(&r) % 5];
    size_t n_threads = take_range(&r, 1, 4);
    unsigned specials = take(&r); /* bit 0: NaN/Inf in the input; bit 1: in the weights */
    int with_bias = take(&r) & 1;
    if (getenv("PYCONV_FUZZ_VERBOSE") != NULL)
        fprintf(stderr,
                "params: batch %zu in %zux%zux%zu out %zux%zux%zu kernel %zux%zu stride %zux%zu "
                "pads t%zu b%zu l%zu r%zu act %d dtype %d isa '%s' threads %zu specials %u "
                "bias %d\n",
                p.batch, p.in_h, p.in_w, p.in_c, p.out_h, p.out_w, p.out_c, p.kernel_h,
                p.kernel_w, p.stride_h, p.stride_w, p.pad_top, p.pad_bottom, p.pad_left,
                p.pad_right, (int)p.activation, (int)p.dtype, isa, n_threads, specials,
                with_bias);

    /* 1. the check accepts exactly the consistent parameters whose sizes fit */
    char err[PYCONV_ERRLEN];
    memset(err, 0, sizeof(err));
    int rc = pyconv_deconv_check(&p, err);
    int valid_codes = p.activation <= PYCONV_ACT_RELU6 && p.dtype <= PYCONV_F64;
    int computable = valid_codes && p.in_c > 0 &&
                     consistent(p.in_h, p.out_h, p.kernel_h, p.stride_h, p.pad_top,
                                p.pad_bottom) &&
                     consistent(p.in_w, p.out_w, p.kernel_w, p.stride_w, p.pad_left,
                                p.pad_right);
    const size_t es = p.dtype == PYCONV_F64 ? 8 : 4;
    size_t pixels = prod(p.out_h, p.out_w), ks = prod(p.kernel_h, p.kernel_w);
    size_t in_image = prod(prod(prod(p.in_h, p.in_w), p.in_c), es);
    size_t out_image = prod(prod(pixels, p.out_c), es);
    int overflows = in_image == SIZE_MAX || out_image == SIZE_MAX ||
                    prod(p.batch, in_image) == SIZE_MAX || prod(p.batch, out_image) == SIZE_MAX ||
                    prod(prod(sum(prod(ks, p.in_c), ks), sum(p.out_c, 64)), es) == SIZE_MAX ||
                    prod(pixels, 48 + 16 * sizeof(size_t)) == SIZE_MAX ||
                    prod(prod(prod(pixels, 16), ks), sizeof(void *)) == SIZE_MAX ||
                    sum(sum(p.out_h, p.pad_top), p.pad_bottom) == SIZE_MAX ||
                    sum(sum(p.out_w, p.pad_left), p.pad_right) == SIZE_MAX;
    if (rc == PYCONV_OK) {
        if (!computable)
            fail("check accepted inconsistent or unusable parameters", &p);
        if (overflows)
            fail("check accepted sizes that overflow size_t", &p);
        if (err[0] != '\0')
            fail("check wrote an error message but succeeded", &p);
    } else {
        if (rc != PYCONV_EINVAL)
            fail("check returned a status other than OK/EINVAL", &p);
        if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
            fail("check failed without a terminated message", &p);
        if (computable && !overflows)
            fail("check refused consistent parameters whose sizes fit", &p);
    }

    const struct pyconv_ukernels *uk = pyconv_select_ukernels(isa);
    if (uk == NULL)
        return 0;

    /* 2. create refuses what the check refuses */
    static const float dummy[1];
    if (rc != PYCONV_OK) {
        struct pyconv_deconv_op *op = (struct pyconv_deconv_op *)1;
        if (pyconv_deconv_create(&p, uk, dummy, NULL, &op, err) != PYCONV_EINVAL || op != NULL)
            fail("create accepted what the check refused", &p);
        return 0;
    }

    /* 3. run on exactly-sized buffers */
    const int f64 = p.dtype == PYCONV_F64;
    size_t in_elems = prod(prod(prod(p.batch, p.in_h), p.in_w), p.in_c);
    size_t w_elems = prod(prod(ks, p.out_c), p.in_c);
    size_t out_elems = prod(prod(p.batch, pixels), p.out_c);
    size_t work = prod(prod(in_elems, ks), p.out_c);
    size_t packed = prod(prod(sum(ks, 1), p.in_c), sum(p.out_c, 64));
    if (prod(in_elems, es) > MAX_BYTES || prod(w_elems, es) > MAX_BYTES ||
        prod(out_elems, es) > MAX_BYTES || prod(packed, es) > MAX_BYTES ||
        prod(prod(pixels, ks), 16 * sizeof(void *)) > MAX_BYTES || work > ((size_t)1 << 21) ||
        prod(out_elems, 1) > ((size_t)1 << 20))
        return 0;

    void *x = malloc(in_elems * es);
    void *w = malloc(w_elems * es);
    void *b = with_bias ? malloc(p.out_c * es) : NULL;
    void *y = malloc(out_elems * es);
    double *x_ref = malloc((in_elems + 1) * sizeof(double));
    double *w_ref = malloc((w_elems + 1) * sizeof(double));
    double *b_ref = malloc((p.out_c + 1) * sizeof(double));
    double *y_ref = malloc((out_elems + 1) * sizeof(double));
    if (x == NULL || w == NULL || y == NULL || (with_bias && b == NULL) || x_ref == NULL ||
        w_ref == NULL || b_ref == NULL || y_ref == NULL)
        abort();
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
    memset(y, 0xA5, out_elems * es);

    struct pyconv_deconv_op *op = NULL;
    rc = pyconv_deconv_create(&p, uk, w, b, &op, err);
    if (rc != PYCONV_OK || op == NULL)
        fail("create failed on parameters the check accepted", &p);
    pyconv_deconv_setup(op, x, y);
    rc = pyconv_deconv_run(op, n_threads, (specials & 16) ? never_interrupt : NULL, NULL);
    if (rc != PYCONV_OK)
        fail("run failed", &p);
    void *y_first = malloc(out_elems * es + 1);
    if (y_first == NULL)
        abort();
    memcpy(y_first, y, out_elems * es);
    for (size_t i = 0; i < w_elems; i++)
        store(w, f64, i, 1e30);
    for (size_t i = 0; with_bias && i < p.out_c; i++)
        store(b, f64, i, -1e30);
    memset(y, 0x5A, out_elems * es);
    rc = pyconv_deconv_run(op, n_threads, NULL, NULL);
    if (rc != PYCONV_OK)
        fail("second run failed", &p);
    if (memcmp(y, y_first, out_elems * es) != 0)
        fail("a second run differs from the first (weights not packed once?)", &p);
    free(y_first);
    pyconv_deconv_destroy(op);

    /* 4. the input is untouched; the output is the scatter loop's, exactly */
    for (size_t i = 0; i < in_elems; i++) {
        double v = value_at(x, f64, i);
        if (!(v == x_ref[i] || (isnan(v) && isnan(x_ref[i]))))
            fail("the input was modified", &p);
    }
    for (size_t n = 0; n < p.batch; n++)
        for (size_t px = 0; px < pixels; px++)
            for (size_t o = 0; o < p.out_c; o++)
                y_ref[(n * pixels + px) * p.out_c + o] = b_ref[o];
    for (size_t n = 0; n < p.batch; n++)
        for (size_t iy = 0; iy < p.in_h; iy++)
            for (size_t ix = 0; ix < p.in_w; ix++)
                for (size_t ky = 0; ky < p.kernel_h; ky++) {
                    __int128 oy = (__int128)iy * p.stride_h + ky - (__int128)p.pad_top;
                    if (oy < 0 || oy >= (__int128)p.out_h)
                        continue;
                    for (size_t kx = 0; kx < p.kernel_w; kx++) {
                        __int128 ox = (__int128)ix * p.stride_w + kx - (__int128)p.pad_left;
                        if (ox < 0 || ox >= (__int128)p.out_w)
                            continue;
                        const double *xp = x_ref + ((n * p.in_h + iy) * p.in_w + ix) * p.in_c;
                        double *yp = y_ref + (n * pixels + (size_t)oy * p.out_w + (size_t)ox) *
                                                 p.out_c;
                        for (size_t o = 0; o < p.out_c; o++) {
                            const double *wt =
                                w_ref + ((ky * p.kernel_w + kx) * p.out_c + o) * p.in_c;
                            for (size_t c = 0; c < p.in_c; c++)
                                yp[o] += xp[c] * wt[c];
                        }
                    }
                }
    const double lo = p.activation == PYCONV_ACT_NONE ? -INFINITY : 0.0;
    const double hi = p.activation == PYCONV_ACT_RELU6 ? 6.0 : INFINITY;
    for (size_t i = 0; i < out_elems; i++) {
        double acc = y_ref[i];
        acc = acc < lo ? lo : acc;
        acc = acc > hi ? hi : acc;
        double got = value_at(y, f64, i);
        if (!(got == acc || (isnan(got) && isnan(acc)))) {
            fprintf(stderr, "output %zu: got %g, expected %g (isa %s, %zu threads)\n", i, got,
                    acc, uk->isa, n_threads);
            fail("the output differs from the scatter loop", &p);
        }
    }
    free(x);
    free(w);
    free(b);
    free(y);
    free(x_ref);
    free(w_ref);
    free(b_ref);
    free(y_ref);
    return 0;
}
