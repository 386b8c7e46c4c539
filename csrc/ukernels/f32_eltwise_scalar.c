/* float32 elementwise epilogue (scale, shift, residual, clamp), scalar. */
#define ELEM_F64 0
#define FN pyconv_f32_eltwise__scalar
#include "vec_scalar.h"
#include "eltwise.inc"
