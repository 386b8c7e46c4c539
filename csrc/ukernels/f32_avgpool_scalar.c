/* float32 average pooling, scalar. */
#define ELEM_F64 0
#define POOL_AVG 1
#define FN pyconv_f32_avgpool__scalar
#include "vec_scalar.h"
#include "pool.inc"
