/* float64 igemm on AVX-512F: tiles of 7 pixels x 8 output channels;
 * one zmm per row: for 1..8 (mod 16) output channels. */
#define ELEM_F64 1
#define MR 7
#define NR 8
#define FN pyconv_f64_igemm_7x8__avx512
#include "igemm_avx512.inc"
