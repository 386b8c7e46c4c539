"""Deterministic weights for whole nets, shared by the TF fixture generator
(``tools/tf_reference/gen_nets.py``) and the replay tests, so fixtures hold
only TF's outputs and the tests regenerate the weights from the seed.

Every variable's values come from its own NumPy generator seeded by
SHA-256 of ``(seed, name)``, so they do not depend on creation order. Scales
keep activations O(1) through deep nets although batch norm's moving
statistics are random, not those of the activations: He-uniform weights,
residual branches' last convolution damped (``RESIDUAL_DAMPING``), batch
norm statistics in [0.5, 1.5] (variance) and [-0.1, 0.1] (mean, beta).
"""

import hashlib

import numpy as np

RESIDUAL_DAMPING = 0.2


def _generator(seed, name):
    digest = hashlib.sha256(f"{seed}\x00{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def _uniform(rng, shape, low, high):
    values = rng.random(shape, dtype=np.float32)
    values *= np.float32(high - low)
    values += np.float32(low)
    return values


def weight_value(name, shape, seed):
    """The float32 value of the variable ``name`` (TF's name, no ':0') of ``shape``."""
    shape = tuple(int(d) for d in shape)
    rng = _generator(seed, name)
    leaf = name.rsplit("/", 1)[-1]
    if leaf in ("weights", "depthwise_weights", "pointwise_weights"):
        if leaf == "depthwise_weights":
            fan_in = shape[0] * shape[1]
        else:
            fan_in = int(np.prod(shape[:-1]))
        limit = np.sqrt(6.0 / max(fan_in, 1))
        if "/bottleneck_v" in name and "/conv3/" in name:
            limit *= RESIDUAL_DAMPING
        return _uniform(rng, shape, -limit, limit)
    if leaf == "moving_variance":
        return _uniform(rng, shape, 0.5, 1.5)
    if leaf == "gamma":
        return _uniform(rng, shape, 0.5, 1.0)
    if leaf in ("beta", "moving_mean", "biases"):
        return _uniform(rng, shape, -0.1, 0.1)
    raise ValueError(f"no rule for a variable named {name!r}")


_LAST = {}  # the previous call's values: a net at two sizes draws its weights once


def net_weights(variables, seed):
    """``{name: value}`` for ``variables``, a list of ``(name, shape, ...)``.

    Do not modify the arrays: they are kept for the next call.
    """
    global _LAST
    values, kept = {}, {}
    for v in variables:
        key = (seed, v[0], tuple(v[1]))
        value = _LAST.get(key)
        if value is None:
            value = weight_value(v[0], v[1], seed)
        values[v[0]] = kept[key] = value
    _LAST = kept
    return values


def net_input(shape, seed):
    """The input image batch: uniform in [-1, 1), float32."""
    rng = _generator(seed, "__input__")
    return _uniform(rng, tuple(shape), -1.0, 1.0)
