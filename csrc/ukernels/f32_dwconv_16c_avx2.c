/* f32 depthwise convolution on avx2: channel tiles of 16 (2 vectors), generic taps, and the 3x3 row kernel. */
#define ELEM_F64 0
#define NV 2
#define FN pyconv_f32_dwconv_16c__avx2
#define FN3 pyconv_f32_dwconv_3x3_16c__avx2
#include "dwconv_avx2.inc"
