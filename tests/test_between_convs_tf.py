"""Live tier (-m tf): the fused convolution + inference batch norm and the
NaN/inf max pooling against the installed TensorFlow + TF-Slim.

A ResNet-style stack (resnet_arg_scope's conv2d -> batch_norm -> relu,
conv2d_same with stride 2, max_pool2d, a bottleneck with relu(shortcut +
residual)) is built in a TF-Slim graph with random weights and moving
statistics, and again with pyconv's layers from the same values, which takes
the fused path; float32 (TF's fused batch-norm kernel) and float64
(nn.batch_normalization). Tolerances as the fixture replay (1e-5 float32,
1e-12 float64, relative to max(1, max|TF|)).
"""
import importlib
import os
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pyconv as slim
from pyconv import layers

pytestmark = pytest.mark.tf
TOL = {np.float32: 1e-5, np.float64: 1e-12}


def _tf():
    import tensorflow as tf

    for m in ("", ".normalization", ".base", ".core", ".convolutional", ".pooling"):
        try:  # FACTS D3: tf_keras 2.21 ships its legacy layers under src/
            sys.modules["tf_keras.legacy_tf_layers" + m] = importlib.import_module(
                "tf_keras.src.legacy_tf_layers" + m)
        except ImportError:
            pass
    import tf_slim
    from tf_slim.nets import resnet_utils

    return tf, tf.compat.v1, tf_slim, resnet_utils


def _stack(lib, nn, conv2d_same, x, fused=None):
    """The same layer sequence for TF-Slim (lib = tf_slim, nn = tf.nn) and pyconv."""
    bn = {"decay": 0.997, "epsilon": 1e-5, "scale": True, "is_training": False}
    if fused is not None:
        bn["fused"] = fused
    with lib.arg_scope([lib.conv2d], normalizer_fn=lib.batch_norm, normalizer_params=bn):
        net = conv2d_same(x, 16, 7, 2, scope="conv1")
        net = lib.max_pool2d(net, [3, 3], stride=2, padding="SAME", scope="pool1")
        shortcut = lib.conv2d(net, 32, [1, 1], activation_fn=None, scope="shortcut")
        r = lib.conv2d(net, 8, [1, 1], scope="c1")
        r = conv2d_same(r, 8, 3, 1, scope="c2")
        r = lib.conv2d(r, 32, [1, 1], activation_fn=None, scope="c3")
        net = nn.relu(shortcut + r)
        net = lib.conv2d(net, 12, [3, 3], activation_fn=nn.relu6, scope="c4")
    return net


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fused", [None, False])
def test_fused_conv_batch_norm_stack_matches_tf(dtype, fused, monkeypatch):
    tf, v1, tf_slim, resnet_utils = _tf()
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, (2, 33, 30, 3)).astype(dtype)
    g = tf.Graph()
    with g.as_default():
        ph = v1.placeholder(tf.as_dtype(dtype), x.shape)
        out = _stack(tf_slim, tf.nn, resnet_utils.conv2d_same, ph, fused)
        variables = v1.global_variables()
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            values = {}
            for v in variables:
                shape = v.shape.as_list()
                if "moving_variance" in v.op.name or "gamma" in v.op.name:
                    val = rng.uniform(0.5, 1.5, shape)
                elif "moving_mean" in v.op.name or "beta" in v.op.name:
                    val = 0.2 * rng.standard_normal(shape)
                else:
                    val = rng.standard_normal(shape) / np.sqrt(np.prod(shape[:-1]))
                values[v.op.name] = val.astype(v.dtype.as_numpy_dtype)
                v.load(values[v.op.name], sess)
            want = sess.run(out, {ph: x})
    calls = []
    real = layers._fold_batch_norm
    monkeypatch.setattr(layers, "_fold_batch_norm", lambda *a: calls.append(1) or real(*a))
    with slim.VariableStore() as store:
        store.load(values)
        got = _stack(slim, slim.nn, slim.conv2d_same, x, fused)
        assert sorted(store.keys()) == sorted(values)
    assert len(calls) == 6  # every conv of the stack took the fused path
    assert got.dtype == want.dtype and got.shape == want.shape
    err = np.abs(got - want).max() / max(1.0, np.abs(want).max())
    assert err <= TOL[dtype], err


def test_max_pool_nan_and_inf_match_tf():
    tf, v1, tf_slim, _ = _tf()
    rng = np.random.default_rng(12)
    for dtype in (np.float32, np.float64):
        for c in (1, 7, 16, 19):
            x = rng.standard_normal((2, 9, 8, c)).astype(dtype)
            u = rng.random(x.shape)
            x[u < 0.2] = np.nan
            x[(u >= 0.2) & (u < 0.5)] = -np.inf
            x[:, :3, :3] = -np.inf
            for k, s, pad in (((3, 3), 2, "SAME"), ((2, 4), (1, 3), "VALID"), ((5, 5), 1, "SAME")):
                want = tf.nn.max_pool2d(tf.constant(x, tf.as_dtype(dtype)), k, s, pad).numpy()
                assert want.dtype == dtype
                got = slim.nn.max_pool2d(x, k, s, pad)
                np.testing.assert_array_equal(got, want)
