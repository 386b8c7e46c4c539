/* float64 average pooling, avx2. */
#if defined(__x86_64__) || defined(__i386__)
#define ELEM_F64 1
#define POOL_AVG 1
#define FN pyconv_f64_avgpool__avx2
#include "vec_avx2.h"
#include "pool.inc"
#endif
