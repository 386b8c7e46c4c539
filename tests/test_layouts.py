"""Memory layouts beyond pyconv.nn.conv2d's input and filters (test_nn.py):
the layers, pools, bias, batch_norm, bias_add/relu, and variable values given
as initializers or loaded, in every layout, give the result of the same values
in a plain C-contiguous array; inputs are never modified; outputs never share
memory with an input and are new, writeable, C-contiguous, native-endian.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import conv2d_reference, pads_for, pool_reference

import pyconv as slim

nn = slim.nn

LAYOUTS = ["fortran", "noncontiguous", "negative", "readonly", "byteswapped", "unaligned",
           "broadcast", "transposed-view"]


def with_layout(a, layout):
    """``a``'s values in another memory layout ('broadcast' repeats a's first
    entry along axis 0 with stride 0, so it changes the values)."""
    a = np.asarray(a)
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "noncontiguous":
        big = np.zeros(a.shape[:-1] + (a.shape[-1] * 3,), a.dtype)
        big[..., 1::3] = a
        return big[..., 1::3]
    if layout == "negative":  # every axis reversed in memory
        b = a[tuple(slice(None, None, -1) for _ in range(a.ndim))].copy()
        return b[tuple(slice(None, None, -1) for _ in range(a.ndim))]
    if layout == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b
    if layout == "byteswapped":
        return a.astype(a.dtype.newbyteorder("S"))
    if layout == "unaligned":
        buf = np.zeros(a.nbytes + 1, np.uint8)
        b = buf[1:].view(a.dtype).reshape(a.shape)
        b[...] = a
        assert not b.flags.aligned or a.dtype.itemsize == 1 or a.size == 0
        return b
    if layout == "broadcast":
        return np.broadcast_to(a[:1], a.shape)
    if layout == "transposed-view":  # C order of the reversed axes, viewed back
        return np.ascontiguousarray(a.T).T
    return a


def plain(a):
    """The same values as a fresh native C-contiguous array."""
    a = np.asarray(a)
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("="))


def snapshot(*arrays):
    return [(a, np.array(a, copy=True), a.dtype, a.strides) for a in arrays]


def unchanged(snap):
    for a, copy, dtype, strides in snap:
        assert a.dtype == dtype and a.strides == strides
        np.testing.assert_array_equal(a, copy)


def fresh_output(out, *inputs):
    assert isinstance(out, np.ndarray)
    assert out.flags.c_contiguous and out.flags.writeable and out.dtype.isnative
    for a in inputs:
        assert not np.shares_memory(out, a)


@pytest.fixture(autouse=True)
def store():
    with slim.VariableStore(seed=0) as s:
        yield s


RNG = np.random.default_rng(12345)
X = RNG.standard_normal((2, 7, 6, 3)).astype(np.float32)
W = RNG.standard_normal((3, 2, 3, 4)).astype(np.float32)
B = RNG.standard_normal(4).astype(np.float32)


def ref_conv(x, w, b=None, strides=(1, 1), padding="SAME", act=None):
    x, w = plain(x).astype(np.float64), plain(w).astype(np.float64)
    pads = tuple(pads_for(padding, x.shape[1 + d], w.shape[d], strides[d]) for d in range(2))
    return conv2d_reference(x, w, strides, pads, (1, 1),
                            None if b is None else plain(b).astype(np.float64), act)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_conv2d_layer_inputs_initializers_and_bias(layout, data_format):
    nchw = data_format == "NCHW"
    x = with_layout(X.transpose(0, 3, 1, 2) if nchw else X, layout)
    w, b = with_layout(W, layout), with_layout(B, layout)
    snap = snapshot(x, w, b)
    out = slim.conv2d(x, 4, [3, 2], stride=2, data_format=data_format, weights_initializer=w,
                      biases_initializer=b, activation_fn=slim.relu6)
    unchanged(snap)
    fresh_output(out, x, w, b)
    ref = ref_conv(x.transpose(0, 2, 3, 1) if nchw else x, w, b, (2, 2), act="relu6")
    np.testing.assert_allclose(out.transpose(0, 2, 3, 1) if nchw else out, ref, rtol=1e-5,
                               atol=1e-5)
    store = slim.get_default_store()
    for name in ("Conv/weights", "Conv/biases"):  # variables own plain copies
        v = store[name]  # (read-only once a layer has used them: Variable.assign writes)
        assert v.flags.c_contiguous and v.flags.owndata and v.dtype == np.float32
        assert not np.shares_memory(v, w) and not np.shares_memory(v, b)
    out[...] = 0  # the output belongs to the caller
    np.testing.assert_array_equal(store["Conv/weights"], plain(w))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_loaded_variable_values_in_any_layout(layout, store):
    w, b = with_layout(W, layout), with_layout(B, layout)
    snap = snapshot(w, b)
    store.load({"c/weights:0": w, "c/biases": b})  # pending: taken by the layer
    out = slim.conv2d(X, 4, [3, 2], scope="c", activation_fn=None)
    np.testing.assert_allclose(out, ref_conv(X, w, b), rtol=1e-5, atol=1e-5)
    # loading over existing variables assigns in place
    w2, b2 = with_layout(W * 2, layout), with_layout(B - 1, layout)
    store.load({"c/weights": w2, "c/biases": b2})
    out = slim.conv2d(X, 4, [3, 2], scope="c", reuse=True, activation_fn=None)
    np.testing.assert_allclose(out, ref_conv(X, w2, b2), rtol=1e-5, atol=1e-5)
    unchanged(snap)
    for name in ("c/weights", "c/biases"):
        v = store[name]
        assert v.flags.c_contiguous and v.dtype.isnative  # read-only once used: assign
        for a in (w, b, w2, b2):
            assert not np.shares_memory(v, a)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_assign_from_any_layout(layout, store):
    v = slim.get_variable("v", W.shape)
    w = with_layout(W, layout)
    v.assign(w)
    np.testing.assert_array_equal(v.value, plain(w))
    assert v.value.flags.c_contiguous and not np.shares_memory(v.value, w)


@pytest.mark.parametrize("layout", LAYOUTS + ["list"])
def test_nn_bias_in_any_layout(layout):
    b = B.tolist() if layout == "list" else with_layout(B, layout)
    x, w = X.astype(np.float64), W.astype(np.float64)
    out = nn.conv2d(x, w, bias=b, activation="relu")
    np.testing.assert_allclose(out, ref_conv(x, w, np.asarray(b), act="relu"), rtol=1e-12)
    if not isinstance(b, list):
        fresh_output(out, x, w, b)
        out16 = nn.conv2d(X.astype(np.float16), W, bias=b)  # bias cast to float32 compute
        assert out16.dtype == np.float16


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_pools_in_any_layout(layout, kind, data_format):
    nchw = data_format == "NCHW"
    x = with_layout(X.transpose(0, 3, 1, 2) if nchw else X, layout)
    snap = snapshot(x)
    fn = slim.max_pool2d if kind == "max" else slim.avg_pool2d
    out = fn(x, [3, 2], stride=[2, 1], padding="SAME", data_format=data_format)
    unchanged(snap)
    fresh_output(out, x)
    xp = plain(x.transpose(0, 2, 3, 1) if nchw else x)
    pads = tuple(pads_for("SAME", xp.shape[1 + d], (3, 2)[d], (2, 1)[d]) for d in range(2))
    ref = pool_reference(kind, xp, (3, 2), (2, 1), pads)
    np.testing.assert_allclose(out.transpose(0, 2, 3, 1) if nchw else out, ref, rtol=1e-5,
                               atol=1e-6)
    # nn's pools and 1x1 windows (the output is still a new array)
    out = nn.max_pool2d(x, 1, 1, data_format=data_format)
    fresh_output(out, x)
    np.testing.assert_array_equal(out, plain(x))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_conv2d_same_and_subsample_in_any_layout(layout):
    x = with_layout(X, layout)
    snap = snapshot(x)
    ones = np.ones((3, 3, 3, 2), np.float32)
    with slim.arg_scope([slim.conv2d], weights_initializer=ones, activation_fn=None):
        y = slim.conv2d_same(x, 2, 3, stride=2, scope="a")
        z = slim.subsample(slim.conv2d(x, 2, 3, scope="b"), 2)
    unchanged(snap)
    fresh_output(y, x)
    np.testing.assert_allclose(y, z, rtol=1e-5, atol=1e-5)
    sub = slim.subsample(x, 2)
    fresh_output(sub, x)
    np.testing.assert_array_equal(sub, plain(x)[:, ::2, ::2])
    assert slim.subsample(x, 1) is x  # slim: factor 1 returns the inputs themselves


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("is_training", [True, False])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_batch_norm_in_any_layout(layout, is_training, data_format, store):
    nchw = data_format == "NCHW"
    x = with_layout((X + 3).transpose(0, 3, 1, 2) if nchw else X + 3, layout)
    gamma, beta = with_layout(np.array([1.5, 0.5, 2.0], np.float32), layout), \
        with_layout(np.array([0.1, -0.2, 0.3], np.float32), layout)
    mean, var = with_layout(np.array([1.0, 2.0, 3.0]), layout), \
        with_layout(np.array([4.0, 0.5, 1.0]), layout)
    snap = snapshot(x, gamma, beta, mean, var)
    store.load({"bn/moving_mean": mean, "bn/moving_variance": var})
    out = slim.batch_norm(x, scale=True, is_training=is_training, data_format=data_format,
                          param_initializers={"gamma": gamma, "beta": beta}, scope="bn")
    unchanged(snap)
    fresh_output(out, x, gamma, beta, mean, var)
    xp = plain(x).astype(np.float64)
    axes = (0, 2, 3) if nchw else (0, 1, 2)
    shape = (1, 3, 1, 1) if nchw else (1, 1, 1, 3)
    if is_training:
        m, v = xp.mean(axis=axes), xp.var(axis=axes)
        eps = max(0.001, 1.001e-5)
    else:
        m, v, eps = plain(mean), plain(var), 0.001
    ref = (xp - m.reshape(shape)) / np.sqrt(v.reshape(shape) + eps) * \
        plain(gamma).reshape(shape) + plain(beta).reshape(shape)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    for name in ("bn/moving_mean", "bn/moving_variance", "bn/gamma", "bn/beta"):
        value = store[name]
        assert value.flags.writeable and value.flags.c_contiguous
        for a in (x, gamma, beta, mean, var, out):
            assert not np.shares_memory(value, a)
    if not is_training:
        np.testing.assert_array_equal(store["bn/moving_mean"], plain(mean).astype(np.float32))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_bias_add_relu_relu6_in_any_layout(layout):
    x = with_layout(X * 4, layout)
    b = with_layout(B[:3], layout)
    snap = snapshot(x, b)
    for out, ref in ((nn.bias_add(x, b), plain(x) + plain(b)),
                     (nn.relu(x), np.maximum(plain(x), 0)),
                     (nn.relu6(x), np.clip(plain(x), 0, 6)),
                     (slim.relu6(x), np.clip(plain(x), 0, 6))):
        fresh_output(out, x, b)
        np.testing.assert_allclose(out, ref, rtol=1e-6)
    unchanged(snap)


def test_outputs_of_repeated_calls_are_distinct_arrays():
    """The plan cache shares plans, never buffers."""
    a = nn.conv2d(X, W)
    b = nn.conv2d(X, W)
    assert not np.shares_memory(a, b)
    a[...] = 0
    np.testing.assert_allclose(b, ref_conv(X, W), rtol=1e-5, atol=1e-5)


def test_input_written_by_the_caller_between_calls_is_read_again():
    x = X.copy()
    first = nn.conv2d(x, W)
    x *= 2
    np.testing.assert_allclose(nn.conv2d(x, W), 2 * first, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- properties

layouts = st.sampled_from(["contiguous", *LAYOUTS])


@st.composite
def layer_configs(draw):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    return {
        "shape": (draw(st.integers(0, 2)), draw(st.integers(k[0], 8)), draw(st.integers(k[1], 8)),
               draw(st.integers(1, 4))),
        "cout": draw(st.integers(1, 6)),
        "k": k,
        "stride": draw(st.integers(1, 3)),
        "padding": draw(st.sampled_from(["SAME", "VALID", "FULL"])),
        "data_format": draw(st.sampled_from(["NHWC", "NCHW"])),
        "dtype": draw(st.sampled_from([np.float32, np.float64, np.float16, np.uint8])),
        "x_layout": draw(layouts), "w_layout": draw(layouts), "b_layout": draw(layouts),
        "activation": draw(st.sampled_from([None, "relu", "relu6"])),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


@given(layer_configs())
def test_layer_conv2d_property(cfg):
    """slim.conv2d on any layout of input, weights and biases equals the float64
    reference on the same values; inputs unchanged, output fresh."""
    rng = np.random.default_rng(cfg["seed"])
    c = cfg["shape"][3]
    dtype = np.dtype(cfg["dtype"])
    x = (rng.integers(0, 4, cfg["shape"]) if dtype.kind == "u"
         else rng.standard_normal(cfg["shape"])).astype(dtype)
    vdt = np.float32 if dtype.kind == "u" or dtype == np.float16 else dtype
    vdt = np.float16 if dtype == np.float16 else vdt
    weights = rng.standard_normal((*cfg["k"], c, cfg["cout"])).astype(vdt)
    biases = rng.standard_normal(cfg["cout"]).astype(vdt)
    nchw = cfg["data_format"] == "NCHW"
    xi = with_layout(x.transpose(0, 3, 1, 2) if nchw else x, cfg["x_layout"])
    wi, bi = with_layout(weights, cfg["w_layout"]), with_layout(biases, cfg["b_layout"])
    snap = snapshot(xi, wi, bi)
    act = {None: None, "relu": slim.relu, "relu6": slim.relu6}[cfg["activation"]]
    if dtype.kind == "u":  # TF-Slim refuses integer inputs; so does pyconv
        with slim.VariableStore(seed=0), pytest.raises(TypeError, match="uint8"):
            slim.conv2d(xi, cfg["cout"], cfg["k"], weights_initializer=wi)
        unchanged(snap)
        return
    with slim.VariableStore(seed=0):
        out = slim.conv2d(xi, cfg["cout"], cfg["k"], stride=cfg["stride"],
                          padding=cfg["padding"], data_format=cfg["data_format"],
                          weights_initializer=wi, biases_initializer=bi, activation_fn=act)
    unchanged(snap)
    fresh_output(out, xi, wi, bi)
    x_nhwc = plain(xi.transpose(0, 2, 3, 1) if nchw else xi)
    ref = ref_conv(x_nhwc.astype(np.float32 if dtype.kind == "u" else dtype), wi, bi,
                   (cfg["stride"],) * 2, cfg["padding"], cfg["activation"])
    got = out.transpose(0, 2, 3, 1) if nchw else out
    assert got.shape == ref.shape
    assert out.dtype == (np.float32 if dtype.kind == "u" else dtype)
    tol = {np.float16: 2e-2, np.float32: 1e-4, np.float64: 1e-10}[np.dtype(out.dtype).type]
    scale = 1 + np.abs(ref)
    assert np.all(np.abs(got.astype(np.float64) - ref) <= tol * scale * max(1, c * 4))


@st.composite
def pool_configs(draw):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    return {
        "kind": draw(st.sampled_from(["max", "avg"])),
        "shape": (draw(st.integers(0, 2)), draw(st.integers(k[0], 9)), draw(st.integers(k[1], 9)),
               draw(st.integers(1, 5))),
        "k": k, "s": (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        "padding": draw(st.sampled_from(["SAME", "VALID", "FULL"])),
        "data_format": draw(st.sampled_from(["NHWC", "NCHW"])),
        "layout": draw(layouts),
        "special": draw(st.sampled_from([None, np.nan, np.inf, -np.inf])),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


@given(pool_configs())
def test_pool_property(cfg):
    """Pools in any layout equal the reference, NaN and +-Inf included."""
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal(cfg["shape"])
    if cfg["special"] is not None and x.size:
        x.flat[rng.integers(x.size)] = cfg["special"]
    nchw = cfg["data_format"] == "NCHW"
    xi = with_layout(x.transpose(0, 3, 1, 2) if nchw else x, cfg["layout"])
    snap = snapshot(xi)
    fn = slim.max_pool2d if cfg["kind"] == "max" else slim.avg_pool2d
    with slim.VariableStore(seed=0):
        out = fn(xi, cfg["k"], stride=cfg["s"], padding=cfg["padding"],
                 data_format=cfg["data_format"])
    unchanged(snap)
    fresh_output(out, xi)
    xp = plain(xi.transpose(0, 2, 3, 1) if nchw else xi)
    pads = tuple(pads_for(cfg["padding"], xp.shape[1 + d], cfg["k"][d], cfg["s"][d])
                 for d in range(2))
    with np.errstate(invalid="ignore"):
        ref = pool_reference(cfg["kind"], xp, cfg["k"], cfg["s"], pads)
    np.testing.assert_allclose(out.transpose(0, 2, 3, 1) if nchw else out, ref, rtol=1e-12,
                               atol=1e-12)
