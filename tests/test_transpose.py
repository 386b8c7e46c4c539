"""Transposed convolution: ``nn.conv2d_transpose``, ``nn.conv2d_backprop_input``
and the slim layer ``conv2d_transpose``, against

* TF fixtures (``tests/fixtures/tf/transpose.npz``, written by
  ``tools/tf_reference/gen_transpose.py``), replayed without TensorFlow, and the
  same generator run live in the ``-m tf`` tier;
* the float64 definition in ``tests/reference.py``
  (``conv2d_transpose_reference``: every input pixel times the kernel added into
  its output window) over random shapes with hypothesis, on every ISA;
* thread-count and ISA determinism, memory layouts, the weight cache, NaN/Inf,
  and bad input.

Tolerances are Part 1's (``slim_replay.TOLERANCE``): max |pyconv - TF| /
max(1, max |TF|) <= 1e-5 for float32, 1e-12 for float64 (1e-2 float16).
"""

import os
import random
import sys

import numpy as np
import pytest
import slim_replay
from hypothesis import given
from hypothesis import strategies as st
from reference import conv2d_transpose_reference, transpose_pads

import pyconv
import pyconv as slim
from pyconv import _conv, _memory

nn = pyconv.nn
HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, "..", "tools", "tf_reference"))
import generate_fixtures  # pure Python until TF is asked for

FIXTURE = os.path.join(HERE, "fixtures", "tf", "transpose.npz")
ISAS = _conv.available_isas()

# (tier, dtype) -> (largest scaled error vs TF, where); printed by test_report_errors
MAX_ERROR = {}

_loaded = {}


def _fixture():
    if "data" not in _loaded:
        configs, meta, data = generate_fixtures.load_family(FIXTURE)
        _loaded["data"] = {k: data[k] for k in data.files}
        _loaded["configs"] = configs
        _loaded["meta"] = meta
    return _loaded["configs"], _loaded["data"]


def _close(actual, expected, dtype, what, tier, tf_error=0.0):
    err = slim_replay.scaled_error(actual, expected) if np.asarray(expected).size else 0.0
    key = (tier, dtype)
    if err > MAX_ERROR.get(key, (-1.0,))[0]:
        MAX_ERROR[key] = (err, what)
    slim_replay.close(actual, expected, dtype, what, tier, tf_error)


def replay(cfg, data, tier):
    """One configuration of gen_transpose's format through pyconv."""
    cid = cfg["id"]
    kwargs = slim_replay.resolve(cfg["kwargs"], data, cid)
    x = data[f"{cid}/input"]
    if "error" in cfg:
        error = cfg["error"]
        exc = {"ValueError": ValueError, "TypeError": TypeError}[error["pyconv_expected_type"]]
        with slim.VariableStore(seed=0):
            with pytest.raises(exc) as info:
                slim_replay.function(cfg["function"])(x, **kwargs)
            assert slim.get_variables() == []
        for phrase in error["match"]:
            assert phrase in str(info.value), (phrase, str(info.value), error["tf_message"])
        return
    if cfg["function"].startswith("nn."):
        out = slim_replay.function(cfg["function"])(**{cfg["input_arg"]: x}, **kwargs)
        assert out.dtype == np.dtype(cfg["dtype"]), (out.dtype, cfg["dtype"])
        assert out.flags.c_contiguous
        _close(out, data[f"{cid}/expected"], cfg["dtype"], f"transpose/{cid}", tier,
               cfg.get("ref_max_abs_err", 0.0) if cfg["dtype"] == "float16" else 0.0)
        return
    # the slim layer: output, variables, moving statistics, regularization losses
    with slim.VariableStore(seed=0) as store:
        out = slim_replay.call(cfg["function"], x, cfg["kwargs"], data, cid,
                               cfg.get("arg_scope"), cfg.get("variable_scope"))
        assert out.dtype == np.dtype(cfg["dtype"])
        _close(out, data[f"{cid}/expected"], cfg["dtype"], f"transpose/{cid}", tier,
               cfg.get("ref_max_abs_err", 0.0))
        slim_replay.check_variables(cfg)
        # batch norm queues its moving-average updates as UPDATE_OPS, as slim
        if "n_update_ops" in cfg:
            assert len(slim.get_collection(slim.GraphKeys.UPDATE_OPS)) == cfg["n_update_ops"]
        slim.run_update_ops()
        for name in cfg.get("updated", []):
            expected = data[f"{cid}/after/{name}"]
            _close(store[name], expected, str(expected.dtype), f"transpose/{cid} after/{name}",
                   tier)
        slim_replay.check_regularization(cfg, data, tier)


def _configs():
    if not os.path.exists(FIXTURE):
        return [pytest.param(None, marks=pytest.mark.skip(reason="no transpose.npz"))]
    configs, _ = _fixture()
    return [pytest.param(c, id=c["id"]) for c in configs]


@pytest.mark.parametrize("cfg", _configs())
def test_tf_fixture(cfg):
    _, data = _fixture()
    assert not cfg.get("ref_mismatch"), "TF differs from the float64 reference (generator)"
    replay(cfg, data, "replay")


def test_fixture_coverage():
    """The fixtures cover what the task asks for (counts in the report)."""
    configs, _ = _fixture()
    kinds = {}
    for c in configs:
        kinds.setdefault("error" if "error" in c else c["function"], []).append(c)
    assert len(kinds["nn.conv2d_transpose"]) >= 60
    assert len(kinds["nn.conv2d_backprop_input"]) >= 30
    assert len(kinds["conv2d_transpose"]) >= 60
    assert len(kinds["error"]) >= 15
    nn_cfgs = kinds["nn.conv2d_transpose"] + kinds["nn.conv2d_backprop_input"]
    assert {c["dtype"] for c in nn_cfgs} == {"float16", "float32", "float64"}
    assert {c["data_format"] for c in nn_cfgs} == {"NHWC", "NCHW"}
    paddings = {c["tf"]["padding"] if isinstance(c["tf"]["padding"], str) else "explicit"
                for c in nn_cfgs}
    assert paddings == {"SAME", "VALID", "explicit"}
    assert {c["input_shape"][0] for c in nn_cfgs} == {1, 2, 3}
    # not only the smallest output size: SAME outputs below in * s appear
    assert any(c["tf"]["padding"] == "SAME" and c["expected_shape"][1 if c["data_format"] ==
               "NHWC" else 2] < c["input_shape"][1 if c["data_format"] == "NHWC" else 2] *
               c["tf"]["strides"][1] for c in nn_cfgs)
    layer = kinds["conv2d_transpose"]
    assert {c["data_format"] for c in layer} == {"NHWC", "NCHW"}
    assert {c["dtype"] for c in layer} == {"float32", "float64"}
    assert any("normalizer_fn" in c["kwargs"] for c in layer)
    assert any(c["kwargs"].get("biases_initializer", 0) is None for c in layer)
    assert {c["kwargs"]["padding"] for c in layer} == {"SAME", "VALID"}


@pytest.mark.tf
def test_live_tf():
    """gen_transpose run now, with a random seed (PYCONV_TF_SEED repeats one)."""
    import gen_transpose

    seed = int(os.environ.get("PYCONV_TF_SEED", random.randrange(1 << 30)))
    configs, arrays, _ = gen_transpose.generate(seed, n_nn=40, n_slim=20)
    for cfg in configs:
        assert not cfg.get("ref_mismatch"), (seed, cfg["id"])
        try:
            replay(cfg, arrays, "live")
        except AssertionError as exc:
            raise AssertionError(f"seed {seed} (PYCONV_TF_SEED={seed}), {cfg['id']}: {exc}")


# ---------------------------------------------------------------- float64 reference

def _check_against_reference(y, x, w, strides, pads, out_hw, bias=None, activation=None):
    """Same NaN/Inf positions as the definition; finite values within a rounding
    tolerance relative to sum |x| |w| + |bias|."""
    ref = conv2d_transpose_reference(x, w, strides, pads, out_hw, bias, activation)
    assert y.shape == ref.shape
    fx = np.where(np.isfinite(x), np.abs(np.asarray(x, np.float64)), 0.0)
    fw = np.where(np.isfinite(w), np.abs(np.asarray(w, np.float64)), 0.0)
    scale = conv2d_transpose_reference(fx, fw, strides, pads, out_hw,
                                       None if bias is None else np.abs(bias))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    inf = np.isinf(ref)
    np.testing.assert_array_equal(y[inf], ref[inf])
    fin = np.isfinite(ref)
    terms = w.shape[0] * w.shape[1] * w.shape[3] + 1
    if y.dtype == np.float16:
        tol = (np.finfo(np.float16).eps * (np.abs(ref[fin]) + 1e-3)
               + 2 * terms * np.finfo(np.float32).eps * scale[fin])
    else:
        eps = np.finfo(y.dtype).eps
        tol = 2 * terms * eps * scale[fin] + np.finfo(y.dtype).tiny
    err = np.abs(y[fin].astype(np.float64) - ref[fin])
    assert (err <= tol).all(), f"max error {err.max()} vs tolerance {tol[err.argmax()]}"
    return float((err / np.maximum(scale[fin], 1e-300)).max()) if err.size else 0.0


def _to_nchw(a):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


@st.composite
def transpose_cases(draw):
    kh, kw = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    kind = draw(st.sampled_from(["SAME", "VALID", "FULL", "explicit"]))
    if kind == "explicit":
        padding = ((draw(st.integers(0, 6)), draw(st.integers(0, 6))),
                   (draw(st.integers(0, 6)), draw(st.integers(0, 6))))
    else:
        padding = kind

    def outputs(n_in, k, s, pad):
        if pad == "SAME":
            return list(range(max(1, (n_in - 1) * s + 1), n_in * s + 1))
        before, after = {"VALID": (0, 0), "FULL": (k - 1, k - 1)}.get(pad, pad)
        lo = (n_in - 1) * s + k - before - after
        return [o for o in range(max(1, lo), lo + s)]

    oh_choices = outputs(h, kh, sh, padding if isinstance(padding, str) else padding[0])
    ow_choices = outputs(w, kw, sw, padding if isinstance(padding, str) else padding[1])
    if not oh_choices or not ow_choices:
        padding, oh_choices, ow_choices = "SAME", [h * sh], [w * sw]
    oh, ow = draw(st.sampled_from(oh_choices)), draw(st.sampled_from(ow_choices))
    n = draw(st.integers(1, 3))
    cin, cout = draw(st.integers(1, 20)), draw(st.integers(1, 40))
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    fmt = draw(st.sampled_from(["NHWC", "NCHW"]))
    bias = draw(st.booleans())
    activation = draw(st.sampled_from([None, "relu", "relu6"]))
    seed = draw(st.integers(0, 2**31 - 1))
    return (kh, kw, sh, sw, h, w, padding, oh, ow, n, cin, cout, dtype, fmt, bias, activation,
            seed)


MAX_REF_ERROR = {}


@given(transpose_cases())
def test_matches_the_definition_on_every_isa(case):
    (kh, kw, sh, sw, h, w, padding, oh, ow, n, cin, cout, dtype, fmt, use_bias, activation,
     seed) = case
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, (n, h, w, cin)).astype(dtype)
    f = rng.uniform(-1, 1, (kh, kw, cout, cin)).astype(dtype)
    b = rng.uniform(-1, 1, cout).astype(dtype) if use_bias else None
    pads = tuple(transpose_pads(padding if isinstance(padding, str) else padding[d],
                                (oh, ow)[d], (kh, kw)[d], (sh, sw)[d]) for d in range(2))
    shape = (n, cout, oh, ow) if fmt == "NCHW" else (n, oh, ow, cout)
    xin = _to_nchw(x) if fmt == "NCHW" else x
    before = _conv.isa()
    results = []
    try:
        for isa in ISAS:
            _conv.set_isa(isa)
            y = nn.conv2d_transpose(xin, f, shape, (sh, sw), padding, fmt, bias=b,
                                    activation=activation)
            assert y.dtype == dtype and y.shape == shape and y.flags.c_contiguous
            results.append(y)
    finally:
        _conv.set_isa(before)
    y = results[0]
    if fmt == "NCHW":
        y = np.ascontiguousarray(y.transpose(0, 2, 3, 1))
    err = _check_against_reference(y, x, f, (sh, sw), pads, (oh, ow), b, activation)
    key = np.dtype(dtype).name
    MAX_REF_ERROR[key] = max(MAX_REF_ERROR.get(key, 0.0), err)
    for other in results[1:]:  # every ISA sums in the same order: the same bits
        np.testing.assert_array_equal(other, results[0])


def test_backprop_input_is_conv2d_transpose():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, 4, 6)).astype(np.float32)
    f = rng.standard_normal((3, 4, 7, 6)).astype(np.float32)
    a = nn.conv2d_transpose(x, f, [2, 10, 7, 7], [1, 2, 2, 1], "SAME")
    b = nn.conv2d_backprop_input([2, 10, 7, 7], f, x, [1, 2, 2, 1], "SAME")
    c = nn.conv2d_backprop_input(input_sizes=[10, 7], filters=f, out_backprop=x, strides=2,
                                 padding="SAME")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_is_the_gradient_of_conv2d():
    """<conv2d(u, w), v> == <u, conv2d_transpose(v, w)> for every padding: the
    transposed convolution is the adjoint of the forward one."""
    rng = np.random.default_rng(4)
    for padding, size in (("SAME", 9), ("VALID", 9), ("SAME", 8), (((2, 0), (1, 3)), 8)):
        u = rng.standard_normal((2, size, size + 1, 3))
        w = rng.standard_normal((3, 4, 3, 5))
        fwd = nn.conv2d(u, w, 2, padding)
        v = rng.standard_normal(fwd.shape)
        back = nn.conv2d_transpose(v, w, u.shape, 2, padding)
        assert abs(np.vdot(fwd, v) - np.vdot(u, back)) < 1e-10 * abs(np.vdot(fwd, v)) + 1e-10


def test_stride_larger_than_kernel_leaves_bias_only_pixels():
    """Phases no tap reaches hold the (activated) bias, as TF."""
    x = np.ones((1, 2, 2, 1), np.float32)
    w = np.full((1, 1, 2, 1), 2.0, np.float32)
    y = nn.conv2d_transpose(x, w, [1, 6, 6, 2], 3, "VALID", bias=[-1.0, 7.0],
                            activation="relu6")
    expected = np.zeros((6, 6, 2), np.float32)
    expected[:, :, 0], expected[:, :, 1] = 0.0, 6.0
    expected[::3, ::3, 0] = 1.0
    np.testing.assert_array_equal(y[0], expected)


@pytest.mark.parametrize("cout", [4, 12])  # the column path (out_c <= 8) and the phase path
def test_nan_and_inf_propagate_as_tf(cout):
    """Input NaN/Inf reach exactly the outputs their taps reach; a NaN or Inf
    weight only the outputs where that tap sees a real input pixel (TF forms no
    products with the padding), on every ISA."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 4, 5, 3))
    w = rng.standard_normal((3, 3, cout, 3))
    x[0, 1, 2, 0] = np.nan
    x[0, 3, 4, 1] = np.inf
    w2 = w.copy()
    w2[0, 2, 1, 2] = np.inf
    w2[2, 0, 3, 0] = np.nan
    before = _conv.isa()
    try:
        for isa in ISAS:
            _conv.set_isa(isa)
            for dtype in (np.float32, np.float64):
                for xx, ww in ((x, w), (np.nan_to_num(x, posinf=5.0), w2), (x, w2)):
                    for padding, out in (("SAME", (8, 10)), ("VALID", (9, 11)),
                                         ("SAME", (7, 9))):
                        y = nn.conv2d_transpose(xx.astype(dtype), ww.astype(dtype),
                                                (1,) + out + (cout,), 2, padding)
                        pads = tuple(transpose_pads(padding, out[d], 3, 2) for d in range(2))
                        _check_against_reference(y, xx.astype(dtype), ww.astype(dtype),
                                                 (2, 2), pads, out)
    finally:
        _conv.set_isa(before)


def test_bit_identical_for_every_thread_count():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 9, 11, 40)).astype(np.float32)
    w = rng.standard_normal((5, 5, 70, 40)).astype(np.float32)
    b = rng.standard_normal(70).astype(np.float32)
    before = pyconv.get_num_threads()
    outs = []
    try:
        for threads in (1, 2, 3, 8):
            pyconv.set_num_threads(threads)
            outs.append(nn.conv2d_transpose(x, w, [3, 18, 22, 70], 2, "SAME", bias=b,
                                            activation="relu"))
            outs.append(nn.conv2d_transpose(x.astype(np.float64), w.astype(np.float64),
                                            [3, 21, 25, 70], [2, 2], "VALID"))
            outs.append(nn.conv2d_transpose(x, w[:, :, :3], [3, 27, 33, 3], 3, "SAME",
                                            bias=b[:3], activation="relu6"))
    finally:
        pyconv.set_num_threads(before)
    for i in range(3, len(outs)):
        np.testing.assert_array_equal(outs[i], outs[i % 3])


def test_memory_layouts_give_the_same_result():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 5, 6, 4))
    w = rng.standard_normal((3, 3, 5, 4))
    ref = nn.conv2d_transpose(x, w, [2, 10, 12, 5], 2)
    variants = [np.asfortranarray(x), x[:, ::-1][:, ::-1], x.astype(">f8"),
                np.lib.stride_tricks.as_strided(x, x.shape, x.strides)]
    ro = x.copy()
    ro.setflags(write=False)
    variants.append(ro)
    for v in variants:
        np.testing.assert_array_equal(nn.conv2d_transpose(v, w, [2, 10, 12, 5], 2), ref)
    np.testing.assert_array_equal(
        nn.conv2d_transpose(x, np.asfortranarray(w), [2, 10, 12, 5], 2), ref)
    np.testing.assert_array_equal(
        nn.conv2d_transpose(x.tolist(), w.tolist(), (2, 10, 12, 5), 2), ref)
    assert np.array_equal(x, variants[0])  # inputs untouched


@pytest.mark.parametrize("cout,cin", [(6, 6), (12, 16), (37, 20)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_filters_changed_in_place_are_seen(cout, cin, dtype):
    """The packed weights are cached between calls and checked against the
    filters: a change in place, anywhere, must give the new result (and conv2d
    on the same array has its own packing). Both paths, every check branch."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 4, 4, cin)).astype(dtype)
    w = rng.standard_normal((3, 3, cout, cin)).astype(dtype)
    a = nn.conv2d_transpose(x, w, [1, 8, 8, cout], 2)
    if cin == cout:
        c = nn.conv2d(x, w, 1)
    np.testing.assert_array_equal(nn.conv2d_transpose(x, w, [1, 8, 8, cout], 2), a)
    for where in [(0, 0, 0, 0), (1, 1, cout // 2, cin - 1), (2, 2, cout - 1, cin // 3),
                  (2, 0, cout - 1, cin - 1)]:
        saved = w[where]
        w[where] += 1.0
        b = nn.conv2d_transpose(x, w, [1, 8, 8, cout], 2)
        ref = conv2d_transpose_reference(x, w, (2, 2), ((0, 1), (0, 1)), (8, 8))
        assert not np.array_equal(a, b), where
        assert np.abs(b - ref).max() < 1e-4, where
        w[where] = saved
    np.testing.assert_array_equal(nn.conv2d_transpose(x, w, [1, 8, 8, cout], 2), a)
    if cin == cout:
        np.testing.assert_allclose(nn.conv2d(x, w, 1), c, rtol=1e-6, atol=1e-6)


def test_integer_and_bool_inputs_are_float32():
    x = np.arange(8).reshape(1, 2, 2, 2)
    y = nn.conv2d_transpose(x, np.ones((2, 2, 1, 2), np.int64), [1, 4, 4, 1], 2)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y[0, :2, :2, 0], np.full((2, 2), 1.0))


# ---------------------------------------------------------------- the slim layer

@pytest.fixture
def store():
    with slim.VariableStore(seed=0) as s:
        yield s


@pytest.mark.parametrize("size,k,s,padding,expected", [
    (8, 3, 2, "SAME", 16), (8, 3, 2, "VALID", 17), (8, 1, 2, "VALID", 16),
    (5, 4, 1, "VALID", 8), (7, 5, 3, "same", 21), (3, 2, 3, "VALID", 9)])
def test_layer_output_size(store, size, k, s, padding, expected):
    y = slim.conv2d_transpose(np.ones((1, size, size, 2), np.float32), 3, k, stride=s,
                              padding=padding)
    assert y.shape == (1, expected, expected, 3)


def test_layer_variables_and_collections(store):
    x = np.ones((2, 3, 4, 5), np.float32)
    with slim.arg_scope([slim.conv2d_transpose], activation_fn=None):
        y = slim.conv2d_transpose(x, 7, [2, 3], stride=[2, 1], outputs_collections="ends")
        z = slim.conv2d_transpose(x, 7, 3, normalizer_fn=slim.batch_norm,
                                  normalizer_params={"is_training": False}, scope="up")
    assert y.shape == (2, 6, 4, 7) and z.shape == (2, 3, 4, 7)
    names = [v.name for v in slim.get_variables()]
    assert names == ["Conv2d_transpose/weights", "Conv2d_transpose/biases", "up/weights",
                     "up/BatchNorm/beta", "up/BatchNorm/moving_mean",
                     "up/BatchNorm/moving_variance"]
    assert store["Conv2d_transpose/weights"].shape == (2, 3, 7, 5)
    assert list(slim.convert_collection_to_dict("ends")) == ["Conv2d_transpose"]
    assert slim.conv2d_transpose is slim.convolution2d_transpose
    assert slim.has_arg_scope(slim.conv2d_transpose)
    # reuse: same weights, same output
    y2 = slim.conv2d_transpose(x, 7, [2, 3], stride=[2, 1], activation_fn=None,
                               scope="Conv2d_transpose", reuse=True)
    np.testing.assert_array_equal(y, y2)


def test_layer_nchw_equals_nhwc(store):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 4, 5))
    a = slim.conv2d_transpose(x, 4, 3, stride=2, scope="a")
    b = slim.conv2d_transpose(_to_nchw(x), 4, 3, stride=2, data_format="NCHW", scope="a",
                              reuse=True)
    np.testing.assert_array_equal(_to_nchw(a), b)


# ---------------------------------------------------------------- bad input

X = np.zeros((1, 4, 4, 2), np.float32)
W = np.zeros((3, 3, 5, 2), np.float32)

BAD_NN = [
    (lambda: nn.conv2d_transpose(X, W, [1, 9, 9, 5], 2), ValueError,
     ["doesn't match computed", "actual = 4, computed = 5", "input: 9"]),
    (lambda: nn.conv2d_transpose(X, W, [1, 8, 8], 2), ValueError, ["4 values or 2 values"]),
    (lambda: nn.conv2d_transpose(X, W, "1,8,8,5", 2), TypeError, ["output_shape"]),
    (lambda: nn.conv2d_transpose(X, W, [1, 8.0, 8, 5], 2), TypeError, ["output_shape"]),
    (lambda: nn.conv2d_transpose(X, W, None, 2), TypeError, ["output_shape"]),
    (lambda: nn.conv2d_transpose(X, W, [[1, 8], [8, 5]], 2), TypeError, ["output_shape"]),
    (lambda: nn.conv2d_transpose(X, W, [1, 8, 8, 5], 0), ValueError, ["strides"]),
    (lambda: nn.conv2d_transpose(X, W, [1, 8, 8, 5], 1.5), TypeError, ["strides"]),
    (lambda: nn.conv2d_transpose(X, W, [1, 8, 8, 5], [2, 2, 2]), ValueError, ["strides"]),
    (lambda: nn.conv2d_transpose(X, W, [1, 8, 8, 5], 2, "VAILD"), ValueError,
     ["padding", "did you mean 'valid'"]),
    (lambda: nn.conv2d_transpose(X, W, [1, 8, 8, 5], 2, 3), TypeError, ["padding"]),
    (lambda: nn.conv2d_transpose(X, W, [1, 8, 8, 5], 2, data_format="NHCW"), ValueError,
     ["data_format"]),
    (lambda: nn.conv2d_transpose(X, W, [1, 8, 8, 5], 2, dilations=[1, 2]), ValueError,
     ["dilation rates larger than 1"]),
    (lambda: nn.conv2d_transpose(X, W, [1, 8, 8, 5], 2, dilations=0), ValueError,
     ["dilations"]),
    (lambda: nn.conv2d_transpose(X[0], W, [1, 8, 8, 5], 2), ValueError, ["rank 4", "input"]),
    (lambda: nn.conv2d_transpose(X, W[0], [1, 8, 8, 5], 2), ValueError,
     ["filter must be 4-dimensional"]),
    (lambda: nn.conv2d_transpose(X, W[..., :1], [1, 8, 8, 5], 2), ValueError,
     ["same out_depth", "(3, 3, 5, 1)"]),
    (lambda: nn.conv2d_transpose(X, W, [1, 8, 8, 4], 2), ValueError,
     ["evenly divisible", "4 channels"]),
    (lambda: nn.conv2d_transpose(X, W, [3, 8, 8, 5], 2), ValueError, ["same batch size"]),
    (lambda: nn.conv2d_transpose(X, W, [1, -8, 8, 5], 2), ValueError, ["Dimension -8"]),
    (lambda: nn.conv2d_transpose(X, W, [1, 0, 8, 5], 2), ValueError, ["computed = 0"]),
    (lambda: nn.conv2d_transpose(X.astype(complex), W, [1, 8, 8, 5], 2), TypeError,
     ["complex"]),
    (lambda: nn.conv2d_transpose(X, W.astype(object), [1, 8, 8, 5], 2), TypeError,
     ["filters"]),
    (lambda: nn.conv2d_transpose(X, W, [1, 8, 8, 5], 2, bias=[1, 2]), ValueError,
     ["bias", "(5,)"]),
    (lambda: nn.conv2d_transpose(X, W, [1, 8, 8, 5], 2, activation="tanh"), ValueError,
     ["activation"]),
    (lambda: nn.conv2d_transpose(np.zeros((1, 0, 4, 2)), W, [1, 8, 8, 5], 2), ValueError,
     ["zero height"]),
    (lambda: nn.conv2d_transpose(X, np.zeros((0, 3, 5, 2)), [1, 8, 8, 5], 2), ValueError,
     ["zero kernel"]),
    (lambda: nn.conv2d_transpose(X, W, [1, 8, 8, 5], 2, [[1, 1], [1, -1]]), ValueError,
     ["padding", "-1"]),
    (lambda: nn.conv2d_transpose(X, W, [1, 8, 8, 5], 2, [[0, 1], [1, 0], [0, 0], [0, 0]]),
     ValueError, ["padding", "batch and channel"]),
    (lambda: nn.conv2d_transpose(X, W, [1, 2**62, 8, 5], 2), ValueError, ["computed"]),
    (lambda: nn.conv2d_transpose(X, W, [1, 8, 8, 5], 2**62), ValueError, ["computed"]),
    (lambda: nn.conv2d_backprop_input([1, 8, 8, 5], W, X, None, "SAME"), TypeError,
     ["strides"]),
    (lambda: nn.conv2d_backprop_input([1, 8, 8, 5], W, X, 2), TypeError, ["padding"]),
    (lambda: nn.conv2d_backprop_input([1, 8, 8, 5], None, X, 2, "SAME"), TypeError,
     ["filter"]),
    (lambda: nn.conv2d_backprop_input([1, 8, 8, 5], W, None, 2, "SAME"), TypeError,
     ["out_backprop"]),
    (lambda: nn.conv2d_backprop_input([1, 8, 8, 5], W, X, 2, "SAME", filters=W), ValueError,
     ["filter", "filters"]),
    (lambda: nn.conv2d_backprop_input([1, 8, 8, 5], W, X, 2, "SAME", use_cudnn_on_gpu="no"),
     TypeError, ["use_cudnn_on_gpu"]),
    (lambda: nn.conv2d_backprop_input([1, 9, 8, 5], W, X, 2, "SAME"), ValueError,
     ["doesn't match computed", "spatial_dim: 1"]),
    (lambda: nn.conv2d_backprop_input([1, 5, 8, 9], W, _to_nchw(X), 2, "SAME", True, "NCHW"),
     ValueError, ["doesn't match computed", "spatial_dim: 3"]),
]

BAD_LAYER = [
    (lambda: slim.conv2d_transpose(X, 3, 3, data_format="NHCW"), ValueError,
     ["data_format has to be either NCHW or NHWC"]),
    (lambda: slim.conv2d_transpose(X[0], 3, 3), ValueError, ["rank 4"]),
    (lambda: slim.conv2d_transpose(X, -1, 3), ValueError, ["num_outputs"]),
    (lambda: slim.conv2d_transpose(X, "2", 3), TypeError, ["num_outputs"]),
    (lambda: slim.conv2d_transpose(X, 3, [3, 3, 3]), ValueError, ["kernel_size"]),
    (lambda: slim.conv2d_transpose(X, 3, 3, stride=0), ValueError, ["stride"]),
    (lambda: slim.conv2d_transpose(X, 3, 3, padding="FULL"), ValueError, ["SAME", "VALID"]),
    (lambda: slim.conv2d_transpose(X, 3, 3, padding=[[1, 1], [1, 1]]), ValueError,
     ["padding"]),
    (lambda: slim.conv2d_transpose(X, 3, 3, activation_fn="relu"), TypeError,
     ["activation_fn"]),
    (lambda: slim.conv2d_transpose(X, 3, 3, normalizer_fn=slim.batch_norm,
                                   normalizer_params=[1]), TypeError, ["normalizer_params"]),
    (lambda: slim.conv2d_transpose(X, 3, 3, outputs_collections=7), TypeError,
     ["outputs_collections"]),
    (lambda: slim.conv2d_transpose(X, 3, 3, reuse=True), ValueError, ["scope"]),
    (lambda: slim.conv2d_transpose(X.astype(complex), 3, 3), TypeError, ["complex"]),
    (lambda: slim.conv2d_transpose(np.zeros((1, 4, 4, 0)), 3, 3), ValueError, ["zero"]),
]


@pytest.mark.parametrize("call,exc,words", BAD_NN + BAD_LAYER)
def test_bad_arguments(store, call, exc, words):
    with pytest.raises(exc) as info:
        call()
    message = str(info.value).lower()
    for word in words:
        assert word.lower() in message, f"{word!r} not in {str(info.value)!r}"
    assert slim.get_variables() == []


def test_channel_mismatch_with_existing_weights(store):
    slim.conv2d_transpose(X, 3, 3, scope="d")
    with pytest.raises(ValueError) as info:
        slim.conv2d_transpose(np.zeros((1, 4, 4, 6), np.float32), 3, 3, scope="d", reuse=True)
    assert "d/weights" in str(info.value)


def test_absurd_sizes_are_refused_before_allocating(monkeypatch):
    import tracemalloc

    big = np.broadcast_to(np.zeros((), np.float32), (1, 1, 1, 1 << 16))
    tracemalloc.start()
    try:
        with pytest.raises(MemoryError):  # 2**16 x 2**16 pixels x 2**10 channels
            nn.conv2d_transpose(np.zeros((1, 1, 1, 1), np.float32),
                                np.zeros((1, 1, 1024, 1), np.float32),
                                [1, 1 << 16, 1 << 16, 1024], 1 << 16, "SAME")
        with pytest.raises(MemoryError):
            nn.conv2d_transpose(big, np.broadcast_to(np.zeros((), np.float32),
                                                     (5, 5, 1 << 16, 1 << 16)),
                                [1, 2, 2, 1 << 16], 2, "SAME")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20
    monkeypatch.setattr(_memory, "_limit", 1 << 20)
    with pytest.raises(MemoryError) as info:
        nn.conv2d_transpose(np.zeros((1, 8, 8, 256), np.float32),
                            np.zeros((4, 4, 256, 256), np.float32), [1, 16, 16, 256], 2)
    assert "conv2d_transpose" in str(info.value)


def test_the_c_operator_checks_sizes_itself():
    """Inconsistent pads, overflowing sizes and bad arguments reach the C
    operator only through _conv directly; it refuses them."""
    x = np.zeros((1, 4, 4, 2), np.float32)
    w = np.zeros((3, 3, 5, 2), np.float32)
    ok = _conv.conv2d_transpose(x, w, None, 8, 8, 0, 1, 0, 1, 2, 2, 0)
    assert ok.shape == (1, 8, 8, 5)
    bad = [((x, w, None, 10, 8, 0, 1, 0, 1, 2, 2, 0), ValueError, "comes from an input of 5"),
           ((x, w, None, 8, 8, 0, 1, 0, 1, 0, 2, 0), ValueError, "stride_h"),
           ((x, w, None, 0, 8, 0, 1, 0, 1, 2, 2, 0), ValueError, "out_h"),
           ((x, w, None, 8, 8, 2**63 - 1, 2**63 - 1, 0, 1, 2, 2, 0), ValueError, "overflow"),
           ((x, w, None, 8, 8, 0, 1, 0, 1, 2, 2, 3), ValueError, "activation"),
           ((x, w, None, 8, 8, -1, 1, 0, 1, 2, 2, 0), ValueError, "pad_top"),
           ((x, w, None, 8, 8, 0, 1, 0, 1, 2**64, 2, 0), ValueError, "2**63"),
           ((x, w.astype(np.float64), None, 8, 8, 0, 1, 0, 1, 2, 2, 0), TypeError, "filters"),
           ((x, w[..., :1], None, 8, 8, 0, 1, 0, 1, 2, 2, 0), ValueError, "input channels"),
           ((x, w, np.zeros(4, np.float32), 8, 8, 0, 1, 0, 1, 2, 2, 0), ValueError, "bias"),
           ((x, w, None, 8, 8, 0, 1, 0, 1, 2, 2), TypeError, "12 positional"),
           ((x.astype(np.float16), w, None, 8, 8, 0, 1, 0, 1, 2, 2, 0), TypeError, "float32")]
    for args, exc, word in bad:
        with pytest.raises(exc) as info:
            _conv.conv2d_transpose(*args)
        assert word in str(info.value), (word, str(info.value))
    empty = _conv.conv2d_transpose(np.zeros((0, 4, 4, 2), np.float32), w, None, 8, 8, 0, 1,
                                   0, 1, 2, 2, 0)
    assert empty.shape == (0, 8, 8, 5)


# ---------------------------------------------------------------- the benchmark's rows

@pytest.mark.parametrize("h,cin,cout,k,s,padding", [
    (4, 6, 5, 5, 2, "SAME"), (5, 3, 4, 4, 2, "SAME"), (3, 2, 3, 3, 3, "VALID"),
    (4, 3, 2, 2, 3, "VALID"), (6, 4, 3, 5, 1, "SAME")])
def test_bench_transposed_rows_agree_with_pyconv(h, cin, cout, k, s, padding):
    from pyconv import bench

    layer = bench.Layer("t", "deconv", h, h, cin, cout, k, k, s, 1, padding, 1,
                        op="conv2d_transpose")
    case = bench.Case(layer, 2, seed=0, workdir=None)
    ours = case.pyconv_call()()
    assert ours.shape == (2, *layer.out_hw, cout)
    assert layer.flops(2) == 2 * 2 * h * h * cout * k * k * cin
    theirs = bench.numpy_conv2d_transpose(case.x, case.w, layer.pads, s, layer.out_hw)
    assert bench.rel_error(theirs, ours) < 1e-5
    # torch's arguments: padding at both ends, output_padding at the end, then a crop
    (pt, _), (eh, _), crop = bench.torch_transpose_args(layer)
    full = (h - 1) * s + k
    size = full - 2 * pt + eh
    assert eh < s and (crop is None) == (size == layer.out_hw[0])
    assert size >= layer.out_hw[0]


def test_sigint_interrupts_a_long_transposed_convolution():
    """Ctrl-C reaches a long call within 3 s (the operator polls like conv2d's),
    and the pool works afterwards (a child process: see test_interrupt.py)."""
    import signal
    import subprocess
    import textwrap

    code = textwrap.dedent("""
        import json, sys, time
        import numpy as np
        import pyconv
        pyconv.set_num_threads(2)
        x = np.ones((1, 64, 64, 1536), np.float32)       # ~87 G multiply-adds a call
        w = np.full((3, 3, 1536, 1536), 1e-3, np.float32)
        print(json.dumps({"state": "started"}), flush=True)
        try:  # ~0.5 s a call on a quiet machine: 20 of them outlast the signal's delay
            for _ in range(20):
                pyconv.nn.conv2d_transpose(x, w, (1, 128, 128, 1536), 2)
        except KeyboardInterrupt:
            print(json.dumps({"state": "interrupted"}), flush=True)
        small = pyconv.nn.conv2d_transpose(x[:, :2, :2, :8], w[:, :, :8, :8], (1, 4, 4, 8), 2)
        assert small.shape == (1, 4, 4, 8)
        print(json.dumps({"state": "ok"}), flush=True)
    """)
    root = os.path.dirname(os.path.dirname(pyconv.__file__))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=root)
    try:
        assert proc.stdout.readline().strip() == '{"state": "started"}'
        import time

        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        line = proc.stdout.readline().strip()
        elapsed = time.monotonic() - sent
        assert line == '{"state": "interrupted"}', (line, proc.stderr.read())
        assert elapsed < 3.0, elapsed
        assert proc.stdout.readline().strip() == '{"state": "ok"}'
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_memory_is_flat_over_many_calls():
    """Both paths, the exact fallback and raising calls: malloc-in-use, RSS and
    tracemalloc do not grow (test_leaks.py's meters and bounds)."""
    import test_leaks

    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 5, 6, 16)).astype(np.float32)
    w = rng.standard_normal((4, 4, 12, 16)).astype(np.float32)
    w_nan = w.copy()
    w_nan[0, 0, 0, 0] = np.nan
    b = rng.standard_normal(12).astype(np.float32)
    # contiguous: a view would be copied by every call, and each copy's new
    # address would take a slot of the weight cache until it is full
    w3 = np.ascontiguousarray(w[:, :, :3])

    def work():
        nn.conv2d_transpose(x, w, [2, 10, 12, 12], 2, bias=b, activation="relu")
        nn.conv2d_transpose(x, w3, [2, 13, 15, 3], [2, 2], "VALID")
        nn.conv2d_transpose(x, w_nan, [2, 10, 12, 12], 2)
        test_leaks._raises(lambda: nn.conv2d_transpose(x, w, [2, 11, 12, 12], 2), ValueError)
        test_leaks._raises(lambda: _conv.conv2d_transpose(x, w, None, 9, 12, 0, 0, 1, 1, 2, 2,
                                                          0), ValueError)
        return 5

    before_threads = pyconv.get_num_threads()
    pyconv.set_num_threads(2)
    try:
        test_leaks.check_flat(*test_leaks.measure(2_000, work, warmup_calls=500))
    finally:
        pyconv.set_num_threads(before_threads)
