/* Small helpers every operator uses (conv, dwconv, pool, eltwise): the
 * error formatter, overflow-checked size arithmetic, cache-line rounding and
 * the element size of a dtype. Static inline so that each operator still
 * compiles on its own (the fuzz harnesses link single operators). No Python
 * here. */
#ifndef PYCONV_UTIL_H
#define PYCONV_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conv.h"

/* Formats the message into err; returns PYCONV_EINVAL for `return fail(...)`. */
static inline __attribute__((format(printf, 2, 3), unused)) int fail(char err[PYCONV_ERRLEN],
                                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, PYCONV_ERRLEN, fmt, ap);
    va_end(ap);
    return PYCONV_EINVAL;
}

/* a * b, or 0 with *overflow set. */
static inline __attribute__((unused)) size_t mul(size_t a, size_t b, int *overflow)
{
    size_t r;
    if (__builtin_mul_overflow(a, b, &r)) {
        *overflow = 1;
        return 0;
    }
    return r;
}

/* a + b, or 0 with *overflow set. */
static inline __attribute__((unused)) size_t add(size_t a, size_t b, int *overflow)
{
    size_t r;
    if (__builtin_add_overflow(a, b, &r)) {
        *overflow = 1;
        return 0;
    }
    return r;
}

/* Rounded up to a cache line; saturates so that overflow checks still fail. */
static inline __attribute__((unused)) size_t round_up64(size_t bytes)
{
    return bytes > SIZE_MAX - 63 ? SIZE_MAX : (bytes + 63) / 64 * 64;
}

static inline __attribute__((unused)) size_t dtype_size(enum pyconv_dtype d)
{
    return d == PYCONV_F64 ? sizeof(double) : sizeof(float);
}

/* Output size of a (dilated) convolution along one dimension, as conv and
 * dwconv count it (pool has its own: its pads must be smaller than the
 * window: pool_dim_output). */
static inline __attribute__((unused)) int dim_output(size_t n, size_t k, size_t s, size_t d,
                                                     size_t before, size_t after, size_t *out,
                                                     const char *dim, char err[PYCONV_ERRLEN])
{
    int of = 0;
    size_t k_eff = add(mul(k - 1, d, &of), 1, &of);
    size_t padded = add(add(n, before, &of), after, &of);
    if (of)
        return fail(err, "%s: padded size or effective kernel size overflows", dim);
    if (padded < k_eff)
        return fail(err,
                    "%s: the effective kernel (%zu) is larger than the padded input "
                    "(%zu + %zu + %zu = %zu)",
                    dim, k_eff, n, before, after, padded);
    *out = (padded - k_eff) / s + 1;
    return PYCONV_OK;
}

#endif
