/* float64 elementwise epilogue (scale, shift, residual, clamp), avx512. */
#if defined(__x86_64__) || defined(__i386__)
#define ELEM_F64 1
#define FN pyconv_f64_eltwise__avx512
#include "vec_avx512.h"
#include "eltwise.inc"
#endif
