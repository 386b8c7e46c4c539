/* float32 Winograd F(4x4, 3x3) and F(2x2, 3x3) transforms, avx2 build of winograd_f4x3.inc and
 * winograd_f2x3.inc. */
#if defined(__x86_64__) || defined(__i386__)
#define TARGET __attribute__((target("avx2,fma")))
#define SUFFIX avx2
#include "winograd_f4x3.inc"
#include "winograd_f2x3.inc"
#endif
