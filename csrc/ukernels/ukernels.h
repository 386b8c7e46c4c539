/* Microkernel interface: the only contract between the operator (conv.c) and
 * the arithmetic. A microkernel computes one tile of at most MR output pixels
 * by at most NR output channels; it knows nothing of padding, stride or
 * dilation, which the indirection buffer has already resolved into pointers.
 */
#ifndef PYCONV_UKERNELS_H
#define PYCONV_UKERNELS_H

#include <stddef.h>
#include <stdint.h>

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

/* The same tile summing only the ks taps listed in taps[0..ks) (ascending
 * tap numbers < ks_all, ks >= 1) of a reduction of ks_all taps; the taps not
 * listed are those whose MR pointers are all `zero`.
 *   a       all ks_all * MR pointers, as for the kernel above
 *   w       all ks_all taps' packed weights, as above
 * Each output is the full kernel's sum without the terms of the taps not
 * listed: the remaining terms in the same order, summed in the same blocks
 * of PYCONV_SUM_BLOCK (counted over all ks_all taps), so with finite weights
 * (0 * w = +-0) the result has the full kernel's bits except that a zero may
 * have the other sign (-0.0 where the full sum added +0.0 terms to -0.0;
 * never the reverse: see conv.c). */
typedef void (*pyconv_f32_igemm_taps_fn)(size_t mr, size_t nc, size_t kc, size_t ks,
                                         const float *const *a, const float *w, float *c,
                                         size_t c_stride, size_t a_offset, const float *zero,
                                         const float *minmax, const uint32_t *taps,
                                         size_t ks_all);
typedef void (*pyconv_f64_igemm_taps_fn)(size_t mr, size_t nc, size_t kc, size_t ks,
                                         const double *const *a, const double *w, double *c,
                                         size_t c_stride, size_t a_offset, const double *zero,
                                         const double *minmax, const uint32_t *taps,
                                         size_t ks_all);

/* One output pixel of pooling (max or average; see pool.inc):
 *   rows, cols  the in-bounds part of the window, >= 1 each
 *   channels    elements per pixel, >= 1
 *   in          the window's first in-bounds pixel; pixel (r, q) starts at
 *               in + r * row_stride + q * channels
 *   divisor     average: the number of pixels summed (ignored by max)
 *   out         channels outputs */
typedef void (*pyconv_f32_pool_fn)(size_t rows, size_t cols, size_t channels, const float *in,
                                   size_t row_stride, float divisor, float *out);
typedef void (*pyconv_f64_pool_fn)(size_t rows, size_t cols, size_t channels, const double *in,
                                   size_t row_stride, double divisor, double *out);

/* The elementwise epilogue over a run of n elements (see eltwise.inc):
 *   y = clamp(((x + pre) * scale + shift) + res, minmax[0], minmax[1])
 * pre, scale, shift, res may each be NULL (the term is skipped); pre, scale
 * and shift hold one value per element (pstride 1) or one for the run
 * (pstride 0). x may equal y. */
typedef void (*pyconv_f32_eltwise_fn)(size_t n, const float *x, const float *pre,
                                      const float *scale, const float *shift, const float *res,
                                      float *y, size_t pstride, const float *minmax);
typedef void (*pyconv_f64_eltwise_fn)(size_t n, const double *x, const double *pre,
                                      const double *scale, const double *shift,
                                      const double *res, double *y, size_t pstride,
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
    pyconv_f32_igemm_taps_fn igemm_taps; /* its tap-list twin (NULL: none) */
};
struct pyconv_f64_tile {
    pyconv_f64_igemm_fn igemm;
    size_t mr, nr;
    unsigned speed;
    pyconv_f64_igemm_taps_fn igemm_taps;
};

#define PYCONV_MAX_TILES 3

/* One run of depthwise-convolution outputs (dwconv_*.inc): `pixels` output
 * pixels of one row, `channels` channels each (a block of the output's; with
 * a depth multiplier the input has been expanded to one channel per output
 * channel). The kernel knows nothing of padding, stride or dilation.
 *   channels  channels to compute, >= 1
 *   pixels    output pixels, >= 1
 *   ks        taps per pixel (kernel_h * kernel_w), >= 1
 *   a         pixel p's ks input pointers are a[p * a_step + t], t < ks
 *   w         packed weights: per tile of CT channels, CT biases, then ks * CT
 *             weights in the pointers' tap order (channels past the end zero)
 *   c         output, pixel p at c + p * c_stride (elements)
 *   a_offset  bytes added to every pointer of a that is not `zero` (the
 *             image and the first channel of the block)
 *   zero      the shared zero vector (>= channels elements) for padding taps
 *   minmax    {lo, hi}: the fused activation as a clamp (NaN passes through)
 * Each output is bias, then one fused multiply-add per tap in tap order: the
 * same bits on every instruction set and channel tile. */
typedef void (*pyconv_f32_dwconv_fn)(size_t channels, size_t pixels, size_t ks,
                                     const float *const *a, size_t a_step, const float *w,
                                     float *c, size_t c_stride, size_t a_offset,
                                     const float *zero, const float *minmax);
typedef void (*pyconv_f64_dwconv_fn)(size_t channels, size_t pixels, size_t ks,
                                     const double *const *a, size_t a_step, const double *w,
                                     double *c, size_t c_stride, size_t a_offset,
                                     const double *zero, const double *minmax);

/* The 3x3 row kernel (dwconv_simd.inc): `pixels` interior outputs of one
 * row (no tap in the left/right padding; dilation 1 along x), read from
 * three input row pointers (in_rows[ky]: the first pixel's window, channel 0
 * of the block; the zero row for rows in the padding) with `stride` 1 or 2
 * along x and `in_stride` elements between input columns. Same packing and
 * the same summation order as the generic kernel, so the same bits. */
typedef void (*pyconv_f32_dwconv3x3_fn)(size_t channels, size_t pixels,
                                        const float *const *in_rows, size_t stride,
                                        size_t in_stride, const float *w, float *c,
                                        size_t c_stride, const float *minmax);
typedef void (*pyconv_f64_dwconv3x3_fn)(size_t channels, size_t pixels,
                                        const double *const *in_rows, size_t stride,
                                        size_t in_stride, const double *w, double *c,
                                        size_t c_stride, const double *minmax);

/* A dwconv microkernel, its channel tile CT and (may be NULL) its 3x3 row kernel. */
struct pyconv_f32_dwconv {
    pyconv_f32_dwconv_fn fn;
    size_t ct;
    pyconv_f32_dwconv3x3_fn row3x3;
};
struct pyconv_f64_dwconv {
    pyconv_f64_dwconv_fn fn;
    size_t ct;
    pyconv_f64_dwconv3x3_fn row3x3;
};

/* Winograd F(4x4, 3x3) transforms (winograd_f4x3.inc), over n channels (F(2x2,
 * 3x3), winograd_f2x3.inc, alike with a 4x4 input tile, 16 positions, 2x2 outputs):
 *   input   d: 36 pointers to the 6x6 input tile's pixels (row-major; the
 *           zero vector in the padding), tmp: 36 * n scratch; writes the
 *           transformed tile, position xi at v + xi * v_stride
 *   output  m: position xi at m + xi * m_stride, tmp: 24 * n scratch; writes
 *           the 4x4 outputs to out[0..15] (row-major) plus bias (may be
 *           NULL), clamped to minmax
 *   kernel  g: 9 pointers (taps row-major) to n weights of one input
 *           channel; writes G g G^T (computed in double), xi at u + xi * u_stride */
typedef void (*pyconv_f32_wino_input_fn)(size_t n, const float *const *d, float *tmp, float *v,
                                         size_t v_stride);
typedef void (*pyconv_f32_wino_output_fn)(size_t n, const float *m, size_t m_stride, float *tmp,
                                          float *const *out, const float *bias,
                                          const float *minmax);
typedef void (*pyconv_f32_wino_kernel_fn)(size_t n, const float *const *g, float *u,
                                          size_t u_stride);
struct pyconv_f32_winograd {
    pyconv_f32_wino_input_fn input;
    pyconv_f32_wino_output_fn output;
    pyconv_f32_wino_kernel_fn kernel;
};

/* The kernels of one instruction set, chosen once at import: per dtype the
 * default (widest) tile first, then narrower ones for layers with few output
 * channels; unused entries have igemm == NULL. */
struct pyconv_ukernels {
    const char *isa;
    struct pyconv_f32_tile f32[PYCONV_MAX_TILES];
    struct pyconv_f64_tile f64[PYCONV_MAX_TILES];
    struct pyconv_f32_dwconv f32_dwconv; /* depthwise convolution (dwconv.c) */
    struct pyconv_f64_dwconv f64_dwconv;
    /* the operators between convolutions (pool.c, eltwise.c) and the
     * convolution's fused epilogue */
    pyconv_f32_pool_fn f32_maxpool, f32_avgpool;
    pyconv_f64_pool_fn f64_maxpool, f64_avgpool;
    pyconv_f32_eltwise_fn f32_eltwise;
    pyconv_f64_eltwise_fn f64_eltwise;
    struct pyconv_f32_winograd f32_winograd; /* winograd.c; its GEMM is f32[] */
    struct pyconv_f32_winograd f32_winograd2x3; /* F(2x2, 3x3) (winograd_f2x3.inc) */
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

/* Their tap-list twins (the same files). */
#define PYCONV_IGEMM_TAPS_DECL(name, T)                                                         \
    void name##_taps(size_t, size_t, size_t, size_t, const T *const *, const T *, T *, size_t, \
                     size_t, const T *, const T *, const uint32_t *, size_t)
PYCONV_IGEMM_TAPS_DECL(pyconv_f32_igemm_4x4__scalar, float);
PYCONV_IGEMM_TAPS_DECL(pyconv_f64_igemm_4x4__scalar, double);
PYCONV_IGEMM_TAPS_DECL(pyconv_f32_igemm_4x4__scalar_fma, float);
PYCONV_IGEMM_TAPS_DECL(pyconv_f64_igemm_4x4__scalar_fma, double);
PYCONV_IGEMM_TAPS_DECL(pyconv_f32_igemm_7x32__avx512, float);
PYCONV_IGEMM_TAPS_DECL(pyconv_f32_igemm_7x16__avx512, float);
PYCONV_IGEMM_TAPS_DECL(pyconv_f32_igemm_6x16__avx2, float);
PYCONV_IGEMM_TAPS_DECL(pyconv_f32_igemm_7x8__avx2, float);
PYCONV_IGEMM_TAPS_DECL(pyconv_f64_igemm_7x16__avx512, double);
PYCONV_IGEMM_TAPS_DECL(pyconv_f64_igemm_7x8__avx512, double);
PYCONV_IGEMM_TAPS_DECL(pyconv_f64_igemm_6x8__avx2, double);
PYCONV_IGEMM_TAPS_DECL(pyconv_f64_igemm_7x4__avx2, double);

/* dwconv microkernels, <dtype>_dwconv_<CT>c_<isa>.c */
#define PYCONV_DWCONV_DECL(name, T)                                                             \
    void name(size_t, size_t, size_t, const T *const *, size_t, const T *, T *, size_t, size_t, \
              const T *, const T *)
PYCONV_DWCONV_DECL(pyconv_f32_dwconv_4c__scalar, float);
PYCONV_DWCONV_DECL(pyconv_f64_dwconv_4c__scalar, double);
PYCONV_DWCONV_DECL(pyconv_f32_dwconv_4c__scalar_fma, float);
PYCONV_DWCONV_DECL(pyconv_f64_dwconv_4c__scalar_fma, double);
PYCONV_DWCONV_DECL(pyconv_f32_dwconv_16c__avx2, float);
PYCONV_DWCONV_DECL(pyconv_f64_dwconv_8c__avx2, double);
PYCONV_DWCONV_DECL(pyconv_f32_dwconv_32c__avx512, float);
PYCONV_DWCONV_DECL(pyconv_f64_dwconv_16c__avx512, double);
#define PYCONV_DWCONV3X3_DECL(name, T)                                                          \
    void name(size_t, size_t, const T *const *, size_t, size_t, const T *, T *, size_t,         \
              const T *)
PYCONV_DWCONV3X3_DECL(pyconv_f32_dwconv_3x3_16c__avx2, float);
PYCONV_DWCONV3X3_DECL(pyconv_f64_dwconv_3x3_8c__avx2, double);
PYCONV_DWCONV3X3_DECL(pyconv_f32_dwconv_3x3_32c__avx512, float);
PYCONV_DWCONV3X3_DECL(pyconv_f64_dwconv_3x3_16c__avx512, double);
/* Pool and eltwise kernels, <dtype>_<op>_<isa>.c (the x86 ones are only
 * called when the CPU has the instruction set). */
void pyconv_f32_maxpool__scalar(size_t, size_t, size_t, const float *, size_t, float, float *);
void pyconv_f32_avgpool__scalar(size_t, size_t, size_t, const float *, size_t, float, float *);
void pyconv_f32_eltwise__scalar(size_t, const float *, const float *, const float *, const float *,
    const float *, float *, size_t, const float *);
void pyconv_f64_maxpool__scalar(size_t, size_t, size_t, const double *, size_t, double, double *);
void pyconv_f64_avgpool__scalar(size_t, size_t, size_t, const double *, size_t, double, double *);
void pyconv_f64_eltwise__scalar(size_t, const double *, const double *, const double *, const double *,
    const double *, double *, size_t, const double *);
void pyconv_f32_maxpool__avx2(size_t, size_t, size_t, const float *, size_t, float, float *);
void pyconv_f32_avgpool__avx2(size_t, size_t, size_t, const float *, size_t, float, float *);
void pyconv_f32_eltwise__avx2(size_t, const float *, const float *, const float *, const float *,
    const float *, float *, size_t, const float *);
void pyconv_f64_maxpool__avx2(size_t, size_t, size_t, const double *, size_t, double, double *);
void pyconv_f64_avgpool__avx2(size_t, size_t, size_t, const double *, size_t, double, double *);
void pyconv_f64_eltwise__avx2(size_t, const double *, const double *, const double *, const double *,
    const double *, double *, size_t, const double *);
void pyconv_f32_maxpool__avx512(size_t, size_t, size_t, const float *, size_t, float, float *);
void pyconv_f32_avgpool__avx512(size_t, size_t, size_t, const float *, size_t, float, float *);
void pyconv_f32_eltwise__avx512(size_t, const float *, const float *, const float *, const float *,
    const float *, float *, size_t, const float *);
void pyconv_f64_maxpool__avx512(size_t, size_t, size_t, const double *, size_t, double, double *);
void pyconv_f64_avgpool__avx512(size_t, size_t, size_t, const double *, size_t, double, double *);
void pyconv_f64_eltwise__avx512(size_t, const double *, const double *, const double *, const double *,
    const double *, double *, size_t, const double *);

/* Winograd transforms, f32_winograd_<isa>.c */
void pyconv_f32_wino4x3_input__scalar(size_t, const float *const *, float *, float *, size_t);
void pyconv_f32_wino4x3_output__scalar(size_t, const float *, size_t, float *, float *const *,
                                       const float *, const float *);
void pyconv_f32_wino4x3_kernel__scalar(size_t, const float *const *, float *, size_t);
void pyconv_f32_wino4x3_input__avx2(size_t, const float *const *, float *, float *, size_t);
void pyconv_f32_wino4x3_output__avx2(size_t, const float *, size_t, float *, float *const *,
                                       const float *, const float *);
void pyconv_f32_wino4x3_kernel__avx2(size_t, const float *const *, float *, size_t);
void pyconv_f32_wino4x3_input__avx512(size_t, const float *const *, float *, float *, size_t);
void pyconv_f32_wino4x3_output__avx512(size_t, const float *, size_t, float *, float *const *,
                                       const float *, const float *);
void pyconv_f32_wino4x3_kernel__avx512(size_t, const float *const *, float *, size_t);
void pyconv_f32_wino2x3_input__scalar(size_t, const float *const *, float *, float *, size_t);
void pyconv_f32_wino2x3_output__scalar(size_t, const float *, size_t, float *, float *const *,
                                       const float *, const float *);
void pyconv_f32_wino2x3_kernel__scalar(size_t, const float *const *, float *, size_t);
void pyconv_f32_wino2x3_input__avx2(size_t, const float *const *, float *, float *, size_t);
void pyconv_f32_wino2x3_output__avx2(size_t, const float *, size_t, float *, float *const *,
                                       const float *, const float *);
void pyconv_f32_wino2x3_kernel__avx2(size_t, const float *const *, float *, size_t);
void pyconv_f32_wino2x3_input__avx512(size_t, const float *const *, float *, float *, size_t);
void pyconv_f32_wino2x3_output__avx512(size_t, const float *, size_t, float *, float *const *,
                                       const float *, const float *);
void pyconv_f32_wino2x3_kernel__avx512(size_t, const float *const *, float *, size_t);

#endif
