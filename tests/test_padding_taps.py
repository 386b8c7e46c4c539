"""Taps wholly in the padding are skipped, with the bits of the full sum.

In a dilated layer (DeepLab's ASPP: 3x3 at rate 6..24 on a 33x33 or 65x65
map) many of a border pixel's taps read only the zero vector. The igemm
operator lists each pixel tile's live taps and its kernels sum only those
(csrc/conv.c, build_tiles and tile_kernel). The result must be that of the
full sum, bit for bit: with finite weights the skipped terms are +-0, which
can change only the sign of a zero result (the operator then recomputes the
tile in full); with a NaN or an infinity among the weights, 0 * w is NaN as
in TensorFlow's explicitly padded convolution, so nothing is skipped.

The full sum is computed independently of the skipping code by padding the
input with real zeros and convolving VALID: no tap then reads the zero
vector, the sums have the same terms in the same order, so the bits must be
equal; values are also checked against the float64 reference.
"""

import numpy as np
import pytest
from reference import conv2d_reference, error_scale, same_pads

import pyconv
from pyconv import _conv

nn = pyconv.nn
ISAS = _conv.available_isas()


@pytest.fixture
def restore():
    isa, threads, algo = _conv.isa(), pyconv.get_num_threads(), pyconv.get_algorithm()
    pyconv.set_algorithm("direct")
    yield
    _conv.set_isa(isa)
    pyconv.set_num_threads(threads)
    pyconv.set_algorithm(algo)


def _pads(h, w, k, rate, kind):
    if kind == "same":
        return same_pads(h, k[0], 1, rate[0]), same_pads(w, k[1], 1, rate[1])
    if kind == "full":
        return ((k[0] - 1) * rate[0],) * 2, ((k[1] - 1) * rate[1],) * 2
    return (kind[0], kind[1]), (kind[2], kind[3])  # explicit, uneven


def _both(x, w, pads, rate, strides=(1, 1), bias=None, activation=None):
    """pyconv with padding (taps skipped) and on the zero-padded input (no tap
    in the padding: the full sum)."""
    (pt, pb), (pl, pr) = pads
    y = nn.conv2d(x, w, strides, [[0, 0], [pt, pb], [pl, pr], [0, 0]], dilations=rate,
                  bias=bias, activation=activation)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    full = nn.conv2d(xp, w, strides, "VALID", dilations=rate, bias=bias,
                     activation=activation)
    return y, full


def _same_bits(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(
        a.view(np.uint8), b.view(np.uint8))


# (h, w, cin, cout, kernel, rate, padding, strides): taps wholly in the
# padding for many tiles; uneven and huge pads (whole windows in the
# padding), rate along one axis only (merged tap rows), strides, more than
# 4096 terms (blocked sums: 520 * 9 = 4680, 260 * 25), 1..33+ output channels
CASES = [
    (9, 9, 5, 7, (3, 3), (2, 2), "same", (1, 1)),
    (13, 11, 3, 40, (3, 3), (4, 4), "same", (1, 1)),
    (33, 33, 16, 33, (3, 3), (12, 12), "same", (1, 1)),
    (17, 17, 8, 16, (3, 3), (18, 18), "same", (1, 1)),
    (10, 12, 6, 3, (3, 3), (3, 5), (1, 7, 9, 0), (1, 1)),
    (8, 9, 2, 5, (5, 5), (2, 2), "full", (1, 1)),
    (12, 10, 4, 9, (3, 3), (3, 1), "same", (1, 1)),
    (14, 15, 7, 20, (3, 2), (4, 3), "same", (2, 3)),
    (9, 9, 520, 40, (3, 3), (3, 3), "same", (1, 1)),
    (7, 7, 260, 17, (5, 5), (2, 2), "same", (1, 1)),
    (7, 7, 600, 9, (3, 3), (1, 1), "same", (1, 1)),
    (5, 6, 3, 4, (3, 3), (2, 2), (20, 3, 0, 15), (1, 1)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_skipped_taps_keep_the_bits_of_the_full_sum(restore, dtype):
    rng = np.random.default_rng(1)
    for h, wd, cin, cout, k, rate, kind, strides in CASES:
        x = rng.standard_normal((2, h, wd, cin)).astype(dtype)
        w = rng.standard_normal((*k, cin, cout)).astype(dtype)
        b = rng.standard_normal(cout).astype(dtype)
        pads = _pads(h, wd, k, rate, kind)
        ref = conv2d_reference(x, w, strides, pads, rate, bias=b)
        scale = error_scale(x, w, strides, pads, rate) + 1.0
        eps = np.finfo(dtype).eps
        for isa in ISAS:
            _conv.set_isa(isa)
            first = None
            for threads in (1, 2, 3):
                pyconv.set_num_threads(threads)
                act = "relu" if threads == 2 else None
                y, full = _both(x, w, pads, rate, strides, bias=b, activation=act)
                assert _same_bits(y, full), (isa, threads, h, wd, cin, cout, k, rate, kind)
                if act is None:
                    err = np.max(np.abs(y - ref) / scale)
                    assert err < 8 * eps, (isa, h, wd, cin, k, rate, err)
                    if first is None:
                        first = y
                    assert _same_bits(y, first), (isa, threads)


def test_aspp_sized_layer_matches_the_full_sum(restore):
    """2048 input channels (18432-term sums in 5 blocks), rate 12 on 17x17:
    most tiles skip taps whose weights span block boundaries."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 17, 17, 2048)).astype(np.float32)
    w = rng.standard_normal((3, 3, 2048, 8)).astype(np.float32)
    pads = _pads(17, 17, (3, 3), (12, 12), "same")
    for isa in ISAS:
        _conv.set_isa(isa)
        y, full = _both(x, w, pads, (12, 12))
        assert _same_bits(y, full), isa
    ref = conv2d_reference(x, w, (1, 1), pads, (12, 12))
    scale = error_scale(x, w, (1, 1), pads, (12, 12))
    assert np.max(np.abs(y - ref) / scale) < 1e-5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", [None, "relu"])
def test_sign_of_zero_results(restore, dtype, activation):
    """Zero input, bias -0.0. Weights +1 on the first row of taps, -1 below:
    by IEEE 754 the full sum of a top pixel is -0 + (+0) (its first row's
    taps read padding, 0 * +1) = +0, then + -0 terms: +0. Without its padding
    taps the sum would be -0.0: the operator must notice and give +0.0.
    With all weights -1 every term is -0 and -0.0 is the right answer."""
    x = np.zeros((1, 13, 13, 3), dtype)
    bias = np.full(5, -0.0, dtype)
    pads = _pads(13, 13, (3, 3), (4, 4), "same")
    w_mixed = -np.ones((3, 3, 3, 5), dtype)
    w_mixed[0] = 1.0
    w_neg = -np.ones((3, 3, 3, 5), dtype)
    for isa in ISAS:
        _conv.set_isa(isa)
        for threads in (1, 2):
            pyconv.set_num_threads(threads)
            y, full = _both(x, w_mixed, pads, (4, 4), bias=bias, activation=activation)
            assert not np.signbit(y).any(), (isa, threads)
            assert _same_bits(y, full)
            y, full = _both(x, w_neg, pads, (4, 4), bias=bias, activation=activation)
            assert np.signbit(y).all() and (y == 0).all(), (isa, threads)
            assert _same_bits(y, full)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_nonfinite_weights_make_padding_taps_nan(restore, bad):
    """A NaN or infinite weight on a tap that lies in the padding for the
    border pixels: 0 * w is NaN there, as TF's zero-padded convolution gives,
    so those outputs are NaN; elsewhere the weight meets real inputs."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0.5, 1.5, (1, 13, 13, 4)).astype(np.float32)
    w = rng.standard_normal((3, 3, 4, 6)).astype(np.float32)
    w[0, 0, 1, 2] = bad
    pads = _pads(13, 13, (3, 3), (4, 4), "same")
    with np.errstate(invalid="ignore"):
        ref = conv2d_reference(x, w, (1, 1), pads, (4, 4))
    for isa in ISAS:
        _conv.set_isa(isa)
        y, full = _both(x, w, pads, (4, 4))
        assert _same_bits(y, full), isa
        assert np.array_equal(np.isnan(y), np.isnan(ref)), isa
        assert np.isnan(y[0, :4, :, 2]).all() and np.isnan(y[0, :, :4, 2]).all()
        finite = np.isfinite(ref)
        assert np.array_equal(np.isinf(y), np.isinf(ref))
        assert np.allclose(y[finite], ref[finite], rtol=1e-5, atol=1e-5)


def test_nonfinite_inputs_in_dilated_layers(restore):
    """NaN and infinite inputs reach exactly the outputs whose live taps read
    them (and 0 * inf never happens: padding taps read zeros, weights are
    finite)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 15, 15, 6)).astype(np.float32)
    x[0, 0, 0, 1] = np.nan
    x[0, 7, 14, 3] = np.inf
    x[1, 14, 2, 0] = -np.inf
    x[1, 3, 3, 5] = np.nan
    w = rng.uniform(0.5, 1.0, (3, 3, 6, 10)).astype(np.float32)
    pads = _pads(15, 15, (3, 3), (5, 5), "same")
    with np.errstate(invalid="ignore"):
        ref = conv2d_reference(x, w, (1, 1), pads, (5, 5))
    for isa in ISAS:
        _conv.set_isa(isa)
        for threads in (1, 3):
            pyconv.set_num_threads(threads)
            y, full = _both(x, w, pads, (5, 5))
            assert _same_bits(y, full), (isa, threads)
            assert np.array_equal(np.isnan(y), np.isnan(ref))
            assert np.array_equal(np.isposinf(y), np.isposinf(ref))
            assert np.array_equal(np.isneginf(y), np.isneginf(ref))


def test_reused_packing_remembers_nonfinite_weights(restore):
    """The finiteness of the weights is stored with their packing: a call that
    reuses the cached packing (same array, unchanged) must still not skip
    padding taps if a weight is infinite, and must skip again once the
    array is made finite in place."""
    limit = pyconv.set_weight_cache_limit(1 << 26)
    try:
        rng = np.random.default_rng(5)
        x = rng.uniform(0.5, 1.5, (1, 11, 11, 3)).astype(np.float32)
        w = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
        w[0, 1, 0, 0] = np.inf
        pads = _pads(11, 11, (3, 3), (3, 3), "same")
        for _ in range(3):
            y, full = _both(x, w, pads, (3, 3))
            assert _same_bits(y, full)
            assert np.isnan(y[0, :3, :, 0]).all()
        w[0, 1, 0, 0] = 1.0
        y, full = _both(x, w, pads, (3, 3))
        assert _same_bits(y, full) and np.isfinite(y).all()
    finally:
        pyconv.set_weight_cache_limit(limit)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiles_built_by_their_task_or_in_a_pass_agree(restore, dtype):
    """At batch 1 each pixel tile's pointers are built by the task that runs
    it; at batch 2 in a pass before. Images computed alone or together must
    have the same bits, for merged tap rows (ResNet's 7x7 stride-2 first
    layer, VGG's 3x3 on 3 channels), edge tiles and padding taps, and match
    the float64 reference."""
    rng = np.random.default_rng(6)
    for h, cin, cout, k, s, rate in [(30, 3, 64, 7, 2, 1), (23, 3, 40, 3, 1, 1),
                                     (17, 5, 33, 3, 1, 4), (9, 2, 7, 5, 3, 2)]:
        x = rng.standard_normal((2, h, h + 1, cin)).astype(dtype)
        w = rng.standard_normal((k, k, cin, cout)).astype(dtype)
        pads = same_pads(h, k, s, rate), same_pads(h + 1, k, s, rate)
        padding = [[0, 0], list(pads[0]), list(pads[1]), [0, 0]]
        ref = conv2d_reference(x, w, (s, s), pads, (rate, rate))
        scale = error_scale(x, w, (s, s), pads, (rate, rate)) + 1.0
        for isa in ISAS:
            _conv.set_isa(isa)
            for threads in (1, 2, 3):
                pyconv.set_num_threads(threads)
                both = nn.conv2d(x, w, s, padding, dilations=rate)
                for i in range(2):
                    alone = nn.conv2d(x[i:i + 1], w, s, padding, dilations=rate)
                    assert _same_bits(alone, both[i:i + 1]), (isa, threads, h, k, s, rate, i)
                err = np.max(np.abs(both - ref) / scale)
                assert err < 8 * np.finfo(dtype).eps, (isa, h, k, err)


def test_fused_epilogue_on_grouped_pixels(restore):
    """Long sums on a dilated layer: tiles take pixels grouped by their live
    taps, through a scratch tile; the fused epilogue (batch norm terms and a
    residual, then ReLU6) must find each pixel's own residual."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 11, 13, 70)).astype(np.float32)
    w = rng.standard_normal((3, 3, 70, 40)).astype(np.float32)
    pre, scale, shift = (rng.standard_normal(40).astype(np.float32) for _ in range(3))
    residual = rng.standard_normal((2, 11, 13, 40)).astype(np.float32)
    pads = _pads(11, 13, (3, 3), (3, 3), "same")
    (pt, pb), (pl, pr) = pads
    padding = [[0, 0], [pt, pb], [pl, pr], [0, 0]]
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    ep = (pre, scale, shift, residual)
    plain = conv2d_reference(x, w, (1, 1), pads, (3, 3))
    ref = np.clip((plain + pre) * scale + shift + residual, 0, 6)
    for isa in ISAS:
        _conv.set_isa(isa)
        for threads in (1, 2):
            pyconv.set_num_threads(threads)
            y = nn._conv2d(x, w, 1, padding, "NHWC", 3, None, "relu6", epilogue=ep)
            full = nn._conv2d(xp, w, 1, "VALID", "NHWC", 3, None, "relu6", epilogue=ep)
            assert _same_bits(y, full), (isa, threads)
            assert np.max(np.abs(y - ref)) < 1e-3
