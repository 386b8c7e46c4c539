/* Developer tool: times the operator (create + setup + run + destroy, as one
 * pyconv call does) on real layer shapes with each candidate microkernel
 * tile, to choose the tiles of csrc/ukernels/table.c. No Python involved.
 *
 *   tools/tilebench.sh            builds build/tilebench with the candidates
 *   build/tilebench THREADS f32|f64 avx512|avx2 [layer-substring]
 *
 * Environment: TILES=7x32,6x32 (only these), BATCH (8), BUDGET (seconds per
 * cell, 0.4), CPUTIME=1 (process CPU time instead of wall time: on a shared
 * machine, time slices given to others are not counted; one thread only),
 * LAYER=h,w,cin,cout,k,stride[,rate] (one custom layer), NOTAPS=1 (no
 * tap-list kernels: padding taps are not skipped), OUT_OFFSET=bytes (the
 * output's distance from a 64-byte boundary; NumPy's arrays are typically
 * 16 or 32 off). Prints GFLOP/s = 2 N OH OW Cout KH KW Cin / time, best of
 * the repetitions. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conv.h"

/* cands.h (written by tilebench.sh): DECL(dtype, type, MR, NR, isa) lines;
 * each candidate also has its tap-list twin (..._cand_taps, see ukernels.h) */
#define DECL(dt, T, mr, nr, isa)                                                               \
    void pyconv_##dt##_igemm_##mr##x##nr##__##isa##_cand(                                      \
        size_t, size_t, size_t, size_t, const T *const *, const T *, T *, size_t, size_t,      \
        const T *, const T *);                                                                 \
    void pyconv_##dt##_igemm_##mr##x##nr##__##isa##_cand_taps(                                 \
        size_t, size_t, size_t, size_t, const T *const *, const T *, T *, size_t, size_t,      \
        const T *, const T *, const uint32_t *, size_t);
#include "cands.h"
#undef DECL

struct cand {
    const char *dt, *isa;
    size_t mr, nr;
    void *fn, *taps;
};
static const struct cand cands[] = {
#define DECL(dt, T, mr, nr, isa)                                                               \
    {#dt, #isa, mr, nr, (void *)pyconv_##dt##_igemm_##mr##x##nr##__##isa##_cand,               \
     (void *)pyconv_##dt##_igemm_##mr##x##nr##__##isa##_cand_taps},
#include "cands.h"
#undef DECL
};

struct layer {
    const char *name;
    size_t h, w, cin, cout, k, s, rate; /* rate: the dilation (0 or 1: none) */
};
static const struct layer layers[] = {
    {"resnet/block1/conv2", 56, 56, 64, 64, 3, 1, 1},
    {"resnet/block2/conv2", 28, 28, 128, 128, 3, 1, 1},
    {"resnet/block3/conv2", 14, 14, 256, 256, 3, 1, 1},
    {"resnet/block4/conv2", 7, 7, 512, 512, 3, 1, 1},
    {"vgg/conv1_2", 224, 224, 64, 64, 3, 1, 1},
    {"vgg/conv2_2", 112, 112, 128, 128, 3, 1, 1},
    {"vgg/conv3_2", 56, 56, 256, 256, 3, 1, 1},
    {"vgg/conv4_2", 28, 28, 512, 512, 3, 1, 1},
    {"vgg/conv5_2", 14, 14, 512, 512, 3, 1, 1},
    {"resnet/block3/conv1(1x1)", 14, 14, 1024, 256, 1, 1, 1},
    {"small-cin/vgg/conv1_1", 224, 224, 3, 64, 3, 1, 1},
    {"small-cin/resnet/conv1", 224, 224, 3, 64, 7, 2, 1},
    {"small-cin/incep/2a 32->32", 149, 149, 32, 32, 3, 1, 1},
    {"narrow/56x56x64->16", 56, 56, 64, 16, 3, 1, 1},
    {"narrow/28x28x32->8", 28, 28, 32, 8, 3, 1, 1},
    {"narrow/14x14x128->24", 14, 14, 128, 24, 3, 1, 1},
    {"narrow/28x28x64->48", 28, 28, 64, 48, 3, 1, 1},
    {"resnet/block1/conv3(1x1)", 56, 56, 64, 256, 1, 1, 1},
    {"dilated/aspp_rate6", 33, 33, 2048, 256, 3, 1, 6},
    {"dilated/aspp_rate12", 33, 33, 2048, 256, 3, 1, 12},
    {"dilated/aspp_rate18", 33, 33, 2048, 256, 3, 1, 18},
    {"dilated/block4_rate2", 33, 33, 512, 512, 3, 1, 2},
};

static int wanted(const struct cand *c, const char *dt, const char *isa, const char *only)
{
    char name[32];
    if (strcmp(c->dt, dt) || strcmp(c->isa, isa))
        return 0;
    if (only == NULL || !only[0])
        return 1;
    snprintf(name, sizeof(name), "%zux%zu", c->mr, c->nr);
    size_t len = strlen(name);
    for (const char *p = strstr(only, name); p; p = strstr(p + 1, name))
        if ((p == only || p[-1] == ',') && (p[len] == ',' || p[len] == '\0'))
            return 1;
    return 0;
}

/* CPUTIME=1: process CPU time instead of wall time, so that time slices
 * given to other processes on a shared machine are not counted
 * (meaningful for one thread only). */
static int use_cputime;

static double now(void)
{
    struct timespec ts;
    clock_gettime(use_cputime ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char **argv)
{
    size_t threads = argc > 1 ? (size_t)atoi(argv[1]) : 1;
    const char *dt = argc > 2 ? argv[2] : "f32";
    const char *isa = argc > 3 ? argv[3] : "avx512";
    const char *filt = argc > 4 ? argv[4] : "";
    double budget = getenv("BUDGET") ? atof(getenv("BUDGET")) : 0.4;
    size_t batch = getenv("BATCH") ? (size_t)atoi(getenv("BATCH")) : 8;
    use_cputime = getenv("CPUTIME") && atoi(getenv("CPUTIME"));
    /* NOTAPS=1: no tap-list kernels, so no tap is skipped (the code before) */
    int notaps = getenv("NOTAPS") && atoi(getenv("NOTAPS"));
    const char *only = getenv("TILES"); /* e.g. "7x32,6x32": only these */
    int f64 = strcmp(dt, "f64") == 0;
    size_t es = f64 ? 8 : 4;
    printf("%-26s", "layer");
    for (size_t i = 0; i + 1 <= sizeof(cands) / sizeof(cands[0]); i++)
        if (wanted(&cands[i], dt, isa, only))
            printf(" %6zux%-3zu", cands[i].mr, cands[i].nr);
    printf("   (GFLOP/s, %zu threads, batch %zu)\n", threads, batch);
    struct layer custom = {"custom", 0, 0, 0, 0, 0, 0, 1};
    if (getenv("LAYER")) /* h,w,cin,cout,k,s[,rate] */
        sscanf(getenv("LAYER"), "%zu,%zu,%zu,%zu,%zu,%zu,%zu", &custom.h, &custom.w, &custom.cin,
               &custom.cout, &custom.k, &custom.s, &custom.rate);
    size_t n_layers = custom.h ? 1 : sizeof(layers) / sizeof(layers[0]);
    for (size_t l = 0; l < n_layers; l++) {
        const struct layer *L = custom.h ? &custom : &layers[l];
        if (filt[0] && !strstr(L->name, filt))
            continue;
        struct pyconv_conv_params p = {0};
        p.batch = batch;
        p.in_h = L->h;
        p.in_w = L->w;
        p.in_c = L->cin;
        p.out_c = L->cout;
        p.kernel_h = p.kernel_w = L->k;
        p.stride_h = p.stride_w = L->s;
        size_t rate = L->rate > 1 ? L->rate : 1, k_eff = (L->k - 1) * rate + 1;
        p.dilation_h = p.dilation_w = rate;
        p.pad_top = p.pad_left = (k_eff - 1) / 2; /* SAME at stride 1 */
        p.pad_bottom = p.pad_right = k_eff / 2;
        p.dtype = f64 ? PYCONV_F64 : PYCONV_F32;
        size_t nx = batch * L->h * L->w * L->cin, nw = L->k * L->k * L->cin * L->cout;
        size_t ny = batch * L->h * L->w * L->cout; /* >= the output */
        size_t out_offset = getenv("OUT_OFFSET") ? (size_t)atoi(getenv("OUT_OFFSET")) % 64 : 0;
        char *x = malloc(nx * es), *wt = malloc(nw * es);
        char *y_block = aligned_alloc(64, (ny * es + 64 + 63) / 64 * 64), *y = y_block + out_offset;
        for (size_t i = 0; i < nx; i++)
            f64 ? (((double *)x)[i] = rand() / (double)RAND_MAX) : (((float *)x)[i] = rand() / (float)RAND_MAX);
        for (size_t i = 0; i < nw; i++)
            f64 ? (((double *)wt)[i] = rand() / (double)RAND_MAX) : (((float *)wt)[i] = rand() / (float)RAND_MAX);
        size_t oh = (L->h + L->s - 1) / L->s, ow = (L->w + L->s - 1) / L->s;
        double flops = 2.0 * batch * oh * ow * L->cout * L->k * L->k * L->cin;
        printf("%-26s", L->name);
        fflush(stdout);
        for (size_t i = 0; i + 1 <= sizeof(cands) / sizeof(cands[0]); i++) {
            const struct cand *c = &cands[i];
            if (!wanted(c, dt, isa, only))
                continue;
            struct pyconv_ukernels uk = {.isa = isa};
            if (f64)
                uk.f64[0] = (struct pyconv_f64_tile){(pyconv_f64_igemm_fn)c->fn, c->mr, c->nr, 100,
                                                     notaps ? NULL : (pyconv_f64_igemm_taps_fn)c->taps};
            else
                uk.f32[0] = (struct pyconv_f32_tile){(pyconv_f32_igemm_fn)c->fn, c->mr, c->nr, 100,
                                                     notaps ? NULL : (pyconv_f32_igemm_taps_fn)c->taps};
            double best = 1e30, t_end = now() + budget;
            int reps = 0;
            do {
                double t0 = now();
                struct pyconv_conv_op *op;
                char err[PYCONV_ERRLEN];
                if (pyconv_conv_create(&p, &uk, wt, NULL, &op, err)) {
                    printf("error %s\n", err);
                    return 1;
                }
                pyconv_conv_setup(op, x, y);
                pyconv_conv_run(op, threads, NULL, NULL);
                pyconv_conv_destroy(op);
                double dt_ = now() - t0;
                if (reps > 0 && dt_ < best)
                    best = dt_;
                reps++;
            } while (reps < 3 || now() < t_end);
            printf(" %10.1f", flops / best * 1e-9);
            fflush(stdout);
        }
        printf("\n");
        free(x);
        free(wt);
        free(y_block);
    }
    return 0;
}
