/* float32 max pooling, scalar. */
#define ELEM_F64 0
#define POOL_AVG 0
#define FN pyconv_f32_maxpool__scalar
#include "vec_scalar.h"
#include "pool.inc"
