/* float32 igemm on AVX-512F: tiles of 7 pixels x 32 output channels;
 * two zmm per row, 14 accumulators. */
#define ELEM_F64 0
#define MR 7
#define NR 32
#define FN pyconv_f32_igemm_7x32__avx512
#include "igemm_avx512.inc"
