/* CRC-32C (reflected polynomial 0x82F63B78). On x86-64 with SSE4.2 the `crc32`
 * instruction does 8 bytes a cycle-ish; three independent streams over the
 * thirds of a large buffer hide its 3-cycle latency and are joined with
 * "shift by N zero bytes" tables. Elsewhere a portable slice-by-8 table. The
 * implementation is chosen once, at the first call, from CPUID. */
#include "crc32c.h"

#include <string.h>

#define POLY 0x82F63B78u

static uint32_t table8[8][256];
static int tables_ready;

static void build_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (POLY & (0u - (c & 1u)));
        table8[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table8[t][i] = (table8[t - 1][i] >> 8) ^ table8[0][table8[t - 1][i] & 0xff];
    tables_ready = 1;
}

static uint64_t load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* on the raw (pre-inverted) register */
static uint32_t crc_slice8(uint32_t c, const unsigned char *p, size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        c = (c >> 8) ^ table8[0][(c ^ *p++) & 0xff];
        n--;
    }
    while (n >= 8) {
        uint64_t v = load64(p) ^ c;
        c = table8[7][v & 0xff] ^ table8[6][(v >> 8) & 0xff] ^ table8[5][(v >> 16) & 0xff] ^
            table8[4][(v >> 24) & 0xff] ^ table8[3][(v >> 32) & 0xff] ^
            table8[2][(v >> 40) & 0xff] ^ table8[1][(v >> 48) & 0xff] ^ table8[0][v >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ table8[0][(c ^ *p++) & 0xff];
    return c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_SSE42_PATH 1
#include <nmmintrin.h>

/* The three streams of the SSE4.2 path cover STRIDE bytes each per round;
 * shift_tables[k] moves a CRC register over STRIDE (k = 0) or 2*STRIDE (k = 1)
 * zero bytes: a linear map of the 32 register bits, applied a byte at a time. */
#define STRIDE 4096
static uint32_t shift_tables[2][4][256];
static int shift_ready;

/* advances register c over n zero bytes (bitwise; only to build the tables) */
static uint32_t zeros_slow(uint32_t c, size_t n)
{
    for (size_t i = 0; i < 8 * n; i++)
        c = (c >> 1) ^ (POLY & (0u - (c & 1u)));
    return c;
}

static void build_shift_tables(void)
{
    for (int k = 0; k < 2; k++) {
        /* linear in c: the image of each bit, combined per byte */
        uint32_t image[32];
        for (int b = 0; b < 32; b++)
            image[b] = zeros_slow(1u << b, (size_t)STRIDE * (size_t)(k + 1));
        for (int byte = 0; byte < 4; byte++)
            for (int v = 0; v < 256; v++) {
                uint32_t r = 0;
                for (int bit = 0; bit < 8; bit++)
                    if (v & (1 << bit))
                        r ^= image[byte * 8 + bit];
                shift_tables[k][byte][v] = r;
            }
    }
    shift_ready = 1;
}

static uint32_t shift(int k, uint32_t c)
{
    return shift_tables[k][0][c & 0xff] ^ shift_tables[k][1][(c >> 8) & 0xff] ^
           shift_tables[k][2][(c >> 16) & 0xff] ^ shift_tables[k][3][c >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t c, const unsigned char *p,
                                                              size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8(c, *p++);
        n--;
    }
    uint64_t c0 = c;
    while (n >= 3 * STRIDE) {
        uint64_t c1 = 0, c2 = 0;
        const unsigned char *p1 = p + STRIDE, *p2 = p + 2 * STRIDE;
        for (size_t i = 0; i < STRIDE; i += 8) {
            c0 = _mm_crc32_u64(c0, load64(p + i));
            c1 = _mm_crc32_u64(c1, load64(p1 + i));
            c2 = _mm_crc32_u64(c2, load64(p2 + i));
        }
        /* CRC registers are linear: the whole = shifted parts xor-ed */
        c0 = shift(1, (uint32_t)c0) ^ shift(0, (uint32_t)c1) ^ (uint32_t)c2;
        p += 3 * STRIDE;
        n -= 3 * STRIDE;
    }
    while (n >= 8) {
        c0 = _mm_crc32_u64(c0, load64(p));
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c0;
    while (n--)
        c = _mm_crc32_u8(c, *p++);
    return c;
}
#endif

static int use_sse42 = -1; /* -1: not decided yet */

static void choose(void)
{
    if (!tables_ready)
        build_tables();
#ifdef HAVE_SSE42_PATH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) {
        if (!shift_ready)
            build_shift_tables();
        use_sse42 = 1;
        return;
    }
#endif
    use_sse42 = 0;
}

/* Called once from the module's init (with the GIL held), so the tables are
 * built before any thread can call in. */
const char *pyconv_crc32c_impl(void)
{
    if (use_sse42 < 0)
        choose();
    return use_sse42 ? "sse4.2" : "slice-by-8";
}

uint32_t pyconv_crc32c_extend(uint32_t crc, const void *buf, size_t n)
{
    if (use_sse42 < 0)
        choose();
    uint32_t c = ~crc;
    const unsigned char *p = buf;
#ifdef HAVE_SSE42_PATH
    if (use_sse42)
        return ~crc_sse42(c, p, n);
#endif
    return ~crc_slice8(c, p, n);
}

/* For tests: force the portable path (1) or go back to the CPU's best (0). */
void pyconv_crc32c_force_portable(int portable)
{
    choose();
    if (portable)
        use_sse42 = 0;
}
