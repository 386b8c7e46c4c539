#define T float
#define FN pyconv_f32_igemm_4x4__scalar
#include "ukernels.h"
#include "igemm_scalar.inc"
