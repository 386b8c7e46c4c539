"""slim's non-convolution layers (pyconv/core_layers.py), pyconv.nn.softmax /
dropout and pyconv.utils: independent expectations (float64 reference,
formulas, slim's documented names), then the TF fixtures of
tools/tf_reference/gen_glue.py (tests/fixtures/tf/glue.npz) replayed without
TensorFlow, and the same generator live under ``-m tf``."""

import functools
import json
import os
import sys
import time

import numpy as np
import pytest
import slim_replay
from hypothesis import given
from hypothesis import strategies as st
from reference import dense_error_scale, dense_reference

import pyconv
import pyconv as slim
from pyconv import _conv

nn = pyconv.nn


@pytest.fixture(autouse=True)
def fresh_store():
    with slim.VariableStore(seed=0) as store:
        yield store


def rand(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# --------------------------------------------------------------------------- fully_connected

FC_TOL = {np.float64: 1e-13, np.float32: 2e-6, np.float16: 1e-3}


def check_dense(out, x, w, bias, act, dtype):
    ref = dense_reference(x, w, bias, act)
    scale = dense_error_scale(x, w) + (np.abs(bias) if bias is not None else 0) + 1e-30
    err = np.max(np.abs(out.astype(np.float64) - ref) / scale) if ref.size else 0.0
    assert err <= FC_TOL[np.dtype(dtype).type], err


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("shape", [(5, 3), (2, 8, 8, 3), (4, 1, 17), (1, 64), (3, 2, 2, 2, 9)])
def test_fully_connected_against_the_float64_reference(fresh_store, dtype, shape):
    x = rand(shape, dtype)
    b = rand((7,), dtype, seed=1)
    y = slim.fully_connected(x, 7, biases_initializer=b, scope="fc")
    w = fresh_store["fc/weights"]
    assert w.shape == (shape[-1], 7) and w.dtype == dtype
    assert y.shape == shape[:-1] + (7,) and y.dtype == dtype
    check_dense(y, x, w, fresh_store["fc/biases"], "relu", dtype)
    assert (y >= 0).all()


def test_fully_connected_matches_tf_shape_rule(fresh_store):
    """TF 2.21 (FACTS D0): [2, 8, 8, 3] -> [2, 8, 8, 7], weights [3, 7]."""
    y = slim.fully_connected(np.ones((2, 8, 8, 3), np.float32), 7)
    assert y.shape == (2, 8, 8, 7)
    assert [(v.name, v.shape) for v in slim.get_variables()] == [
        ("fully_connected/weights", (3, 7)), ("fully_connected/biases", (7,))]
    assert set(slim.get_model_variables()) == set(slim.get_variables())
    assert list(slim.get_trainable_variables()) == list(slim.get_variables())


@given(rows=st.integers(1, 40), cin=st.integers(1, 40), cout=st.integers(1, 40),
       lead=st.integers(1, 3), act=st.sampled_from([None, "relu", "relu6"]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_fully_connected_random_shapes(rows, cin, cout, lead, act, dtype, seed):
    x = 4 * rand((lead, rows, cin), dtype, seed)
    w = rand((cin, cout), dtype, seed + 1)
    b = rand((cout,), dtype, seed + 2)
    fn = {None: None, "relu": slim.relu, "relu6": slim.relu6}[act]
    with slim.VariableStore(seed=0):
        y = slim.fully_connected(x, cout, activation_fn=fn, weights_initializer=w,
                                 biases_initializer=b)
    check_dense(y, x, w, b, act, dtype)


def test_fully_connected_uses_the_c_operator_for_every_isa(each_isa):
    x = rand((33, 70))
    w = rand((70, 19), seed=1)
    with slim.VariableStore(seed=0):
        y = slim.fully_connected(x, 19, activation_fn=slim.relu6, weights_initializer=w)
    check_dense(y, x, w, None, "relu6", np.float32)


def test_fully_connected_is_the_same_for_every_thread_count():
    x = rand((257, 129))
    w = rand((129, 65), seed=1)
    before = pyconv.get_num_threads()
    outs = []
    try:
        for n in (1, 2, 3):
            pyconv.set_num_threads(n)
            with slim.VariableStore(seed=0):
                outs.append(slim.fully_connected(x, 65, weights_initializer=w))
    finally:
        pyconv.set_num_threads(before)
    assert all(np.array_equal(outs[0], o) for o in outs[1:])


def test_fully_connected_runs_through_igemm(monkeypatch):
    calls = []
    real = _conv.conv2d

    def spy(x, w, *args):
        calls.append((x.shape, w.shape))
        return real(x, w, *args)

    monkeypatch.setattr(_conv, "conv2d", spy)
    with slim.VariableStore(seed=0):
        slim.fully_connected(np.ones((2, 5, 3), np.float32), 4)
    assert calls == [((1, 10, 1, 3), (1, 1, 3, 4))]


def test_fully_connected_normalizer_then_activation(fresh_store):
    x = rand((6, 5), np.float64)
    w = rand((5, 4), np.float64, seed=1)
    mm, mv = rand((4,), np.float64, 2), np.abs(rand((4,), np.float64, 3)) + 0.5
    beta = rand((4,), np.float64, 4)
    y = slim.fully_connected(
        x, 4, normalizer_fn=slim.batch_norm, weights_initializer=w, activation_fn=slim.relu6,
        normalizer_params={"is_training": False, "param_initializers": {
            "moving_mean": mm, "moving_variance": mv, "beta": beta}}, scope="fc")
    names = [v.name for v in slim.get_variables()]
    assert names == ["fc/weights", "fc/BatchNorm/beta", "fc/BatchNorm/moving_mean",
                     "fc/BatchNorm/moving_variance"]
    ref = np.clip((x @ w - mm) / np.sqrt(mv + 0.001) + beta, 0, 6)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_fully_connected_without_biases_and_other_activation(fresh_store):
    x = rand((3, 4), np.float64)
    w = rand((4, 2), np.float64, seed=1)
    y = slim.fully_connected(x, 2, biases_initializer=None, activation_fn=np.tanh,
                             weights_initializer=w)
    np.testing.assert_allclose(y, np.tanh(x @ w), rtol=1e-13)
    assert [v.name for v in slim.get_variables()] == ["fully_connected/weights"]


def test_fully_connected_reuse_and_scopes(fresh_store):
    x = rand((2, 3))
    a = slim.fully_connected(x, 4, scope="fc")
    b = slim.fully_connected(x, 4, scope="fc", reuse=True)
    np.testing.assert_array_equal(a, b)
    slim.fully_connected(x, 4)
    slim.fully_connected(x, 4)
    assert [v.name for v in slim.get_variables()][-2:] == ["fully_connected_1/weights",
                                                          "fully_connected_1/biases"]
    with pytest.raises(ValueError, match="Trying to share variable fc/weights"):
        slim.fully_connected(rand((2, 5)), 4, scope="fc", reuse=True)
    with pytest.raises(ValueError, match="already exists"):
        slim.fully_connected(x, 4, scope="fc")


def test_fully_connected_empty_inputs(fresh_store):
    assert slim.fully_connected(np.zeros((0, 3), np.float32), 5).shape == (0, 5)
    b = np.array([1.0, -2.0])
    y = slim.fully_connected(np.zeros((2, 0)), 2, biases_initializer=b)
    np.testing.assert_array_equal(y, [[1, 0], [1, 0]])  # bias, then relu
    assert slim.fully_connected(np.ones((2, 3)), 0).shape == (2, 0)


def test_fully_connected_integer_inputs_are_refused_as_tf_slim(fresh_store):
    with pytest.raises(TypeError, match="fully_connected takes float16, float32 or float64"):
        slim.fully_connected(np.ones((2, 3), np.int64), 2)
    assert slim.get_variables() == []


def test_fully_connected_arguments_checked_before_variables(fresh_store):
    for call, exc, word in [
        (lambda: slim.fully_connected(np.ones(3), 2), ValueError, "min_ndim=2"),
        (lambda: slim.fully_connected(np.ones((2, 3)), 2.0), ValueError, "num_outputs"),
        (lambda: slim.fully_connected(np.ones((2, 3)), True), TypeError, "num_outputs"),
        (lambda: slim.fully_connected(np.ones((2, 3)), -1), ValueError, "num_outputs"),
        (lambda: slim.fully_connected(np.ones((2, 3)), 2, activation_fn=3), TypeError,
         "activation_fn"),
        (lambda: slim.fully_connected(np.ones((2, 3)), 2, normalizer_params=[1]), TypeError,
         "normalizer_params"),
        (lambda: slim.fully_connected(np.ones((2, 3)), 2, reuse="yes"), ValueError, "reuse"),
        (lambda: slim.fully_connected(np.ones((2, 3)), 2, scope=5), TypeError, "scope"),
        (lambda: slim.fully_connected(np.ones((2, 3)), 2, outputs_collections=5), TypeError,
         "outputs_collections"),
        (lambda: slim.fully_connected(np.ones((2, 3), complex), 2), TypeError, "complex"),
    ]:
        with pytest.raises(exc, match=word):
            call()
    assert slim.get_variables() == []



@pytest.mark.parametrize("layout", ["fortran", "noncontiguous", "negative", "readonly",
                                    "byteswapped", "broadcast"])
def test_fully_connected_any_memory_layout(layout):
    x = rand((6, 5, 9), np.float64)
    if layout == "fortran":
        v = np.asfortranarray(x)
    elif layout == "noncontiguous":
        v = np.repeat(x, 2, axis=-1)[..., ::2]
    elif layout == "negative":
        v = x[::-1].copy()[::-1]
    elif layout == "readonly":
        v = x.copy()
        v.flags.writeable = False
    elif layout == "byteswapped":
        v = x.astype(x.dtype.newbyteorder(">"))
    else:
        x = np.broadcast_to(x[:1], x.shape)
        v = x
    w = rand((9, 4), np.float64, 1)
    with slim.VariableStore(seed=0):
        y = slim.fully_connected(v, 4, weights_initializer=w, activation_fn=None)
    assert y.flags.c_contiguous and y.dtype == np.float64
    check_dense(y, x, w, None, None, np.float64)


def test_fully_connected_nan_and_inf_propagate():
    x = np.array([[1.0, np.nan, 0.0], [np.inf, 1.0, 0.0], [1.0, 2.0, 3.0]])
    w = np.ones((3, 2))
    with slim.VariableStore(seed=0):
        y = slim.fully_connected(x, 2, weights_initializer=w, activation_fn=None)
    assert np.isnan(y[0]).all() and np.isposinf(y[1]).all()
    np.testing.assert_array_equal(y[2], [6.0, 6.0])



def test_vgg_head_under_arg_scope(fresh_store):
    """The way tf_slim.nets use these layers: arg_scope sets outputs_collections and
    is_training, dropout sits between fully connected layers, softmax predicts."""
    x = rand((2, 7, 7, 4))
    with slim.variable_scope("vgg_16") as sc:
        with slim.arg_scope([slim.conv2d, slim.fully_connected, slim.max_pool2d],
                            outputs_collections="ep"), \
                slim.arg_scope([slim.dropout], is_training=False):
            net = slim.flatten(x)
            net = slim.fully_connected(net, 8, scope="fc6")
            net = slim.dropout(net, 0.5, scope="dropout6")
            net = slim.fully_connected(net, 5, activation_fn=None, scope="fc8")
        predictions = slim.softmax(net, scope="Predictions")
    assert sc.name == "vgg_16"
    assert list(slim.convert_collection_to_dict("ep")) == ["vgg_16/fc6", "vgg_16/fc8"]
    np.testing.assert_allclose(predictions.sum(-1), 1.0, rtol=1e-6)
    w6, w8 = fresh_store["vgg_16/fc6/weights"], fresh_store["vgg_16/fc8/weights"]
    assert w6.shape == (196, 8) and w8.shape == (8, 5)
    hidden = np.maximum(x.reshape(2, -1) @ w6, 0)
    np.testing.assert_allclose(net, hidden @ w8, rtol=1e-5, atol=1e-5)



def test_linear_is_fully_connected_without_activation(fresh_store):
    x = rand((3, 4), np.float64)
    y = slim.linear(x, 2, biases_initializer=np.array([1.0, -1.0]))
    w = fresh_store["fully_connected/weights"]
    np.testing.assert_allclose(y, x @ w + [1.0, -1.0], rtol=1e-13)
    slim.repeat(x, 2, slim.linear, 4)
    assert "Repeat/fully_connected_2/weights" in fresh_store


# --------------------------------------------------------------------------- dropout


def test_dropout_not_training_is_a_view_of_the_input(fresh_store):
    x = rand((2, 3))
    y = slim.dropout(x, 0.3, is_training=False)
    assert y is not x and y.base is x and np.shares_memory(x, y)
    np.testing.assert_array_equal(y, x)
    ints = np.arange(4)
    assert slim.dropout(ints, is_training=False).dtype == ints.dtype
    # keep_prob 0 is fine when not training (TF: identity)
    assert slim.dropout(x, 0.0, is_training=False).base is x


def test_dropout_keep_prob_one_returns_the_input_itself():
    x = rand((2, 3))
    assert slim.dropout(x, 1.0) is x
    assert nn.dropout(x, 0.0) is x


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("keep_prob", [0.1, 0.5, 0.9])
def test_dropout_statistics_and_scaling(dtype, keep_prob):
    x = np.full((400, 500), 3.0, dtype)
    y = slim.dropout(x, keep_prob, seed=1)
    assert y.dtype == dtype and y.shape == x.shape
    kept = y != 0
    # TF: rate = 1 - keep_prob, scale = 1 / (1 - rate) in Python floats, cast to the dtype
    expected_value = dtype(3.0) * dtype(1.0 / (1.0 - (1.0 - keep_prob)))
    np.testing.assert_array_equal(y[kept], np.full(kept.sum(), expected_value, dtype))
    # kept fraction within 5 standard deviations of keep_prob (200000 Bernoulli draws)
    sd = np.sqrt(keep_prob * (1 - keep_prob) / x.size)
    assert abs(kept.mean() - keep_prob) < 5 * sd
    # the expected sum is unchanged
    assert abs(y.astype(np.float64).mean() - 3.0) < 3.0 * 5 * sd / keep_prob



@pytest.mark.parametrize("keep_prob, dtype, tf_value", [
    # the kept value of 1.7 in TF 2.21 / tf-slim 1.1 (slim.dropout, probed by hand)
    (np.float32(0.7), np.float64, 2.4285714864730834),
    (0.7, np.float64, 2.4285714285714284),
    (np.float16(0.3), np.float64, 5.67109375),
    (np.float16(0.3), np.float16, 5.67),
    (0.7, np.float32, 2.4285715),
])
def test_dropout_scale_is_tfs_for_numpy_and_python_keep_probs(keep_prob, dtype, tf_value):
    y = slim.dropout(np.full(100, 1.7, dtype), keep_prob, seed=0)
    assert y[y != 0][0] == dtype(tf_value)

def test_dropout_seed_reproducible_and_generator_stream():
    x = np.ones((50, 60))
    a, b = slim.dropout(x, seed=7), slim.dropout(x, seed=7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, slim.dropout(x, seed=8))
    g = np.random.default_rng(3)
    c, d = slim.dropout(x, seed=g), slim.dropout(x, seed=g)
    assert not np.array_equal(c, d)
    np.testing.assert_array_equal(nn.dropout(x, 0.5, seed=7), a)


def test_dropout_noise_shape_drops_whole_channels():
    x = np.ones((4, 6, 6, 32), np.float32)
    y = slim.dropout(x, 0.5, noise_shape=[4, 1, 1, 32], seed=0)
    per_map = y.reshape(4, 36, 32)
    assert (per_map == per_map[:, :1]).all()  # every feature map all kept or all dropped
    assert set(np.unique(y).tolist()) == {0.0, 2.0}
    assert 0 < (per_map[:, 0] == 0).sum() < 128
    # shorter noise shapes broadcast from the last axis, None takes x's size
    z = nn.dropout(x, 0.5, noise_shape=[1, 32], seed=0)
    assert (z == z[:1, :1, :1]).all()
    n = nn.dropout(x, 0.5, noise_shape=[None, 1, 1, None], seed=0)
    assert (n.reshape(4, 36, 32) == n.reshape(4, 36, 32)[:, :1]).all()


def test_dropout_nan_and_inf_dropped_are_zero():
    x = np.array([np.nan, np.inf, -np.inf, 1.0] * 250)
    y = nn.dropout(x, 0.5, seed=0)
    dropped = ~np.isfinite(y) | (y != 0)
    assert np.isnan(y[0::4][dropped[0::4]]).all()
    assert ((y == 0) | ~np.isfinite(y) | (y == 2.0)).all()
    assert (y == 0).any()


def test_dropout_scope_and_alias(fresh_store):
    x = rand((2, 3))
    y = slim.dropout(x, is_training=False, outputs_collections="ep")
    slim.dropout(x, outputs_collections="ep", seed=0)
    with slim.variable_scope("net"):
        slim.dropout(x, scope="dropout7", outputs_collections="ep")
    assert list(slim.convert_collection_to_dict("ep")) == ["Dropout", "Dropout_1",
                                                          "net/dropout7"]
    assert slim.utils.get_tensor_aliases(y) == ["Dropout"]
    assert slim.get_variables() == []


@pytest.mark.parametrize("call, exc, words", [
    (lambda: slim.dropout(np.ones(3), 1.5), ValueError, ["keep_prob", "-0.5"]),
    (lambda: slim.dropout(np.ones(3), -0.1, is_training=False), ValueError, ["keep_prob"]),
    (lambda: slim.dropout(np.ones(3), 0.0), ValueError, ["keep_prob", "range [0, 1)"]),
    (lambda: slim.dropout(np.ones(3), "0.5"), TypeError, ["keep_prob"]),
    (lambda: slim.dropout(np.ones(3), is_training="no"), TypeError, ["is_training"]),
    (lambda: slim.dropout(np.ones(3), seed=1.5), TypeError, ["seed"]),
    (lambda: slim.dropout(np.ones(3), seed=-1), ValueError, ["seed"]),
    (lambda: slim.dropout(np.ones((2, 4)), noise_shape=[2, 2]), ValueError, ["noise_shape"]),
    (lambda: slim.dropout(np.ones((2, 4)), noise_shape=[3, 2, 4]), ValueError,
     ["noise_shape"]),
    (lambda: slim.dropout(np.ones((2, 4)), noise_shape=3), TypeError, ["noise_shape"]),
    (lambda: slim.dropout(np.ones((2, 4)), noise_shape=[2.0, 4]), TypeError, ["noise_shape"]),
    (lambda: slim.dropout(np.ones(3, complex)), TypeError, ["complex"]),
    (lambda: nn.dropout(np.ones(3), 1.0), ValueError, ["rate", "[0, 1)"]),
    (lambda: nn.dropout(np.ones(3), -0.5), ValueError, ["rate"]),
    (lambda: nn.dropout(np.ones(3), None), TypeError, ["rate"]),
])
def test_dropout_bad_arguments(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    for w in words:
        assert w in str(info.value)


def test_dropout_not_training_ignores_noise_shape_as_tf():
    # an eval graph built with the training batch's noise shape runs in TF
    x = np.ones((1, 4))
    assert slim.dropout(x, noise_shape=[32, 4], is_training=False).shape == (1, 4)
    assert slim.dropout(x, 1.0, noise_shape=[32, 4]) is x  # TF's fast path for keep_prob 1
    assert nn.dropout(x, 0.0, noise_shape=[32, 4]) is x


def test_dropout_integer_inputs_are_float32_when_training():
    assert slim.dropout(np.ones(10, np.int32), 0.5, seed=0).dtype == np.float32


# --------------------------------------------------------------------------- flatten


def test_flatten_row_major_and_view():
    x = np.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)
    y = slim.flatten(x)
    assert y.shape == (2, 60) and np.shares_memory(y, x) and y is not x
    np.testing.assert_array_equal(y[1], np.arange(60, 120))
    t = slim.flatten(x.transpose(0, 3, 1, 2))
    assert t.flags.c_contiguous and not np.shares_memory(t, x)
    np.testing.assert_array_equal(t[0, :3], [0, 5, 10])  # x[0, 0, w, 0] for w = 0, 1, 2
    assert slim.flatten(np.arange(3)).shape == (3, 1)
    assert slim.flatten(np.zeros((2, 3))).shape == (2, 3)
    assert slim.flatten(np.zeros((0, 3, 4))).shape == (0, 12)
    # slim's contract [batch, k] also for empty inner dimensions (TF 2.21's reshape to
    # [-1, 0] gives [64, 0] for a [2, 2, 0, 4, 4] input)
    assert slim.flatten(np.zeros((2, 2, 0, 4, 4))).shape == (2, 0)
    assert slim.flatten([[1, 2], [3, 4]]).dtype.kind == "i"
    with pytest.raises(ValueError, match="ndim=0"):
        slim.flatten(np.float32(1))
    with pytest.raises(TypeError, match="scope"):
        slim.flatten(x, scope=3)


def test_flatten_alias(fresh_store):
    x = np.zeros((2, 3, 4))
    slim.flatten(x, outputs_collections="ep")
    slim.flatten(x, outputs_collections="ep")
    slim.flatten(x, outputs_collections="ep", scope="flat")
    assert list(slim.convert_collection_to_dict("ep")) == ["Flatten", "Flatten_1", "flat"]


# --------------------------------------------------------------------------- repeat, stack


def test_repeat_vgg_names(fresh_store):
    x = rand((1, 6, 6, 3))
    with slim.variable_scope("vgg_16"):
        y = slim.repeat(x, 2, slim.conv2d, 8, [3, 3], scope="conv1")
    assert y.shape == (1, 6, 6, 8)
    assert [v.name for v in slim.get_variables()] == [
        "vgg_16/conv1/conv1_1/weights", "vgg_16/conv1/conv1_1/biases",
        "vgg_16/conv1/conv1_2/weights", "vgg_16/conv1/conv1_2/biases"]
    # the same as the two explicit calls
    with slim.variable_scope("vgg_16", reuse=True):
        a = slim.conv2d(x, 8, [3, 3], scope="conv1/conv1_1")
        b = slim.conv2d(a, 8, [3, 3], scope="conv1/conv1_2")
    np.testing.assert_array_equal(b, y)


def test_repeat_and_stack_default_names(fresh_store):
    x = rand((2, 3))
    slim.repeat(x, 2, slim.fully_connected, 3)
    slim.stack(x, slim.fully_connected, [4, (5,)])
    slim.stack(x, functools.partial(slim.fully_connected, activation_fn=None), [2])
    slim.repeat(x, 1, lambda t, scope=None: slim.fully_connected(t, 2, scope=scope))

    class Layer:
        def __call__(self, t, scope=None):
            return slim.fully_connected(t, 2, scope=scope)

    slim.stack(x, Layer(), [()])
    names = [v.name for v in slim.get_variables() if v.name.endswith("weights")]
    assert names == ["Repeat/fully_connected_1/weights", "Repeat/fully_connected_2/weights",
                     "Stack/fully_connected_1/weights", "Stack/fully_connected_2/weights",
                     "Stack_1/fully_connected_1/weights", "Repeat_1/<lambda>_1/weights",
                     "Stack_2/stack_1/weights"]


def test_stack_args_and_outputs_collections(fresh_store):
    x = rand((1, 5, 5, 2))
    y = slim.stack(x, slim.conv2d, [(4, [3, 3]), [6, 1]], scope="c",
                   outputs_collections="ep")
    assert y.shape == (1, 5, 5, 6)
    assert list(slim.convert_collection_to_dict("ep")) == ["c/c_1", "c/c_2"]
    assert slim.repeat(x, 0, slim.conv2d, 4, 3) is x


def test_repeat_stack_are_not_arg_scoped_as_slim():
    assert not slim.has_arg_scope(slim.repeat)
    assert not slim.has_arg_scope(slim.stack)
    with pytest.raises(ValueError), slim.arg_scope([slim.repeat], scope="x"):
        pass


@pytest.mark.parametrize("call, exc, words", [
    (lambda: slim.repeat(np.ones((2, 3)), 2.0, slim.fully_connected, 3), TypeError,
     ["repetitions"]),
    (lambda: slim.repeat(np.ones((2, 3)), -1, slim.fully_connected, 3), ValueError,
     ["repetitions"]),
    (lambda: slim.repeat(np.ones((2, 3)), 2, "conv2d", 3), TypeError, ["layer"]),
    (lambda: slim.repeat(np.ones((2, 3)), 2, slim.fully_connected, 3, scope=1), TypeError,
     ["scope"]),
    (lambda: slim.stack(np.ones((2, 3)), slim.fully_connected, 3), ValueError,
     ["stack_args need to be a list or tuple"]),
    (lambda: slim.stack(np.ones((2, 3)), None, [3]), TypeError, ["layer"]),
])
def test_repeat_stack_bad_arguments(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    for w in words:
        assert w in str(info.value)


# --------------------------------------------------------------------------- softmax


def test_softmax_layer_last_axis_any_rank(fresh_store):
    x = rand((2, 3, 4, 5), np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    np.testing.assert_allclose(slim.softmax(x), e / e.sum(-1, keepdims=True), rtol=1e-14)
    big = np.array([[1000.0, 1000.0, 0.0]])
    np.testing.assert_allclose(slim.softmax(big), [[0.5, 0.5, 0.0]], atol=1e-300)
    assert slim.softmax(rand((2, 3), np.float16)).dtype == np.float16
    assert slim.softmax(np.ones((2, 3), np.int32)).dtype == np.float32
    assert slim.has_arg_scope(slim.softmax)
    with pytest.raises(ValueError, match="rank of shape must be at least 2 not: 1"):
        slim.softmax(np.ones(3))
    assert slim.softmax(np.zeros((0, 3))).shape == (0, 3)


def test_softmax_scope_is_a_variable_scope_named_softmax(fresh_store):
    slim.softmax(np.ones((1, 2)))
    slim.softmax(np.ones((1, 2)), scope="Predictions")
    # the next unnamed scope of that name is made unique, as TF's name scopes
    with slim.variable_scope(None, default_name="softmax") as sc:
        assert sc.original_name_scope == "softmax_1/"


def test_nn_softmax_axis_and_errors():
    x = rand((3, 4), np.float64)
    e = np.exp(x)
    np.testing.assert_allclose(nn.softmax(x, axis=0), e / e.sum(0), rtol=1e-14)
    np.testing.assert_allclose(nn.softmax(x[0]), e[0] / e[0].sum(), rtol=1e-14)
    np.testing.assert_allclose(nn.softmax(x, axis=-2), e / e.sum(0), rtol=1e-14)
    with pytest.raises(ValueError, match="axis=2"):
        nn.softmax(x, axis=2)
    with pytest.raises(TypeError, match="axis"):
        nn.softmax(x, axis=1.0)
    with pytest.raises(ValueError, match="scalar"):
        nn.softmax(1.0)
    with pytest.raises(TypeError, match="complex"):
        nn.softmax(np.ones(2, complex))
    assert np.isnan(nn.softmax(np.array([1.0, np.nan]))).all()



# --------------------------------------------------------------------------- one_hot_encoding


def test_one_hot_encoding_values_dtypes_and_alias(fresh_store):
    y = slim.one_hot_encoding(np.array([[0, 3], [-1, 1]], np.int64), 3,
                              outputs_collections="ep")
    np.testing.assert_array_equal(y, [[[1, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 1, 0]]])
    assert y.dtype == np.float32
    assert slim.one_hot_encoding([1], 2, on_value=5, off_value=-1).dtype == np.int32
    z = slim.one_hot_encoding([1], 2, on_value=np.float64(0.9), off_value=np.float64(0.05))
    assert z.dtype == np.float64 and z.tolist() == [[0.05, 0.9]]
    assert slim.one_hot_encoding(np.array([0, 1], np.uint8), 0).shape == (2, 0)
    slim.one_hot_encoding([0], 2, scope="labels", outputs_collections="ep")
    assert list(slim.convert_collection_to_dict("ep")) == ["OneHotEncoding", "labels"]


@pytest.mark.parametrize("call, exc, word", [
    (lambda: slim.one_hot_encoding([0.0, 1.0], 3), TypeError, "labels"),
    (lambda: slim.one_hot_encoding([True], 3), TypeError, "labels"),
    (lambda: slim.one_hot_encoding([0], -1), ValueError, "num_classes"),
    (lambda: slim.one_hot_encoding([0], 2.0), TypeError, "num_classes"),
    (lambda: slim.one_hot_encoding([0], 2, on_value=5), TypeError, "on_value"),
    (lambda: slim.one_hot_encoding([0], 2, on_value="a", off_value="b"), TypeError,
     "on_value"),
    (lambda: slim.one_hot_encoding([0], 2, scope=1), TypeError, "scope"),
])
def test_one_hot_encoding_bad_arguments(call, exc, word):
    with pytest.raises(exc, match=word):
        call()


# --------------------------------------------------------------------------- bias_add


def test_bias_add_layer_variables_formats_and_nn_op(fresh_store):
    x = rand((2, 3, 4, 5), np.float64)
    b = rand((5,), np.float64, 1)
    y = slim.bias_add(x, initializer=b, activation_fn=slim.relu, scope="b")
    np.testing.assert_array_equal(y, np.maximum(x + b, 0))
    c = rand((3,), np.float64, 2)
    z = slim.bias_add(x, initializer=c, data_format="NCHW")
    np.testing.assert_array_equal(z, x + c[:, None, None])
    assert [(v.name, v.shape) for v in slim.get_variables()] == [("b/biases", (5,)),
                                                                ("BiasAdd/biases", (3,))]
    with pytest.raises(TypeError, match="bias_add takes float16"):
        slim.bias_add(np.ones((2, 3), np.int32))
    f16 = slim.bias_add(np.ones((2, 3), np.float16))
    assert f16.dtype == np.float16 and fresh_store["BiasAdd_1/biases"].dtype == np.float16
    reused = slim.bias_add(x, scope="b", reuse=True)
    np.testing.assert_array_equal(reused, x + b)
    # pyconv.nn.bias_add, the op without a variable, is unchanged
    np.testing.assert_array_equal(nn.bias_add(x, b), x + b)
    slim.bias_add(x, regularizer=slim.l2_regularizer(0.5), scope="r")
    losses = slim.get_regularization_losses()
    assert len(losses) == 1 and float(losses[0]) == 0.0  # zero biases


@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, ">f8"])  # ints: refused (TF-Slim)
def test_bias_add_fused_activation_equals_the_two_steps(fmt, dtype, fresh_store):
    x = (rand((2, 3, 4, 5), np.float64) * 4).astype(dtype)
    b = rand((3 if fmt == "NCHW" else 5,), np.float64, 1)
    for act in (slim.relu, slim.relu6):
        y = slim.bias_add(x, activation_fn=act, initializer=b, data_format=fmt, scope="b",
                          reuse=slim.AUTO_REUSE)
        biases = fresh_store["b/biases"]
        expected = act(nn.bias_add(x, biases, fmt))
        assert y.dtype == expected.dtype
        np.testing.assert_array_equal(y, expected)


def test_bias_add_as_normalizer_of_fully_connected(fresh_store):
    x = rand((4, 3), np.float64)
    y = slim.fully_connected(x, 2, normalizer_fn=slim.bias_add, activation_fn=None,
                             scope="fc")
    assert [v.name for v in slim.get_variables()] == ["fc/weights", "fc/BiasAdd/biases"]
    np.testing.assert_allclose(y, x @ fresh_store["fc/weights"], rtol=1e-13)


@pytest.mark.parametrize("call, exc, words", [
    (lambda: slim.bias_add(np.ones((2, 3, 4)), data_format="NCHW"), ValueError,
     ["Data format NCHW only supports 4D Tensor"]),
    (lambda: slim.bias_add(np.ones((2, 3)), data_format="NCWH"), ValueError,
     ["data_format has to be either NCHW or NHWC"]),
    (lambda: slim.bias_add(np.ones(3)), ValueError, ["rank 2"]),
    (lambda: slim.bias_add(np.ones((2, 3)), activation_fn="relu"), TypeError,
     ["activation_fn"]),
    (lambda: slim.bias_add(np.ones((2, 3)), regularizer=1), TypeError, ["regularizer"]),
    (lambda: slim.bias_add(np.ones((2, 3), complex)), TypeError, ["complex"]),
])
def test_bias_add_bad_arguments(call, exc, words, fresh_store):
    with pytest.raises(exc) as info:
        call()
    for w in words:
        assert w in str(info.value)
    assert slim.get_variables() == []


# --------------------------------------------------------------------------- layer_norm


def layer_norm_reference(x, norm_axes, beta, gamma, eps):
    x = np.asarray(x, np.float64)
    mean = x.mean(axis=norm_axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=norm_axes, keepdims=True)
    out = (x - mean) / np.sqrt(var + eps)
    if gamma is not None:
        out = out * gamma
    if beta is not None:
        out = out + beta
    return out


@pytest.mark.parametrize("shape, norm, params", [
    ((4, 5), 1, -1), ((2, 3, 4, 5), 1, -1), ((2, 3, 4, 5), -2, 2), ((2, 3, 4), 0, 0),
    ((3, 7), -1, -2),
])
def test_layer_norm_against_the_formula(fresh_store, shape, norm, params):
    x = rand(shape, np.float64) * 3 + 2
    pshape = shape[params:]
    beta, gamma = rand(pshape, np.float64, 1), rand(pshape, np.float64, 2)
    fresh_store.load({"ln/beta": beta, "ln/gamma": gamma})
    y = slim.layer_norm(x, begin_norm_axis=norm, begin_params_axis=params, scope="ln")
    axes = tuple(range(norm % len(shape), len(shape)))
    np.testing.assert_allclose(y, layer_norm_reference(x, axes, beta, gamma, 1e-12),
                               rtol=1e-12, atol=1e-12)
    assert [(v.name, v.shape) for v in slim.get_variables()] == [("ln/beta", pshape),
                                                                ("ln/gamma", pshape)]


def test_layer_norm_options_and_dtypes(fresh_store):
    x = rand((3, 6), np.float32)
    y = slim.layer_norm(x, center=False, scale=False, activation_fn=slim.relu)
    ref = np.maximum(layer_norm_reference(x, (1,), None, None, 1e-12), 0)
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)
    assert y.dtype == np.float32 and slim.get_variables() == []
    h = slim.layer_norm(x.astype(np.float16))
    assert h.dtype == np.float16 and fresh_store["LayerNorm_1/gamma"].dtype == np.float16
    ref16 = layer_norm_reference(x.astype(np.float16), (1,), None, None, 1e-3)
    np.testing.assert_allclose(h, ref16, atol=1e-2)
    with pytest.raises(TypeError, match="layer_norm takes float16"):
        slim.layer_norm(np.ones((2, 2), np.int32))
    const = slim.layer_norm(np.full((2, 4), 7.0))  # zero variance: eps keeps it finite
    np.testing.assert_array_equal(const, np.zeros((2, 4)))
    # one value per row: exactly beta (TF 2.21's float32 gives beta +- 0.06 there)
    beta = np.array([0.2724793], np.float32)
    fresh_store.load({"one/beta": beta})
    x1 = np.array([[-1.4231669], [2.4378083], [2.498889], [-1.5996453]], np.float32)
    np.testing.assert_array_equal(slim.layer_norm(x1, scope="one"), np.repeat(beta, 4)[:, None])


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"begin_norm_axis": 4}, ValueError, ["begin_norm_axis (4)", "rank(inputs) (4)"]),
    ({"begin_params_axis": 4}, ValueError, ["begin_params_axis (4)"]),
    ({"begin_norm_axis": -5}, ValueError, ["begin_norm_axis (-5)"]),
    ({"begin_norm_axis": 1.0}, TypeError, ["begin_norm_axis"]),
    ({"activation_fn": 1}, TypeError, ["activation_fn"]),
    ({"reuse": True}, ValueError, ["reuse"]),
])
def test_layer_norm_bad_arguments(kwargs, exc, words, fresh_store):
    with pytest.raises(exc) as info:
        slim.layer_norm(np.ones((2, 3, 4, 5)), **kwargs)
    for w in words:
        assert w in str(info.value)
    assert slim.get_variables() == []



# ported from tf_slim/layers/layers_test.py (LayerNormTest.doOutputTest, SoftmaxTests)
@pytest.mark.parametrize("shape, axis, tol, dtype", [
    ((10, 300), 1, 1e-5, np.float64), ((100, 10, 10, 3), 1, 1e-5, np.float64),
    ((100, 10, 10, 3), 3, 1e-4, np.float64), ((100, 10, 10, 3), -1, 1e-4, np.float64),
    ((10, 10, 10, 30), 1, 1e-5, np.float64), ((10, 10, 10, 30), 3, 1e-5, np.float64),
    ((1, 100, 100, 1), 1, 1e-5, np.float64), ((1, 100, 1000, 1), 1, 1e-4, np.float32),
    ((1, 100, 1000, 1), 1, 5e-2, np.float16),
])
def test_slim_layer_norm_output_test(shape, axis, tol, dtype):
    eps = 1e-12 if dtype != np.float16 else 1e-3
    norm_axis = axis % len(shape)
    moments_axis = tuple(range(norm_axis, len(shape)))
    expected_mean = np.zeros(shape[:norm_axis])
    sigmas = [1.0, 0.1] + ([1e-4] if dtype == np.float16 else [])
    rng = np.random.default_rng(0)
    for mu in [0.0, 1e2 if dtype != np.float16 else 1e1]:
        for sigma in sigmas:
            expected_var = np.ones(shape[:norm_axis]) / (1.0 + eps / sigma**2)
            values = rng.standard_normal(shape) * sigma + mu
            with slim.VariableStore(seed=0) as store:
                out = slim.layer_norm(values.astype(dtype), begin_norm_axis=axis, scope="LN")
                beta, gamma = store["LN/beta"], store["LN/gamma"]
            assert not np.isnan(out).any()
            out = out.astype(np.float64)
            np.testing.assert_allclose(out.mean(axis=moments_axis), expected_mean, atol=tol,
                                       rtol=tol)
            np.testing.assert_allclose(out.var(axis=moments_axis), expected_var, atol=tol)
            ref = gamma * (values - values.mean(axis=moments_axis, keepdims=True)) / np.sqrt(
                eps + values.var(axis=moments_axis, keepdims=True)) + beta
            np.testing.assert_allclose(out, ref, atol=5 * tol)


def test_slim_softmax_2d_and_3d():
    low, high = 1 / (1 + np.e), np.e / (1 + np.e)
    np.testing.assert_allclose(slim.softmax(np.array([[0.0, 1], [1, 1], [1, 0]])),
                               [[low, high], [0.5, 0.5], [high, low]], rtol=1e-6)
    logits = np.ones((2, 3, 2))
    logits[0, 0, 0] = 0
    logits[1, 1, 1] = 0
    expected = 0.5 * np.ones((2, 3, 2))
    expected[0, 0] = [low, high]
    expected[1, 1] = [high, low]
    np.testing.assert_allclose(slim.softmax(logits), expected, rtol=1e-6)


def test_slim_one_hot_and_dropout_collect_outputs(fresh_store):
    out = slim.one_hot_encoding(np.array([0, 1, 2], np.int32), num_classes=3,
                                outputs_collections="outputs")
    np.testing.assert_array_equal(out, np.eye(3))
    assert slim.get_collection("outputs")[0] is out
    assert slim.utils.get_tensor_aliases(out) == ["OneHotEncoding"]
    d = slim.dropout(np.ones((5, 3, 3, 3)), outputs_collections="outputs", seed=0)
    assert slim.get_collection("outputs")[1] is d
    assert slim.utils.get_tensor_aliases(d) == ["Dropout"]


# --------------------------------------------------------------------------- utils


def test_utils_mirror_tf_slim_layers_utils(fresh_store):
    u = slim.utils
    x = np.ones(3)
    assert u.collect_named_outputs(None, "a", x) is x
    assert u.get_tensor_aliases(x) == []
    u.collect_named_outputs("ep", "net/a/", x)
    u.append_tensor_alias(x, "b/")
    assert u.get_tensor_aliases(x) == ["net/a", "b"]
    assert u.gather_tensors_aliases([x]) == ["net/a", "b"]
    assert list(u.convert_collection_to_dict("ep", clear_collection=True)) == ["net/a", "b"]
    assert slim.get_collection("ep") == []
    assert u.collect_named_outputs is slim.collect_named_outputs  # one implementation
    assert u.last_dimension((2, 8, 8, 3), min_rank=2) == 3
    assert u.last_dimension(np.zeros((4, 5))) == 5
    with pytest.raises(ValueError, match="rank of shape must be at least 2 not: 1"):
        u.last_dimension((3,), min_rank=2)
    assert u.channel_dimension((2, 3, 4, 5), "channels_first") == 3
    assert u.channel_dimension((2, 3, 4, 5), "channels_last") == 5
    assert u.two_element_tuple(3) == (3, 3) and u.two_element_tuple([2, 5]) == (2, 5)
    for bad in ([1, 2, 3], "ab", None):
        with pytest.raises(ValueError):
            u.two_element_tuple(bad)
    assert u.n_positive_integers(3, 2) == (2, 2, 2)
    assert u.n_positive_integers(2, (1, 4)) == (1, 4)
    for n, value in ((0, 1), (2, 0), (2, [1]), (2, [1, 0]), (1.5, 1), (2, ["a", 1])):
        with pytest.raises(ValueError):
            u.n_positive_integers(n, value)
    assert u.get_variable_collections({"weights": ["w"]}, "weights") == ["w"]
    assert u.get_variable_collections(["c"], "biases") == ["c"]
    assert u.static_cond(True, lambda: 1, lambda: 2) == 1
    assert u.smart_cond(np.bool_(False), lambda: 1, lambda: 2) == 2
    with pytest.raises(TypeError, match="fn1"):
        u.static_cond(True, 1, lambda: 2)
    with pytest.raises(ValueError):
        u.constant_value(None)
    with pytest.raises(ValueError, match="wrong type"):
        u.constant_value(np.ones(2, np.float32), np.float64)


# --------------------------------------------------------------------------- sizes


def huge(shape, dtype=np.float32):
    """A read-only array of any shape with one element of memory behind it."""
    return np.broadcast_to(np.zeros((), dtype), shape)


@pytest.mark.parametrize("call", [
    lambda: slim.fully_connected(huge((1 << 20, 1 << 20)), 10),
    lambda: slim.fully_connected(np.ones((2, 1 << 20), np.float32), 1 << 20),
    lambda: slim.flatten(huge((1 << 20, 1 << 10, 1 << 10))),
    lambda: slim.softmax(huge((1 << 20, 1 << 20))),
    lambda: nn.softmax(huge((1 << 40,))),
    lambda: slim.bias_add(huge((1 << 20, 1 << 20))),
    lambda: slim.layer_norm(huge((1 << 20, 1 << 20))),
    lambda: slim.dropout(huge((1 << 20, 1 << 20)), seed=0),
    lambda: nn.dropout(huge((1 << 20, 1 << 20)), 0.5),
    lambda: slim.one_hot_encoding(huge((1 << 20, 1 << 20), np.int32), 3),
    lambda: slim.one_hot_encoding([1], 1 << 40),
])
def test_absurd_sizes_are_refused_before_allocating(call, fresh_store):
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(MemoryError, match="GiB"):
            call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20
    assert slim.get_variables() == []


def test_huge_views_pass_through_the_identity_layers():
    x = huge((1 << 20, 1 << 20))
    assert np.shares_memory(slim.dropout(x, is_training=False), x)
    assert slim.dropout(x, 1.0) is x


# --------------------------------------------------------------------------- TF fixtures

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "tf", "glue.npz")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools", "tf_reference"))
_EXC = {"ValueError": ValueError, "TypeError": TypeError}


def _load_fixture():
    if not os.path.exists(FIXTURE):
        return [], {}
    data = np.load(FIXTURE, allow_pickle=False)
    return json.loads(str(data["configs"])), {k: data[k] for k in data.files}


CONFIGS, DATA = _load_fixture()


def _check_dropout(cfg, x, out, expected, tier):
    info = cfg["dropout"]
    assert out.shape == expected.shape and out.dtype == expected.dtype
    if not info["mask"]:
        np.testing.assert_array_equal(out, x)
        np.testing.assert_array_equal(expected, x)
        return
    scaled = x * x.dtype.type(info["scale"])  # TF: x * cast(1 / keep_prob, x.dtype)
    kept, tf_kept = out != 0, expected != 0
    np.testing.assert_array_equal(out[kept], scaled[kept])
    np.testing.assert_array_equal(expected[tf_kept], scaled[tf_kept])
    noise = cfg["kwargs"].get("noise_shape")
    if noise:
        offset = x.ndim - len(noise)
        for axis, size in enumerate(noise):
            if size == 1 and x.shape[axis + offset] > 1:
                for mask in (kept, tf_kept):
                    first = np.take(mask, [0], axis=axis + offset)
                    assert (mask == first).all(), f"{cfg['id']}: mask varies along {axis}"


def replay_glue(cfg, data, tier="replay"):
    cid = cfg["id"]
    x = data[f"{cid}/input"]
    fn = slim_replay.function(cfg["function"])
    args = slim_replay.resolve(cfg.get("args", []), data, cid)
    kwargs = slim_replay.resolve(cfg["kwargs"], data, cid)
    where = f"glue/{cid} {cfg['tf']['call']}"
    with slim.VariableStore(seed=0) as store:
        scopes = slim_replay.Scopes(None, cfg.get("variable_scope"), data, cid)
        if "error" in cfg:
            err = cfg["error"]
            with scopes, pytest.raises(_EXC[err["pyconv_type"]]) as info:
                fn(x, *args, **kwargs)
            assert err["phrase"] in str(info.value), (where, str(info.value))
            assert slim.get_variables() == [], where
            return
        store.load({name: data[f"{cid}/var/{name}"] for name in cfg["var_names"]})
        with scopes:
            out = fn(x, *args, **kwargs)
        expected = data[f"{cid}/expected"]
        assert isinstance(out, np.ndarray), where
        assert out.dtype == expected.dtype, (where, out.dtype, expected.dtype)
        if cfg.get("dropout"):
            _check_dropout(cfg, x, out, expected, tier)
        elif expected.dtype.kind == "f":
            # widened only where TF is far from the float64 formula (slim_replay's rule):
            # a layer_norm over one element per row, where TF's float32 cancels
            slim_replay.close(out, expected, str(expected.dtype), where, tier,
                              cfg.get("ref_max_abs_err", 0.0))
        else:
            assert out.shape == expected.shape, where
            np.testing.assert_array_equal(out, expected, err_msg=where)
        if cfg["tf"].get("returned_input"):
            assert out is x, where
        slim_replay.check_variables(cfg)
        slim_replay.check_regularization(cfg, data, tier)
        if "aliases" in cfg:
            assert list(slim.convert_collection_to_dict(cfg["collection"])) == cfg["aliases"]
        for name in cfg["var_names"]:  # every loaded value was taken by the layer
            assert name in {v.name for v in slim.get_variables()}, (where, name)


def test_glue_fixture_exists_and_covers_every_layer():
    assert CONFIGS, "tests/fixtures/tf/glue.npz is missing: run tools/tf_reference/gen_glue.py"
    functions = {c["function"] for c in CONFIGS if "error" not in c}
    assert functions == {"fully_connected", "dropout", "flatten", "softmax", "one_hot_encoding",
                         "bias_add", "layer_norm", "repeat", "stack", "nn.softmax",
                         "nn.dropout"}
    fc = [c for c in CONFIGS if c["function"] == "fully_connected" and "error" not in c]
    assert {c["dtype"] for c in fc} >= {"float32", "float64", "float16"}
    assert {len(c["input_shape"]) for c in fc} >= {2, 3, 4, 5}
    assert any("normalizer_fn" in c["kwargs"] for c in fc)
    assert any(c["kwargs"].get("activation_fn", "relu") is None for c in fc)
    assert any(c["kwargs"].get("data_format") == "NCHW" for c in CONFIGS
               if c["function"] == "bias_add")
    assert any(not c["kwargs"].get("is_training", True) for c in CONFIGS
               if c["function"] == "dropout")


def test_glue_fixtures_tf_agrees_with_the_formulas():
    """The generator's check of TF against the float64 formulas (a failure is
    TF's or the generator's, not pyconv's)."""
    checked = [c for c in CONFIGS if "ref_max_abs_err" in c]
    assert len(checked) >= 80
    assert [c["id"] for c in checked if c["ref_mismatch"]] == []


@pytest.mark.parametrize("cfg", [pytest.param(c, id=f"{c['id']}-{c['function']}")
                                 for c in CONFIGS])
def test_glue_fixtures(cfg):
    replay_glue(cfg, DATA)


LIVE_SEED = int(os.environ.get("PYCONV_TF_SEED") or (time.time_ns() // 1000) % (2 ** 31))


@pytest.mark.tf
def test_glue_matches_live_tf():
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import gen_glue

    glue = gen_glue.generate(LIVE_SEED, int(os.environ.get("PYCONV_TF_LIVE_N", "40")) // 2)
    failures = [f"{c['id']}: TF differs from the float64 formula by {c['ref_max_abs_err']:g}"
                for c in glue["configs"] if c.get("ref_mismatch")]
    for cfg in glue["configs"]:
        try:
            replay_glue(cfg, glue["arrays"], tier="live")
        except Exception as e:  # noqa: BLE001 - collect all, report with the seed
            failures.append(f"{cfg['id']}: {type(e).__name__}: {str(e)[:400]}\n"
                            f"    TF call: {cfg['tf']['call']}")
    assert not failures, (f"{len(failures)} of {len(glue['configs'])} glue configurations "
                          f"differ from TensorFlow (seed {LIVE_SEED}; repeat with "
                          f"PYCONV_TF_SEED={LIVE_SEED}):\n" + "\n".join(failures[:10]))
