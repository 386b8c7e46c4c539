/* The byte reader the libFuzzer targets share (fuzz_conv.c, fuzz_dwconv.c,
 * fuzz_pool.c): how random bytes become sizes, and the sticky-overflow size
 * arithmetic the targets' expectations use. Changing how bytes decode changes
 * what the committed regression seeds mean: keep it stable. */
#ifndef PYCONV_FUZZ_READER_H
#define PYCONV_FUZZ_READER_H

#include <stddef.h>
#include <stdint.h>

/* Bytes are consumed from the front; past the end everything reads as 0. */
struct reader {
    const uint8_t *p;
    size_t n;
};

static __attribute__((unused)) unsigned take(struct reader *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

static __attribute__((unused)) size_t take_range(struct reader *r, size_t lo, size_t hi)
{
    return lo + take(r) % (hi - lo + 1);
}

/* Mostly a small value in [lo, hi]; rarely (flag byte >= 250) one of the
 * values that stress the operator's overflow checks. */
static __attribute__((unused)) size_t take_size(struct reader *r, size_t lo, size_t hi)
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

/* a * b, or SIZE_MAX if it overflows; sticky: SIZE_MAX stays SIZE_MAX (also
 * times 0), as an intermediate overflow counts in the operator's own checks. */
static __attribute__((unused)) size_t prod(size_t a, size_t b)
{
    size_t r;
    if (a == SIZE_MAX || b == SIZE_MAX)
        return SIZE_MAX;
    return __builtin_mul_overflow(a, b, &r) ? SIZE_MAX : r;
}

static __attribute__((unused)) size_t sum(size_t a, size_t b)
{
    size_t r;
    if (a == SIZE_MAX || b == SIZE_MAX)
        return SIZE_MAX;
    return __builtin_add_overflow(a, b, &r) ? SIZE_MAX : r;
}

#endif
