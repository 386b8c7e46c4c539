/* The portable double dwconv kernel compiled for x86 CPUs with FMA (chosen by
 * table.c): fma() becomes one instruction instead of a library call. */
#if defined(__x86_64__) || defined(__i386__)
#define T double
#define FN pyconv_f64_dwconv_4c__scalar_fma
#define TARGET __attribute__((target("fma")))
#include "ukernels.h"
#include "dwconv_scalar.inc"
#endif
