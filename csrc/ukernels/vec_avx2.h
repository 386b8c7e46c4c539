/* AVX2 vectors for the pool and eltwise kernels (see vec_scalar.h). Partial
 * vectors use maskload/maskstore: lanes past n are neither read nor written. */
#ifndef PYCONV_VEC_DEFINED
#define PYCONV_VEC_DEFINED
#include <float.h>
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define TARGET __attribute__((target("avx2")))
#if ELEM_F64
#define T double
#define T_LOWEST (-DBL_MAX)
#define LANES 4
#define VEC __m256d
#define V_LOAD _mm256_loadu_pd
#define V_STORE _mm256_storeu_pd
#define V_SET1 _mm256_set1_pd
#define V_ADD _mm256_add_pd
#define V_MUL _mm256_mul_pd
#define V_DIV _mm256_div_pd
#define V_MAX _mm256_max_pd
#define V_MIN _mm256_min_pd
TARGET static inline __m256i first_lanes(size_t n)
{
    static const int64_t table[8] = {-1, -1, -1, -1, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(table + 4 - n));
}
#define V_LOAD_FIRST(p, n) _mm256_maskload_pd((p), first_lanes(n))
#define V_STORE_FIRST(p, n, v) _mm256_maskstore_pd((p), first_lanes(n), (v))
#else
#define T float
#define T_LOWEST (-FLT_MAX)
#define LANES 8
#define VEC __m256
#define V_LOAD _mm256_loadu_ps
#define V_STORE _mm256_storeu_ps
#define V_SET1 _mm256_set1_ps
#define V_ADD _mm256_add_ps
#define V_MUL _mm256_mul_ps
#define V_DIV _mm256_div_ps
#define V_MAX _mm256_max_ps
#define V_MIN _mm256_min_ps
TARGET static inline __m256i first_lanes(size_t n)
{
    static const int32_t table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(table + 8 - n));
}
#define V_LOAD_FIRST(p, n) _mm256_maskload_ps((p), first_lanes(n))
#define V_STORE_FIRST(p, n, v) _mm256_maskstore_ps((p), first_lanes(n), (v))
#endif
#endif
