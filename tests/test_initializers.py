"""Initializers and regularizers against TF/slim's documented formulas.

Statistical checks use large samples with tolerances of many standard errors,
and fixed seeds, so they are deterministic.
"""

import math

import numpy as np
import pytest

import pyconv as slim

RNG = np.random.default_rng


def test_zeros_ones_dtype_and_shape():
    z = slim.zeros_initializer()((2, 3))
    o = slim.ones_initializer()([4], np.float64)
    assert z.shape == (2, 3) and z.dtype == np.float32 and not z.any()
    assert o.dtype == np.float64 and (o == 1).all()


def test_constant_initializer_scalar_list_and_tf1_fill():
    np.testing.assert_array_equal(slim.constant_initializer(2.5)((2, 2)), np.full((2, 2), 2.5))
    np.testing.assert_array_equal(slim.constant_initializer([1, 2, 3, 4, 5, 6])((2, 3)),
                                  [[1, 2, 3], [4, 5, 6]])
    # TF 1.x: fewer values than elements -> the last value repeats.
    np.testing.assert_array_equal(slim.constant_initializer([1, 2])((2, 2)), [[1, 2], [2, 2]])
    with pytest.raises(ValueError, match="too many"):
        slim.constant_initializer([1, 2, 3])((2,))
    with pytest.raises(TypeError, match="verify_shape"):
        slim.constant_initializer([1, 2], verify_shape=True)((2, 1))


def test_truncated_normal_stays_within_two_stddev():
    x = slim.truncated_normal_initializer(mean=1.0, stddev=0.5)((200, 500), rng=RNG(0))
    assert x.min() >= 1.0 - 1.0 and x.max() <= 1.0 + 1.0
    # A standard normal truncated at +-2 has stddev 0.87962566103423978.
    assert x.std() == pytest.approx(0.5 * 0.87962566103423978, rel=0.01)
    assert x.mean() == pytest.approx(1.0, abs=0.005)


def test_random_normal_and_uniform_moments():
    n = slim.random_normal_initializer(mean=-2.0, stddev=3.0)((100000,), rng=RNG(1))
    assert n.mean() == pytest.approx(-2.0, abs=0.05)
    assert n.std() == pytest.approx(3.0, rel=0.02)
    u = slim.random_uniform_initializer(-1.0, 3.0)((100000,), rng=RNG(2))
    assert u.min() >= -1.0 and u.max() < 3.0
    assert u.mean() == pytest.approx(1.0, abs=0.02)
    default = slim.random_uniform_initializer()((1000,), rng=RNG(3))
    assert default.min() >= 0.0 and default.max() < 1.0


def test_xavier_uniform_limit_uses_receptive_field():
    shape = (5, 3, 16, 32)
    fan_in, fan_out = 5 * 3 * 16, 5 * 3 * 32
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    w = slim.xavier_initializer()(shape, rng=RNG(4))
    assert w.dtype == np.float32
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit
    assert w.std() == pytest.approx(limit / math.sqrt(3), rel=0.02)


def test_xavier_normal_is_truncated_with_slim_factor():
    shape = (3, 3, 64, 64)
    n = (9 * 64 + 9 * 64) / 2.0
    stddev = math.sqrt(1.3 / n)  # slim: sqrt(1.3 * factor / n), factor 1 for Xavier
    w = slim.xavier_initializer(uniform=False)(shape, rng=RNG(5))
    assert np.abs(w).max() <= 2 * stddev
    assert w.std() == pytest.approx(stddev * 0.87962566103423978, rel=0.02)


@pytest.mark.parametrize("mode", ["FAN_IN", "FAN_OUT", "FAN_AVG"])
def test_variance_scaling_modes(mode):
    shape = (3, 3, 32, 64)
    fan_in, fan_out = 9 * 32, 9 * 64
    n = {"FAN_IN": fan_in, "FAN_OUT": fan_out, "FAN_AVG": (fan_in + fan_out) / 2}[mode]
    w = slim.variance_scaling_initializer(factor=2.0, mode=mode)(shape, rng=RNG(6))
    stddev = math.sqrt(1.3 * 2.0 / n)
    assert np.abs(w).max() <= 2 * stddev
    assert w.std() == pytest.approx(stddev * 0.87962566103423978, rel=0.02)
    u = slim.variance_scaling_initializer(factor=2.0, mode=mode, uniform=True)(shape, rng=RNG(7))
    limit = math.sqrt(3.0 * 2.0 / n)
    assert np.abs(u).max() <= limit and np.abs(u).max() > 0.99 * limit


def test_variance_scaling_errors_as_slim():
    with pytest.raises(TypeError, match="Unknown mode"):
        slim.variance_scaling_initializer(mode="fan_in")
    with pytest.raises(TypeError, match="floating"):
        slim.variance_scaling_initializer(dtype=np.int32)
    with pytest.raises(TypeError, match="floating"):
        slim.xavier_initializer()((2, 2), np.int64)


def test_seed_makes_values_reproducible_and_ignores_rng():
    a = slim.truncated_normal_initializer(seed=3)((5,), rng=RNG(0))
    b = slim.truncated_normal_initializer(seed=3)((5,), rng=RNG(99))
    c = slim.truncated_normal_initializer(seed=4)((5,))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(TypeError, match="seed"):
        slim.xavier_initializer(seed="1")


def test_ndarray_as_initializer_in_layers():
    w = np.arange(2 * 2 * 1 * 3, dtype=np.float64).reshape(2, 2, 1, 3)
    b = np.array([1.0, 2.0, 3.0])
    with slim.VariableStore(seed=0) as store:
        slim.conv2d(np.ones((1, 3, 3, 1), np.float32), 3, 2, weights_initializer=w,
                    biases_initializer=b, scope="c")
        assert store["c/weights"].dtype == np.float32
        np.testing.assert_array_equal(store["c/weights"], w)
        np.testing.assert_array_equal(store["c/biases"], b)
        with pytest.raises(ValueError, match=r"c2/weights.*\(2, 2, 1, 3\).*\(3, 3, 1, 3\)"):
            slim.conv2d(np.ones((1, 3, 3, 1)), 3, 3, weights_initializer=w, scope="c2")


def test_initializer_repr_and_config():
    init = slim.variance_scaling_initializer(1.0, "FAN_OUT", True, seed=2)
    assert init.get_config() == {"seed": 2, "dtype": np.dtype(np.float32), "factor": 1.0,
                                 "mode": "FAN_OUT", "uniform": True}
    assert "FAN_OUT" in repr(init)


# --------------------------------------------------------------------------- regularizers


def test_l2_regularizer_is_half_sum_of_squares():
    w = np.array([[1.0, -2.0], [3.0, 0.5]], np.float32)
    loss = slim.l2_regularizer(0.1)(w)
    assert loss.dtype == np.float32
    assert float(loss) == pytest.approx(0.1 * (1 + 4 + 9 + 0.25) / 2)


def test_l1_and_l1_l2_regularizers():
    w = np.array([1.0, -2.0, 3.0])
    assert float(slim.l1_regularizer(0.5)(w)) == pytest.approx(0.5 * 6)
    assert float(slim.l1_l2_regularizer(0.5, 0.1)(w)) == pytest.approx(0.5 * 6 + 0.1 * 14 / 2)
    assert float(slim.l1_l2_regularizer(0.0, 0.1)(w)) == pytest.approx(0.1 * 14 / 2)
    assert slim.l1_l2_regularizer(0.0, 0.1).__name__ == "l1_l2_regularizer"


def test_regularizer_scale_errors_as_slim():
    with pytest.raises(ValueError, match="scale cannot be an integer"):
        slim.l2_regularizer(1)
    with pytest.raises(ValueError, match="less than 0"):
        slim.l1_regularizer(-0.5)
    with pytest.raises(ValueError, match="scale_l2 cannot be an integer"):
        slim.l1_l2_regularizer(0.1, 2)
    with pytest.raises(TypeError, match="scale"):
        slim.l2_regularizer("0.1")
    assert slim.l2_regularizer(0.0)(np.ones(3)) is None


def test_sum_regularizer_and_apply_regularization():
    assert slim.sum_regularizer([None]) is None
    reg = slim.sum_regularizer([slim.l1_regularizer(1.0), None, slim.l2_regularizer(2.0)])
    w = np.array([1.0, 2.0])
    assert float(reg(w)) == pytest.approx(3 + 2 * 5 / 2)
    total = slim.apply_regularization(slim.l1_regularizer(1.0), [w, -w])
    assert float(total) == pytest.approx(6.0)
    with slim.VariableStore(seed=0), pytest.raises(ValueError, match="No weights"):
        slim.apply_regularization(slim.l1_regularizer(1.0))


# --------------------------------------------------------------------------- activations


def test_activations_against_formulas():
    x = np.array([-3.0, -0.5, 0.0, 0.5, 7.0])
    np.testing.assert_array_equal(slim.relu(x), [0, 0, 0, 0.5, 7])
    np.testing.assert_array_equal(slim.relu6(x), [0, 0, 0, 0.5, 6])
    np.testing.assert_allclose(slim.elu(x), np.where(x > 0, x, np.exp(x) - 1))
    np.testing.assert_allclose(slim.leaky_relu(x), np.where(x > 0, x, 0.2 * x))
    np.testing.assert_allclose(slim.leaky_relu(x, alpha=0.1), np.where(x > 0, x, 0.1 * x))
    np.testing.assert_allclose(slim.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(slim.tanh(x), np.tanh(x))
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, 0.0]])
    e = np.exp(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(slim.softmax(logits)[0], e / e.sum())
    np.testing.assert_allclose(slim.softmax(logits)[1], [0.5, 0.5, 0.0], atol=1e-300)
    e3 = math.exp(3.0)
    np.testing.assert_allclose(slim.nn.softmax(logits, axis=0)[:, 2], [e3 / (e3 + 1), 1 / (e3 + 1)])
    np.testing.assert_allclose(slim.activations.softmax(logits, axis=0)[:, 2],
                               [e3 / (e3 + 1), 1 / (e3 + 1)])
    assert slim.softmax(logits, scope="Predictions").shape == (2, 3)


def test_activation_dtypes():
    h = np.array([-1.0, 2.0], np.float16)
    for fn in (slim.relu, slim.relu6, slim.elu, slim.leaky_relu, slim.sigmoid, slim.tanh,
               slim.nn.softmax):
        assert fn(h).dtype == np.float16, fn.__name__
        # integers: relu and relu6 keep them, as tf.nn.relu; the others compute float32
        want = np.array([1, 2]).dtype if fn in (slim.relu, slim.relu6) else np.float32
        assert fn(np.array([1, 2])).dtype == want, fn.__name__
    with pytest.raises(TypeError, match="complex"):
        slim.sigmoid(np.array([1j]))
    assert not np.isfinite(slim.sigmoid(np.array([np.nan]))).any()
    np.testing.assert_array_equal(slim.sigmoid(np.array([-1000.0, 1000.0])), [0.0, 1.0])
