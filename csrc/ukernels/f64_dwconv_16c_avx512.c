/* f64 depthwise convolution on avx512: channel tiles of 16 (2 vectors), generic taps, and the 3x3 row kernel. */
#define ELEM_F64 1
#define NV 2
#define FN pyconv_f64_dwconv_16c__avx512
#define FN3 pyconv_f64_dwconv_3x3_16c__avx512
#include "dwconv_avx512.inc"
