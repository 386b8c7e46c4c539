/* float64 igemm on AVX2+FMA: tiles of 7 pixels x 4 output channels;
 * one ymm per row: for few output channels. */
#define ELEM_F64 1
#define MR 7
#define NR 4
#define FN pyconv_f64_igemm_7x4__avx2
#include "igemm_avx2.inc"
