/* float64 igemm on AVX-512F: tiles of 7 pixels x 16 output channels;
 * two zmm per row, 14 accumulators. */
#define ELEM_F64 1
#define MR 7
#define NR 16
#define FN pyconv_f64_igemm_7x16__avx512
#include "igemm_avx512.inc"
