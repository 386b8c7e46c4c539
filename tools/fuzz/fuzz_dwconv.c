/* libFuzzer target for the depthwise operator (csrc/dwconv.c) without Python.
 *
 * Random bytes become a depthwise convolution: batch, input size, channels,
 * depth multiplier (0 included), kernel size, strides, dilations, pads (now
 * and then huge values), activation and dtype (invalid codes included),
 * instruction set and thread count. Checked, as fuzz_conv.c does for the
 * igemm operator:
 *   - pyconv_dwconv_output_shape refuses exactly what cannot be computed
 *     (a refusal of a computable one only when some buffer size overflows);
 *   - pyconv_dwconv_create refuses what output_shape refuses, op_out NULL;
 *   - create/setup/run/destroy on exactly-sized buffers (AddressSanitizer
 *     sees any access outside them) leave the input untouched, write every
 *     output element, ignore weight/bias changes after the first run, and give
 *     exactly the naive loop's result (small integers, so every summation
 *     order is exact; NaN/Inf injected now and then; output channel
 *     c * multiplier + m from filter [:, :, c, m]).
 * Any disagreement abort()s. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dwconv.h"
#include "fuzz_reader.h"

#define MAX_BYTES ((size_t)1 << 22) /* per buffer: keeps executions fast */

static void fail(const char *what, const struct pyconv_dwconv_params *p)
{
    fprintf(stderr,
            "fuzz_dwconv: %s\n  batch %zu in %zux%zux%zu multiplier %zu kernel %zux%zu stride "
            "%zux%zu dilation %zux%zu pads t%zu b%zu l%zu r%zu act %d dtype %d\n",
            what, p->batch, p->in_h, p->in_w, p->channels, p->multiplier, p->kernel_h,
            p->kernel_w, p->stride_h, p->stride_w, p->dilation_h, p->dilation_w, p->pad_top,
            p->pad_bottom, p->pad_left, p->pad_right, (int)p->activation, (int)p->dtype);
    abort();
}

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

static int never_interrupt(void *ctx)
{
    (void)ctx;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reader r = {data, size};
    struct pyconv_dwconv_params p;
    memset(&p, 0, sizeof(p));
    p.batch = take_size(&r, 0, 3);
    p.in_h = take_size(&r, 0, 12);
    p.in_w = take_size(&r, 0, 25);
    p.channels = take_size(&r, 0, 40);
    p.multiplier = take_size(&r, 0, 4);
    p.kernel_h = take_size(&r, 0, 7);
    p.kernel_w = take_size(&r, 0, 7);
    if (take(&r) & 1) /* the 3x3 row kernel's case, often */
        p.kernel_h = p.kernel_w = 3;
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
                "params: batch %zu in %zux%zux%zu multiplier %zu kernel %zux%zu stride %zux%zu "
                "dilation %zux%zu pads t%zu b%zu l%zu r%zu act %d dtype %d isa '%s' threads "
                "%zu specials %u bias %d\n",
                p.batch, p.in_h, p.in_w, p.channels, p.multiplier, p.kernel_h, p.kernel_w,
                p.stride_h, p.stride_w, p.dilation_h, p.dilation_w, p.pad_top, p.pad_bottom,
                p.pad_left, p.pad_right, (int)p.activation, (int)p.dtype, isa, n_threads,
                specials, with_bias);

    /* 1. output_shape accepts exactly the computable parameters */
    size_t oh = 0, ow = 0;
    char err[PYCONV_ERRLEN];
    memset(err, 0, sizeof(err));
    int rc = pyconv_dwconv_output_shape(&p, &oh, &ow, err);
    unsigned __int128 eh = expected_dim(p.in_h, p.kernel_h, p.stride_h, p.dilation_h, p.pad_top,
                                        p.pad_bottom);
    unsigned __int128 ew = expected_dim(p.in_w, p.kernel_w, p.stride_w, p.dilation_w,
                                        p.pad_left, p.pad_right);
    int valid_codes = (p.activation <= PYCONV_ACT_RELU6) && (p.dtype <= PYCONV_F64);
    int computable = eh > 0 && ew > 0 && p.channels > 0 && valid_codes;
    const size_t es = p.dtype == PYCONV_F64 ? 8 : 4;
    const size_t oc = prod(p.channels, p.multiplier);
    if (rc == PYCONV_OK) {
        if (!computable)
            fail("output_shape accepted parameters that have no output", &p);
        if (oh != eh || ow != ew)
            fail("output_shape computed a wrong output size", &p);
        if (err[0] != '\0')
            fail("output_shape wrote an error message but succeeded", &p);
        if (oc == SIZE_MAX || prod(prod(prod(p.in_h, p.in_w), p.channels), es) == SIZE_MAX ||
            prod(prod(prod(oh, ow), oc), es) == SIZE_MAX ||
            prod(prod(prod(p.in_h, p.in_w), oc), es) == SIZE_MAX)
            fail("output_shape accepted an image whose byte size overflows size_t", &p);
    } else {
        if (rc != PYCONV_EINVAL)
            fail("output_shape returned a status other than OK/EINVAL", &p);
        if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
            fail("output_shape failed without a terminated message", &p);
        if (computable) {
            size_t h = eh >> 64 ? SIZE_MAX : (size_t)eh, w = ew >> 64 ? SIZE_MAX : (size_t)ew;
            size_t ks = prod(p.kernel_h, p.kernel_w);
            size_t in_image = prod(prod(prod(p.in_h, p.in_w), p.channels), es);
            size_t out_image = prod(prod(prod(h, w), oc), es);
            size_t step = p.dilation_w == 1 ? p.stride_w : p.kernel_w;
            size_t slots = sum(prod(w - 1, step), p.kernel_w);
            int overflows =
                oc == SIZE_MAX || in_image == SIZE_MAX || out_image == SIZE_MAX ||
                prod(p.batch, in_image) == SIZE_MAX || prod(p.batch, out_image) == SIZE_MAX ||
                prod(prod(prod(p.in_h, p.in_w), oc), es) == SIZE_MAX ||
                prod(prod(sum(ks, 1), sum(oc, 64)), es) == SIZE_MAX ||
                prod(prod(prod(h, slots), p.kernel_h), sizeof(void *)) == SIZE_MAX;
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
        return 0;

    /* 2. create refuses what output_shape refuses */
    static const float dummy[1];
    if (rc != PYCONV_OK) {
        struct pyconv_dwconv_op *op = (struct pyconv_dwconv_op *)1;
        if (pyconv_dwconv_create(&p, uk, dummy, NULL, &op, err) != PYCONV_EINVAL || op != NULL)
            fail("create accepted what output_shape refused", &p);
        return 0;
    }

    /* 3. run on exactly-sized buffers when they are small enough */
    const int f64 = p.dtype == PYCONV_F64;
    size_t in_elems = prod(prod(prod(p.batch, p.in_h), p.in_w), p.channels);
    size_t w_elems = prod(prod(p.kernel_h, p.kernel_w), oc);
    size_t out_elems = prod(prod(prod(p.batch, oh), ow), oc);
    size_t ks = prod(p.kernel_h, p.kernel_w);
    size_t step = p.dilation_w == 1 ? p.stride_w : p.kernel_w;
    size_t ind = prod(prod(prod(oh, sum(prod(ow - 1, step), p.kernel_w)), p.kernel_h), 8);
    if (prod(in_elems, es) > MAX_BYTES || prod(w_elems, es) > MAX_BYTES ||
        prod(out_elems, es) > MAX_BYTES || ind > MAX_BYTES ||
        prod(prod(prod(p.in_h, p.in_w), oc), es) > MAX_BYTES ||
        prod(out_elems, ks) > ((size_t)1 << 21))
        return 0;

    void *x = malloc(in_elems * es);
    void *w = malloc(w_elems * es);
    void *b = with_bias ? malloc(oc * es) : NULL;
    void *y = malloc(out_elems * es);
    double *x_ref = malloc((in_elems + 1) * sizeof(double));
    double *w_ref = malloc((w_elems + 1) * sizeof(double));
    double *b_ref = malloc((oc + 1) * sizeof(double));
    if (x == NULL || w == NULL || y == NULL || (with_bias && b == NULL) || x_ref == NULL ||
        w_ref == NULL || b_ref == NULL)
        abort();
    for (size_t i = 0; i < in_elems; i++)
        store(x, f64, i, (double)((int)(take(&r) % 7) - 3));
    for (size_t i = 0; i < w_elems; i++)
        store(w, f64, i, (double)((int)(take(&r) % 5) - 2));
    for (size_t i = 0; with_bias && i < oc; i++)
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
    for (size_t i = 0; i < oc; i++)
        b_ref[i] = with_bias ? value_at(b, f64, i) : 0.0;
    memset(y, 0xA5, out_elems * es);

    struct pyconv_dwconv_op *op = NULL;
    rc = pyconv_dwconv_create(&p, uk, w, b, &op, err);
    if (rc != PYCONV_OK || op == NULL)
        fail("create failed on parameters output_shape accepted", &p);
    pyconv_dwconv_setup(op, x, y);
    rc = pyconv_dwconv_run(op, n_threads, (specials & 16) ? never_interrupt : NULL, NULL);
    if (rc != PYCONV_OK)
        fail("run failed", &p);
    void *y_first = malloc(out_elems * es + 1);
    if (y_first == NULL)
        abort();
    memcpy(y_first, y, out_elems * es);
    for (size_t i = 0; i < w_elems; i++)
        store(w, f64, i, 1e30);
    for (size_t i = 0; with_bias && i < oc; i++)
        store(b, f64, i, -1e30);
    memset(y, 0x5A, out_elems * es);
    rc = pyconv_dwconv_run(op, n_threads, NULL, NULL);
    if (rc != PYCONV_OK)
        fail("second run failed", &p);
    if (memcmp(y, y_first, out_elems * es) != 0)
        fail("a second run differs from the first (weights not packed once?)", &p);
    free(y_first);
    pyconv_dwconv_destroy(op);

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
                for (size_t o = 0; o < oc; o++, at++) {
                    const size_t c = o / p.multiplier;
                    double acc = b_ref[o];
                    for (size_t ky = 0; ky < p.kernel_h; ky++) {
                        __int128 iy = (__int128)oy * p.stride_h + (__int128)ky * p.dilation_h -
                                      (__int128)p.pad_top;
                        for (size_t kx = 0; kx < p.kernel_w; kx++) {
                            __int128 ix = (__int128)ox * p.stride_w +
                                          (__int128)kx * p.dilation_w - (__int128)p.pad_left;
                            int inside = iy >= 0 && iy < (__int128)p.in_h && ix >= 0 &&
                                         ix < (__int128)p.in_w;
                            double v = inside ? x_ref[((n * p.in_h + (size_t)iy) * p.in_w +
                                                       (size_t)ix) * p.channels + c]
                                              : 0.0;
                            acc += v * w_ref[(ky * p.kernel_w + kx) * oc + o];
                        }
                    }
                    acc = acc < lo ? lo : acc;
                    acc = acc > hi ? hi : acc;
                    double got = value_at(y, f64, at);
                    if (!(got == acc || (isnan(got) && isnan(acc)))) {
                        fprintf(stderr, "output %zu: got %g, expected %g (isa %s, %zu threads)\n",
                                at, got, acc, uk->isa, n_threads);
                        fail("the output differs from the naive loop", &p);
                    }
                }
    free(x);
    free(w);
    free(b);
    free(y);
    free(x_ref);
    free(w_ref);
    free(b_ref);
    return 0;
}
