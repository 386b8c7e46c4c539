#define T double
#define FN pyconv_f64_dwconv_4c__scalar
#include "ukernels.h"
#include "dwconv_scalar.inc"
