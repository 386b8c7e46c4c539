#define T float
#define FN pyconv_f32_dwconv_4c__scalar
#include "ukernels.h"
#include "dwconv_scalar.inc"
