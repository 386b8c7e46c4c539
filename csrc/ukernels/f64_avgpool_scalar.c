/* float64 average pooling, scalar. */
#define ELEM_F64 1
#define POOL_AVG 1
#define FN pyconv_f64_avgpool__scalar
#include "vec_scalar.h"
#include "pool.inc"
