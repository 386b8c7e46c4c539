/* float32 average pooling, avx512. */
#if defined(__x86_64__) || defined(__i386__)
#define ELEM_F64 0
#define POOL_AVG 1
#define FN pyconv_f32_avgpool__avx512
#include "vec_avx512.h"
#include "pool.inc"
#endif
