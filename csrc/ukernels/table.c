/* The one place that decides which microkernels run. Tiles were chosen by
 * measurement (csrc/ukernels/README.md has the tables); `speed` is each
 * kernel's throughput on full tiles relative to its set's first kernel (a
 * tile measured as fast as the first gets 97: on ties the first wins). Pool
 * and eltwise kernels have one variant per dtype and ISA (memory-bound). */
#include <pthread.h>
#include <string.h>

#include "ukernels.h"

static const struct pyconv_ukernels scalar_kernels = {
    .isa = "scalar",
    .f32 = {{pyconv_f32_igemm_4x4__scalar, 4, 4, 100, pyconv_f32_igemm_4x4__scalar_taps}},
    .f64 = {{pyconv_f64_igemm_4x4__scalar, 4, 4, 100, pyconv_f64_igemm_4x4__scalar_taps}},
    .f32_dwconv = {pyconv_f32_dwconv_4c__scalar, 4, NULL},
    .f64_dwconv = {pyconv_f64_dwconv_4c__scalar, 4, NULL},
    .f32_maxpool = pyconv_f32_maxpool__scalar,
    .f32_avgpool = pyconv_f32_avgpool__scalar,
    .f64_maxpool = pyconv_f64_maxpool__scalar,
    .f64_avgpool = pyconv_f64_avgpool__scalar,
    .f32_eltwise = pyconv_f32_eltwise__scalar,
    .f64_eltwise = pyconv_f64_eltwise__scalar,
    .f32_winograd = {pyconv_f32_wino4x3_input__scalar, pyconv_f32_wino4x3_output__scalar,
                     pyconv_f32_wino4x3_kernel__scalar},
    .f32_winograd2x3 = {pyconv_f32_wino2x3_input__scalar, pyconv_f32_wino2x3_output__scalar,
                        pyconv_f32_wino2x3_kernel__scalar},
};

#if defined(__x86_64__) || defined(__i386__)
/* The same portable C, compiled for CPUs with FMA: still "scalar", faster. */
static const struct pyconv_ukernels scalar_fma_kernels = {
    .isa = "scalar",
    .f32 = {{pyconv_f32_igemm_4x4__scalar_fma, 4, 4, 100,
             pyconv_f32_igemm_4x4__scalar_fma_taps}},
    .f64 = {{pyconv_f64_igemm_4x4__scalar_fma, 4, 4, 100,
             pyconv_f64_igemm_4x4__scalar_fma_taps}},
    .f32_dwconv = {pyconv_f32_dwconv_4c__scalar_fma, 4, NULL},
    .f64_dwconv = {pyconv_f64_dwconv_4c__scalar_fma, 4, NULL},
    .f32_maxpool = pyconv_f32_maxpool__scalar,
    .f32_avgpool = pyconv_f32_avgpool__scalar,
    .f64_maxpool = pyconv_f64_maxpool__scalar,
    .f64_avgpool = pyconv_f64_avgpool__scalar,
    .f32_eltwise = pyconv_f32_eltwise__scalar,
    .f64_eltwise = pyconv_f64_eltwise__scalar,
    .f32_winograd = {pyconv_f32_wino4x3_input__scalar, pyconv_f32_wino4x3_output__scalar,
                     pyconv_f32_wino4x3_kernel__scalar},
    .f32_winograd2x3 = {pyconv_f32_wino2x3_input__scalar, pyconv_f32_wino2x3_output__scalar,
                        pyconv_f32_wino2x3_kernel__scalar},
};

static const struct pyconv_ukernels avx2_kernels = {
    .isa = "avx2",
    .f32 = {{pyconv_f32_igemm_6x16__avx2, 6, 16, 100, pyconv_f32_igemm_6x16__avx2_taps},
            {pyconv_f32_igemm_7x8__avx2, 7, 8, 83, pyconv_f32_igemm_7x8__avx2_taps}},
    .f64 = {{pyconv_f64_igemm_6x8__avx2, 6, 8, 100, pyconv_f64_igemm_6x8__avx2_taps},
            {pyconv_f64_igemm_7x4__avx2, 7, 4, 82, pyconv_f64_igemm_7x4__avx2_taps}},
    .f32_dwconv = {pyconv_f32_dwconv_16c__avx2, 16, pyconv_f32_dwconv_3x3_16c__avx2},
    .f64_dwconv = {pyconv_f64_dwconv_8c__avx2, 8, pyconv_f64_dwconv_3x3_8c__avx2},
    .f32_maxpool = pyconv_f32_maxpool__avx2,
    .f32_avgpool = pyconv_f32_avgpool__avx2,
    .f64_maxpool = pyconv_f64_maxpool__avx2,
    .f64_avgpool = pyconv_f64_avgpool__avx2,
    .f32_eltwise = pyconv_f32_eltwise__avx2,
    .f64_eltwise = pyconv_f64_eltwise__avx2,
    .f32_winograd = {pyconv_f32_wino4x3_input__avx2, pyconv_f32_wino4x3_output__avx2,
                     pyconv_f32_wino4x3_kernel__avx2},
    .f32_winograd2x3 = {pyconv_f32_wino2x3_input__avx2, pyconv_f32_wino2x3_output__avx2,
                        pyconv_f32_wino2x3_kernel__avx2},
};

/* Every AVX-512 CPU also runs AVX2+FMA; 8-float and 4-double wide tiles
 * for few output channels come from that set. */
static const struct pyconv_ukernels avx512_kernels = {
    .isa = "avx512",
    .f32 = {{pyconv_f32_igemm_7x32__avx512, 7, 32, 100, pyconv_f32_igemm_7x32__avx512_taps},
            {pyconv_f32_igemm_7x16__avx512, 7, 16, 97, pyconv_f32_igemm_7x16__avx512_taps},
            {pyconv_f32_igemm_7x8__avx2, 7, 8, 82, pyconv_f32_igemm_7x8__avx2_taps}},
    .f64 = {{pyconv_f64_igemm_7x16__avx512, 7, 16, 100, pyconv_f64_igemm_7x16__avx512_taps},
            {pyconv_f64_igemm_7x8__avx512, 7, 8, 97, pyconv_f64_igemm_7x8__avx512_taps},
            {pyconv_f64_igemm_7x4__avx2, 7, 4, 80, pyconv_f64_igemm_7x4__avx2_taps}},
    .f32_dwconv = {pyconv_f32_dwconv_32c__avx512, 32,
                   pyconv_f32_dwconv_3x3_32c__avx512},
    .f64_dwconv = {pyconv_f64_dwconv_16c__avx512, 16,
                   pyconv_f64_dwconv_3x3_16c__avx512},
    .f32_maxpool = pyconv_f32_maxpool__avx512,
    .f32_avgpool = pyconv_f32_avgpool__avx512,
    .f64_maxpool = pyconv_f64_maxpool__avx512,
    .f64_avgpool = pyconv_f64_avgpool__avx512,
    .f32_eltwise = pyconv_f32_eltwise__avx512,
    .f64_eltwise = pyconv_f64_eltwise__avx512,
    .f32_winograd = {pyconv_f32_wino4x3_input__avx512, pyconv_f32_wino4x3_output__avx512,
                     pyconv_f32_wino4x3_kernel__avx512},
    .f32_winograd2x3 = {pyconv_f32_wino2x3_input__avx512, pyconv_f32_wino2x3_output__avx512,
                        pyconv_f32_wino2x3_kernel__avx512},
};
#endif

/* In order of preference, best last; a name may have several builds. */
static const struct pyconv_ukernels *const all_kernels[] = {
    &scalar_kernels,
#if defined(__x86_64__) || defined(__i386__)
    &scalar_fma_kernels,
    &avx2_kernels,
    &avx512_kernels,
#endif
};
#define N_KERNEL_SETS (sizeof(all_kernels) / sizeof(all_kernels[0]))

static int cpu_runs(const struct pyconv_ukernels *k)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (k == &scalar_fma_kernels)
        return __builtin_cpu_supports("fma");
    if (strcmp(k->isa, "avx512") == 0)
        return avx2 && __builtin_cpu_supports("avx512f");
    if (strcmp(k->isa, "avx2") == 0)
        return avx2;
#endif
    return strcmp(k->isa, "scalar") == 0;
}

const struct pyconv_ukernels *pyconv_select_ukernels(const char *name)
{
    int best = name == NULL || name[0] == '\0';
    for (size_t i = N_KERNEL_SETS; i-- > 0;)
        if ((best || strcmp(all_kernels[i]->isa, name) == 0) && cpu_runs(all_kernels[i]))
            return all_kernels[i];
    return best ? &scalar_kernels : NULL;
}

/* Built once (pthread_once: concurrent first callers must not see it half
 * written), then read-only. */
static char isa_names[64];
static pthread_once_t isa_names_once = PTHREAD_ONCE_INIT;

static void build_isa_names(void)
{
    size_t used = 0;
    for (size_t i = 0; i < N_KERNEL_SETS; i++) {
        if (!cpu_runs(all_kernels[i]) ||
            (i > 0 && strcmp(all_kernels[i]->isa, all_kernels[i - 1]->isa) == 0))
            continue;
        size_t len = strlen(all_kernels[i]->isa);
        if (used + len + 2 > sizeof(isa_names))
            break;
        if (used > 0)
            isa_names[used++] = ',';
        memcpy(isa_names + used, all_kernels[i]->isa, len);
        used += len;
        isa_names[used] = '\0';
    }
}

const char *pyconv_available_isas(void)
{
    pthread_once(&isa_names_once, build_isa_names);
    return isa_names;
}
