/* float32 Winograd F(4x4, 3x3) and F(2x2, 3x3) transforms, scalar build of winograd_f4x3.inc and
 * winograd_f2x3.inc. */

#define TARGET 
#define SUFFIX scalar
#include "winograd_f4x3.inc"
#include "winograd_f2x3.inc"

