/* Microkernel interface: the only contract between the operator (conv.c) and
 * the arithmetic. A microkernel computes one tile of at most MR output pixels
 * by at most NR output channels; it knows nothing of padding, stride or
 * dilation, which the indirection buffer has already resolved into pointers.
 */
#ifndef PYCONV_UKERNELS_H
#define PYCONV_UKERNELS_H

#include <stddef.h>

/* One igemm tile.
 *   mr      rows (output pixels) to store, 1..MR
 *   nc      columns (output channels) to store, 1..NR
 *   kc      input channels per tap
 *   ks      taps (kernel_h * kernel_w)
 *   a       ks * MR input pointers, tap-major: a[tap * MR + row]; rows >= mr
 *           repeat a valid pointer so the kernel may read them freely
 *   w       packed weights of one NR block: NR biases, then ks * kc * NR
 *           weights (channels beyond nc are zero)
 *   c       output tile, row r at c + r * c_stride (elements)
 *   a_offset bytes added to every pointer of a that is not `zero`
 *   zero    the shared zero vector (kc elements) used for padding taps
 *   minmax  {lo, hi}: the fused activation as a clamp (NaN passes through)
 */
typedef void (*pyconv_f32_igemm_fn)(size_t mr, size_t nc, size_t kc, size_t ks,
                                    const float *const *a, const float *w, float *c,
                                    size_t c_stride, size_t a_offset, const float *zero,
                                    const float *minmax);
typedef void (*pyconv_f64_igemm_fn)(size_t mr, size_t nc, size_t kc, size_t ks,
                                    const double *const *a, const double *w, double *c,
                                    size_t c_stride, size_t a_offset, const double *zero,
                                    const double *minmax);

/* The largest MR any kernel set may use (the operator keeps per-row state on
 * the stack). */
#define PYCONV_MAX_MR 16
/* The largest NR (the operator's size checks bound the packed weights with
 * it; tiles wider than this are refused). */
#define PYCONV_MAX_NR 32

/* Every kernel sums a reduction of kc * ks > PYCONV_SUM_BLOCK terms in blocks
 * of PYCONV_SUM_BLOCK terms, counted across taps: ((bias + block 0) + block 1)
 * + ..., the same order in every kernel (so every instruction set and thread
 * count gives the same bits). Shorter reductions, nearly every layer, are one
 * block: one accumulator per output from the bias on. */
#ifndef PYCONV_SUM_BLOCK /* overridable for measurements only */
#define PYCONV_SUM_BLOCK 4096
#endif

/* One microkernel and its tile. `speed` is its throughput on full tiles in
 * percent of the set's first kernel (measured, see README.md); the operator
 * picks the kernel with the least padded work divided by speed. */
struct pyconv_f32_tile {
    pyconv_f32_igemm_fn igemm;
    size_t mr, nr;
    unsigned speed;
};
struct pyconv_f64_tile {
    pyconv_f64_igemm_fn igemm;
    size_t mr, nr;
    unsigned speed;
};

#define PYCONV_MAX_TILES 3

/* The kernels of one instruction set, chosen once at import: per dtype the
 * default (widest) tile first, then narrower ones for layers with few output
 * channels; unused entries have igemm == NULL. */
struct pyconv_ukernels {
    const char *isa;
    struct pyconv_f32_tile f32[PYCONV_MAX_TILES];
    struct pyconv_f64_tile f64[PYCONV_MAX_TILES];
};

/* ISA selection (the one place): name is NULL/"" for the best the CPU has,
 * or "scalar", "avx2", "avx512". Returns NULL if the name is unknown or the
 * CPU lacks that instruction set. */
const struct pyconv_ukernels *pyconv_select_ukernels(const char *name);
/* Comma-separated names of the ISAs this CPU can run, best last. */
const char *pyconv_available_isas(void);

/* Measured float32 multiply-add peak of one thread in GFLOP/s with the vector
 * instructions of `isa` ("avx512", "avx2", else scalar), running ~seconds. */
double pyconv_fma_peak_gflops(const char *isa, double seconds);

void pyconv_f32_igemm_4x4__scalar(size_t, size_t, size_t, size_t, const float *const *,
                                  const float *, float *, size_t, size_t, const float *,
                                  const float *);
void pyconv_f64_igemm_4x4__scalar(size_t, size_t, size_t, size_t, const double *const *,
                                  const double *, double *, size_t, size_t, const double *,
                                  const double *);
void pyconv_f32_igemm_4x4__scalar_fma(size_t, size_t, size_t, size_t, const float *const *,
                                      const float *, float *, size_t, size_t, const float *,
                                      const float *);
void pyconv_f64_igemm_4x4__scalar_fma(size_t, size_t, size_t, size_t, const double *const *,
                                      const double *, double *, size_t, size_t, const double *,
                                      const double *);

/* x86 kernels: compiled with target attributes, called only when the CPU
 * has the instruction set (see table.c). */
void pyconv_f32_igemm_7x32__avx512(size_t, size_t, size_t, size_t, const float *const *,
                                   const float *, float *, size_t, size_t, const float *,
                                   const float *);
void pyconv_f32_igemm_7x16__avx512(size_t, size_t, size_t, size_t, const float *const *,
                                   const float *, float *, size_t, size_t, const float *,
                                   const float *);
void pyconv_f32_igemm_6x16__avx2(size_t, size_t, size_t, size_t, const float *const *,
                                 const float *, float *, size_t, size_t, const float *,
                                 const float *);
void pyconv_f32_igemm_7x8__avx2(size_t, size_t, size_t, size_t, const float *const *,
                                const float *, float *, size_t, size_t, const float *,
                                const float *);
void pyconv_f64_igemm_7x16__avx512(size_t, size_t, size_t, size_t, const double *const *,
                                   const double *, double *, size_t, size_t, const double *,
                                   const double *);
void pyconv_f64_igemm_7x8__avx512(size_t, size_t, size_t, size_t, const double *const *,
                                  const double *, double *, size_t, size_t, const double *,
                                  const double *);
void pyconv_f64_igemm_6x8__avx2(size_t, size_t, size_t, size_t, const double *const *,
                                const double *, double *, size_t, size_t, const double *,
                                const double *);
void pyconv_f64_igemm_7x4__avx2(size_t, size_t, size_t, size_t, const double *const *,
                                const double *, double *, size_t, size_t, const double *,
                                const double *);

#endif
