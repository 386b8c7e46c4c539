/* The one place that decides which microkernels run. */
#include <string.h>

#include "ukernels.h"

static const struct pyconv_ukernels scalar_kernels = {
    .isa = "scalar",
    .f32_igemm = pyconv_f32_igemm_4x4__scalar,
    .f32_mr = 4,
    .f32_nr = 4,
    .f64_igemm = pyconv_f64_igemm_4x4__scalar,
    .f64_mr = 4,
    .f64_nr = 4,
};

static const struct pyconv_ukernels *const all_kernels[] = {
    &scalar_kernels,
};
#define N_KERNEL_SETS (sizeof(all_kernels) / sizeof(all_kernels[0]))

static int cpu_runs(const struct pyconv_ukernels *k)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (strcmp(k->isa, "avx512") == 0)
        return __builtin_cpu_supports("avx512f");
    if (strcmp(k->isa, "avx2") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return strcmp(k->isa, "scalar") == 0;
}

const struct pyconv_ukernels *pyconv_select_ukernels(const char *name)
{
    if (name == NULL || name[0] == '\0') {
        for (size_t i = N_KERNEL_SETS; i-- > 0;)
            if (cpu_runs(all_kernels[i]))
                return all_kernels[i];
        return &scalar_kernels;
    }
    for (size_t i = 0; i < N_KERNEL_SETS; i++)
        if (strcmp(all_kernels[i]->isa, name) == 0)
            return cpu_runs(all_kernels[i]) ? all_kernels[i] : NULL;
    return NULL;
}

const char *pyconv_available_isas(void)
{
    static char names[64];
    if (names[0] == '\0') {
        size_t used = 0;
        for (size_t i = 0; i < N_KERNEL_SETS; i++) {
            if (!cpu_runs(all_kernels[i]))
                continue;
            size_t len = strlen(all_kernels[i]->isa);
            if (used + len + 2 > sizeof(names))
                break;
            if (used > 0)
                names[used++] = ',';
            memcpy(names + used, all_kernels[i]->isa, len);
            used += len;
            names[used] = '\0';
        }
    }
    return names;
}
