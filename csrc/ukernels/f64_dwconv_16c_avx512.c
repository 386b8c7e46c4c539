/* f64 depthwise convolution on avx512: channel tiles of 16 (2 vectors), generic taps. */
#define ELEM_F64 1
#define NV 2
#define FN pyconv_f64_dwconv_16c__avx512
#include "dwconv_avx512.inc"
