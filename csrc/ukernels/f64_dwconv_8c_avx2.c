/* f64 depthwise convolution on avx2: channel tiles of 8 (2 vectors), generic taps. */
#define ELEM_F64 1
#define NV 2
#define FN pyconv_f64_dwconv_8c__avx2
#include "dwconv_avx2.inc"
