"""Winograd F(4x4, 3x3) and F(2x2, 3x3) (csrc/winograd.c), forced with
set_algorithm('winograd') / ('winograd_f2x2'), against the float64 reference of
tests/reference.py, on every ISA; and the 'auto' rule that picks them.

Their rounding error is not the direct convolution's: the transforms mix up to
36 inputs with coefficients up to 8 (outputs) and 5/2 (inputs), so the bound is
relative to the largest sum |x| |w| of the layer, not to each output's. The
worst case in tools/wino_error.py's sweep was ~6 eps * max(sum |x| |w|) for
F(4x4) (~10 with the points 0, +-1, +-2; direct ~2, F(2x2) ~1); the tests
allow 64. The fidelity measure of the TF fixtures, max|d| / max(1, max|y|),
must stay below their 1e-5 for long reductions too (the GEMM sums in blocks of
64 channels).
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pyconv
from pyconv import _conv
from reference import conv2d_reference, error_scale

ISAS = _conv.available_isas()
EPS = np.finfo(np.float32).eps


VARIANTS = ("winograd", "winograd_f2x2")


@pytest.fixture(params=VARIANTS)
def winograd(request):
    before = pyconv.set_algorithm(request.param)
    yield request.param
    pyconv.set_algorithm(before)


@pytest.fixture(params=ISAS)
def isa(request):
    before = _conv.isa()
    _conv.set_isa(request.param)
    yield request.param
    _conv.set_isa(before)


def raw(x, w, b, pads, act=0, ep=None):
    (pt, pb), (pl, pr) = pads
    args = [x, w, b, pt, pb, pl, pr, 1, 1, 1, 1, act]
    if ep is not None:
        args += list(ep)
    return _conv.conv2d(*args)


def direct(*args, **kw):
    before = pyconv.set_algorithm("direct")
    try:
        return raw(*args, **kw)
    finally:
        pyconv.set_algorithm(before)


def check(y, x, w, b, pads, act=0):
    ref = conv2d_reference(x, w, pads=pads, bias=b,
                           activation={0: None, 1: "relu", 2: "relu6"}[act])
    scale = error_scale(x, w, (1, 1), pads, (1, 1))
    bound = 64 * EPS * (scale.max() + (0 if b is None else np.abs(b).max())) + 1e-30
    err = np.abs(y - ref).max() if y.size else 0.0
    assert y.shape == ref.shape and y.dtype == np.float32
    assert err <= bound, f"max error {err} > {bound}"
    return err


def data(rng, n, h, w, ci, co, bias=True):
    x = rng.standard_normal((n, h, w, ci)).astype(np.float32)
    k = (rng.standard_normal((3, 3, ci, co)) / np.sqrt(9 * ci)).astype(np.float32)
    b = rng.standard_normal(co).astype(np.float32) if bias else None
    return x, k, b


@settings(max_examples=40, deadline=None)
@given(variant=st.sampled_from(VARIANTS), n=st.integers(1, 3), h=st.integers(1, 13), w=st.integers(1, 13),
       ci=st.integers(1, 40), co=st.integers(1, 70),
       pads=st.tuples(*[st.integers(0, 2)] * 4), act=st.integers(0, 2),
       bias=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_random_shapes_match_reference(variant, n, h, w, ci, co, pads, act, bias, seed):
    pt, pb, pl, pr = pads
    if h + pt + pb < 3 or w + pl + pr < 3:
        return
    x, k, b = data(np.random.default_rng(seed), n, h, w, ci, co, bias)
    before = pyconv.set_algorithm(variant)
    try:
        y = raw(x, k, b, ((pt, pb), (pl, pr)), act)
    finally:
        pyconv.set_algorithm(before)
    check(y, x, k, b, ((pt, pb), (pl, pr)), act)


# partial tiles at the right/bottom, channel counts past every NR and MR
@pytest.mark.parametrize("shape", [(1, 1, 1, 1, 1), (2, 5, 6, 3, 33), (1, 9, 7, 17, 65),
                                   (3, 14, 14, 64, 64), (1, 8, 8, 200, 40)])
def test_every_isa(isa, winograd, shape):
    x, k, b = data(np.random.default_rng(7), *shape)
    for pads in (((1, 1), (1, 1)), ((0, 0), (0, 0)), ((2, 0), (0, 1))):
        if shape[1] + sum(pads[0]) < 3 or shape[2] + sum(pads[1]) < 3:
            continue
        y = raw(x, k, b, pads, 1)
        check(y, x, k, b, pads, 1)
        # not the direct path in disguise
        assert not np.array_equal(y, direct(x, k, b, pads, 1)) or shape[3] == 1


@pytest.mark.parametrize("ci", [48, 150])  # one block of the GEMM's sums; three, the last partial
def test_same_bits_on_every_isa_and_thread_count(winograd, ci):
    x, k, b = data(np.random.default_rng(3), 4, 23, 19, ci, 72)
    before_isa, before_n = _conv.isa(), pyconv.get_num_threads()
    outs = []
    try:
        for name in ISAS:
            _conv.set_isa(name)
            for threads in (1, 2, 3, 7):
                pyconv.set_num_threads(threads)
                outs.append(raw(x, k, b, ((1, 1), (1, 1)), 2))
    finally:
        _conv.set_isa(before_isa)
        pyconv.set_num_threads(before_n)
    for y in outs[1:]:
        np.testing.assert_array_equal(y, outs[0])


def test_epilogue_matches_direct_epilogue_semantics(winograd):
    rng = np.random.default_rng(5)
    x, k, b = data(rng, 2, 10, 9, 20, 36)
    pre, scale, shift = (rng.standard_normal(36).astype(np.float32) for _ in range(3))
    res = rng.standard_normal((2, 10, 9, 36)).astype(np.float32)
    pads = ((1, 1), (1, 1))
    y = raw(x, k, b, pads, 2, (pre, scale, shift, res))
    conv = conv2d_reference(x, k, pads=pads, bias=b)
    ref = np.clip((conv + pre) * scale + shift + res, 0, 6)
    sc = error_scale(x, k, (1, 1), pads, (1, 1)).max() + np.abs(b).max()
    assert np.abs(y - ref).max() <= 64 * EPS * sc * np.abs(scale).max() + 4 * EPS * 6


@pytest.mark.parametrize("where", ["input", "weights"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_falls_back_to_direct(winograd, where, value):
    x, k, b = data(np.random.default_rng(9), 2, 9, 9, 8, 16)
    if where == "input":
        x[1, 4, 3, 2] = value
    else:
        k[1, 2, 5, 7] = value
    y = raw(x, k, b, ((1, 1), (1, 1)), 1)
    np.testing.assert_array_equal(y, direct(x, k, b, ((1, 1), (1, 1)), 1))  # same bits


def test_not_applicable_layers_stay_direct(winograd):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 9, 9, 4))
    k = rng.standard_normal((3, 3, 4, 5))
    np.testing.assert_array_equal(raw(x, k, None, ((1, 1), (1, 1))),
                                  direct(x, k, None, ((1, 1), (1, 1))))  # float64
    x32, k32 = x.astype(np.float32), k.astype(np.float32)
    strided = _conv.conv2d(x32, k32, None, 1, 1, 1, 1, 2, 2, 1, 1, 0)
    before = pyconv.set_algorithm("direct")
    try:
        np.testing.assert_array_equal(strided, _conv.conv2d(x32, k32, None, 1, 1, 1, 1, 2, 2,
                                                            1, 1, 0))
    finally:
        pyconv.set_algorithm(before)


def test_set_algorithm_validates_and_returns_previous():
    before = pyconv.get_algorithm()
    assert before in ("direct", "auto") + VARIANTS
    assert pyconv.set_algorithm("direct") == before
    assert pyconv.get_algorithm() == "direct"
    for bad in ("fast", None, 1, "Winograd"):
        with pytest.raises(ValueError, match="algorithm must be one of"):
            pyconv.set_algorithm(bad)
    assert pyconv.set_algorithm(before) == "direct"


@pytest.mark.parametrize("cin", [256, 1024, 2048])
def test_long_reductions_keep_tf_fidelity(winograd, cin):
    """max|d| / max(1, max|ref|), the TF fixtures' measure, stays under their
    float32 tolerance 1e-5 with 70% of it to spare (F(4x4) with the points
    0, +-1, +-2 gave 4.2e-6; with one float32 accumulator over all channels
    too, 1.5e-5 at 512 and 2.9e-5 at 2048 channels)."""
    rng = np.random.default_rng(cin)
    x = np.maximum(rng.standard_normal((1, 8, 8, cin)), 0).astype(np.float32)
    k = (rng.standard_normal((3, 3, cin, 16)) / np.sqrt(9 * cin)).astype(np.float32)
    pads = ((1, 1), (1, 1))
    ref = conv2d_reference(x, k, pads=pads)
    err = np.abs(raw(x, k, None, pads) - ref).max() / max(1.0, np.abs(ref).max())
    assert err < 3e-6, err


def pick(algorithm, *shape):
    x, k, b = data(np.random.default_rng(4), *shape)
    before = pyconv.set_algorithm(algorithm)
    try:
        return raw(x, k, b, ((1, 1), (1, 1)), 1)
    finally:
        pyconv.set_algorithm(before)


# (n, h, w, cin, cout) -> what 'auto' computes it with (the rule of csrc/module.c's
# wino_auto, from tools/wino_bench.py's measurements): F(2x2) with >= 49 tiles
# whose padding wastes <= 15%, never below 64 input or output channels; never
# F(4x4) (its error, larger than direct's, breaks the training-mode net fixtures)
AUTO_CASES = [((1, 28, 28, 64, 64), "winograd_f2x2"), ((1, 27, 40, 64, 72), "winograd_f2x2"),
              ((1, 14, 14, 64, 64), "winograd_f2x2"), ((1, 30, 29, 96, 80), "winograd_f2x2"),
              ((8, 7, 7, 128, 128), "direct"),  # 31% waste
              ((2, 16, 16, 32, 64), "direct"), ((1, 28, 28, 64, 32), "direct"),
              ((1, 13, 13, 64, 64), "direct")]  # 49 tiles, but 16% waste


@pytest.mark.parametrize("shape,expected", AUTO_CASES)
def test_auto_picks_by_layer_shape(shape, expected):
    y = pick("auto", *shape)
    np.testing.assert_array_equal(y, pick(expected, *shape))
    for other in ("direct",) + VARIANTS:
        if other != expected:
            assert not np.array_equal(y, pick(other, *shape))


def test_direct_forces_the_direct_path():
    shape = (1, 28, 28, 64, 64)  # auto's F(2x2)
    y = pick("direct", *shape)
    x, k, b = data(np.random.default_rng(4), *shape)
    ref = conv2d_reference(x, k, pads=((1, 1), (1, 1)), bias=b, activation="relu")
    assert not np.array_equal(y, pick("auto", *shape))
    # the direct path's own bound (2 eps of sum |x||w| measured), tighter than Winograd's
    scale = error_scale(x, k, (1, 1), ((1, 1), (1, 1)), (1, 1)).max() + np.abs(b).max()
    assert np.abs(y - ref).max() <= 8 * EPS * scale


def test_environment_variable():
    code = "import pyconv; print(pyconv.get_algorithm())"
    env = dict(os.environ, PYCONV_ALGORITHM="winograd")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "winograd", out.stderr
    env["PYCONV_ALGORITHM"] = "bogus"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "PYCONV_ALGORITHM must be one of" in out.stderr


@pytest.fixture
def cache_on():
    before = pyconv.set_weight_cache_limit(64 << 20)
    pyconv.clear_weight_cache()
    yield
    pyconv.clear_weight_cache()
    pyconv.set_weight_cache_limit(before)


@pytest.mark.parametrize("limit", [64 << 20, 0])
def test_cached_transformed_weights_follow_in_place_changes(isa, winograd, limit):
    """The transformed weights are kept in the weight cache and reused only
    while every byte of the filters matches; each change below must be seen
    (checked against the float64 reference, NaN against the direct bits).
    With the cache off the results are the same bits."""
    before = pyconv.set_weight_cache_limit(limit)
    pyconv.clear_weight_cache()
    try:
        x, k, b = data(np.random.default_rng(11), 2, 9, 10, 12, 40)
        pads = ((1, 1), (1, 1))
        first = raw(x, k, b, pads)
        check(first, x, k, b, pads)
        assert (_conv.weight_cache_bytes() > 0) == (limit > 0)
        np.testing.assert_array_equal(raw(x, k, b, pads), first)  # reused: same bits
        b2 = b + 1  # the bias is not in the transformed block: a new one is used as is
        check(raw(x, k, b2, pads), x, k, b2, pads)
        saved = k.copy()
        for change in ("first", "last", "middle", "sign_of_zero", "nan", "inf", "restore"):
            if change == "first":
                k[0, 0, 0, 0] += 1
            elif change == "last":
                k[-1, -1, -1, -1] -= 2
            elif change == "middle":
                k[1, 2, 5, 20] = 0.75
            elif change == "sign_of_zero":
                k[2, 1, 3, 7] = 0.0
                raw(x, k, b, pads)
                k[2, 1, 3, 7] = -0.0
            elif change == "nan":
                k[1, 1, 6, 9] = np.nan
            elif change == "inf":
                k[1, 1, 6, 9] = np.inf
            else:
                k[...] = saved
            y = raw(x, k, b, pads)
            if change in ("nan", "inf"):
                np.testing.assert_array_equal(y, direct(x, k, b, pads))
            else:
                check(y, x, k, b, pads)
        # after NaN weights the block is not trusted: the restored weights are
        # transformed again and give the first call's bits
        np.testing.assert_array_equal(y, first)
        np.testing.assert_array_equal(raw(x, k, b, pads), first)
    finally:
        pyconv.clear_weight_cache()
        pyconv.set_weight_cache_limit(before)


def test_non_finite_input_keeps_the_cached_weights(winograd, cache_on):
    x, k, b = data(np.random.default_rng(12), 1, 8, 8, 16, 24)
    pads = ((1, 1), (1, 1))
    first = raw(x, k, b, pads)
    bad = x.copy()
    bad[0, 3, 3, 3] = np.nan
    expected = direct(bad, k, b, pads)  # caches the direct packing too
    held = _conv.weight_cache_bytes()
    np.testing.assert_array_equal(raw(bad, k, b, pads), expected)
    assert _conv.weight_cache_bytes() == held
    np.testing.assert_array_equal(raw(x, k, b, pads), first)


def test_trusted_pin_is_checked_once_and_again_after_it_is_let_go(winograd, cache_on):
    """The transformed weights follow the weight cache's trusted pins as the
    direct packing does (tests/test_weight_pin.py): reused unchecked while a
    trusted pin of a read-only array is held, checked byte for byte for a
    writeable array or once the pin is let go."""
    x, w, b = data(np.random.default_rng(13), 1, 9, 9, 24, 40)
    pads = ((1, 1), (1, 1))
    w.flags.writeable = False
    pin = _conv.pin_weights(w, True)
    first = raw(x, w, b, pads)
    check(first, x, w, b, pads)
    np.testing.assert_array_equal(raw(x, w, b, pads), first)  # reused unchecked
    w.flags.writeable = True  # writeable: checked, the change is seen
    w[1, 1, 3, 4] += 5.0
    check(raw(x, w, b, pads), x, w, b, pads)
    del pin  # let go: checked again even though read-only now
    w[0, 2, 1, 1] -= 4.0
    w.flags.writeable = False
    check(raw(x, w, b, pads), x, w, b, pads)
    w.flags.writeable = True
    w[2, 0, 7, 30] = np.nan  # and non-finite weights still fall back to direct
    np.testing.assert_array_equal(raw(x, w, b, pads), direct(x, w, b, pads))
