"""Activation functions for ``activation_fn``: NumPy in, NumPy out.

float16, float32 and float64 keep their dtype (float16 is computed in
float32); integer and bool arrays are computed as float32, like every pyconv
op; other dtypes raise a ``TypeError`` naming the dtype.

``conv2d`` recognises :func:`relu` and :func:`relu6` (and ``pyconv.nn.relu``
/ ``pyconv.nn.relu6``) and fuses them into the C kernel when there is no
normalizer; any other callable is applied to the array afterwards.
"""

import numpy as np

from . import nn as _nn

# softmax is not exported: the top-level pyconv.softmax is slim's layer (core_layers.py)
__all__ = ["elu", "leaky_relu", "relu", "relu6", "sigmoid", "tanh"]


def _float(x, name="features"):
    """(array in its compute dtype, output dtype)."""
    a = np.asarray(x)
    compute, out = _nn.compute_dtype(a.dtype, name)
    return a.astype(compute, copy=False), out


def relu(features, name=None):
    """``max(features, 0)``, as ``tf.nn.relu`` (NaN stays NaN).

    Examples
    --------
    >>> relu(np.array([-1.0, 0.5]))
    array([0. , 0.5])
    """
    return _nn.relu(features)


def relu6(features, name=None):
    """``min(max(features, 0), 6)``, as ``tf.nn.relu6``."""
    return _nn.relu6(features)


def elu(features, name=None):
    """``features`` where positive, ``exp(features) - 1`` elsewhere, as ``tf.nn.elu``."""
    x, out = _float(features)
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0))).astype(out, copy=False)


def leaky_relu(features, alpha=0.2, name=None):
    """``features`` where positive, ``alpha * features`` elsewhere, as ``tf.nn.leaky_relu``.

    As in TF, ``alpha`` is a float32 attribute cast to the features' dtype, so
    on float64 ``leaky_relu(-1.0) == -0.20000000298023224`` (float32(0.2)),
    and on float16 it is rounded to float16.

    Examples
    --------
    >>> float(leaky_relu(np.array([-1.0]))[0])
    -0.20000000298023224
    """
    x, out = _float(features)
    a = np.float32(alpha).astype(out)  # TF: float alpha attribute, static_cast<T>(alpha)
    return np.where(x > 0, x, x * x.dtype.type(a)).astype(out, copy=False)


def sigmoid(x, name=None):
    """``1 / (1 + exp(-x))``, computed as ``0.5 * tanh(x / 2) + 0.5`` (no overflow)."""
    a, out = _float(x, "x")
    half = a.dtype.type(0.5)
    return (half * np.tanh(half * a) + half).astype(out, copy=False)


def tanh(x, name=None):
    """Hyperbolic tangent, as ``tf.nn.tanh``."""
    a, out = _float(x, "x")
    return np.tanh(a).astype(out, copy=False)


def softmax(logits, axis=-1, name=None, scope=None):
    """``exp(logits) / sum(exp(logits))`` along ``axis`` (default last):
    :func:`pyconv.nn.softmax` with ``tf.nn.softmax``'s ``name`` and slim's
    ``scope=`` accepted (and ignored). The top-level ``pyconv.softmax`` is
    slim's layer (:func:`pyconv.core_layers.softmax`, last axis, rank >= 2).

    Examples
    --------
    >>> softmax(np.log(np.array([[1.0, 3.0]])))
    array([[0.25, 0.75]])
    """
    return _nn.softmax(logits, axis)
