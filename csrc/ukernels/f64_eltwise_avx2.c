/* float64 elementwise epilogue (scale, shift, residual, clamp), avx2. */
#if defined(__x86_64__) || defined(__i386__)
#define ELEM_F64 1
#define FN pyconv_f64_eltwise__avx2
#include "vec_avx2.h"
#include "eltwise.inc"
#endif
