#define T double
#define FN pyconv_f64_igemm_4x4__scalar
#include "ukernels.h"
#include "igemm_scalar.inc"
