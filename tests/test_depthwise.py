"""Depthwise and separable convolution: pyconv.nn.depthwise_conv2d,
pyconv.nn.separable_conv2d and the slim layer separable_conv2d.

Against the float64 reference (tests/reference.py) over random shapes,
multipliers, strides, dilations, paddings, dtypes, layouts and every ISA;
against TensorFlow through the fixtures of
tools/tf_reference/gen_depthwise.py (tests/fixtures/tf/depthwise.npz) and a
live ``-m tf`` tier; bit-identical results for every thread count and ISA;
bad arguments; NaN/Inf.

TF tolerance as Part 1 (tests/slim_replay.py): max|pyconv - TF| /
max(1, max|TF|) <= 1e-5 (float32), 1e-12 (float64), 1e-2 (float16).
"""

import os
import sys
import tracemalloc

import numpy as np
import pytest
import slim_replay
from hypothesis import given
from hypothesis import strategies as st
from reference import depthwise_reference, pads_for
from test_nn import LAYOUTS, random_array, with_layout

import pyconv
import pyconv as slim
from pyconv import _conv, _memory

nn = pyconv.nn
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools", "tf_reference"))
import gen_depthwise  # pure Python until generate() is called

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "tf", "depthwise.npz")
# Tolerance relative to sum |x| |w| (+ |bias|) per output element, by output dtype.
TOLERANCE = {np.float64: 1e-13, np.float32: 2e-6, np.float16: 1e-3}
MAX_ERROR = {}  # dtype name -> largest relative error vs the float64 reference


@pytest.fixture(autouse=True)
def fresh_store():
    with slim.VariableStore(seed=0) as store:
        yield store


def _check_close(out, ref, scale, dtype):
    out64 = out.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(out64), np.isnan(ref))
    inf = np.isinf(ref)
    np.testing.assert_array_equal(out64[inf], ref[inf])
    fin = np.isfinite(ref)
    err = np.abs(out64 - ref)[fin] / np.maximum(scale[fin], 1e-30)
    worst = float(err.max()) if err.size else 0.0
    key = np.dtype(dtype).name
    MAX_ERROR[key] = max(MAX_ERROR.get(key, 0.0), worst)
    assert worst <= TOLERANCE[np.dtype(dtype).type], f"relative error {worst:g}"


paddings = st.sampled_from(["SAME", "VALID", "FULL", "same"]) | st.tuples(
    st.tuples(st.integers(0, 3), st.integers(0, 3)), st.tuples(st.integers(0, 3),
                                                               st.integers(0, 3)))


@st.composite
def dw_configs(draw):
    kh = draw(st.integers(1, 5))
    return dict(
        batch=draw(st.sampled_from([1, 1, 2, 3, 0])),
        h=draw(st.integers(1, 11)), w=draw(st.integers(1, 11)),
        c=draw(st.sampled_from([1, 2, 3, 5, 8, 16, 17, 33, 40])),
        dm=draw(st.sampled_from([1, 1, 2, 3, 4, 8])),
        kh=kh, kw=draw(st.sampled_from([kh, 1, draw(st.integers(1, 5))])),
        strides=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        dilations=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        padding=draw(paddings),
        data_format=draw(st.sampled_from(["NHWC", "NCHW", None])),
        dtype=draw(st.sampled_from([np.float32, np.float32, np.float64, np.float16, np.int32])),
        bias=draw(st.booleans()),
        activation=draw(st.sampled_from([None, "relu", "relu6"])),
        layout=draw(st.sampled_from(LAYOUTS)),
        separable=draw(st.sampled_from([None, None, 1, 7])),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


@given(dw_configs())
def test_depthwise_and_separable_match_the_reference(cfg):
    rng = np.random.default_rng(cfg["seed"])
    shape = (cfg["batch"], cfg["h"], cfg["w"], cfg["c"])
    x_nhwc = random_array(rng, shape, cfg["dtype"])
    w = random_array(rng, (cfg["kh"], cfg["kw"], cfg["c"], cfg["dm"]), cfg["dtype"])
    nchw = cfg["data_format"] == "NCHW"
    x = with_layout(x_nhwc.transpose(0, 3, 1, 2) if nchw else x_nhwc, cfg["layout"])
    x_before = x.copy()
    pad = cfg["padding"]
    pads = tuple(pads_for(pad if isinstance(pad, str) else pad[d], shape[1 + d], w.shape[d],
                          cfg["strides"][d], cfg["dilations"][d]) for d in range(2))
    k_eff = [(w.shape[d] - 1) * cfg["dilations"][d] + 1 for d in range(2)]
    fits = pad in ("SAME", "same") or all(shape[1 + d] + sum(pads[d]) >= k_eff[d]
                                          for d in range(2))
    cout = cfg["c"] * cfg["dm"] if cfg["separable"] is None else cfg["separable"]
    b = rng.standard_normal(cout) if cfg["bias"] else None
    kwargs = dict(data_format=cfg["data_format"], dilations=cfg["dilations"], bias=b,
                  activation=cfg["activation"])
    pw = None
    if cfg["separable"] is None:
        def call():
            return nn.depthwise_conv2d(x, w, cfg["strides"], pad, **kwargs)
    else:
        pw = random_array(rng, (1, 1, cfg["c"] * cfg["dm"], cfg["separable"]), cfg["dtype"])

        def call():
            return nn.separable_conv2d(x, w, pw, cfg["strides"], pad, **kwargs)
    if not fits:
        with pytest.raises(ValueError, match="output size"):
            call()
        return
    out_dtype = {np.float64: np.float64, np.float16: np.float16}.get(cfg["dtype"], np.float32)
    compute = np.float64 if out_dtype == np.float64 else np.float32
    w_c = w.astype(compute).astype(np.float64)
    b_c = None if b is None else b.astype(compute).astype(np.float64)
    x_ref = np.asarray(x.transpose(0, 2, 3, 1) if nchw else x, np.float64)  # values as given
    if pw is None:
        ref = depthwise_reference(x_ref, w_c, cfg["strides"], pads, cfg["dilations"], b_c,
                                  cfg["activation"])
        scale = depthwise_reference(np.abs(x_ref), np.abs(w_c), cfg["strides"], pads,
                                    cfg["dilations"])
    else:
        pw_c = pw.astype(compute).astype(np.float64)[0, 0]
        mid = depthwise_reference(x_ref, w_c, cfg["strides"], pads, cfg["dilations"])
        ref = mid @ pw_c + (0 if b_c is None else b_c)
        if cfg["activation"]:
            ref = np.clip(ref, 0, 6 if cfg["activation"] == "relu6" else None)
        scale = depthwise_reference(np.abs(x_ref), np.abs(w_c), cfg["strides"], pads,
                                    cfg["dilations"]) @ np.abs(pw_c)
    if b_c is not None:
        scale = scale + np.abs(b_c)
    if out_dtype == np.float16:
        scale = np.maximum(scale, np.abs(ref))
    if nchw:
        ref, scale = ref.transpose(0, 3, 1, 2), scale.transpose(0, 3, 1, 2)
    before = _conv.isa()
    try:
        for isa in _conv.available_isas():
            _conv.set_isa(isa)
            out = call()
            assert out.dtype == out_dtype and out.shape == ref.shape
            assert out.flags.c_contiguous and not np.shares_memory(out, x)
            _check_close(out, ref, scale, out_dtype)
    finally:
        _conv.set_isa(before)
    np.testing.assert_array_equal(x, x_before)


# ------------------------------------------------------------------ kernel edges, every ISA

@pytest.fixture(params=_conv.available_isas())
def isa(request):
    before = _conv.isa()
    _conv.set_isa(request.param)
    yield request.param
    _conv.set_isa(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_channel_tails_and_pixel_counts(isa, dtype):
    """Every channel count 1..70 (tails of the 4/8/16/32-channel tiles and of the
    256-channel task blocks beyond), odd and even row lengths, multipliers."""
    rng = np.random.default_rng(5)
    for c in list(range(1, 40)) + [63, 64, 65, 255, 257, 300]:
        dm = 1 + c % 3
        x = rng.standard_normal((1 + c % 2, 4, 3 + c % 4, c)).astype(dtype)
        w = rng.standard_normal((3, 2, c, dm)).astype(dtype)
        b = rng.standard_normal(c * dm).astype(dtype)
        pads = ((1, 1), (0, 1))
        out = nn.depthwise_conv2d(x, w, 1, [pads[0], pads[1]], bias=b, activation="relu6")
        ref = depthwise_reference(x, w, (1, 1), pads, (1, 1), b, "relu6")
        scale = depthwise_reference(np.abs(x), np.abs(w), (1, 1), pads, (1, 1)) + np.abs(b)
        _check_close(out, ref, scale, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_3x3_row_kernel_edges(isa, dtype):
    """3x3 with dilation 1 along x runs its interior pixels through the row
    kernel (groups of 4 or 8 pixels, then single ones) and the edges through
    the generic one: every row width 1..21, strides 1 and 2 (3 stays generic),
    pads on either side, dilation along y, channel tails, multipliers, and
    kernel rows in the padding (the zero row)."""
    rng = np.random.default_rng(15)
    for width in range(1, 22):
        for sw in (1, 2, 3):
            c = 1 + (width * 7 + sw) % 41
            dm = 1 + width % 2
            dh = 1 + width % 3
            x = rng.standard_normal((2, 5, width, c)).astype(dtype)
            w = rng.standard_normal((3, 3, c, dm)).astype(dtype)
            b = rng.standard_normal(c * dm).astype(dtype)
            pads = ((2, 1 + width % 2), (width % 3, (width + sw) % 3))
            if width + sum(pads[1]) < 3:
                continue
            out = nn.depthwise_conv2d(x, w, (1 + width % 2, sw), [pads[0], pads[1]],
                                      dilations=(dh, 1), bias=b, activation="relu")
            ref = depthwise_reference(x, w, (1 + width % 2, sw), pads, (dh, 1), b, "relu")
            scale = depthwise_reference(np.abs(x), np.abs(w), (1 + width % 2, sw), pads,
                                        (dh, 1)) + np.abs(b)
            _check_close(out, ref, scale, dtype)
    # that the row kernel and the generic one give the same bits is checked by
    # test_same_bits_for_every_thread_count_and_isa (the scalar set has no row kernel)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_same_bits_for_every_thread_count_and_isa(dtype):
    """Every output is its bias, then one FMA per tap in one order, whoever
    computes it: bit-identical for 1, 2, 3, 5 threads and on every ISA."""
    rng = np.random.default_rng(6)
    cases = [((3, 19, 21, 40), (3, 3, 40, 1), 1), ((2, 9, 8, 3), (7, 7, 3, 8), 2),
             ((1, 7, 7, 1030), (3, 3, 1030, 1), 1), ((2, 12, 11, 17), (3, 3, 17, 2), 2)]
    before_t, before_isa = pyconv.get_num_threads(), _conv.isa()
    try:
        for xs, ws, s in cases:
            x = rng.standard_normal(xs).astype(dtype)
            w = rng.standard_normal(ws).astype(dtype)
            b = rng.standard_normal(ws[2] * ws[3]).astype(dtype)
            outs = []
            for isa in _conv.available_isas():
                _conv.set_isa(isa)
                for threads in (1, 2, 3, 5):
                    pyconv.set_num_threads(threads)
                    outs.append(nn.depthwise_conv2d(x, w, s, "SAME", bias=b, activation="relu"))
            for out in outs[1:]:
                assert out.tobytes() == outs[0].tobytes()
    finally:
        pyconv.set_num_threads(before_t)
        _conv.set_isa(before_isa)


def test_output_channel_order_is_c_times_multiplier_plus_m():
    x = np.zeros((1, 1, 1, 3), np.float32)
    x[..., :] = [1, 10, 100]
    w = np.zeros((1, 1, 3, 2), np.float32)
    w[0, 0] = [[1, 2], [3, 4], [5, 6]]
    out = nn.depthwise_conv2d(x, w, 1, "VALID")
    np.testing.assert_array_equal(out.ravel(), [1, 2, 30, 40, 500, 600])


def test_filters_changed_in_place_are_seen():
    """The packed-weight cache checks the filter before reusing a packing."""
    x = np.ones((1, 5, 5, 4), np.float32)
    w = np.ones((3, 3, 4, 2), np.float32)
    b = np.zeros(8, np.float32)
    first = nn.depthwise_conv2d(x, w, 1, "SAME", bias=b)
    w[1, 1, 2, 1] = 5.0
    b[3] = 2.0
    second = nn.depthwise_conv2d(x, w, 1, "SAME", bias=b)
    assert (second[..., 5] - first[..., 5] == 4).all()
    assert (second[..., 3] - first[..., 3] == 2).all()
    np.testing.assert_array_equal(np.delete(second, [3, 5], -1), np.delete(first, [3, 5], -1))


def test_nan_and_inf_propagate():
    x = np.ones((1, 6, 6, 2), np.float32)
    x[0, 1, 1, 0] = np.nan
    x[0, 4, 4, 1] = np.inf
    w = np.ones((3, 3, 2, 2), np.float32)
    for act in (None, "relu", "relu6"):
        y = nn.depthwise_conv2d(x, w, 1, "SAME", activation=act)
        ref = depthwise_reference(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1), activation=act)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
        np.testing.assert_array_equal(np.isposinf(y), np.isposinf(ref))
        assert np.isnan(y[0, :3, :3, :2]).all() and not np.isnan(y[..., 2:]).any()
    # a NaN weight reaches its output channel everywhere, padding taps included (0 * NaN)
    w[0, 0, 1, 0] = np.nan
    y = nn.depthwise_conv2d(np.ones((1, 4, 4, 2), np.float32), w, 1, "SAME")
    assert np.isnan(y[..., 2]).all() and not np.isnan(np.delete(y, 2, -1)).any()
    # Inf weight: Inf where it meets a value, NaN where it meets padding (as TF)
    w[0, 0, 1, 0] = np.inf
    y = nn.depthwise_conv2d(np.ones((1, 4, 4, 2), np.float32), w, 1, "SAME")
    assert np.isnan(y[0, 0, :, 2]).all() and np.isposinf(y[0, 1:, 1:, 2]).all()
    y = nn.separable_conv2d(x, np.ones((3, 3, 2, 1), np.float32),
                            np.ones((1, 1, 2, 3), np.float32), 1, "SAME")
    assert np.isnan(y[0, :3, :3]).all() and np.isposinf(y[0, 5, 5]).all()


def test_separable_equals_depthwise_then_1x1_conv():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 9, 7, 5))
    dw = rng.standard_normal((3, 3, 5, 3))
    pw = rng.standard_normal((1, 1, 15, 6))
    b = rng.standard_normal(6)
    for fmt in ("NHWC", "NCHW"):
        xin = x if fmt == "NHWC" else x.transpose(0, 3, 1, 2)
        sep = nn.separable_conv2d(xin, dw, pw, [1, 2, 2, 1] if fmt == "NHWC" else [1, 1, 2, 2],
                                  "SAME", fmt, bias=b, activation="relu")
        two = nn.conv2d(nn.depthwise_conv2d(x, dw, 2, "SAME"), pw, 1, "VALID", bias=b,
                        activation="relu")
        np.testing.assert_array_equal(sep if fmt == "NHWC" else sep.transpose(0, 2, 3, 1), two)


# ------------------------------------------------------------------ TF fixtures

def _fixture():
    if not os.path.exists(FIXTURE):
        return [], {}
    return gen_depthwise.load(FIXTURE)


_CONFIGS, _DATA = _fixture()
TIER_REPLAY, TIER_LIVE = "depthwise replay", "depthwise live"


def replay(cfg, data, tier):
    """One TF configuration through pyconv: output, and for the slim layer its
    variables (names, shapes, dtypes, trainable, collections in creation
    order), regularization losses and outputs collection."""
    cid = cfg["id"]
    x = data[f"{cid}/input"]
    kwargs = slim_replay.resolve(cfg["kwargs"], data, cid)
    where = f"depthwise/{cid}"
    if "error" in cfg:
        with pytest.raises(ValueError, match="rate"):
            slim.separable_conv2d(x, **kwargs)
        assert slim.get_variables() == []
        # TF 2.21 computes something else instead of refusing (see gen_depthwise)
        assert cfg["tf_wrong_by"] is None or cfg["tf_wrong_by"] > 1e-2
        return
    if cfg["function"] == "nn.depthwise_conv2d":
        out = nn.depthwise_conv2d(x, data[f"{cid}/depthwise"], **kwargs)
    elif cfg["function"] == "nn.separable_conv2d":
        out = nn.separable_conv2d(x, data[f"{cid}/depthwise"], data[f"{cid}/pointwise"],
                                  **kwargs)
    else:
        out = slim.separable_conv2d(x, **kwargs)
        slim_replay.check_variables(cfg)
        slim_replay.check_regularization(cfg, data, tier)
        sc = cfg["variables"][0]["name"].rsplit("/", 1)[0]
        assert list(slim.convert_collection_to_dict("outs")) == [sc]
    assert out.dtype == np.dtype(cfg["dtype"])
    slim_replay.close(out, data[f"{cid}/expected"], cfg["dtype"], where, tier,
                      cfg.get("ref_max_abs_err", 0.0))


@pytest.mark.parametrize("cfg", [pytest.param(c, id=c["id"]) for c in _CONFIGS] or [
    pytest.param(None, marks=pytest.mark.skip(reason="no depthwise.npz fixture"))])
def test_tf_fixtures(cfg):
    replay(cfg, _DATA, TIER_REPLAY)


def test_fixture_coverage():
    """The axes issue 9 asks for are all in the committed fixture."""
    assert _CONFIGS, "tests/fixtures/tf/depthwise.npz is missing"
    funcs = {c["function"] for c in _CONFIGS}
    assert funcs == {"nn.depthwise_conv2d", "nn.separable_conv2d", "separable_conv2d"}
    seen = {k: set() for k in ("k", "s", "r", "dm", "pad", "n", "dtype", "fmt", "norm", "none")}
    for c in _CONFIGS:
        if "error" in c:
            continue
        kw = c["kwargs"]
        x = _DATA[c["id"] + "/input"]
        dwf = _DATA[c["id"] + "/depthwise"]
        seen["k"].add(dwf.shape[:2])
        seen["dm"].add(dwf.shape[3])
        seen["n"].add(x.shape[0])
        seen["dtype"].add(c["dtype"])
        seen["fmt"].add(c["data_format"])
        pad = kw["padding"]
        seen["pad"].add(pad if isinstance(pad, str) else "explicit")
        s = kw.get("strides", kw.get("stride"))
        seen["s"].add(max(s) if isinstance(s, list) else s)
        r = kw.get("dilations", kw.get("rate"))
        seen["r"].add(max(r) if isinstance(r, list) else r)
        seen["norm"].add("normalizer_fn" in kw)
        seen["none"].add(kw.get("num_outputs", 0) is None)
    assert {(1, 1), (3, 3), (5, 5), (7, 7)} <= seen["k"] and any(a != b for a, b in seen["k"])
    assert {1, 2, 3} <= seen["s"] and {1, 2, 3} <= seen["r"]
    assert {1, 2, 3, 4, 8} <= seen["dm"] and {1, 2, 3} <= seen["n"]
    assert seen["pad"] == {"SAME", "VALID", "explicit"}
    assert seen["dtype"] == {"float16", "float32", "float64"}
    assert seen["fmt"] == {"NHWC", "NCHW"}
    assert seen["norm"] == {True, False} and seen["none"] == {True, False}


@pytest.mark.tf
def test_live_tensorflow():
    """A fresh random set computed by TensorFlow now (seed from PYCONV_TF_SEED)."""
    seed = int(os.environ.get("PYCONV_TF_SEED", np.random.SeedSequence().entropy % 10**6))
    configs, arrays, _ = gen_depthwise.generate(seed, 25, 10, 20)
    for cfg in configs:
        with slim.VariableStore(seed=0):
            replay(cfg, arrays, TIER_LIVE)


# ------------------------------------------------------------------ the slim layer

def test_layer_variables_and_defaults(fresh_store):
    x = np.ones((2, 8, 8, 3), np.float32)
    y = slim.separable_conv2d(x, 16, [3, 3], depth_multiplier=2)
    z = slim.separable_convolution2d(x, None, 5, stride=2)
    assert slim.separable_conv2d is slim.separable_convolution2d
    assert y.shape == (2, 8, 8, 16) and z.shape == (2, 4, 4, 3)
    assert [(v.name, v.shape) for v in slim.get_variables()] == [
        ("SeparableConv2d/depthwise_weights", (3, 3, 3, 2)),
        ("SeparableConv2d/pointwise_weights", (1, 1, 6, 16)),
        ("SeparableConv2d/biases", (16,)),
        ("SeparableConv2d_1/depthwise_weights", (5, 5, 3, 1)),
        ("SeparableConv2d_1/biases", (3,))]
    assert len(slim.get_model_variables()) == 5 and len(slim.get_trainable_variables()) == 5
    assert (y >= 0).all()  # relu by default
    assert slim.has_arg_scope(slim.separable_conv2d)
    import inspect
    params = inspect.signature(slim.separable_conv2d).parameters
    assert list(params) == [
        "inputs", "num_outputs", "kernel_size", "depth_multiplier", "stride", "padding",
        "data_format", "rate", "activation_fn", "normalizer_fn", "normalizer_params",
        "weights_initializer", "pointwise_initializer", "weights_regularizer",
        "biases_initializer", "biases_regularizer", "reuse", "variables_collections",
        "outputs_collections", "trainable", "scope"]
    assert params["data_format"].default == "NHWC" and params["depth_multiplier"].default == 1


def test_layer_matches_reference_with_weights_and_bias_given():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 7, 6, 4))
    dw = rng.standard_normal((3, 3, 4, 2))
    pw = rng.standard_normal((1, 1, 8, 5))
    b = rng.standard_normal(5)
    for fmt in ("NHWC", "NCHW"):
        with slim.VariableStore():
            xin = x if fmt == "NHWC" else x.transpose(0, 3, 1, 2)
            y = slim.separable_conv2d(xin, 5, 3, depth_multiplier=2, data_format=fmt,
                                      weights_initializer=dw, pointwise_initializer=pw,
                                      biases_initializer=b, activation_fn=slim.relu6)
            if fmt == "NCHW":
                y = y.transpose(0, 2, 3, 1)
            ref = np.clip(depthwise_reference(x, dw, (1, 1), ((1, 1), (1, 1))) @ pw[0, 0] + b,
                          0, 6)
            np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_layer_normalizer_regularizer_collections_reuse():
    x = np.random.default_rng(1).standard_normal((2, 6, 6, 3)).astype(np.float32)
    reg = slim.l2_regularizer(0.5)
    y = slim.separable_conv2d(x, None, 3, depth_multiplier=2, normalizer_fn=slim.batch_norm,
                              normalizer_params={"is_training": False},
                              weights_regularizer=reg, variables_collections=["mine"],
                              outputs_collections="outs", scope="dw")
    names = [v.name for v in slim.get_variables()]
    assert names == ["dw/depthwise_weights", "dw/BatchNorm/beta", "dw/BatchNorm/moving_mean",
                     "dw/BatchNorm/moving_variance"]
    losses = slim.get_collection(slim.GraphKeys.REGULARIZATION_LOSSES)
    assert [item.name for item in losses] == ["dw/depthwise_weights/Regularizer/l2_regularizer"]
    w = slim.get_default_store()["dw/depthwise_weights"]
    assert float(losses[0]) == pytest.approx(0.5 * float(np.sum(w.astype(np.float64) ** 2)) / 2,
                                             rel=1e-6)
    assert [v.name for v in slim.get_collection("mine")] == ["dw/depthwise_weights"]
    assert list(slim.convert_collection_to_dict("outs")) == ["dw"]
    assert y.shape == (2, 6, 6, 6)
    # reuse: same weights, same output; a different input channel count is an error
    y2 = slim.separable_conv2d(x, None, 3, depth_multiplier=2, normalizer_fn=slim.batch_norm,
                               normalizer_params={"is_training": False}, scope="dw", reuse=True)
    np.testing.assert_array_equal(y, y2)
    with pytest.raises(ValueError, match="dw/depthwise_weights"):
        slim.separable_conv2d(x[..., :2], None, 3, depth_multiplier=2, scope="dw", reuse=True)
    with pytest.raises(ValueError, match="already exists"):
        slim.separable_conv2d(x, None, 3, depth_multiplier=2, scope="dw")
    # with num_outputs the regularizer applies to both weights
    slim.separable_conv2d(x, 4, 3, weights_regularizer=reg, scope="sep")
    names = [item.name for item in slim.get_collection(slim.GraphKeys.REGULARIZATION_LOSSES)]
    assert names[1:] == ["sep/depthwise_kernel/Regularizer/l2_regularizer",
                         "sep/pointwise_kernel/Regularizer/l2_regularizer"]


def test_layer_under_arg_scope():
    x = np.ones((1, 4, 4, 2), np.float32)
    with slim.arg_scope([slim.separable_conv2d], depth_multiplier=3, activation_fn=None,
                        padding="VALID"):
        y = slim.separable_conv2d(x, None, 3)
    assert y.shape == (1, 2, 2, 6)


# ------------------------------------------------------------------ bad input

def x4(shape=(1, 5, 5, 3), dtype=np.float32):
    return np.zeros(shape, dtype)


def f4(shape=(3, 3, 3, 2), dtype=np.float32):
    return np.zeros(shape, dtype)


def huge(shape, dtype=np.float32):
    return np.broadcast_to(np.zeros((), dtype), shape)


def case(id, call, exc, *words):
    return pytest.param(call, exc, words, id=id)


BAD = [
    case("input-object", lambda: nn.depthwise_conv2d(object(), f4(), 1, "SAME"), TypeError,
         "input"),
    case("input-complex", lambda: nn.depthwise_conv2d(x4(dtype=np.complex64), f4(), 1, "SAME"),
         TypeError, "input", "complex64"),
    case("input-rank3", lambda: nn.depthwise_conv2d(x4((5, 5, 3)), f4(), 1, "SAME"), ValueError,
         "input", "rank 4", "got 3"),
    case("input-zero-height", lambda: nn.depthwise_conv2d(x4((1, 0, 5, 3)), f4(), 1, "SAME"),
         ValueError, "height"),
    case("input-nchw-channels", lambda: nn.depthwise_conv2d(x4(), f4(), 1, "SAME", "NCHW"),
         ValueError, "input channels", "NCHW"),
    case("filter-none", lambda: nn.depthwise_conv2d(x4(), None, 1, "SAME"), TypeError, "filter"),
    case("filter-string", lambda: nn.depthwise_conv2d(x4(), "abc", 1, "SAME"), TypeError,
         "filter"),
    case("filter-ragged", lambda: nn.depthwise_conv2d(x4(), [[1], [1, 2]], 1, "SAME"), TypeError,
         "filter"),
    case("filter-rank3", lambda: nn.depthwise_conv2d(x4(), f4((3, 3, 3)), 1, "SAME"), ValueError,
         "filter", "rank 4"),
    case("filter-channels", lambda: nn.depthwise_conv2d(x4(), f4((3, 3, 4, 1)), 1, "SAME"),
         ValueError, "4 input channels", "3"),
    case("filter-zero-multiplier", lambda: nn.depthwise_conv2d(x4(), f4((3, 3, 3, 0)), 1, "SAME"),
         None),
    case("filter-zero-kernel", lambda: nn.depthwise_conv2d(x4(), f4((0, 3, 3, 1)), 1, "SAME"),
         ValueError, "filter", "(0, 3, 3, 1)"),
    case("filter-too-large-valid", lambda: nn.depthwise_conv2d(x4(), f4((7, 3, 3, 1)), 1,
                                                              "VALID"),
         ValueError, "VALID", "output size", "height"),
    case("strides-str", lambda: nn.depthwise_conv2d(x4(), f4(), "1", "SAME"), TypeError,
         "strides"),
    case("strides-none", lambda: nn.depthwise_conv2d(x4(), f4(), None, "SAME"), TypeError,
         "strides"),
    case("strides-zero", lambda: nn.depthwise_conv2d(x4(), f4(), 0, "SAME"), ValueError,
         "strides"),
    case("strides-float", lambda: nn.depthwise_conv2d(x4(), f4(), 1.5, "SAME"), TypeError,
         "strides"),
    case("strides-4-batch", lambda: nn.depthwise_conv2d(x4(), f4(), [2, 1, 1, 1], "SAME"),
         ValueError, "strides", "batch"),
    case("strides-three", lambda: nn.depthwise_conv2d(x4(), f4(), [1, 1, 1], "SAME"), ValueError,
         "strides"),
    case("strides-2**70", lambda: nn.depthwise_conv2d(x4(), f4(), 2**70, "SAME"), ValueError,
         "strides"),
    case("dilations-zero", lambda: nn.depthwise_conv2d(x4(), f4(), 1, "SAME", dilations=0),
         ValueError, "dilations"),
    case("dilations-bool", lambda: nn.depthwise_conv2d(x4(), f4(), 1, "SAME", dilations=True),
         TypeError, "dilations"),
    case("padding-typo", lambda: nn.depthwise_conv2d(x4(), f4(), 1, "VAILD"), ValueError,
         "padding", "did you mean 'VALID'"),
    case("padding-none", lambda: nn.depthwise_conv2d(x4(), f4(), 1, None), TypeError, "padding"),
    case("padding-negative", lambda: nn.depthwise_conv2d(x4(), f4(), 1, [(-1, 0), (0, 0)]),
         ValueError, "padding"),
    case("padding-tf-batch", lambda: nn.depthwise_conv2d(
        x4(), f4(), 1, [[1, 0], [0, 0], [0, 0], [0, 0]]), ValueError, "padding", "batch"),
    case("data-format", lambda: nn.depthwise_conv2d(x4(), f4(), 1, "SAME", "NWHC"), ValueError,
         "data_format", "NWHC"),
    case("bias-shape", lambda: nn.depthwise_conv2d(x4(), f4(), 1, "SAME", bias=np.zeros(3)),
         ValueError, "bias", "(6,)"),
    case("bias-complex", lambda: nn.depthwise_conv2d(x4(), f4(), 1, "SAME",
                                                     bias=np.zeros(6, np.complex64)),
         TypeError, "bias"),
    case("activation", lambda: nn.depthwise_conv2d(x4(), f4(), 1, "SAME", activation="tanh"),
         ValueError, "activation", "relu6"),
    case("pointwise-not-1x1", lambda: nn.separable_conv2d(x4(), f4(), f4((3, 3, 6, 2)), 1,
                                                          "SAME"),
         ValueError, "pointwise_filter", "(3, 3, 6, 2)"),
    case("pointwise-rank", lambda: nn.separable_conv2d(x4(), f4(), np.zeros((1, 6, 2)), 1,
                                                       "SAME"),
         ValueError, "pointwise_filter"),
    case("pointwise-channels", lambda: nn.separable_conv2d(x4(), f4(), f4((1, 1, 5, 2)), 1,
                                                           "SAME"),
         ValueError, "pointwise_filter", "3 * 2 = 6"),
    case("pointwise-object", lambda: nn.separable_conv2d(x4(), f4(), f4((1, 1, 6, 2), object),
                                                         1, "SAME"),
         TypeError, "pointwise_filter"),
    case("depthwise-filter-none", lambda: nn.separable_conv2d(x4(), None, f4((1, 1, 6, 2)), 1,
                                                              "SAME"),
         TypeError, "depthwise_filter"),
    case("depthwise-filter-channels", lambda: nn.separable_conv2d(x4(), f4((3, 3, 2, 3)),
                                                                  f4((1, 1, 6, 2)), 1, "SAME"),
         ValueError, "depthwise_filter expects 2 input channels"),
    # the layer
    case("layer-rank5", lambda: slim.separable_conv2d(x4((1, 1, 5, 5, 3)), 4, 3), ValueError,
         "Convolution expects input with rank 4, got 5"),
    case("layer-data-format-none", lambda: slim.separable_conv2d(x4(), 4, 3, data_format=None),
         ValueError, "data_format has to be either NCHW or NHWC"),
    case("layer-depth-multiplier-zero", lambda: slim.separable_conv2d(x4(), 4, 3,
                                                                      depth_multiplier=0),
         ValueError, "depth_multiplier"),
    case("layer-depth-multiplier-float", lambda: slim.separable_conv2d(x4(), 4, 3,
                                                                       depth_multiplier=1.0),
         TypeError, "depth_multiplier"),
    case("layer-kernel-size", lambda: slim.separable_conv2d(x4(), 4, [3, 3, 3]), ValueError,
         "kernel_size"),
    case("layer-stride-and-rate", lambda: slim.separable_conv2d(x4(), 4, 3, stride=2, rate=2),
         ValueError, "stride", "rate"),
    case("layer-stride-and-rate-dw", lambda: slim.separable_conv2d(x4(), None, 3, stride=[1, 2],
                                                                   rate=[2, 1]),
         ValueError, "dilation_rate"),
    case("layer-padding", lambda: slim.separable_conv2d(x4(), 4, 3, padding="VAILD"), ValueError,
         "VALID"),
    case("layer-valid-too-small", lambda: slim.separable_conv2d(x4(), 4, 7, padding="VALID"),
         ValueError, "output size"),
    case("layer-activation", lambda: slim.separable_conv2d(x4(), 4, 3, activation_fn="relu"),
         TypeError, "activation_fn"),
    case("layer-normalizer-params", lambda: slim.separable_conv2d(
        x4(), 4, 3, normalizer_fn=slim.batch_norm, normalizer_params=[1]), TypeError,
        "normalizer_params"),
    case("layer-regularizer", lambda: slim.separable_conv2d(x4(), 4, 3, weights_regularizer=1),
         TypeError, "weights_regularizer"),
    case("layer-collections", lambda: slim.separable_conv2d(x4(), 4, 3, outputs_collections=5),
         TypeError, "outputs_collections"),
    case("layer-reuse-without-scope", lambda: slim.separable_conv2d(x4(), 4, 3, reuse=True),
         ValueError, "name_or_scope"),
    case("layer-dtype", lambda: slim.separable_conv2d(x4(dtype="M8[s]"), 4, 3), TypeError,
         "datetime64"),
]


@pytest.mark.parametrize("call, exc, words", BAD)
def test_bad_arguments(call, exc, words, fresh_store):
    if exc is None:  # allowed: an empty output of the right shape, as TF
        assert call().shape == (1, 5, 5, 0)
        return
    with pytest.raises(exc) as info:
        call()
    message = str(info.value).lower()
    for word in words:
        assert word.lower() in message, f"{word!r} not in {str(info.value)!r}"
    assert slim.get_variables() == []  # a refused layer call creates nothing


def _assert_no_big_allocation(call, *words, limit=8 << 20):
    tracemalloc.start()
    try:
        with pytest.raises(MemoryError) as info:
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    assert peak < limit, f"{peak} bytes allocated before the MemoryError"


@pytest.mark.parametrize("call, words", [
    (lambda: nn.depthwise_conv2d(huge((2**40, 5, 5, 3)), f4(), 1, "SAME"),
     ["(1099511627776, 5, 5, 3)", "output"]),
    (lambda: nn.depthwise_conv2d(huge((1, 2**20, 2**20, 4)), f4((1, 1, 4, 2**10)), 1, "SAME"),
     ["output"]),
    (lambda: nn.depthwise_conv2d(x4(), f4(), 1, [(2**40, 0), (0, 0)]), ["output"]),
    (lambda: nn.depthwise_conv2d(x4(), f4(), 1, [(2**33, 0), (2**33, 0)]), ["output"]),
    # a small output with an indirection buffer of ~2**44 pointers
    (lambda: nn.depthwise_conv2d(huge((1, 2**16, 2**16, 1)), huge((2**12, 2**3, 1, 1)), 1,
                                 "SAME"), ["indirection"]),
    # a multiplier that expands one image to 2**42 values
    (lambda: nn.depthwise_conv2d(huge((1, 2**15, 2**15, 1)), huge((1, 1, 1, 2**12)), 2**15,
                                 "VALID"), ["expanded image"]),
    (lambda: nn.separable_conv2d(huge((2**30, 8, 8, 3)), f4(), f4((1, 1, 6, 1)), 1, "SAME"),
     ["output"]),
])
def test_huge_shapes_fail_before_allocating(call, words):
    _assert_no_big_allocation(call, *words)


def test_layer_weights_too_large_for_memory(monkeypatch, fresh_store):
    monkeypatch.setattr(_memory, "_limit", 4 << 20)
    _assert_no_big_allocation(lambda: slim.separable_conv2d(x4((1, 1, 1, 3)), 2**16, 1,
                                                            depth_multiplier=8),
                              "num_outputs", limit=1 << 20)
    assert slim.get_variables() == []


def test_batch_zero_and_empty_outputs():
    x = np.zeros((0, 6, 5, 3), np.float32)
    assert nn.depthwise_conv2d(x, f4((3, 3, 3, 2)), 2, "SAME").shape == (0, 3, 3, 6)
    assert nn.separable_conv2d(x, f4((3, 3, 3, 2)), f4((1, 1, 6, 4)), 1, "VALID").shape == \
        (0, 4, 3, 4)
    assert slim.separable_conv2d(x, None, 3).shape == (0, 6, 5, 3)
    assert slim.separable_conv2d(x.transpose(0, 3, 1, 2), 2, 3, data_format="NCHW").shape == \
        (0, 2, 6, 5)
    assert nn.depthwise_conv2d(np.empty((0, 2**20, 2**20, 3), np.float32), f4(), 1,
                               "SAME").shape == (0, 2**20, 2**20, 6)


def test_the_c_operator_refuses_bad_sizes_itself():
    """The raw operator trusts nothing (pyconv.nn stops these earlier)."""
    x = x4((1, 5, 5, 1))
    w = f4((1, 1, 1, 1))
    dw = _conv.depthwise_conv2d
    for pads in [(2**63 - 1, 0, 0, 0), (2**62, 2**62, 0, 0), (2**32, 0, 2**32, 0)]:
        with pytest.raises(ValueError, match="larger than memory can address"):
            dw(x, w, None, *pads, 1, 1, 1, 1, 0)
    with pytest.raises(ValueError, match="2\\*\\*63"):
        dw(x, w, None, 2**64, 0, 0, 0, 1, 1, 1, 1, 0)
    with pytest.raises(ValueError, match="dilation_h"):
        dw(x, w, None, 0, 0, 0, 0, 1, 1, 2**63, 1, 0)
    with pytest.raises(ValueError, match="effective kernel"):
        dw(x, f4((3, 1, 1, 1)), None, 0, 0, 0, 0, 1, 1, 2**62, 1, 0)
    with pytest.raises(ValueError, match="activation"):
        dw(x, w, None, 0, 0, 0, 0, 1, 1, 1, 1, 3)
    with pytest.raises(TypeError, match="input"):
        dw(x.tolist(), w, None, 0, 0, 0, 0, 1, 1, 1, 1, 0)
    with pytest.raises(TypeError, match="filter"):
        dw(x, w.astype(np.float64), None, 0, 0, 0, 0, 1, 1, 1, 1, 0)
    with pytest.raises(ValueError, match="bias"):
        dw(x, f4((1, 1, 1, 3)), np.zeros(2, np.float32), 0, 0, 0, 0, 1, 1, 1, 1, 0)
    with pytest.raises(ValueError, match="input channels"):
        dw(x, f4((1, 1, 2, 1)), None, 0, 0, 0, 0, 1, 1, 1, 1, 0)
    with pytest.raises(ValueError, match="height and width"):
        dw(x4((1, 0, 5, 1)), w, None, 0, 0, 0, 0, 1, 1, 1, 1, 0)
    with pytest.raises(ValueError, match="channels"):
        dw(x4((1, 5, 5, 0)), f4((1, 1, 0, 1)), None, 0, 0, 0, 0, 1, 1, 1, 1, 0)
    with pytest.raises(TypeError, match="12 positional"):
        dw(x, w)
    assert dw(x4((0, 5, 5, 1)), w, None, 0, 0, 0, 0, 1, 1, 1, 1, 0).shape == (0, 5, 5, 1)
    assert dw(x, f4((1, 1, 1, 0)), None, 0, 0, 0, 0, 1, 1, 1, 1, 0).shape == (1, 5, 5, 0)


def test_depthwise_releases_the_gil_and_runs_from_many_threads():
    import threading
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 20, 20, 24)).astype(np.float32)
    w = rng.standard_normal((3, 3, 24, 2)).astype(np.float32)
    expected = nn.depthwise_conv2d(x, w, 1, "SAME")
    results, errors = [], []

    def work():
        try:
            for _ in range(5):
                results.append(nn.depthwise_conv2d(x, w, 1, "SAME"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 20
    for r in results:
        assert r.tobytes() == expected.tobytes()


def test_num_outputs_float_and_zero_as_tf(fresh_store):
    # TF's layer truncates a float num_outputs and builds an empty layer for 0 (as conv2d)
    x = np.ones((1, 5, 5, 3), np.float32)
    assert slim.separable_conv2d(x, 4.0, 3).shape == (1, 5, 5, 4)
    assert slim.separable_conv2d(x, 0, 3).shape == (1, 5, 5, 0)


@pytest.mark.parametrize("threads", [1, 2])
def test_sigint_interrupts_a_long_depthwise_convolution(threads):
    """Ctrl-C is polled as in conv (test_interrupt.py): a depthwise call of
    ~28 G multiply-adds (41x41 taps, multiplier 4: the expansion and the
    generic kernel) stops within 3 s of SIGINT, and the pool works after."""
    from test_interrupt import assert_interrupted_in_bound, run_child

    with run_child("""
        pyconv.set_num_threads(int(sys.argv[1]))
        x = np.ones((1, 256, 256, 64), np.float32)
        w = np.full((41, 41, 64, 4), 1e-3, np.float32)
        say(state="started")
        try:
            nn.depthwise_conv2d(x, w, 1, "SAME")
        except KeyboardInterrupt:
            say(state="interrupted")
        else:
            say(state="finished")
        small = nn.depthwise_conv2d(x[:, :8, :8, :4], w[:3, :3, :4], 1, "VALID")
        assert np.allclose(small, 9e-3, rtol=1e-5)
        say(state="ok")
    """, str(threads)) as proc:
        assert_interrupted_in_bound(proc, 0.3)


def _depthwise_workload():
    """Successful and raising depthwise calls (C errors after the arrays are copied too)."""
    x = np.ones((2, 9, 9, 6), np.float32)
    w = np.ones((3, 3, 6, 2), np.float32)
    nn.depthwise_conv2d(x, w, 1, "SAME", bias=np.zeros(12, np.float32), activation="relu6")
    nn.depthwise_conv2d(x, w[:2, :2], 2, "VALID")                      # generic kernel, dm 2
    nn.separable_conv2d(x, w, np.ones((1, 1, 12, 4), np.float32), 1, "SAME")
    slim.separable_conv2d(x, 4, 3, depth_multiplier=2, scope="sep", reuse=slim.AUTO_REUSE)
    for call, exc in ((lambda: nn.depthwise_conv2d(x, w[:, :, :5], 1, "SAME"), ValueError),
                      (lambda: _conv.depthwise_conv2d(x, w, np.zeros(3, np.float32), 0, 0, 0, 0,
                                                      1, 1, 1, 1, 0), ValueError),
                      (lambda: _conv.depthwise_conv2d(x, w, None, 2**62, 2**62, 0, 0, 1, 1, 1,
                                                      1, 0), ValueError)):
        try:
            call()
        except exc:
            pass
    return 7


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_depthwise_calls_keep_memory_flat():
    from test_leaks import check_flat, measure

    check_flat(*measure(7_000, _depthwise_workload, warmup_calls=700))
