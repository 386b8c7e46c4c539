/* The float32 FMA peak of one core: independent FMA chains, enough of them to
 * cover the FMA latency times the number of FMA pipes, timed in blocks; the
 * best block wins (the machine may be shared). The benchmark divides measured
 * GFLOP/s by this to report a fraction of peak. */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "ukernels.h"

/* Chains per block: 4 cycles of latency x 2 pipes needs 8; more is harmless
 * while they stay in registers (16 ymm / 32 zmm). */
#define CHAINS_YMM 12
#define CHAINS_ZMM 24
#define CHAINS_SCALAR 16

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Each function runs `iters` rounds of one FMA per chain and returns the FLOP
 * count; the sum is written to *sink so the compiler cannot drop the work.
 * acc = acc * x + y with x just below 1 converges, so no overflow or denormals. */
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx512f"))) static double fma_avx512(size_t iters, float *sink)
{
    __m512 acc[CHAINS_ZMM];
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-6f);
    for (int i = 0; i < CHAINS_ZMM; i++)
        acc[i] = _mm512_set1_ps((float)i);
    for (size_t n = 0; n < iters; n++) {
#pragma GCC unroll 32
        for (int i = 0; i < CHAINS_ZMM; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], x, y);
    }
    __m512 sum = acc[0];
    for (int i = 1; i < CHAINS_ZMM; i++)
        sum = _mm512_add_ps(sum, acc[i]);
    *sink = _mm512_reduce_add_ps(sum);
    return 2.0 * 16 * CHAINS_ZMM * (double)iters;
}

__attribute__((target("avx2,fma"))) static double fma_avx2(size_t iters, float *sink)
{
    __m256 acc[CHAINS_YMM];
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-6f);
    for (int i = 0; i < CHAINS_YMM; i++)
        acc[i] = _mm256_set1_ps((float)i);
    for (size_t n = 0; n < iters; n++) {
#pragma GCC unroll 16
        for (int i = 0; i < CHAINS_YMM; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], x, y);
    }
    __m256 sum = acc[0];
    for (int i = 1; i < CHAINS_YMM; i++)
        sum = _mm256_add_ps(sum, acc[i]);
    float lanes[8];
    _mm256_storeu_ps(lanes, sum);
    *sink = lanes[0] + lanes[7];
    return 2.0 * 8 * CHAINS_YMM * (double)iters;
}
#endif

/* Without vector FMA: separate multiply and add, counted as two FLOPs. */
static double fma_scalar(size_t iters, float *sink)
{
    float acc[CHAINS_SCALAR];
    const float x = 0.999999f, y = 1e-6f;
    for (int i = 0; i < CHAINS_SCALAR; i++)
        acc[i] = (float)i;
    for (size_t n = 0; n < iters; n++) {
        for (int i = 0; i < CHAINS_SCALAR; i++)
            acc[i] = acc[i] * x + y;
    }
    float sum = 0.0f;
    for (int i = 0; i < CHAINS_SCALAR; i++)
        sum += acc[i];
    *sink = sum;
    return 2.0 * CHAINS_SCALAR * (double)iters;
}

double pyconv_fma_peak_gflops(const char *isa, double seconds)
{
    double (*run)(size_t, float *) = fma_scalar;
#if defined(__x86_64__) || defined(__i386__)
    if (isa != NULL && strcmp(isa, "avx512") == 0)
        run = fma_avx512;
    else if (isa != NULL && strcmp(isa, "avx2") == 0)
        run = fma_avx2;
#else
    (void)isa;
#endif
    if (!(seconds > 0.0))
        seconds = 0.2;
    volatile float sink_out;
    float sink = 0.0f;
    /* grow the block until it takes ~1/20 of the budget, then repeat it */
    size_t iters = 1024;
    double block = 0.0;
    for (;;) {
        double t0 = now_seconds();
        run(iters, &sink);
        block = now_seconds() - t0;
        if (block >= seconds / 20 || iters >= ((size_t)1 << 40))
            break;
        iters *= 2;
    }
    double best = 0.0, start = now_seconds();
    do {
        double t0 = now_seconds();
        double flops = run(iters, &sink);
        double dt = now_seconds() - t0;
        if (dt > 0 && flops / dt > best)
            best = flops / dt;
    } while (now_seconds() - start < seconds);
    sink_out = sink;
    (void)sink_out;
    return best * 1e-9;
}
