/* float32 igemm on AVX2+FMA: tiles of 7 pixels x 8 output channels;
 * one ymm per row: for few output channels. */
#define ELEM_F64 0
#define MR 7
#define NR 8
#define FN pyconv_f32_igemm_7x8__avx2
#include "igemm_avx2.inc"
