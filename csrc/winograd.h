/* Winograd convolution for float32 3x3 stride-1 layers (Lavin & Gray 2016):
 * F(4x4, 3x3) (36 multiplies per 16 outputs and input channel instead of
 * 144) and F(2x2, 3x3) (16 per 4 instead of 36). Input tiles, weights and
 * outputs are transformed by the transform microkernels of the set
 * (winograd_f4x3.inc, winograd_f2x3.inc) around a batched "tuple GEMM" run by
 * the set's igemm microkernels, summing blocks of 64 input channels in a
 * fixed order. Errors, max|d| / max(1, max|y|) against the float64
 * reference (tools/wino_error.py, 64-2048 input channels): F(4x4) 1.5e-6 to
 * 2.2e-6 (with the points 0, +-1, +-2: 4.0e-6 to 5.6e-6; and with a single
 * accumulator over in_c, 1.5e-5 at 512 and 2.9e-5 at 2048), F(2x2) 0.3e-6
 * to 0.4e-6, direct 0.9e-6 to 1.8e-6. No Python here. */
#ifndef PYCONV_WINOGRAD_H
#define PYCONV_WINOGRAD_H

#include "conv.h"

/* Returned by create or run when the weights or the input hold a NaN or an
 * infinity: the output is incomplete and the caller computes it with the
 * direct operator, whose NaN/Inf semantics are TF's. */
#define PYCONV_WINO_NONFINITE 100

/* Whether this operator computes the convolution p (float32, 3x3, strides and
 * dilations 1, one group). */
int pyconv_wino_applicable(const struct pyconv_conv_params *p);

struct pyconv_wino_op;

/* Plans: validates (the same checks as pyconv_conv_output_shape, plus the
 * applicability and the operator's own buffer sizes, overflow-checked) and
 * allocates F(tile x tile, 3x3), tile 4 or 2. The weights are transformed by the first run, on its threads,
 * so they (and bias, may be NULL) must stay valid until then. */
int pyconv_wino_create(const struct pyconv_conv_params *p, const struct pyconv_ukernels *uk,
                       size_t tile, const float *weights, const float *bias, struct pyconv_wino_op **op_out,
                       char err[PYCONV_ERRLEN]);
void pyconv_wino_setup(struct pyconv_wino_op *op, const float *input, float *output);
/* The epilogue of pyconv_conv_set_epilogue, with the same meaning and bits
 * of the elementwise kernel (applied to each stored output pixel). */
void pyconv_wino_set_epilogue(struct pyconv_wino_op *op, const struct pyconv_epilogue *ep);
/* PYCONV_OK, PYCONV_EINTR, PYCONV_ENOMEM or PYCONV_WINO_NONFINITE. */
int pyconv_wino_run(struct pyconv_wino_op *op, size_t n_threads, pyconv_interrupt_fn interrupted,
                    void *ctx);
void pyconv_wino_destroy(struct pyconv_wino_op *op);

#endif
