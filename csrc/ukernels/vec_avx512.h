/* AVX-512F vectors for the pool and eltwise kernels (see vec_scalar.h).
 * Partial vectors use masked loads/stores: lanes past n are not touched. */
#ifndef PYCONV_VEC_DEFINED
#define PYCONV_VEC_DEFINED
#include <float.h>
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define TARGET __attribute__((target("avx512f")))
#if ELEM_F64
#define T double
#define T_LOWEST (-DBL_MAX)
#define LANES 8
#define VEC __m512d
#define V_LOAD _mm512_loadu_pd
#define V_STORE _mm512_storeu_pd
#define V_SET1 _mm512_set1_pd
#define V_ADD _mm512_add_pd
#define V_MUL _mm512_mul_pd
#define V_DIV _mm512_div_pd
#define V_MAX _mm512_max_pd
#define V_MIN _mm512_min_pd
#define V_LOAD_FIRST(p, n) _mm512_maskz_loadu_pd((__mmask8)((1u << (n)) - 1u), (p))
#define V_STORE_FIRST(p, n, v) _mm512_mask_storeu_pd((p), (__mmask8)((1u << (n)) - 1u), (v))
#else
#define T float
#define T_LOWEST (-FLT_MAX)
#define LANES 16
#define VEC __m512
#define V_LOAD _mm512_loadu_ps
#define V_STORE _mm512_storeu_ps
#define V_SET1 _mm512_set1_ps
#define V_ADD _mm512_add_ps
#define V_MUL _mm512_mul_ps
#define V_DIV _mm512_div_ps
#define V_MAX _mm512_max_ps
#define V_MIN _mm512_min_ps
#define V_LOAD_FIRST(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1u), (p))
#define V_STORE_FIRST(p, n, v) _mm512_mask_storeu_ps((p), (__mmask16)((1u << (n)) - 1u), (v))
#endif
#endif
