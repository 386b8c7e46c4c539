/* float64 max pooling, scalar. */
#define ELEM_F64 1
#define POOL_AVG 0
#define FN pyconv_f64_maxpool__scalar
#include "vec_scalar.h"
#include "pool.inc"
