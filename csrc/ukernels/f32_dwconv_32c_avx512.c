/* f32 depthwise convolution on avx512: channel tiles of 32 (2 vectors), generic taps, and the 3x3 row kernel. */
#define ELEM_F64 0
#define NV 2
#define FN pyconv_f32_dwconv_32c__avx512
#define FN3 pyconv_f32_dwconv_3x3_32c__avx512
#include "dwconv_avx512.inc"
