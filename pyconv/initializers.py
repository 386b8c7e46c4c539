"""Initializers: the ``weights_initializer`` / ``biases_initializer`` of slim's layers.

Each initializer is a callable ``init(shape, dtype=None, partition_info=None,
*, rng=None)`` returning a new ndarray. The variable store passes ``rng``, a
``numpy.random.Generator`` derived from the store's seed and the variable's
full name, so the same seed and name give the same values whatever the
creation order. An initializer built with ``seed=`` ignores ``rng`` and draws
from that seed alone (the same values for every variable it initializes, as
TF's op-level seeds).

Random values are drawn in float64 and then cast, so a float16, float32 and
float64 variable with the same name and seed hold the same numbers up to
rounding.

Wherever an initializer is expected, an array (or anything ``np.asarray``
accepts) may be passed instead; it is used as the value and must have the
variable's shape.
"""

import math
import numbers
import operator

import numpy as np

__all__ = [
    "Initializer",
    "constant_initializer",
    "ones_initializer",
    "random_normal_initializer",
    "random_uniform_initializer",
    "truncated_normal_initializer",
    "variance_scaling_initializer",
    "xavier_initializer",
    "xavier_initializer_conv2d",
    "zeros_initializer",
]


def _float_dtype(dtype, default, who):
    dt = np.dtype(default if dtype is None else dtype)
    if dt.kind != "f":
        raise TypeError(f"{who}: cannot create random values of non-floating dtype {dt}")
    return dt


def _shape(shape, who="initializer"):
    """``shape`` as a tuple of non-negative ints; errors name ``shape``."""
    if shape is None:
        raise ValueError(f"{who}: shape is required")
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if isinstance(shape, (str, bytes)):
        raise TypeError(f"{who}: shape must be a sequence of ints, got {shape!r}")
    try:
        dims = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(f"{who}: shape must be a sequence of ints, got {shape!r}") from None
    if any(isinstance(d, bool) for d in shape):
        raise TypeError(f"{who}: shape must be a sequence of ints, got {shape!r}")
    if any(d < 0 for d in dims):
        raise ValueError(f"{who}: shape must not have negative dimensions, got {dims}")
    return dims


def _real(value, name, who, minimum=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{who}: {name} must be a float, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{who}: {name} must be >= {minimum}, got {value!r}")
    return value


class Initializer:
    """Base class: subclasses implement ``_generate(shape, dtype, rng)``.

    Attributes
    ----------
    seed : int or None
        When set, values come from this seed alone instead of the store's
        per-variable generator.
    dtype : numpy.dtype
        The dtype used when the caller passes none.
    """

    random = False  # whether _generate draws from rng

    def __init__(self, seed=None, dtype=np.float32):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self.dtype = np.dtype(dtype)

    def __call__(self, shape, dtype=None, partition_info=None, *, rng=None):
        """Return a new array of ``shape`` and ``dtype`` (default: ``self.dtype``).

        ``rng`` is a ``numpy.random.Generator``; it is ignored when the
        initializer has its own ``seed``, and a fresh unseeded one is used
        when neither is given.
        """
        shape = _shape(shape)
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        if self.random:
            if self.seed is not None:
                rng = np.random.default_rng(self.seed)
            elif rng is None:
                rng = np.random.default_rng()
        return self._generate(shape, dtype, rng)

    def _generate(self, shape, dtype, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self):
        """The constructor arguments, as ``tf.keras`` initializers report them."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self):
        config = self.get_config()
        config["dtype"] = config["dtype"].name
        args = ", ".join(f"{k}={v!r}" for k, v in config.items())
        return f"{self._public_name}({args})"

    _public_name = "Initializer"


class _Constant(Initializer):
    _public_name = "constant_initializer"
    def __init__(self, value=0, dtype=np.float32, verify_shape=False):
        super().__init__(None, dtype)
        self.value = value
        self.verify_shape = verify_shape

    def _generate(self, shape, dtype, rng):
        value = np.asarray(self.value)
        if value.dtype.kind not in "biuf":
            raise TypeError(f"constant_initializer: value must be numeric, got {self.value!r}")
        size = math.prod(shape)
        if self.verify_shape and value.shape != shape:
            raise TypeError(f"constant_initializer: expected value of shape {shape}, "
                            f"got shape {value.shape} (verify_shape=True)")
        if value.ndim == 0:
            return np.full(shape, value, dtype=dtype)
        flat = value.ravel()
        if flat.size > size:
            raise ValueError(f"constant_initializer: too many elements provided; needed at most "
                             f"{size} for shape {shape}, got {flat.size}")
        if flat.size < size:  # TF 1.x repeats the last element
            flat = np.concatenate([flat, np.full(size - flat.size, flat[-1])])
        return flat.astype(dtype).reshape(shape)


class _RandomNormal(Initializer):
    _public_name = "random_normal_initializer"
    random = True
    _who = "random_normal_initializer"

    def __init__(self, mean=0.0, stddev=1.0, seed=None, dtype=np.float32):
        super().__init__(seed, dtype)
        self.mean = _real(mean, "mean", self._who)
        # negative stddev is allowed, as TF (the values are mirrored: z * stddev + mean)
        self.stddev = _real(stddev, "stddev", self._who)

    def _generate(self, shape, dtype, rng):
        _float_dtype(dtype, None, "random_normal_initializer")
        return (rng.standard_normal(shape) * self.stddev + self.mean).astype(dtype)


class _RandomUniform(Initializer):
    _public_name = "random_uniform_initializer"
    random = True

    def __init__(self, minval=0.0, maxval=None, seed=None, dtype=np.float32):
        super().__init__(seed, dtype)
        who = "random_uniform_initializer"
        self.minval = _real(minval, "minval", who)
        self.maxval = None if maxval is None else _real(maxval, "maxval", who)

    def _generate(self, shape, dtype, rng):
        _float_dtype(dtype, None, "random_uniform_initializer")
        high = 1.0 if self.maxval is None else self.maxval
        # TF's formula, so minval > maxval works as in TF: values in (maxval, minval]
        return (rng.random(shape) * (high - self.minval) + self.minval).astype(dtype)


def _truncated_standard_normal(rng, shape):
    """Standard normal values, each redrawn until it lies within 2 stddev (TF's rule)."""
    z = rng.standard_normal(shape)
    bad = np.abs(z) > 2.0
    while bad.any():
        z[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(z) > 2.0
    return z


class _TruncatedNormal(_RandomNormal):
    _public_name = "truncated_normal_initializer"
    _who = "truncated_normal_initializer"

    def _generate(self, shape, dtype, rng):
        _float_dtype(dtype, None, "truncated_normal_initializer")
        return (_truncated_standard_normal(rng, shape) * self.stddev + self.mean).astype(dtype)


def _fans(shape):
    """(fan_in, fan_out) as slim: receptive field times in/out channels."""
    if not shape:
        return 1.0, 1.0
    fan_in = float(shape[-2]) if len(shape) > 1 else float(shape[-1])
    fan_out = float(shape[-1])
    for dim in shape[:-2]:
        fan_in *= dim
        fan_out *= dim
    return fan_in, fan_out


class _VarianceScaling(Initializer):
    _public_name = "variance_scaling_initializer"
    random = True

    def __init__(self, factor=2.0, mode="FAN_IN", uniform=False, seed=None, dtype=np.float32):
        super().__init__(seed, dtype)
        self.factor = _real(factor, "factor", "variance_scaling_initializer", 0)
        self.mode = mode
        self.uniform = uniform

    def _generate(self, shape, dtype, rng):
        _float_dtype(dtype, None, "variance_scaling_initializer")
        fan_in, fan_out = _fans(shape)
        n = {"FAN_IN": fan_in, "FAN_OUT": fan_out, "FAN_AVG": (fan_in + fan_out) / 2.0}[self.mode]
        n = max(n, 1.0)  # a zero-sized dimension: the array is empty anyway
        if self.uniform:
            limit = math.sqrt(3.0 * self.factor / n)
            return rng.uniform(-limit, limit, size=shape).astype(dtype)
        # slim's constant: 1.3 undoes the variance lost by truncating at 2 stddev
        trunc_stddev = math.sqrt(1.3 * self.factor / n)
        return (_truncated_standard_normal(rng, shape) * trunc_stddev).astype(dtype)


def zeros_initializer(dtype=np.float32):
    """Initializer that gives zeros (slim's default ``biases_initializer``)."""
    return _Constant(0, dtype)


def ones_initializer(dtype=np.float32):
    """Initializer that gives ones (batch norm's ``gamma`` and ``moving_variance``)."""
    return _Constant(1, dtype)


def constant_initializer(value=0, dtype=np.float32, verify_shape=False):
    """Initializer that gives ``value``, as ``tf.compat.v1.constant_initializer``.

    Parameters
    ----------
    value : scalar or array_like
        A scalar fills the variable. A list/array is laid out in row-major
        order; if it has fewer elements than the variable, the last element
        repeats (TF 1.x).
    dtype : dtype, default float32
        Used when the caller passes no dtype.
    verify_shape : bool, default False
        Require ``value`` to have exactly the variable's shape.

    Raises
    ------
    ValueError
        ``value`` has more elements than the variable (at call time).
    TypeError
        ``verify_shape`` is set and the shapes differ, or ``value`` is not numeric.
    """
    return _Constant(value, dtype, verify_shape)


def random_normal_initializer(mean=0.0, stddev=1.0, seed=None, dtype=np.float32):
    """Initializer that draws from a normal distribution ``N(mean, stddev**2)``."""
    return _RandomNormal(mean, stddev, seed, dtype)


def random_uniform_initializer(minval=0.0, maxval=None, seed=None, dtype=np.float32):
    """Initializer that draws uniformly from ``[minval, maxval)`` (``maxval`` None: 1)."""
    return _RandomUniform(minval, maxval, seed, dtype)


def truncated_normal_initializer(mean=0.0, stddev=1.0, seed=None, dtype=np.float32):
    """Initializer that draws from ``N(mean, stddev**2)``, redrawing values more
    than two standard deviations from the mean (as ``tf.truncated_normal``)."""
    return _TruncatedNormal(mean, stddev, seed, dtype)


def variance_scaling_initializer(factor=2.0, mode="FAN_IN", uniform=False, seed=None,
                                 dtype=np.float32):
    """Initializer that keeps the variance of activations constant, as slim's.

    With ``fan_in = kh * kw * in_channels`` and ``fan_out = kh * kw *
    out_channels`` (for a ``[kh, kw, in, out]`` kernel; the last two
    dimensions of any other shape) and ``n`` = ``fan_in``, ``fan_out`` or
    their mean per ``mode``:

    - ``uniform=True``: uniform on ``[-limit, limit)``, ``limit = sqrt(3 * factor / n)``;
    - ``uniform=False``: truncated normal (redrawn beyond 2 stddev) with
      ``stddev = sqrt(1.3 * factor / n)`` — slim's formula, whose 1.3 makes
      up for the truncation.

    The default (``factor=2.0, mode='FAN_IN', uniform=False``) is He / MSRA
    initialisation.

    Parameters
    ----------
    factor : float, default 2.0
    mode : {'FAN_IN', 'FAN_OUT', 'FAN_AVG'}
    uniform : bool, default False
    seed : int, optional
        Overrides the variable store's per-variable seed.
    dtype : floating dtype, default float32

    Raises
    ------
    TypeError
        ``mode`` is not one of the three, or ``dtype`` is not floating (as slim).
    """
    _float_dtype(dtype, None, "variance_scaling_initializer")
    if mode not in ("FAN_IN", "FAN_OUT", "FAN_AVG"):
        raise TypeError(f"Unknown mode {mode} [FAN_IN, FAN_OUT, FAN_AVG]")
    return _VarianceScaling(factor, mode, uniform, seed, dtype)


def xavier_initializer(uniform=True, seed=None, dtype=np.float32):
    """Glorot / Xavier initialisation, as slim (``conv2d``'s default ``weights_initializer``).

    ``variance_scaling_initializer(factor=1.0, mode='FAN_AVG', uniform=uniform)``:
    uniform on ``[-sqrt(6 / (fan_in + fan_out)), +sqrt(6 / (fan_in + fan_out)))``,
    with ``fan_in = kh * kw * in_channels``, ``fan_out = kh * kw * out_channels``;
    or, with ``uniform=False``, a truncated normal of stddev
    ``sqrt(1.3 * 2 / (fan_in + fan_out))``.

    Examples
    --------
    >>> import numpy as np
    >>> w = xavier_initializer(seed=1)((3, 3, 16, 32))
    >>> bool(np.abs(w).max() <= np.sqrt(6 / (9 * 16 + 9 * 32)))
    True
    """
    return variance_scaling_initializer(1.0, "FAN_AVG", uniform, seed, dtype)


xavier_initializer_conv2d = xavier_initializer
