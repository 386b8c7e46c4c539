/* float64 igemm on AVX2+FMA: tiles of 6 pixels x 8 output channels;
 * two ymm per row, 12 accumulators. */
#define ELEM_F64 1
#define MR 6
#define NR 8
#define FN pyconv_f64_igemm_6x8__avx2
#include "igemm_avx2.inc"
