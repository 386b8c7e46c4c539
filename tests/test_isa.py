"""Every microkernel set this CPU runs, forced in turn, against a float64 reference.

The shapes are chosen to hit the kernels' edges: pixel counts that leave a
partial tile of rows for every MR in use (4, 6, 7), output channel counts that
leave a partial block for every NR (1 .. NR - 1, NR + 1), 1..17 and a few
hundred input channels, strides, dilations, asymmetric pads, windows lying
entirely in the padding, fused bias/relu/relu6, NaN and Inf. The reference
below is written here, independently of pyconv: explicit zero padding and a
loop over kernel taps.
"""

import numpy as np
import pytest

import pyconv
from pyconv import _conv

ISAS = _conv.available_isas()
DTYPES = (np.float32, np.float64)


def reference_conv(x, w, strides, pads, dilations, bias=None, activation=None):
    """float64 NHWC x HWIO convolution over explicit (before, after) pads."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, h, wd, c = x.shape
    kh, kw, _, cout = w.shape
    (pt, pb), (pl, pr) = pads
    sh, sw = strides
    dh, dw = dilations
    xp = np.zeros((n, h + pt + pb, wd + pl + pr, c))
    xp[:, pt:pt + h, pl:pl + wd, :] = x
    oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow = (wd + pl + pr - (kw - 1) * dw - 1) // sw + 1
    out = np.zeros((n, oh, ow, cout))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw]
            # einsum without optimize uses its own loops: 0 * NaN stays NaN (no BLAS shortcuts)
            out += np.einsum("nhwc,co->nhwo", patch, w[i, j], optimize=False)
    if bias is not None:
        out += np.asarray(bias, np.float64)
    if activation in ("relu", "relu6"):
        out = np.where(out < 0, 0.0, out)  # NaN < 0 is False: NaN stays
    if activation == "relu6":
        out = np.where(out > 6, 6.0, out)
    return out


def check(y, x, w, strides, pads, dilations, bias=None, activation=None):
    """y matches the reference: same NaN and Inf positions, finite values within
    a rounding tolerance relative to sum |x| |w| + |bias|."""
    ref = reference_conv(x, w, strides, pads, dilations, bias, activation)
    assert y.shape == ref.shape and y.dtype == x.dtype
    finite_x = np.where(np.isfinite(x), np.abs(x), 0.0)
    scale = reference_conv(finite_x, np.abs(w), strides, pads, dilations,
                           None if bias is None else np.abs(bias))
    eps = np.finfo(x.dtype).eps
    k = w.shape[0] * w.shape[1] * w.shape[2] + 1
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    inf = np.isinf(ref)
    np.testing.assert_array_equal(y[inf], ref[inf])
    fin = np.isfinite(ref)
    assert np.isfinite(y[fin]).all()
    err = np.abs(y[fin] - ref[fin])
    tol = 2 * k * eps * scale[fin] + np.finfo(x.dtype).tiny
    assert (err <= tol).all(), f"max error {err.max()} vs tolerance {tol[err.argmax()]}"


@pytest.fixture(params=ISAS)
def isa(request):
    before = _conv.isa()
    assert _conv.set_isa(request.param) == request.param
    yield request.param
    _conv.set_isa(before)


def run(x, w, strides, pads, dilations, bias=None, activation=None):
    return pyconv.nn.conv2d(x, w, strides, [tuple(pads[0]), tuple(pads[1])],
                            dilations=dilations, bias=bias, activation=activation)


def rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# (batch, h, w, cin, cout, kernel, strides, dilations, pads)
SHAPES = [
    (1, 1, 1, 1, 1, (1, 1), (1, 1), (1, 1), ((0, 0), (0, 0))),
    (2, 5, 5, 3, 1, (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1))),
    (1, 7, 7, 8, 32, (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1))),
    (3, 7, 7, 17, 33, (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1))),
    (1, 6, 9, 5, 15, (3, 3), (2, 2), (1, 1), ((0, 1), (1, 1))),
    (2, 11, 13, 4, 17, (3, 3), (1, 1), (2, 2), ((2, 2), (2, 2))),
    (1, 9, 10, 6, 47, (2, 3), (1, 2), (3, 1), ((0, 3), (2, 0))),
    (2, 4, 4, 2, 9, (5, 5), (1, 1), (1, 1), ((4, 4), (4, 4))),       # FULL: corners all padding
    (1, 3, 3, 7, 31, (3, 3), (1, 1), (1, 1), ((3, 3), (0, 5))),      # windows entirely in padding
    (2, 14, 14, 64, 40, (1, 1), (1, 1), (1, 1), ((0, 0), (0, 0))),   # 1x1 stride 1
    (1, 13, 11, 24, 20, (1, 1), (2, 2), (1, 1), ((0, 0), (0, 0))),   # 1x1 stride 2
    (1, 8, 8, 300, 19, (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1))),    # large cin
    (1, 5, 6, 513, 65, (1, 1), (1, 1), (1, 1), ((0, 0), (0, 0))),
    (2, 9, 9, 3, 64, (7, 7), (2, 2), (1, 1), ((3, 3), (3, 3))),      # resnet stem-like
    (1, 10, 3, 1, 2, (1, 3), (3, 1), (1, 1), ((0, 2), (1, 1))),
    (1, 17, 1, 5, 24, (4, 1), (1, 1), (2, 1), ((3, 2), (0, 0))),
    (1, 23, 2, 9, 8, (3, 1), (1, 1), (1, 1), ((1, 1), (0, 0))),      # 46 pixels: tails for MR 4/6/7
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"s{i}" for i in range(len(SHAPES))])
def test_shapes(isa, dtype, shape):
    n, h, wd, cin, cout, k, s, d, pads = shape
    rng = np.random.default_rng(hash(shape) % 2**32)
    x = rand(rng, (n, h, wd, cin), dtype)
    w = rand(rng, k + (cin, cout), dtype)
    check(run(x, w, s, pads, d), x, w, s, pads, d)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_input_channels_1_to_17(isa, dtype):
    rng = np.random.default_rng(7)
    pads = ((1, 1), (1, 1))
    for cin in range(1, 18):
        cout = (cin * 7) % 37 + 1
        x = rand(rng, (2, 5, 4 + cin % 5, cin), dtype)
        w = rand(rng, (3, 3, cin, cout), dtype)
        check(run(x, w, (1, 1), pads, (1, 1)), x, w, (1, 1), pads, (1, 1))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_output_channel_tails(isa, dtype):
    """Every cout from 1 to 65 covers nc = 1..NR-1 for NR in {4, 8, 16, 32}."""
    rng = np.random.default_rng(8)
    x = rand(rng, (1, 3, 5, 6), dtype)
    pads = ((1, 0), (0, 1))
    for cout in range(1, 66):
        w = rand(rng, (2, 2, 6, cout), dtype)
        check(run(x, w, (1, 1), pads, (1, 1)), x, w, (1, 1), pads, (1, 1))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("activation", [None, "relu", "relu6"])
def test_bias_and_activation(isa, dtype, activation):
    rng = np.random.default_rng(9)
    x = 3 * rand(rng, (2, 9, 7, 10), dtype)
    w = rand(rng, (3, 3, 10, 37), dtype)
    b = 4 * rand(rng, (37,), dtype)
    pads = ((1, 1), (2, 0))
    y = run(x, w, (1, 1), pads, (1, 1), bias=b, activation=activation)
    check(y, x, w, (1, 1), pads, (1, 1), b, activation)
    if activation is not None:
        assert y.min() == 0
    if activation == "relu6":
        assert y.max() == 6


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("activation", [None, "relu", "relu6"])
def test_nan_inf_propagate(isa, dtype, activation):
    rng = np.random.default_rng(10)
    x = rand(rng, (2, 8, 9, 5), dtype)
    x[0, 2, 3, 1] = np.nan
    x[1, 6, 0, 4] = np.inf
    x[1, 0, 8, 0] = -np.inf
    x[1, 7, 8, 2] = np.nan
    w = rand(rng, (3, 3, 5, 21), dtype)
    b = rand(rng, (21,), dtype)
    pads = ((1, 1), (1, 1))
    y = run(x, w, (1, 1), pads, (1, 1), bias=b, activation=activation)
    check(y, x, w, (1, 1), pads, (1, 1), b, activation)
    # NaN reaches exactly the outputs whose window covers it, all channels
    assert np.isnan(y[0, 1:4, 2:5]).all()
    assert np.isnan(y[0]).sum() == 9 * 21
    assert np.isinf(y[1]).any() or activation == "relu6"


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_nan_in_weights(isa, dtype):
    """0 * NaN is NaN: a NaN weight reaches every output, padded taps included."""
    rng = np.random.default_rng(11)
    x = rand(rng, (1, 4, 5, 3), dtype)
    w = rand(rng, (3, 3, 3, 9), dtype)
    w[0, 0, 1, 4] = np.nan
    pads = ((1, 1), (1, 1))
    y = run(x, w, (1, 1), pads, (1, 1), activation="relu")
    check(y, x, w, (1, 1), pads, (1, 1), activation="relu")
    assert np.isnan(y[..., 4]).all() and not np.isnan(np.delete(y, 4, axis=-1)).any()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_same_bits_for_any_thread_count(isa, dtype):
    rng = np.random.default_rng(12)
    x = rand(rng, (3, 19, 21, 40), dtype)
    w = rand(rng, (3, 3, 40, 70), dtype)
    b = rand(rng, (70,), dtype)
    pads = ((1, 1), (1, 1))
    before = pyconv.get_num_threads()
    try:
        outs = []
        for threads in (1, 2, 3, 5):
            pyconv.set_num_threads(threads)
            outs.append(run(x, w, (1, 1), pads, (1, 1), bias=b, activation="relu"))
    finally:
        pyconv.set_num_threads(before)
    check(outs[0], x, w, (1, 1), pads, (1, 1), b, "relu")
    for out in outs[1:]:
        assert out.tobytes() == outs[0].tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_every_isa_gives_the_same_bits(dtype):
    """Every kernel sums each output in the same order (bias, then taps, then
    channels) with fused multiply-adds, whatever its tile: same bits on every
    instruction set, also where tiles of different widths are chosen."""
    rng = np.random.default_rng(13)
    before = _conv.isa()
    for cout in (1, 8, 24, 50, 64):
        x = rand(rng, (2, 12, 11, 33), dtype)
        w = rand(rng, (3, 3, 33, cout), dtype)
        b = rand(rng, (cout,), dtype)
        outs = []
        try:
            for name in ISAS:
                _conv.set_isa(name)
                outs.append(run(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1), bias=b))
        finally:
            _conv.set_isa(before)
        for out in outs[1:]:
            assert out.tobytes() == outs[0].tobytes()


def test_set_isa_rejects_unknown_and_restores():
    before = _conv.isa()
    with pytest.raises(ValueError, match="isa"):
        _conv.set_isa("sse9")
    assert _conv.isa() == before
    assert _conv.set_isa(None) == ISAS[-1]  # None picks the best, listed last
    _conv.set_isa(before)
    assert "scalar" in ISAS


def test_fma_peak_is_measured():
    peak = _conv.fma_peak_gflops(0.02)
    assert isinstance(peak, float) and 0.1 < peak < 1e5
    assert _conv.fma_peak_gflops(seconds=0.01) > 0
    with pytest.raises(ValueError, match="seconds"):
        _conv.fma_peak_gflops(0.0)
