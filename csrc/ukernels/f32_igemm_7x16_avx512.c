/* float32 igemm on AVX-512F: tiles of 7 pixels x 16 output channels;
 * one zmm per row: for 1..16 (mod 32) output channels. */
#define ELEM_F64 0
#define MR 7
#define NR 16
#define FN pyconv_f32_igemm_7x16__avx512
#include "igemm_avx512.inc"
