/* The "vector" of the portable pool and eltwise kernels: one element.
 * Included once by a leaf file that defines ELEM_F64 (0 float, 1 double).
 * V_MAX/V_MIN follow x86's maxps/minps: the second operand is returned when
 * the two compare unordered (NaN) or equal, so every ISA gives the same bits. */
#ifndef PYCONV_VEC_DEFINED
#define PYCONV_VEC_DEFINED
#include <float.h>
#include <stddef.h>

#define TARGET
#if ELEM_F64
#define T double
#define T_LOWEST (-DBL_MAX)
#else
#define T float
#define T_LOWEST (-FLT_MAX)
#endif
#define LANES 1
#define VEC T
#define V_LOAD(p) (*(p))
#define V_STORE(p, v) (*(p) = (v))
#define V_SET1(x) ((T)(x))
#define V_ADD(a, b) ((a) + (b))
#define V_MUL(a, b) ((a) * (b))
#define V_DIV(a, b) ((a) / (b))
#define V_MAX(a, b) ((a) > (b) ? (a) : (b))
#define V_MIN(a, b) ((a) < (b) ? (a) : (b))
/* never used with one lane (no partial vectors) */
#define V_LOAD_FIRST(p, n) ((void)(n), *(p))
#define V_STORE_FIRST(p, n, v) ((void)(n), *(p) = (v))
#endif
