/* float32 igemm on AVX2+FMA: tiles of 6 pixels x 16 output channels;
 * two ymm per row, 12 accumulators. */
#define ELEM_F64 0
#define MR 6
#define NR 16
#define FN pyconv_f32_igemm_6x16__avx2
#include "igemm_avx2.inc"
