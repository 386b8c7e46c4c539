/* Kernel-against-kernel timing of blockwise summation: see run.sh beside it. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "ukernels.h"
#define DECL(n) void n(size_t, size_t, size_t, size_t, const float *const *, const float *, float *, size_t, size_t, const float *, const float *);
DECL(k_avx512_blocked) DECL(k_avx512_plain) DECL(k_avx2_blocked) DECL(k_avx2_plain)
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
typedef void (*kfn)(size_t, size_t, size_t, size_t, const float *const *, const float *, float *, size_t, size_t, const float *, const float *);
int main(int argc, char **argv) {
    size_t ks = atoi(argv[1]), kc = atoi(argv[2]);
    const char *isa = argv[3];
    int avx512 = isa[3] == '5';
    size_t mr = avx512 ? 7 : 6, nr = avx512 ? 32 : 16;
    kfn kb = avx512 ? k_avx512_blocked : k_avx2_blocked, kp = avx512 ? k_avx512_plain : k_avx2_plain;
    float *in = aligned_alloc(64, ((ks * mr * kc + 16) * 4 + 63) / 64 * 64);
    for (size_t i = 0; i < ks * mr * kc; i++) in[i] = (float)(i % 7) * 0.1f;
    const float **a = malloc(ks * mr * sizeof(*a));
    for (size_t t = 0; t < ks; t++) for (size_t m = 0; m < mr; m++) a[t * mr + m] = in + (t * mr + m) * kc;
    size_t wn = nr * (1 + ks * kc);
    float *w = aligned_alloc(64, (wn * 4 + 63) / 64 * 64);
    for (size_t i = 0; i < wn; i++) w[i] = (float)(i % 5) * 0.01f;
    float c[16 * 32], zero[1] = {0}, mm[2] = {-1e30f, 1e30f};
    double best[2] = {1e9, 1e9};
    size_t reps = 200000000 / (ks * kc * mr * nr) + 1;
    for (int round = 0; round < 30; round++) {
        for (int v = 0; v < 2; v++) {
            kfn k = (round + v) % 2 ? kb : kp;
            double t0 = cpu();
            for (size_t r = 0; r < reps; r++) k(mr, nr, kc, ks, a, w, c, nr, 0, zero, mm);
            double dt = (cpu() - t0) / reps;
            int idx = k == kb ? 0 : 1;
            if (dt < best[idx]) best[idx] = dt;
        }
    }
    printf("%s ks=%zu kc=%zu: blocked %.2f us, plain %.2f us, ratio %.4f\n", isa, ks, kc, best[0] * 1e6, best[1] * 1e6, best[0] / best[1]);
    return 0;
}
