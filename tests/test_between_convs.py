"""The operators between the convolutions: pooling (csrc/pool.c), the
elementwise epilogue (csrc/eltwise.c) and its fusion into the convolution.

Expected values come from tests/reference.py (float64 loops, TF's max rule)
and from NumPy computing TF's formulas one IEEE operation at a time, never
from pyconv itself; the fused convolution is compared with the unfused
path, which the fixtures tie to TensorFlow.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyconv
import pyconv as slim
from pyconv import _conv, layers
from pyconv import nn
from reference import conv2d_reference, pads_for, pool_reference

ISAS = _conv.available_isas()
DTYPES = (np.float32, np.float64)


@pytest.fixture
def threads():
    before = pyconv.get_num_threads()
    yield pyconv.set_num_threads
    pyconv.set_num_threads(before)


def with_isa(isa, fn):
    before = _conv.isa()
    _conv.set_isa(isa)
    try:
        return fn()
    finally:
        _conv.set_isa(before)


def specials(rng, x, share=0.15):
    """x with NaN, +-inf sprinkled in (copies)."""
    x = x.copy()
    mask = rng.random(x.shape)
    x[mask < share / 3] = np.nan
    x[(mask >= share / 3) & (mask < 2 * share / 3)] = -np.inf
    x[(mask >= 2 * share / 3) & (mask < share)] = np.inf
    return x


# ---- pooling ---------------------------------------------------------------

@st.composite
def pool_cases(draw):
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    k = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    padding = draw(st.sampled_from(["SAME", "VALID", "FULL", "explicit"]))
    if padding == "explicit":
        padding = [(draw(st.integers(0, k[0] - 1)), draw(st.integers(0, k[0] - 1))),
                   (draw(st.integers(0, k[1] - 1)), draw(st.integers(0, k[1] - 1)))]
    return dict(kind=draw(st.sampled_from(["max", "avg"])),
                shape=(draw(st.integers(1, 2)), h, w, draw(st.sampled_from([1, 3, 8, 17, 33, 70]))),
                k=k, s=(draw(st.integers(1, 3)), draw(st.integers(1, 3))), padding=padding,
                dtype=draw(st.sampled_from(DTYPES)), isa=draw(st.sampled_from(ISAS)),
                special=draw(st.booleans()), seed=draw(st.integers(0, 2**31 - 1)))


@given(pool_cases())
def test_pool_matches_reference_on_every_isa(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal(cfg["shape"]).astype(cfg["dtype"])
    if cfg["special"]:
        x = specials(rng, x)
    pads = tuple(pads_for(cfg["padding"] if isinstance(cfg["padding"], str)
                          else cfg["padding"][d], cfg["shape"][1 + d], cfg["k"][d], cfg["s"][d])
                 for d in range(2))
    if any(cfg["shape"][1 + d] + sum(pads[d]) < cfg["k"][d] for d in range(2)):
        return  # no output: the refusal is tested in test_nn
    fn = nn.max_pool2d if cfg["kind"] == "max" else nn.avg_pool2d
    out = with_isa(cfg["isa"], lambda: fn(x, cfg["k"], cfg["s"], cfg["padding"]))
    ref = pool_reference(cfg["kind"], x, cfg["k"], cfg["s"], pads, dtype=cfg["dtype"])
    assert out.dtype == cfg["dtype"] and out.shape == ref.shape
    if cfg["kind"] == "max":  # a max picks one element: exact, NaN never wins
        assert not np.isnan(out).any()
        np.testing.assert_array_equal(out, ref.astype(cfg["dtype"]))
    else:
        tol = 1e-6 if cfg["dtype"] == np.float32 else 1e-14
        np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_nan_and_inf_rule(dtype):
    """TF (issue 14 A5): [nan, 1, -inf, 2] -> 2; only -inf or NaN -> the lowest
    finite value; padding never wins, even against -inf."""
    lowest = np.finfo(dtype).min
    for isa in ISAS:
        for c in (1, 5, 16, 40):
            x = np.array([np.nan, 1, -np.inf, 2], dtype).reshape(1, 1, 4, 1).repeat(c, axis=3)
            out = with_isa(isa, lambda: nn.max_pool2d(x, (1, 4), 1))
            np.testing.assert_array_equal(out, np.full((1, 1, 1, c), 2, dtype))
            neg = np.full((1, 3, 3, c), -np.inf, dtype)
            neg[0, 1, 1] = np.nan
            out = with_isa(isa, lambda: nn.max_pool2d(neg, 3, 1, "SAME"))
            np.testing.assert_array_equal(out, np.full((1, 3, 3, c), lowest, dtype))
            out = with_isa(isa, lambda: nn.max_pool2d(-np.ones((1, 2, 2, c), dtype), 3, 1,
                                                      "FULL"))
            np.testing.assert_array_equal(out, -np.ones((1, 4, 4, c), dtype))


def test_max_pool_float16_lowest_is_float16s():
    """TF 2.21: a float16 window of only -inf/NaN gives -65504 (float16's lowest)."""
    x = np.array([-np.inf, -np.inf, np.nan, 1, np.nan, 2, -1, -np.inf], np.float16)
    out = nn.max_pool2d(x.reshape(1, 1, 8, 1), (1, 2), (1, 2))
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out.ravel(), np.array([-65504, 1, 2, -1], np.float16))


def test_huge_window_over_a_small_input_costs_the_output():
    """issue 15 item 5: 47 s (200x200) and 228 s (300x300) in the NumPy path;
    now each output reads at most the 36 input pixels."""
    x = np.arange(6 * 6 * 3, dtype=np.float32).reshape(1, 6, 6, 3)
    for k in (200, 300):
        out = nn.max_pool2d(x, (k, k), 1, "FULL")
        assert out.shape == (1, 5 + k, 5 + k, 3)
        # windows containing the bottom-right pixel see the global max
        np.testing.assert_array_equal(out[0, 5:k, 5:k], np.broadcast_to(x[0, 5, 5], (k - 5, k - 5, 3)))
        if k == 200:  # the reference loops over every window: once is enough
            ref = pool_reference("max", x, (k, k), (1, 1), ((k - 1, k - 1), (k - 1, k - 1)))
            np.testing.assert_array_equal(out, ref)
        avg = nn.avg_pool2d(x, (k, k), 1, "FULL")
        np.testing.assert_allclose(avg[0, 5:k, 5:k], np.broadcast_to(x[0].mean(axis=(0, 1)),
                                                                  (k - 5, k - 5, 3)), rtol=1e-6)
    out = nn.max_pool2d(np.ones((1, 6, 6, 3), np.float32), 2**40, 1, "SAME")
    np.testing.assert_array_equal(out, np.ones((1, 6, 6, 3), np.float32))


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_is_bit_identical_for_every_thread_count(kind, threads):
    x = np.random.default_rng(0).standard_normal((3, 61, 47, 37)).astype(np.float32)
    fn = nn.max_pool2d if kind == "max" else nn.avg_pool2d
    outs = []
    for n in (1, 2, 3, 8):
        threads(n)
        outs.append(fn(x, (5, 4), (2, 1), "SAME"))
    for o in outs[1:]:
        assert o.tobytes() == outs[0].tobytes()


def test_pool_nchw_matches_nhwc():
    x = np.random.default_rng(2).standard_normal((2, 9, 8, 5))
    for fn in (nn.max_pool2d, nn.avg_pool2d):
        a = fn(x, 3, 2, "SAME")
        b = fn(x.transpose(0, 3, 1, 2), 3, 2, "SAME", "NCHW")
        assert b.flags.c_contiguous
        np.testing.assert_array_equal(a, b.transpose(0, 2, 3, 1))


def test_raw_pool_operator_checks_its_arguments():
    x = np.zeros((1, 4, 4, 2), np.float32)
    with pytest.raises(TypeError, match="10 positional"):
        _conv.pool2d(x, 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        _conv.pool2d(x.astype(np.int32), 0, 2, 2, 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="kind"):
        _conv.pool2d(x, 2, 2, 2, 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="kernel_h"):
        _conv.pool2d(x, 0, 0, 2, 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="smaller than the window"):
        _conv.pool2d(x, 0, 2, 2, 1, 1, 2, 0, 0, 0)
    with pytest.raises(ValueError, match="larger than the padded input"):
        _conv.pool2d(x, 1, 9, 2, 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="rank 4"):
        _conv.pool2d(x[0], 0, 2, 2, 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="below 2\\*\\*63"):
        _conv.pool2d(x, 0, 2**64, 2, 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="overflows|address"):
        _conv.pool2d(x, 0, 2**62, 2, 1, 1, 2**62 - 1, 2**62 - 1, 0, 0)
    with pytest.raises(ValueError, match="smaller than the window"):
        nn.avg_pool2d(x, 2, 1, [(2, 0), (0, 0)])


# ---- the elementwise operator ------------------------------------------------

def tf_fused_bn(x, mean, var, gamma, beta, eps, dtype):
    """FusedBatchNormV3's CPU formula, one IEEE operation at a time in dtype."""
    t = np.dtype(dtype).type
    factor = (t(1) / np.sqrt(var.astype(dtype) + t(eps))) * gamma.astype(dtype)
    return (x.astype(dtype) - mean.astype(dtype)) * factor + beta.astype(dtype)


def tf_batch_normalization(x, mean, var, gamma, beta, eps, dtype):
    """tf.nn.batch_normalization's formula in dtype."""
    t = np.dtype(dtype).type
    inv = (t(1) / np.sqrt(var.astype(dtype) + t(eps))) * gamma.astype(dtype)
    return x.astype(dtype) * inv + (beta.astype(dtype) - mean.astype(dtype) * inv)


@given(st.sampled_from(DTYPES), st.sampled_from(ISAS), st.integers(1, 70),
       st.sampled_from(["NHWC", "NCHW"]), st.integers(0, 2**31 - 1))
def test_bias_add_relu_and_add_relu_are_exact(dtype, isa, channels, fmt, seed):
    rng = np.random.default_rng(seed)
    x = specials(rng, rng.standard_normal((2, 3, 5, channels)).astype(dtype), 0.05)
    if fmt == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    b = rng.standard_normal(channels).astype(dtype)
    bshape = (1, channels, 1, 1) if fmt == "NCHW" else (channels,)
    y = rng.standard_normal(x.shape).astype(dtype)

    def run():
        return (nn.bias_add(x, b, fmt), nn.relu(x), nn.relu6(x), nn.add_relu(x, y))

    got = with_isa(isa, run)
    # float64 sums rounded once to float32 are float32's own correctly rounded sums
    want = ((x.astype(np.float64) + b.reshape(bshape)).astype(dtype),
            np.where(x < 0, 0, x), np.where(x < 0, 0, np.where(x > 6, 6, x)),
            np.maximum((x.astype(np.float64) + y).astype(dtype), 0))
    for g, w in zip(got, want):
        assert g.dtype == dtype
        np.testing.assert_array_equal(g, w)


@given(st.sampled_from(DTYPES), st.sampled_from(ISAS), st.integers(1, 40),
       st.sampled_from(["NHWC", "NCHW"]), st.booleans(), st.integers(0, 2**31 - 1))
def test_inference_batch_norm_follows_tf_arithmetic(dtype, isa, channels, fmt, fused, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 4, 3, channels)).astype(dtype)
    if fmt == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    stats = {name: rng.uniform(0.5, 2.0, channels).astype(dtype)
             for name in ("moving_mean", "moving_variance", "gamma", "beta")}
    with slim.VariableStore() as store:
        store.load({f"bn/{k}": v for k, v in stats.items()})
        out = with_isa(isa, lambda: slim.batch_norm(
            x, scale=True, epsilon=1e-3, is_training=False, data_format=fmt,
            fused=None if fused else False, scope="bn"))
    shape = (1, channels, 1, 1) if fmt == "NCHW" else (channels,)
    args = [stats[k].reshape(shape) for k in ("moving_mean", "moving_variance", "gamma", "beta")]
    # TF's fused path applies to float32 only; float64 takes nn.batch_normalization
    tf_formula = tf_fused_bn if (fused and dtype == np.float32) else tf_batch_normalization
    want = tf_formula(x, *args, 1e-3, dtype)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, want)
    exact = (x.astype(np.float64) - args[0]) / np.sqrt(args[1] + 1e-3) * args[2] + args[3]
    np.testing.assert_allclose(out, exact, rtol=1e-5 if dtype == np.float32 else 1e-13,
                               atol=1e-5 if dtype == np.float32 else 1e-13)


def test_eltwise_is_bit_identical_for_every_thread_count(threads):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 64, 56, 56)).astype(np.float32)  # NCHW: runs of one channel
    b = rng.standard_normal(64).astype(np.float32)
    outs = []
    for n in (1, 2, 5):
        threads(n)
        outs.append((nn.bias_add(x, b, "NCHW"), nn.add_relu(x, x[::-1].copy())))
    for o in outs[1:]:
        for a, b_ in zip(o, outs[0]):
            assert a.tobytes() == b_.tobytes()


def test_raw_eltwise_operator_checks_its_arguments():
    x = np.zeros((2, 3, 4), np.float32)
    v = np.zeros(3, np.float32)
    with pytest.raises(TypeError, match="6 positional"):
        _conv.eltwise(x)
    with pytest.raises(ValueError, match="rank 3"):
        _conv.eltwise(x[0], None, None, None, None, 0)
    with pytest.raises(ValueError, match="one element per channel"):
        _conv.eltwise(x, np.zeros(4, np.float32), None, None, None, 0)
    with pytest.raises(ValueError, match="x's shape"):
        _conv.eltwise(x, None, None, None, x[:1], 0)
    with pytest.raises(TypeError, match="float32"):
        _conv.eltwise(x, v.astype(np.float64), None, None, None, 0)
    with pytest.raises(ValueError, match="activation"):
        _conv.eltwise(x, v, v, v, None, 3)
    with pytest.raises(ValueError, match="bias must have shape"):
        nn.bias_add(x, np.zeros(3), "NHWC")


def test_add_relu_broadcasts_like_numpy():
    a = np.array([[1.0, -2.0], [3.0, -4.0]], np.float32)
    np.testing.assert_array_equal(nn.add_relu(a, np.float32(1)), np.maximum(a + 1, 0))
    np.testing.assert_array_equal(nn.add_relu(a, [1, 1]), np.maximum(a + 1, 0))
    assert nn.add_relu(a.astype(np.float16), a.astype(np.float16)).dtype == np.float16


# ---- fusion into the convolution ---------------------------------------------

def _stats(store, scope, rng):
    for v in store.variables():
        if v.name.startswith(scope + "/BatchNorm"):
            v.assign(rng.uniform(0.5, 1.5, v.shape).astype(v.dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
@pytest.mark.parametrize("activation", [slim.relu, slim.relu6, None, np.tanh])
def test_fused_conv_batch_norm_equals_the_separate_passes(dtype, fmt, activation, monkeypatch):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 9, 8, 6)).astype(dtype)
    if fmt == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    params = {"is_training": False, "scale": True, "epsilon": 1e-5, "data_format": fmt}
    kwargs = dict(stride=2, normalizer_fn=slim.batch_norm, normalizer_params=params,
                  activation_fn=activation, data_format=fmt)
    calls = []
    real = layers._fold_batch_norm
    monkeypatch.setattr(layers, "_fold_batch_norm",
                        lambda *a: calls.append(1) or real(*a))
    with slim.VariableStore(seed=0) as fused_store:
        slim.conv2d(x, 11, 3, scope="c", **kwargs)
        _stats(fused_store, "c", np.random.default_rng(1))
        fused = slim.conv2d(x, 11, 3, scope="c", reuse=True, **kwargs)
    assert calls
    monkeypatch.setattr(layers, "_fold_batch_norm", lambda *a: None)  # today's path
    with slim.VariableStore(seed=0) as plain_store:
        slim.conv2d(x, 11, 3, scope="c", **kwargs)
        _stats(plain_store, "c", np.random.default_rng(1))
        plain = slim.conv2d(x, 11, 3, scope="c", reuse=True, **kwargs)
        collections = {k: [v.name for v in plain_store.get_collection(k)]
                       for k in (slim.GraphKeys.GLOBAL_VARIABLES,
                                 slim.GraphKeys.MODEL_VARIABLES,
                                 slim.GraphKeys.TRAINABLE_VARIABLES)}
    assert fused.dtype == plain.dtype == dtype
    assert fused.tobytes() == plain.tobytes()
    with fused_store:
        assert {k: [v.name for v in fused_store.get_collection(k)] for k in collections} \
            == collections
    assert sorted(fused_store.keys()) == sorted(plain_store.keys())
    for name in fused_store.keys():
        np.testing.assert_array_equal(fused_store[name], plain_store[name])
    # and the float64 reference: conv, then the batch-norm formula, then the activation
    xs = x.transpose(0, 2, 3, 1) if fmt == "NCHW" else x
    w = fused_store["c/weights"]
    conv = conv2d_reference(xs, w, (2, 2), (pads_for("SAME", 9, 3, 2), pads_for("SAME", 8, 3, 2)))
    s = {k: fused_store[f"c/BatchNorm/{k}"].astype(np.float64)
         for k in ("moving_mean", "moving_variance", "gamma", "beta")}
    ref = (conv - s["moving_mean"]) / np.sqrt(s["moving_variance"] + 1e-5) * s["gamma"] + s["beta"]
    if activation is not None:
        ref = activation(np.maximum(ref, 0) if activation is slim.relu else
                         np.clip(ref, 0, 6) if activation is slim.relu6 else ref)
    if fmt == "NCHW":
        ref = ref.transpose(0, 3, 1, 2)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(fused, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("params", [
    {"is_training": True},
    {"is_training": False, "activation_fn": slim.relu},
    {"is_training": False, "outputs_collections": "bn_out"},
    {"is_training": False, "data_format": "NCHW"},   # conv is NHWC: channels disagree
])
def test_unusual_batch_norms_keep_the_separate_passes(params, monkeypatch):
    x = np.random.default_rng(4).standard_normal((1, 6, 6, 6)).astype(np.float32)
    seen = []
    real = nn._conv2d
    monkeypatch.setattr(nn, "_conv2d", lambda *a, **k: (
        seen.append(1) if k.get("epilogue") is not None else None) or real(*a, **k))
    with slim.VariableStore(seed=0):
        y = slim.conv2d(x, 6, 3, normalizer_fn=slim.batch_norm, normalizer_params=params)
    assert y.shape == (1, 6, 6, 6) and not seen


def test_float16_and_training_stay_unfused_but_correct():
    x = np.random.default_rng(5).standard_normal((1, 5, 5, 3)).astype(np.float16)
    with slim.VariableStore(seed=0):
        y = slim.conv2d(x, 4, 3, normalizer_fn=slim.batch_norm,
                        normalizer_params={"is_training": False})
    assert y.dtype == np.float16 and y.shape == (1, 5, 5, 4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_raw_epilogue_with_residual_equals_eltwise_after_the_conv(dtype, threads):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 13, 11, 19)).astype(dtype)
    w = rng.standard_normal((3, 3, 19, 37)).astype(dtype)
    bias, pre, scale, shift = (rng.standard_normal(37).astype(dtype) for _ in range(4))
    res = rng.standard_normal((2, 13, 11, 37)).astype(dtype)
    for isa in ISAS:
        for n in (1, 2):
            threads(n)
            fused = with_isa(isa, lambda: _conv.conv2d(x, w, bias, 1, 1, 1, 1, 1, 1, 1, 1, 2,
                                                       pre, scale, shift, res))
            conv = with_isa(isa, lambda: _conv.conv2d(x, w, bias, 1, 1, 1, 1, 1, 1, 1, 1, 0))
            sep = with_isa(isa, lambda: nn._eltwise(conv, 3, pre, scale, shift, res, "relu6"))
            assert fused.tobytes() == sep.tobytes()
    with pytest.raises(ValueError, match="residual must have the output's shape"):
        _conv.conv2d(x, w, None, 0, 0, 0, 0, 1, 1, 1, 1, 0, None, None, None, res)
    with pytest.raises(ValueError, match="scale must have 37"):
        _conv.conv2d(x, w, None, 1, 1, 1, 1, 1, 1, 1, 1, 0, None, scale[:3], None, None)
    with pytest.raises(TypeError, match="pre must have dtype"):
        _conv.conv2d(x, w, None, 1, 1, 1, 1, 1, 1, 1, 1, 0, pre.astype(np.float16), None,
                     None, None)


# ---- Ctrl-C --------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["max", "avg"])
def test_sigint_interrupts_a_long_pooling(kind):
    """A pooling of ~4e12 reads (999 x 999 SAME windows over 1000 x 1000 x 8):
    hours of work, stopped within test_interrupt's bound after SIGINT, on 2
    threads; the pool works again afterwards."""
    from test_interrupt import assert_interrupted_in_bound, run_child

    with run_child("""
        pyconv.set_num_threads(2)
        x = np.ones((1, 1000, 1000, 8), np.float32)
        fn = nn.max_pool2d if sys.argv[1] == "max" else nn.avg_pool2d
        say(state="started")
        try:
            fn(x, 999, 1, "SAME")
        except KeyboardInterrupt:
            say(state="interrupted")
        else:
            say(state="finished")
        assert np.array_equal(fn(x[:, :9, :9], 3, 1, "SAME"), np.ones((1, 9, 9, 8), np.float32))
        say(state="ok")
    """, kind) as proc:
        assert_interrupted_in_bound(proc, 0.5)


@pytest.mark.parametrize("act", [slim.relu, slim.relu6])
def test_inference_batch_norm_fuses_its_relu(act):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 5, 4, 7)).astype(np.float32) * 4
    with slim.VariableStore(seed=0) as store:
        store.load({"bn/moving_mean": rng.standard_normal(7).astype(np.float32),
                    "bn/moving_variance": rng.uniform(0.5, 2, 7).astype(np.float32)})
        fused = slim.batch_norm(x, is_training=False, activation_fn=act, scope="bn")
        plain = act(slim.batch_norm(x, is_training=False, scope="bn", reuse=True))
    assert fused.tobytes() == plain.tobytes()
