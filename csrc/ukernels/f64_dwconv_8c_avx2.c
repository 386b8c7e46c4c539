/* f64 depthwise convolution on avx2: channel tiles of 8 (2 vectors), generic taps, and the 3x3 row kernel. */
#define ELEM_F64 1
#define NV 2
#define FN pyconv_f64_dwconv_8c__avx2
#define FN3 pyconv_f64_dwconv_3x3_8c__avx2
#include "dwconv_avx2.inc"
