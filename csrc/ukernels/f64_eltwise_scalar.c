/* float64 elementwise epilogue (scale, shift, residual, clamp), scalar. */
#define ELEM_F64 1
#define FN pyconv_f64_eltwise__scalar
#include "vec_scalar.h"
#include "eltwise.inc"
