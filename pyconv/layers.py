"""TF-Slim's conv2d family for NumPy arrays: ``conv2d``, ``conv2d_same``,
``subsample``, ``max_pool2d``, ``avg_pool2d`` and ``batch_norm``.

Each layer has slim's argument names, order and defaults, is decorated with
:func:`pyconv.add_arg_scope`, takes anything ``np.asarray`` accepts and
returns a new ndarray. Variables live in the default
:class:`pyconv.VariableStore` under slim's names (``Conv/weights``,
``Conv/BatchNorm/beta``, ...). The arithmetic is ``pyconv.nn``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names in the type hints only
    from ._typing import (
        Any, ArrayLike, Callable, Collections, Initializer, IntOrPair, Optional, Padding,
        Regularizer
    )

import numbers
import threading

import numpy as np

from . import _fastpath, _memory
from .arg_scope import _ARGSTACK as _ARG_STACK, _THREAD as _ARG_THREAD
from . import nn as _nn
from .activations import relu, relu6
from .arg_scope import add_arg_scope
from .geometry import (
    conv2d_same_padding,
    explicit_padding_from_tf,
    pair,
    resolve,
    transpose_output_size,
)
from .initializers import ones_initializer, xavier_initializer, zeros_initializer
from ._errors import AttributeTypeError, TypeValueError
from .updates import AssignMovingAverage
from .variables import (
    GraphKeys,
    _add_to_variables_collections,
    _check_reuse,
    _model_variable,
    collect_named_outputs,
    get_default_store,
)

__all__ = [
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "conv2d_same",
    "convolution2d",
    "max_pool2d",
    "separable_conv2d",
    "separable_convolution2d",
    "subsample",
]

_FLOAT16 = np.dtype(np.float16)
_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)


def _as_input(inputs):
    if type(inputs) is np.ndarray:
        return inputs
    try:
        return np.asarray(inputs)
    except Exception as exc:  # noqa: BLE001 - ragged lists, objects that refuse conversion
        raise TypeError(f"inputs could not be converted to a numeric array: {exc}") from None


def _variable_dtype(dtype, layer="this layer", integers_as_float32=False):
    """The dtype of a layer's variables for inputs of ``dtype``: floats keep theirs.

    Integer and bool inputs are a TypeError, as in TF-Slim (which cannot create
    initializers for them); ``pyconv.nn`` computes int32 convolutions.
    ``integers_as_float32`` keeps the older rule (float32) for a layer that has it.
    """
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):  # any byte order
        return dtype.newbyteorder("=")
    if dtype.kind in "biu" and integers_as_float32:
        return _FLOAT32
    if dtype.kind in "biu":
        raise TypeError(f"inputs have dtype {dtype}; {layer} takes float16, float32 or float64 "
                        "inputs, as TF-Slim (which cannot create float variables for integer "
                        "layers): cast them, e.g. inputs.astype(np.float32)")
    raise TypeError(f"inputs have dtype {dtype}; pyconv computes float16, float32, float64")


# slim's convolution takes every rank's names and only asks whether they start with 'NC'
_CONV_DATA_FORMATS = {"NHWC": "NHWC", "NWC": "NHWC", "NDHWC": "NHWC",
                      "NCHW": "NCHW", "NCW": "NCHW", "NCDHW": "NCHW"}


def _adopt_variable_dtype(store, scope, short_name, dtype, x):
    """Variables that exist (created earlier, or loaded and pending) decide the
    compute dtype: the input is cast to theirs, so float64 images
    (``np.random.rand``, ``img / 255.0``) run a float32 checkpoint in
    float32, and a model built from float64 input keeps its dtype for float32
    input. Without such a variable the input's dtype decides (float64 input
    then makes float64 variables)."""
    var = store._vars.get(scope.name + "/" + short_name if scope.name else short_name)
    if var is None:
        return dtype, x
    var_dtype = var._value.dtype.newbyteorder("=")  # a loaded value may be byte-swapped
    if var_dtype == dtype or var_dtype.kind != "f" or var_dtype.itemsize not in (2, 4, 8):
        return dtype, x
    return var_dtype, x.astype(var_dtype)


def _layer_name(scope, default_name):
    """The full scope name a layer is about to get (for error messages)."""
    inner = getattr(scope, "name", scope) or default_name
    outer = get_default_store()._state().scope.name
    return f"{outer}/{inner}" if outer and not hasattr(scope, "name") else inner


def _conv_data_format(data_format):
    if data_format is None:
        return "NHWC"
    if isinstance(data_format, str):
        fmt = _CONV_DATA_FORMATS.get(data_format.upper())
        if fmt is not None:
            return fmt
    raise ValueError(f"Invalid data_format: {data_format!r}; conv2d takes None, 'NHWC' or "
                     "'NCHW' (also slim's 'NWC'/'NDHWC' = channels last, 'NCW'/'NCDHW' = "
                     "channels first)")


def _pool_data_format(data_format):
    if isinstance(data_format, str):
        upper = data_format.upper()
        if upper == "NHWC" or upper == "NCHW":
            return upper
    raise ValueError(f"data_format has to be either NCHW or NHWC, got {data_format!r}")


def _square_or_pair(value, name):
    """``pair(value, name)``, collapsed to an int when both are equal (nn's fast path)."""
    if type(value) is int and value >= 1:
        return value, (value, value)
    if type(value) in (list, tuple) and len(value) == 2:
        a, b = value
        if type(a) is int and type(b) is int and a >= 1 and b >= 1:
            return (a if a == b else (a, b)), (a, b)
    p = pair(value, name)
    return (p[0] if p[0] == p[1] else p), p


def _check_num_outputs(num_outputs):
    """An int >= 0; a float is truncated to an int, as TF's layer does (``int(4.0)``)."""
    if type(num_outputs) is int and num_outputs > 0:
        return num_outputs
    if num_outputs is None:  # TF: ValueError (no valid initializer shape)
        raise TypeValueError("num_outputs must be an int >= 0, got None")
    if isinstance(num_outputs, (bool, np.bool_)) or not isinstance(num_outputs, numbers.Real):
        raise TypeError(f"num_outputs must be an int >= 0, got {num_outputs!r}")
    if not isinstance(num_outputs, numbers.Integral):
        if not np.isfinite(num_outputs):
            raise ValueError(f"num_outputs must be an int >= 0, got {num_outputs!r}")
        num_outputs = int(num_outputs)
    if num_outputs < 0:
        raise ValueError(f"num_outputs must be an int >= 0, got {num_outputs}")
    return int(num_outputs)


def _check_callable(value, name):
    if value is not None and not callable(value):
        if name.endswith("regularizer"):  # TF: ValueError "Could not interpret regularizer"
            raise TypeValueError(f"{name} must be a callable or None, got {value!r}")
        raise TypeError(f"{name} must be a callable or None, got {value!r}")


def _check_mapping(value, name):
    if value is not None and not isinstance(value, dict):
        raise TypeError(f"{name} must be a dict or None, got {value!r}")


def _check_collections(value, name):
    """None, a collection name, or an iterable of names (a list, tuple, set or dict:
    TF-Slim iterates it); for variables also a dict per variable."""
    if value is None or isinstance(value, (str, list, tuple, set, frozenset, dict)):
        return
    kinds = "a name, a list of names or a dict" if name == "variables_collections" else \
        "a name or a list of names"
    raise TypeError(f"{name} must be None, {kinds}; got {value!r}")


def _check_param_dict(value, name):
    if value is not None and not isinstance(value, dict):
        raise AttributeTypeError(f"{name} must be a dict or None, got {value!r}")


def _keras_collections(variables_collections, keras_layer):
    """TF's layer adds custom collections after creating every variable (see batch_norm)."""
    return None if keras_layer else variables_collections


def _moving_average_factor(decay, keras_fused):
    """``1 - decay`` as TF computes it: a NumPy scalar in the dtype TF's tensor gets.

    TF turns a Python float into a float32 tensor and keeps a NumPy scalar's
    dtype. TF's fused layer converts ``decay`` first and subtracts in that
    dtype (``float32(1) - float32(0.999)``); every other path subtracts in
    Python/NumPy and converts the difference (``float32(1 - 0.999)``).
    """
    if isinstance(decay, np.floating):
        return decay.dtype.type(1) - decay
    if keras_fused:
        return np.float32(1) - np.float32(decay)
    return np.float32(1.0 - float(decay))


def _batch_norm_training(x, channel_axis, bshape, epsilon, gamma, beta, out_dtype):
    """(outputs, batch mean, biased batch variance) in float64, per channel."""
    axes = tuple(a for a in range(x.ndim) if a != channel_axis)
    y = np.array(x, dtype=np.float64, order="C")  # one working copy, changed in place
    # NaN and Inf propagate as in TF (inf - inf is NaN), without NumPy's warnings
    with np.errstate(invalid="ignore", over="ignore"):
        mean = y.mean(axis=axes) if axes else y.copy()
        y -= mean.reshape(bshape)
        variance = np.mean(np.square(y), axis=axes) if axes else np.zeros_like(mean)
    multiplier = np.float64(1.0) / np.sqrt(variance + epsilon)
    if gamma is not None:
        multiplier = multiplier * gamma._value
    y *= multiplier.reshape(bshape)
    if beta is not None:
        y += beta._value.astype(np.float64).reshape(bshape)
    return y.astype(out_dtype, copy=False), mean, variance


def _check_real(value, name):
    if type(value) is float:  # the common case, without the ABC check (per layer call)
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float, got {value!r}")
    return float(value)


# Weights beyond this many elements get a memory check before they are drawn
# (the random draw is float64, twice the size of float32 weights).
_CHECKED_WEIGHT_ELEMENTS = 1 << 20


_TF_ACTIVATION_OPS = {"relu": "Relu", "relu6": "Relu6", "elu": "Elu", "leaky_relu": "LeakyRelu",
                      "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax"}


def _tf_output_op(activation_fn, default):
    """The name of the TF op whose tensor a slim layer returns (for scope filters)."""
    if activation_fn is None:
        return default
    name = getattr(activation_fn, "__name__", "")
    return _TF_ACTIVATION_OPS.get(name, name if name.isidentifier() else default)


def _fused_activation(activation_fn):
    if activation_fn is relu or activation_fn is _nn.relu:
        return "relu"
    if activation_fn is relu6 or activation_fn is _nn.relu6:
        return "relu6"
    return None


# ---- Fusion at inference (DESIGN.md: epilogues are the fusion point).
# conv2d with normalizer_fn=batch_norm asks batch_norm, through a request
# seen only by the call it makes, for its folded terms instead of a pass over
# the output: batch_norm runs as usual on a zero-strided stand-in of the
# convolution's output (same shape and dtype, no memory), so its variables
# are created or reused with their usual names, collections and initial
# values, then hands back (pre, scale, shift) and computes nothing. It
# declines, before touching the store, whenever the fused result could
# differ from the separate passes (training, its own activation_fn or
# outputs_collections, other dtypes or channel axis); conv2d then takes the
# unfused path.

class _FoldRequest:
    __slots__ = ("probe", "nchw", "terms", "declined", "found")

    def __init__(self, probe, nchw):
        self.probe, self.nchw, self.terms, self.declined = probe, nchw, None, False
        self.found = None  # batch_norm's (variables, is_fused, var_dtype, epsilon) on success


_fold = threading.local()
_ZERO_BYTES = bytes(8)


def _take_fold_request(inputs):
    """The pending request if it is meant for this call (then consumed)."""
    req = getattr(_fold, "request", None)
    if req is None or req.probe is not inputs:
        return None
    _fold.request = None
    return req


def _bn_inference_terms(is_fused, gamma, beta, mean, variance, epsilon, dtype):
    """(pre, scale, shift) of ``y = ((x + pre) * scale + shift)`` in ``dtype``,
    with TF's arithmetic for inference batch norm:

    - fused kernel (FusedBatchNormV3 on CPU, float32 statistics):
      ``(x - mean) * (rsqrt(variance + epsilon) * gamma) + beta``;
    - otherwise ``nn.batch_normalization``: ``inv = rsqrt(variance + epsilon)
      * gamma``, ``x * inv + (beta - mean * inv)``.
    Each intermediate is rounded to the statistics' dtype as TF does.
    """
    t = dtype.type
    var = variance._value.astype(dtype, copy=False)
    inv = t(1) / np.sqrt(var + t(epsilon))
    if gamma is not None:
        inv = inv * gamma._value.astype(dtype, copy=False)
    m = mean._value.astype(dtype, copy=False)
    if is_fused:
        shift = (beta._value.astype(dtype, copy=False) if beta is not None
                 else np.zeros_like(inv))
        return np.ascontiguousarray(-m), np.ascontiguousarray(inv), np.ascontiguousarray(shift)
    shift = beta._value.astype(dtype, copy=False) - m * inv if beta is not None else -m * inv
    return None, np.ascontiguousarray(inv), np.ascontiguousarray(shift)


@add_arg_scope
def convolution2d(inputs: ArrayLike,
                  num_outputs: Optional[int],
                  kernel_size: IntOrPair,
                  stride: IntOrPair = 1,
                  padding: Padding = "SAME",
                  data_format: Optional[str] = None,
                  rate: IntOrPair = 1,
                  activation_fn: Optional[Callable] = relu,
                  normalizer_fn: Optional[Callable] = None,
                  normalizer_params: Optional[dict[str, Any]] = None,
                  weights_initializer: Initializer = xavier_initializer(),  # noqa: B008 - slim's default
                  weights_regularizer: Optional[Regularizer] = None,
                  biases_initializer: Optional[Initializer] = zeros_initializer(),  # noqa: B008
                  biases_regularizer: Optional[Regularizer] = None,
                  reuse: Optional[bool] = None,
                  variables_collections: Collections = None,
                  outputs_collections: Collections = None,
                  trainable: bool = True,
                  scope: Optional[str] = None) -> np.ndarray:
    """A 2-D convolution with its own weights, then an optional normalizer and activation.

    Creates (or reuses) ``<scope>/weights`` of shape ``[kh, kw, in_channels,
    num_outputs]`` and, when ``normalizer_fn`` is None and
    ``biases_initializer`` is not None, ``<scope>/biases`` of shape
    ``[num_outputs]``; computes the cross-correlation (``pyconv.nn.conv2d``)
    plus biases; calls ``normalizer_fn(outputs, **normalizer_params)`` inside
    the layer's scope (so batch norm's variables are ``<scope>/BatchNorm/...``);
    then ``activation_fn``. ``relu`` and ``relu6`` are fused into the C kernel
    when there is no normalizer.

    Variables have the inputs' dtype (float16/32/64; integer and bool inputs
    are a TypeError, as in TF-Slim) and go to ``GLOBAL_VARIABLES`` and
    ``MODEL_VARIABLES``, and
    to ``TRAINABLE_VARIABLES`` when ``trainable``.

    Parameters
    ----------
    inputs : array_like, rank 4
        ``[batch, height, width, channels]`` (``NHWC``) or ``[batch,
        channels, height, width]`` (``NCHW``).
    num_outputs : int
        Number of output channels (filters), > 0.
    kernel_size : int or (int, int)
    stride : int or (int, int), default 1
        Must be 1 when any ``rate`` is > 1.
    padding : str or [(top, bottom), (left, right)], default 'SAME'
        'SAME', 'VALID' or 'FULL' (any case), or explicit pads.
    data_format : None, 'NHWC' or 'NCHW', default None (= 'NHWC')
        Any case (slim itself accepts only upper case).
    rate : int or (int, int), default 1
        Dilation rate (atrous convolution).
    activation_fn : callable or None, default pyconv.relu
        None is linear.
    normalizer_fn : callable, optional
        E.g. :func:`batch_norm`; replaces the biases.
    normalizer_params : dict, optional
        Keyword arguments of ``normalizer_fn``.
    weights_initializer : initializer or array, default xavier_initializer()
    weights_regularizer : callable, optional
        Its loss is added to ``REGULARIZATION_LOSSES`` when the weights are created.
    biases_initializer : initializer, array or None, default zeros_initializer()
        None: no biases.
    biases_regularizer : callable, optional
    reuse : None, True or AUTO_REUSE
        Reuse the layer's variables; requires ``scope``.
    variables_collections : list of str, or dict {'weights': [...], 'biases': [...]}
        Extra collections for the variables.
    outputs_collections : str or list of str, optional
        Collections to add the output to, under the alias ``<scope>``.
    trainable : bool, default True
    scope : str or VariableScope, optional
        Default ``'Conv'``, made unique: ``Conv``, ``Conv_1``, ...

    Returns
    -------
    numpy.ndarray
        The output, in ``data_format``.

    Raises
    ------
    ValueError
        Input rank other than 4 ("Convolution expects input with rank 4,
        got 5"); a bad ``data_format``, ``padding``, ``kernel_size``,
        ``stride`` or ``rate``; stride > 1 together with rate > 1; an
        in-channel count that disagrees with existing weights (both shapes
        shown); ``reuse=True`` without ``scope``; TF's reuse errors naming the
        variable; an output size below 1.
    TypeError
        ``num_outputs`` not an int, or an input dtype pyconv does not compute.

    Every argument is checked before the layer touches the store, so a
    refused call creates no variables (TF-Slim creates them before some of
    its checks fail).

    Examples
    --------
    >>> import numpy as np
    >>> import pyconv as slim
    >>> x = np.ones((1, 5, 5, 3), np.float32)
    >>> with slim.VariableStore(seed=0) as store:
    ...     y = slim.conv2d(x, 8, [3, 3], scope='conv1')
    ...     z = slim.conv2d(x, 8, [3, 3], stride=2, padding='VALID')
    >>> y.shape, z.shape
    ((1, 5, 5, 8), (1, 2, 2, 8))
    >>> sorted(store.keys())
    ['Conv/biases', 'Conv/weights', 'conv1/biases', 'conv1/weights']
    """
    df = _conv_data_format(data_format)
    x = inputs if type(inputs) is np.ndarray else _as_input(inputs)
    if x.ndim != 4:
        raise ValueError(f"Convolution expects input with rank 4, got {x.ndim}")
    dtype = _variable_dtype(x.dtype, "conv2d")
    num_outputs = _check_num_outputs(num_outputs)
    _, (kh, kw) = _square_or_pair(kernel_size, "kernel_size")
    nn_strides, strides = _square_or_pair(stride, "stride")
    nn_rates, rates = _square_or_pair(rate, "rate")
    if (strides[0] > 1 or strides[1] > 1) and (rates[0] > 1 or rates[1] > 1):
        raise ValueError("stride > 1 is not supported in conjunction with rate > 1 (TF: strides "
                         "> 1 not supported in conjunction with dilation_rate > 1); got "
                         f"stride={stride!r}, rate={rate!r}")
    if reuse is not None and reuse is not True:
        reuse = _check_reuse(reuse) or None
    if activation_fn is not None and not callable(activation_fn):
        _check_callable(activation_fn, "activation_fn")
    if normalizer_fn is not None:
        _check_callable(normalizer_fn, "normalizer_fn")
        _check_mapping(normalizer_params, "normalizer_params")
    if weights_regularizer is not None or biases_regularizer is not None:
        _check_callable(weights_regularizer, "weights_regularizer")
        _check_callable(biases_regularizer, "biases_regularizer")
    if variables_collections is not None or outputs_collections is not None:
        _check_collections(variables_collections, "variables_collections")
        _check_collections(outputs_collections, "outputs_collections")
    if df == "NHWC":
        hw, cin = x.shape[1:3], x.shape[3]
    else:
        hw, cin = x.shape[2:4], x.shape[1]
    # Bad padding or an empty output raise here, before any variable exists:
    # a refused call leaves the store as it was.
    try:
        (out_h, out_w), _ = resolve(hw, (kh, kw), strides,
                                    explicit_padding_from_tf(padding, df), rates)
    except ValueError as exc:  # name the layer: in a whole net the shape alone is a riddle
        raise ValueError(f"{_layer_name(scope, 'Conv')}: {exc}") from None
    if kh * kw * cin * num_outputs > _CHECKED_WEIGHT_ELEMENTS:
        n = kh * kw * cin * num_outputs
        _memory.check(f"conv2d with kernel_size {(kh, kw)}, {cin} input channels and "
                      f"num_outputs={num_outputs}",
                      {"weights": n * dtype.itemsize, "their float64 random draw": n * 8})
    store = get_default_store()
    frame = store._push_scope(scope, "Conv", reuse)
    frame.state.model_getter += 1  # slim's model-variable getter (kernel -> weights)
    try:
        sc = frame.scope
        dtype, x = _adopt_variable_dtype(store, sc, "weights", dtype, x)
        weights = _model_variable(store, sc, "weights", (kh, kw, cin, num_outputs), dtype,
                                  weights_initializer, weights_regularizer, trainable,
                                  variables_collections, "weights", "kernel")
        bias = None
        if normalizer_fn is None and biases_initializer is not None:
            bias = _model_variable(store, sc, "biases", (num_outputs,), dtype,
                                   biases_initializer, biases_regularizer, trainable,
                                   variables_collections, "biases", "bias")._pinned()
        fused = _fused_activation(activation_fn) if normalizer_fn is None else None
        terms = None
        if normalizer_fn is batch_norm and x.dtype in (_FLOAT32, _FLOAT64):
            shape = ((x.shape[0], num_outputs, out_h, out_w) if df == "NCHW"
                     else (x.shape[0], out_h, out_w, num_outputs))
            terms = _fold_batch_norm(x.dtype, shape, df == "NCHW", normalizer_params, store,
                                     frame)
        if terms is not None:
            fused = _fused_activation(activation_fn)
        add = _then_add.request  # (_conv2d_then_add) taken when this output is the operator's
        if add is not None and (terms is not None or normalizer_fn is None) and (
                activation_fn is None or fused is not None):
            _then_add.request = None
        else:
            add = None
        if terms is None and add is None:
            outputs = _nn.conv2d(x, weights._pinned(), nn_strides, padding, df, nn_rates,
                                 bias=bias, activation=fused)
        else:
            outputs = _nn._conv2d(x, weights._pinned(), nn_strides, padding, df, nn_rates, bias,
                                  fused, None if terms is None else terms + (None,), add)
        if add is not None:
            outputs, _then_add.result = outputs
        if normalizer_fn is not None and terms is None:
            outputs = normalizer_fn(outputs, **(normalizer_params or {}))
        if activation_fn is not None and fused is None:
            outputs = activation_fn(outputs)
        if outputs_collections:
            op = _tf_output_op(activation_fn, "BiasAdd" if bias is not None else "Conv2D")
            collect_named_outputs(outputs_collections, sc.name, outputs,
                                  f"{frame.state.name_stack}/{op}:0")
        if _fastpath._tl.want is not None:  # remember this call for its repeats
            _fastpath.record_conv2d(inputs, x, store, frame, df, weights, bias, terms, fused,
                                    activation_fn, normalizer_fn, nn_strides, padding,
                                    nn_rates, (kh, kw, cin, num_outputs))
        return outputs
    finally:
        frame.state.model_getter -= 1
        store._pop_scope(frame)


conv2d = convolution2d


class _ThenAdd(threading.local):
    request = None  # (other, activation) for the next convolution's own output
    result = None   # the fused sum it produced


_then_add = _ThenAdd()


def _conv2d_then_add(other, add_activation, *args, **kwargs):
    """``y = conv2d(*args, **kwargs)`` (arg scopes, variables, end points as
    usual) and ``add_activation(other + y)`` (None or 'relu'): the pair. Where
    the convolution's output is its operator's (batch norm folded, the
    activation fused or none), the sum is written by the same pass while each
    tile is in cache (``nn._conv2d``'s ``add``); otherwise it is computed after,
    with the same numbers. ResNet's ``relu(shortcut + conv3)``, with conv3's
    output still its own end point."""
    _then_add.request, _then_add.result = (other, add_activation), None
    try:
        y = conv2d(*args, **kwargs)
        total = _then_add.result
    finally:
        _then_add.request = _then_add.result = None
    if total is None:
        total = _nn.add_relu(other, y) if add_activation == "relu" else np.add(other, y)
    return y, total


# ---- conv2d_transpose (TF-Slim's convolution2d_transpose) ----

__all__ += ["conv2d_transpose", "convolution2d_transpose"]


def _transpose_padding_name(padding):
    if isinstance(padding, str) and padding.upper() in ("SAME", "VALID"):
        return padding.upper()
    raise ValueError(f"padding must be 'SAME' or 'VALID' (any case) for conv2d_transpose "
                     f"(Keras' Conv2DTranspose), got {padding!r}")


@add_arg_scope
def convolution2d_transpose(inputs,
                            num_outputs,
                            kernel_size,
                            stride=1,
                            padding="SAME",
                            data_format="NHWC",
                            activation_fn=relu,
                            normalizer_fn=None,
                            normalizer_params=None,
                            weights_initializer=xavier_initializer(),  # noqa: B008
                            weights_regularizer=None,
                            biases_initializer=zeros_initializer(),  # noqa: B008
                            biases_regularizer=None,
                            reuse=None,
                            variables_collections=None,
                            outputs_collections=None,
                            trainable=True,
                            scope=None):
    """A transposed 2-D convolution ("deconvolution") with its own weights, then an
    optional normalizer and activation, as TF-Slim's ``conv2d_transpose``.

    Creates (or reuses) ``<scope>/weights`` of shape ``[kh, kw, num_outputs,
    in_channels]`` (output channels before input channels, TF's layout for
    transposed convolutions) and, when ``normalizer_fn`` is None and
    ``biases_initializer`` is not None, ``<scope>/biases`` ``[num_outputs]``.
    The output has height ``H * s`` for 'SAME' and ``H * s + max(k - s, 0)``
    for 'VALID' (Keras' ``deconv_output_length``, which slim's layer uses),
    likewise the width; it is :func:`pyconv.nn.conv2d_transpose` of that size,
    plus biases, then ``normalizer_fn(outputs, **normalizer_params)`` inside
    the layer's scope, then ``activation_fn`` (relu and relu6 fused into the
    C kernel when there is no normalizer).

    Parameters
    ----------
    inputs : array_like, rank 4, ``NHWC`` or ``NCHW`` per ``data_format``
    num_outputs : int
        Number of output channels, > 0.
    kernel_size : int or (int, int)
    stride : int or (int, int), default 1
    padding : 'SAME' or 'VALID' (any case), default 'SAME'
    data_format : 'NHWC' (default) or 'NCHW' (any case; slim takes upper case only)
    activation_fn : callable or None, default pyconv.relu
    normalizer_fn, normalizer_params : as :func:`conv2d`
    weights_initializer : initializer or array, default xavier_initializer()
    weights_regularizer, biases_initializer, biases_regularizer : as :func:`conv2d`
    reuse, variables_collections, outputs_collections, trainable : as :func:`conv2d`
    scope : str or VariableScope, optional
        Default ``'Conv2d_transpose'``, made unique (``Conv2d_transpose_1``, ...).

    Returns
    -------
    numpy.ndarray in ``data_format``.

    Raises
    ------
    ValueError
        Input rank other than 4, a bad ``data_format`` ("data_format has to be
        either NCHW or NHWC"), ``padding`` other than SAME/VALID, bad
        ``kernel_size``/``stride``, an in-channel count that disagrees with
        existing weights, TF's reuse errors.
    TypeError
        ``num_outputs`` not an int, or an input dtype pyconv does not compute.

    Examples
    --------
    >>> import numpy as np
    >>> import pyconv as slim
    >>> x = np.ones((1, 4, 4, 8), np.float32)
    >>> with slim.VariableStore(seed=0) as store:
    ...     y = slim.conv2d_transpose(x, 3, [5, 5], stride=2)
    ...     z = slim.conv2d_transpose(x, 3, [5, 5], stride=2, padding='VALID')
    >>> y.shape, z.shape, store['Conv2d_transpose/weights'].shape
    ((1, 8, 8, 3), (1, 11, 11, 3), (5, 5, 3, 8))
    """
    df = _pool_data_format(data_format)
    x = inputs if type(inputs) is np.ndarray else _as_input(inputs)
    if x.ndim != 4:
        raise ValueError(f"Convolution expects input with rank 4, got {x.ndim} "
                         f"(conv2d_transpose of input shape {x.shape})")
    dtype = _variable_dtype(x.dtype)
    num_outputs = _check_num_outputs(num_outputs)
    _, (kh, kw) = _square_or_pair(kernel_size, "kernel_size")
    _, strides = _square_or_pair(stride, "stride")
    pad = _transpose_padding_name(padding)
    if reuse is not None and reuse is not True:
        reuse = _check_reuse(reuse) or None
    if activation_fn is not None and not callable(activation_fn):
        _check_callable(activation_fn, "activation_fn")
    if normalizer_fn is not None:
        _check_callable(normalizer_fn, "normalizer_fn")
        _check_mapping(normalizer_params, "normalizer_params")
    _check_callable(weights_regularizer, "weights_regularizer")
    _check_callable(biases_regularizer, "biases_regularizer")
    _check_collections(variables_collections, "variables_collections")
    _check_collections(outputs_collections, "outputs_collections")
    if df == "NHWC":
        n, (h, w), cin = x.shape[0], x.shape[1:3], x.shape[3]
    else:
        n, (h, w), cin = x.shape[0], x.shape[2:4], x.shape[1]
    out_hw = transpose_output_size((h, w), (kh, kw), strides, pad)
    if cin == 0 or h == 0 or w == 0:
        raise ValueError(f"conv2d_transpose: input shape {x.shape} ({df}) has a zero height, "
                         "width or channel count")
    if kh * kw * cin * num_outputs > _CHECKED_WEIGHT_ELEMENTS:
        m = kh * kw * cin * num_outputs
        _memory.check(f"conv2d_transpose with kernel_size {(kh, kw)}, {cin} input channels and "
                      f"num_outputs={num_outputs}",
                      {"weights": m * dtype.itemsize, "their float64 random draw": m * 8})
    output_shape = (n, num_outputs) + out_hw if df == "NCHW" else (n,) + out_hw + (num_outputs,)
    store = get_default_store()
    frame = store._push_scope(scope, "Conv2d_transpose", reuse)
    try:
        sc = frame.scope
        weights = _model_variable(store, sc, "weights", (kh, kw, num_outputs, cin), dtype,
                                  weights_initializer, weights_regularizer, trainable,
                                  variables_collections, "weights", "kernel")
        bias = None
        if normalizer_fn is None and biases_initializer is not None:
            bias = _model_variable(store, sc, "biases", (num_outputs,), dtype,
                                   biases_initializer, biases_regularizer, trainable,
                                   variables_collections, "biases", "bias")._value
        fused = _fused_activation(activation_fn) if normalizer_fn is None else None
        outputs = _nn.conv2d_transpose(x, weights._value, output_shape, strides, pad, df,
                                       bias=bias, activation=fused)
        if normalizer_fn is not None:
            outputs = normalizer_fn(outputs, **(normalizer_params or {}))
        if activation_fn is not None and fused is None:
            outputs = activation_fn(outputs)
        if outputs_collections:
            collect_named_outputs(outputs_collections, sc.name, outputs)
        return outputs
    finally:
        store._pop_scope(frame)


conv2d_transpose = convolution2d_transpose

# ---- end of conv2d_transpose ----


# ---- The repeated-call fast path of the fold (a net called again with its
# variables reused, as nets_factory's network fn). A layer's folded terms are
# remembered per store under the batch-norm scope's name and everything
# batch_norm would receive (the arg_scope defaults merged with
# normalizer_params, the output's dtype, shape and layout). They are used
# again only when the slow path provably would do nothing else: the scope
# reuses (True/AUTO_REUSE), the scope name comes out the same (not yet
# opened in this call), no scope/reuse/variables_collections/activation/
# outputs_collections argument, training off, the same Variable objects
# still in the store and claimed. The terms are recomputed whenever the
# statistics' bytes differ from the snapshot taken with them, so
# Variable.assign, store.load *and* in-place writes into ``store[name]``
# are all seen (a compare of a few KB, cheaper than recomputing). The
# BatchNorm name scope is still pushed and popped, so name uniquification
# is unchanged.

_FOLD_CACHE_LIMIT = 4096


def _fold_key(store, frame, dtype, shape, nchw, normalizer_params):
    """The cache key of a fold, or None when the fast path may not apply."""
    if not frame.scope.reuse:
        return None
    stack = getattr(_ARG_THREAD, "stack", None) or _ARG_STACK
    scoped = stack[-1].get(batch_norm._key_op)
    merged = dict(scoped) if scoped else {}
    if normalizer_params:
        merged.update(normalizer_params)
    get = merged.get
    if (get("scope") is not None or get("reuse") is not None or get("variables_collections")
            or get("activation_fn") is not None or get("outputs_collections")
            or get("is_training", True) not in (False, None)
            or get("param_initializers") or get("param_regularizers")):
        return None
    name = frame.scope.name + "/BatchNorm" if frame.scope.name else "BatchNorm"
    if frame.state.counts.get(name, 0):
        return None  # the slow path would open BatchNorm_1
    try:
        key = (name, dtype, shape, nchw,
               tuple(sorted((k, type(v), v) for k, v in merged.items())))
        hash(key)
    except TypeError:  # unhashable argument values (lists...): no caching
        return None
    return key


def _fold_cached(store, frame, key, cache):
    """The remembered terms for ``key`` if still valid, else None (no side effects)."""
    entry = cache.get(key)
    if entry is None:
        return None
    variables, names, snapshot, terms, is_fused, var_dtype, epsilon = entry
    vars_ = store._vars
    for var, name in zip(variables, names):
        if var is not None and (vars_.get(name) is not var or not var._claimed):
            return None
    current = b"".join(v._value.tobytes() if v is not None else b"-" for v in variables)
    if current != snapshot:
        gamma, beta, mean, variance = variables
        terms = _bn_inference_terms(is_fused, gamma, beta, mean, variance, epsilon, var_dtype)
        cache[key] = (variables, names, current, terms, is_fused, var_dtype, epsilon)
    # the BatchNorm scope is opened and closed as batch_norm would (name bookkeeping)
    store._pop_scope(store._push_scope(None, "BatchNorm", None))
    return terms


def _fold_batch_norm(dtype, shape, nchw, normalizer_params, store=None, frame=None):
    """batch_norm's folded (pre, scale, shift) for a convolution output of
    this dtype and shape, or None when it declines (see _FoldRequest)."""
    key = cache = None
    if store is not None:
        key = _fold.key = _fold_key(store, frame, dtype, shape, nchw, normalizer_params)
        if key is not None:
            cache = getattr(store, "_fold_cache", None)
            if cache is None:
                cache = store._fold_cache = {}
            terms = _fold_cached(store, frame, key, cache)
            if terms is not None:
                return terms
    # zero strides over 8 read-only zero bytes: no memory, and cheaper than broadcast_to
    probe = np.ndarray(shape, dtype, buffer=_ZERO_BYTES, strides=(0,) * len(shape))
    req = _FoldRequest(probe, nchw)
    _fold.request = req
    try:
        batch_norm(probe, **(normalizer_params or {}))
    finally:
        _fold.request = None
    if req.terms is not None and req.found is not None and cache is not None:
        variables, is_fused, var_dtype, epsilon = req.found
        if len(cache) >= _FOLD_CACHE_LIMIT:
            cache.clear()
        cache[key] = (variables, tuple(v.name if v is not None else None for v in variables),
                      b"".join(v._value.tobytes() if v is not None else b"-"
                               for v in variables),
                      req.terms, is_fused, var_dtype, epsilon)
    return req.terms


@add_arg_scope
def conv2d_same(inputs: ArrayLike, num_outputs: Optional[int], kernel_size: IntOrPair,
                stride: IntOrPair, rate: IntOrPair = 1, scope: Optional[str] = None) -> np.ndarray:
    """ResNet's strided 2-D convolution with 'SAME' padding (``resnet_utils.conv2d_same``).

    For ``stride == 1`` this is ``conv2d(..., stride=1, rate=rate,
    padding='SAME')``. Otherwise the input is zero-padded by ``k_eff - 1``
    in total (``// 2`` before, the rest after; ``k_eff = k + (k - 1) *
    (rate - 1)``), whatever its size, and convolved 'VALID' with that stride
    (the pads go to the kernel as explicit padding: no padded copy is made).

    So ``conv2d_same(x, n, 3, stride=2)`` equals ``conv2d(x, n, 3, stride=1,
    padding='SAME')`` followed by ``subsample(., 2)`` for every input size,
    whereas ``conv2d(x, n, 3, stride=2, padding='SAME')`` differs from both
    when the input size is even (TF's SAME then puts all the padding after).

    Other arguments of ``conv2d`` come from ``arg_scope``. Raises what
    ``conv2d`` raises; in particular ``stride > 1`` with ``rate > 1`` is a
    ``ValueError``, as in slim.

    Parameters
    ----------
    inputs : array_like, rank 4
    num_outputs : int
    kernel_size : int or (int, int)
    stride : int or (int, int)
    rate : int or (int, int), default 1
    scope : str or VariableScope, optional

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> import numpy as np
    >>> import pyconv as slim
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    >>> ones = np.ones((3, 3, 1, 1), np.float32)
    >>> with slim.VariableStore(seed=0):
    ...     with slim.arg_scope([slim.conv2d], weights_initializer=ones):
    ...         y = slim.conv2d_same(x, 1, 3, stride=2)
    >>> y[0, :, :, 0]                  # sums of the 3x3 windows centred on rows/cols 0, 2
    array([[10., 24.],
           [51., 90.]], dtype=float32)
    """
    if (type(stride) is int and stride == 1) or pair(stride, "stride") == (1, 1):
        return conv2d(inputs, num_outputs, kernel_size, stride=1, rate=rate, padding="SAME",
                      scope=scope)
    k = pair(kernel_size, "kernel_size")
    r = pair(rate, "rate")
    pads = (conv2d_same_padding(k[0], r[0]), conv2d_same_padding(k[1], r[1]))
    return conv2d(inputs, num_outputs, kernel_size, stride=stride, rate=rate, padding=pads,
                  scope=scope)


@add_arg_scope
def subsample(inputs: ArrayLike, factor: float, scope: Optional[str] = None) -> np.ndarray:
    """Keep every ``factor``-th row and column (``resnet_utils.subsample``).

    ``factor == 1`` returns ``inputs`` itself (the same object, no copy);
    otherwise ``max_pool2d(inputs, [1, 1], stride=factor, scope=scope)`` (as
    in TF-Slim, also for ``factor=(1, 1)``: only the int 1 is a short cut, so a
    pair still shows in ``max_pool2d``'s ``outputs_collections``).

    Parameters
    ----------
    inputs : array_like, rank 4
    factor : int or (int, int)
    scope : str, optional

    Returns
    -------
    numpy.ndarray or the ``inputs`` object

    Raises
    ------
    ValueError, TypeError
        ``factor`` is not a positive int or pair.
    """
    if type(factor) is int and factor == 1:  # the common case, without the checks below
        return inputs
    pair(factor, "factor")
    if type(factor) is not bool and isinstance(factor, numbers.Integral) and factor == 1:
        return inputs
    return max_pool2d(inputs, [1, 1], stride=factor, scope=scope)


@add_arg_scope
def separable_convolution2d(inputs: ArrayLike,
                            num_outputs: Optional[int],
                            kernel_size: IntOrPair,
                            depth_multiplier: float = 1,
                            stride: IntOrPair = 1,
                            padding: Padding = "SAME",
                            data_format: str = "NHWC",
                            rate: IntOrPair = 1,
                            activation_fn: Optional[Callable] = relu,
                            normalizer_fn: Optional[Callable] = None,
                            normalizer_params: Optional[dict[str, Any]] = None,
                            weights_initializer: Initializer = xavier_initializer(),  # noqa: B008 - slim's
                            pointwise_initializer: Optional[Initializer] = None,
                            weights_regularizer: Optional[Regularizer] = None,
                            biases_initializer: Optional[Initializer] = zeros_initializer(),  # noqa: B008
                            biases_regularizer: Optional[Regularizer] = None,
                            reuse: Optional[bool] = None,
                            variables_collections: Collections = None,
                            outputs_collections: Collections = None,
                            trainable: bool = True,
                            scope: Optional[str] = None) -> np.ndarray:
    """A depthwise-separable 2-D convolution, as ``slim.separable_conv2d``.

    First a depthwise convolution (each input channel with its own
    ``depth_multiplier`` filters) with ``<scope>/depthwise_weights`` of shape
    ``[kh, kw, in_channels, depth_multiplier]``. If ``num_outputs`` is not
    None, then a pointwise (1x1) convolution with
    ``<scope>/pointwise_weights`` of shape ``[1, 1, in_channels *
    depth_multiplier, num_outputs]``; with ``num_outputs=None`` the layer is
    depthwise only (MobileNet's), with ``in_channels * depth_multiplier``
    outputs (channel ``c * depth_multiplier + m`` from filter ``[:, :, c,
    m]``). Then ``<scope>/biases`` (one per output channel) when
    ``normalizer_fn`` is None and ``biases_initializer`` is not None, else
    ``normalizer_fn(outputs, **normalizer_params)`` inside the scope; then
    ``activation_fn``. Biases, ``relu`` and ``relu6`` are fused into the C
    kernels when there is no normalizer.

    Variables have the inputs' dtype and go to ``GLOBAL_VARIABLES``,
    ``MODEL_VARIABLES`` (and ``TRAINABLE_VARIABLES`` when ``trainable``) and
    to ``variables_collections`` ('weights' for both weights, 'biases').
    ``weights_regularizer`` regularizes both weights, each with its own loss,
    as slim (loss names ``<scope>/depthwise_kernel/Regularizer/...`` and
    ``pointwise_kernel`` with ``num_outputs``, ``<scope>/depthwise_weights/...``
    without).

    Parameters
    ----------
    inputs : array_like, rank 4
    num_outputs : int or None
        Pointwise output channels; None for a depthwise-only layer.
    kernel_size : int or (int, int)
    depth_multiplier : int, default 1
        Depthwise output channels per input channel.
    stride : int or (int, int), default 1
        Must be 1 when any ``rate`` is > 1.
    padding : str or [(top, bottom), (left, right)], default 'SAME'
        'SAME', 'VALID' or (pyconv's extension) 'FULL' or explicit pads.
    data_format : 'NHWC' or 'NCHW', default 'NHWC'
        Any case (slim accepts only upper case; None is an error, as slim).
    rate : int or (int, int), default 1
        Dilation rate of the depthwise step.
    activation_fn : callable or None, default pyconv.relu
    normalizer_fn : callable, optional
        Replaces the biases.
    normalizer_params : dict, optional
    weights_initializer : initializer or array, default xavier_initializer()
        For the depthwise weights.
    pointwise_initializer : initializer, array or None
        For the pointwise weights; None means ``weights_initializer``.
    weights_regularizer : callable, optional
    biases_initializer : initializer, array or None, default zeros_initializer()
    biases_regularizer : callable, optional
    reuse : None, True or AUTO_REUSE
    variables_collections : list of str, or dict {'weights': [...], 'biases': [...]}
    outputs_collections : str or list of str, optional
    trainable : bool, default True
    scope : str or VariableScope, optional
        Default ``'SeparableConv2d'``, made unique.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        Input rank other than 4; ``data_format`` not 'NHWC'/'NCHW' ("data_format
        has to be either NCHW or NHWC"); stride > 1 together with rate > 1; bad
        kernel_size, depth_multiplier, padding; existing weights of another
        shape; TF's reuse errors; an output size below 1.
    TypeError
        ``num_outputs`` or ``depth_multiplier`` not an int, or an input dtype
        pyconv does not compute.

    Every argument is checked before the layer touches the store.

    Examples
    --------
    >>> import numpy as np
    >>> import pyconv as slim
    >>> x = np.ones((1, 8, 8, 3), np.float32)
    >>> with slim.VariableStore(seed=0) as store:
    ...     y = slim.separable_conv2d(x, 16, [3, 3], depth_multiplier=2, scope='sep')
    ...     z = slim.separable_conv2d(x, None, 3, stride=2)
    >>> y.shape, z.shape
    ((1, 8, 8, 16), (1, 4, 4, 3))
    >>> [(v.name, v.shape) for v in store.variables()]  # doctest: +NORMALIZE_WHITESPACE
    [('sep/depthwise_weights', (3, 3, 3, 2)), ('sep/pointwise_weights', (1, 1, 6, 16)),
     ('sep/biases', (16,)), ('SeparableConv2d/depthwise_weights', (3, 3, 3, 1)),
     ('SeparableConv2d/biases', (3,))]
    """
    df = _pool_data_format(data_format)
    x = inputs if type(inputs) is np.ndarray else _as_input(inputs)
    if x.ndim != 4:
        raise ValueError(f"Convolution expects input with rank 4, got {x.ndim}")
    dtype = _variable_dtype(x.dtype, "separable_conv2d")
    if num_outputs is not None:
        num_outputs = _check_num_outputs(num_outputs)
    if isinstance(depth_multiplier, (bool, np.bool_)) or not isinstance(
            depth_multiplier, (int, np.integer)):
        raise TypeError(f"depth_multiplier must be a positive int, got {depth_multiplier!r}")
    if depth_multiplier <= 0:
        raise ValueError(f"depth_multiplier must be a positive int, got {depth_multiplier}")
    dm = int(depth_multiplier)
    _, (kh, kw) = _square_or_pair(kernel_size, "kernel_size")
    nn_strides, strides = _square_or_pair(stride, "stride")
    nn_rates, rates = _square_or_pair(rate, "rate")
    if (strides[0] > 1 or strides[1] > 1) and (rates[0] > 1 or rates[1] > 1):
        raise ValueError("stride > 1 is not supported in conjunction with rate > 1 (TF: strides "
                         "> 1 not supported in conjunction with dilation_rate > 1); got "
                         f"stride={stride!r}, rate={rate!r}")
    if reuse is not None and reuse is not True:
        reuse = _check_reuse(reuse) or None
    _check_callable(activation_fn, "activation_fn")
    _check_callable(normalizer_fn, "normalizer_fn")
    _check_mapping(normalizer_params, "normalizer_params")
    _check_callable(weights_regularizer, "weights_regularizer")
    _check_callable(biases_regularizer, "biases_regularizer")
    _check_collections(variables_collections, "variables_collections")
    _check_collections(outputs_collections, "outputs_collections")
    if df == "NHWC":
        hw, cin = x.shape[1:3], x.shape[3]
    else:
        hw, cin = x.shape[2:4], x.shape[1]
    # bad padding or an empty output raise here, before any variable exists
    resolve(hw, (kh, kw), strides, explicit_padding_from_tf(padding, df), rates)
    mid = cin * dm
    n_weights = kh * kw * mid + (mid * num_outputs if num_outputs is not None else 0)
    if n_weights > _CHECKED_WEIGHT_ELEMENTS:
        _memory.check(f"separable_conv2d with kernel_size {(kh, kw)}, {cin} input channels, "
                      f"depth_multiplier={dm} and num_outputs={num_outputs}",
                      {"weights": n_weights * dtype.itemsize,
                       "their float64 random draw": n_weights * 8})
    if pointwise_initializer is None:
        pointwise_initializer = weights_initializer
    store = get_default_store()
    frame = store._push_scope(scope, "SeparableConv2d", reuse)
    try:
        sc = frame.scope
        dtype, x = _adopt_variable_dtype(store, sc, "depthwise_weights", dtype, x)
        # slim's Keras layer names the losses after its own variables
        keras = num_outputs is not None
        depthwise = _model_variable(store, sc, "depthwise_weights", (kh, kw, cin, dm), dtype,
                                    weights_initializer, weights_regularizer, trainable,
                                    variables_collections, "weights",
                                    "depthwise_kernel" if keras else None)
        pointwise = None
        if keras:
            pointwise = _model_variable(store, sc, "pointwise_weights",
                                        (1, 1, mid, num_outputs), dtype, pointwise_initializer,
                                        weights_regularizer, trainable, variables_collections,
                                        "weights", "pointwise_kernel")
        bias = None
        if normalizer_fn is None and biases_initializer is not None:
            bias = _model_variable(store, sc, "biases",
                                   (num_outputs if keras else mid,), dtype, biases_initializer,
                                   biases_regularizer, trainable, variables_collections,
                                   "biases", "bias" if keras else None)._pinned()
        fused = _fused_activation(activation_fn) if normalizer_fn is None else None
        if keras:
            outputs = _nn.separable_conv2d(x, depthwise._pinned(), pointwise._pinned(),
                                           nn_strides, padding, df, nn_rates, bias=bias,
                                           activation=fused)
        else:
            outputs = _nn.depthwise_conv2d(x, depthwise._pinned(), nn_strides, padding, df,
                                           nn_rates, bias=bias, activation=fused)
        if normalizer_fn is not None:
            outputs = normalizer_fn(outputs, **(normalizer_params or {}))
        if activation_fn is not None and fused is None:
            outputs = activation_fn(outputs)
        if outputs_collections:
            collect_named_outputs(outputs_collections, sc.name, outputs)
        return outputs
    finally:
        store._pop_scope(frame)


separable_conv2d = separable_convolution2d


def _pool(kind, default_name, inputs, kernel_size, stride, padding, data_format,
          outputs_collections, scope):
    df = _pool_data_format(data_format)
    k = pair(kernel_size, "kernel_size")
    s = pair(stride, "stride")
    if scope is not None and not isinstance(scope, str):
        raise TypeError(f"scope of a pooling layer must be a string or None, got {scope!r}")
    _check_collections(outputs_collections, "outputs_collections")
    store = get_default_store()
    frame, sc = store._push_name_scope(scope, default_name)
    try:
        op = _nn.max_pool2d if kind == "max" else _nn.avg_pool2d
        try:
            outputs = op(inputs, k, s, padding, df)
        except ValueError as exc:
            raise ValueError(f"{sc}: {exc}") from None
        tf_op = "MaxPool" if kind == "max" else "AvgPool"
        return collect_named_outputs(outputs_collections, sc, outputs, f"{sc}/{tf_op}:0")
    finally:
        store._pop_name_scope(frame)


@add_arg_scope
def max_pool2d(inputs: ArrayLike, kernel_size: IntOrPair, stride: IntOrPair = 2,
               padding: Padding = "VALID", data_format: str = "NHWC",
               outputs_collections: Collections = None, scope: Optional[str] = None) -> np.ndarray:
    """2-D max pooling, as ``slim.max_pool2d`` (the padding never wins the max).

    Parameters
    ----------
    inputs : array_like, rank 4
    kernel_size : int or (int, int)
    stride : int or (int, int), default 2
    padding : str or [(top, bottom), (left, right)], default 'VALID'
        'SAME', 'VALID', 'FULL' (any case) or explicit pads smaller than the window.
    data_format : 'NHWC' or 'NCHW', default 'NHWC'
    outputs_collections : str or list of str, optional
        The output is added under the alias of its name scope
        (``MaxPool2D``, ``MaxPool2D_1``, ... or ``scope``).
    scope : str, optional

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        ``data_format`` is neither 'NHWC' nor 'NCHW'; bad kernel, stride or
        padding; rank other than 4.

    Examples
    --------
    >>> import numpy as np
    >>> max_pool2d(np.arange(16.0).reshape(1, 4, 4, 1), 2)[0, :, :, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """
    return _pool("max", "MaxPool2D", inputs, kernel_size, stride, padding, data_format,
                 outputs_collections, scope)


@add_arg_scope
def avg_pool2d(inputs: ArrayLike, kernel_size: IntOrPair, stride: IntOrPair = 2,
               padding: Padding = "VALID", data_format: str = "NHWC",
               outputs_collections: Collections = None, scope: Optional[str] = None) -> np.ndarray:
    """2-D average pooling, as ``slim.avg_pool2d``.

    With 'SAME' (or any) padding, padded positions are left out of each
    window's count, as TF. Arguments, return value and errors as
    :func:`max_pool2d`; the default alias is ``AvgPool2D``.

    Examples
    --------
    >>> import numpy as np
    >>> avg_pool2d(np.arange(16.0).reshape(1, 4, 4, 1), 2)[0, :, :, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    return _pool("avg", "AvgPool2D", inputs, kernel_size, stride, padding, data_format,
                 outputs_collections, scope)


@add_arg_scope
def batch_norm(inputs: ArrayLike,
               decay: float = 0.999,
               center: bool = True,
               scale: Any = False,
               epsilon: float = 0.001,
               activation_fn: Optional[Callable] = None,
               param_initializers: Optional[dict[str, Initializer]] = None,
               param_regularizers: Optional[dict[str, Regularizer]] = None,
               is_training: bool = True,
               reuse: Optional[bool] = None,
               variables_collections: Collections = None,
               outputs_collections: Collections = None,
               trainable: bool = True,
               data_format: str = "NHWC",
               scope: Optional[str] = None,
               *,
               updates_collections: Any = "update_ops",
               fused: Optional[bool] = None,
               zero_debias_moving_mean: bool = False) -> np.ndarray:
    """Batch normalisation (Ioffe & Szegedy, 2015), as ``slim.batch_norm``.

    ``y = (x - mean) / sqrt(variance + epsilon) * gamma + beta`` per channel,
    with the batch's moments over every axis but the channel axis when
    ``is_training``, else with the moving statistics.

    Variables (in ``<scope>/``, default scope ``BatchNorm``): ``gamma``
    (when ``scale``), ``beta`` (when ``center``), ``moving_mean`` and
    ``moving_variance``. All are in ``GLOBAL_VARIABLES`` and
    ``MODEL_VARIABLES``; ``gamma`` and ``beta`` also in ``TRAINABLE_VARIABLES``
    when ``trainable``; the moving statistics never are. Their dtype is the
    input's, except float32 for float16 (and integer) inputs, as TF.

    With ``is_training=True`` the output uses the batch's moments and, as in
    TF-Slim, the moving statistics are *not* changed by the call: with the
    default ``updates_collections=GraphKeys.UPDATE_OPS`` two updates
    (:class:`pyconv.AssignMovingAverage`, callables) are queued in that
    collection and applied by :func:`pyconv.run_update_ops` (TF:
    ``sess.run(tf.get_collection(UPDATE_OPS))``), each ``moving -= (moving -
    batch_value) * (1 - decay)``; ``updates_collections=None`` applies them in
    place during the call; another name (or list of names) queues them there.
    ``1 - decay`` is rounded as TF rounds it: a Python float ``decay`` gives a
    float32 ``1 - decay`` (on TF's fused layer path ``float32(1) -
    float32(decay)``), a NumPy scalar keeps its dtype (``np.float64(0.9)``
    keeps float64 precision). On TF's layer path (the default
    ``updates_collections``) a layer with ``trainable=False`` queues no
    updates at all, as TF's layer has none. As in TF, the variance that goes
    into ``moving_variance`` is the unbiased batch variance (times ``m / (m -
    1)``, ``m`` values per channel) on slim's fused paths and the biased one
    otherwise. slim 1.1 picks the path so: with ``fused`` None or True, rank
    2 (and rank 4 when ``updates_collections`` is not
    ``GraphKeys.UPDATE_OPS``) goes to slim's own fused op; else, with the
    default ``updates_collections``, TF's layer fuses float16/float32 of rank
    4 or 5; anything else takes slim's legacy ops, whose variables keep the
    input's dtype (float16 too) and which ignore ``param_regularizers`` (as
    TF). ``epsilon`` is used as given (TF's CPU fused kernel does not raise it
    to cuDNN's 1.001e-5). The normalisation itself always uses the biased
    batch variance, computed in float64 (TF's float32 arithmetic is less
    accurate on inputs with a large mean; see the README's deliberate
    differences). ``is_training=None`` is inference, as TF's layer.

    Parameters
    ----------
    inputs : array_like, rank >= 1
        Channels last (``NHWC``) or second (``NCHW``, rank >= 2). Rank 1:
        every element is a channel of its own (no reduction), as TF.
    decay : float, default 0.999
        Moving-average decay.
    center : bool, default True
        Add ``beta``.
    scale : bool, default False
        Multiply by ``gamma``.
    epsilon : float, default 0.001
    activation_fn : callable, optional
    param_initializers : dict, optional
        Initializers (or arrays) for 'beta', 'gamma', 'moving_mean',
        'moving_variance' (defaults: zeros, ones, zeros, ones).
    param_regularizers : dict, optional
        Regularizers for 'beta' and 'gamma'.
    is_training : bool, default True
    reuse : None, True or AUTO_REUSE
        Requires ``scope``.
    variables_collections : list, or dict keyed by variable name, optional
    outputs_collections : str or list of str, optional
    trainable : bool, default True
    data_format : 'NHWC' or 'NCHW', default 'NHWC'
    scope : str or VariableScope, optional
    updates_collections : str, list of str or None, default GraphKeys.UPDATE_OPS
        Where the moving-average updates are queued (see above); None
        applies them during the call. The value also picks slim's code path
        (fused or not, variable dtype for float16), see above.
    fused : None, True or False
        Chooses TF's fused (None, True) or non-fused arithmetic for the
        moving variance, see above.
    zero_debias_moving_mean : bool, default False
        Only False is supported.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``inputs``.

    Raises
    ------
    ValueError
        ``data_format`` is neither 'NHWC' nor 'NCHW'; rank 0 (or rank 1 with
        'NCHW'); ``zero_debias_moving_mean=True``; reuse errors naming the
        variable.
    TypeError
        Integer or bool inputs (TF-Slim cannot make their variables); a
        ``param_initializers``/``param_regularizers`` that is not a dict
        (also an ``AttributeError``, TF's type).

    Examples
    --------
    >>> import numpy as np
    >>> import pyconv as slim
    >>> x = np.array([[1.0], [3.0]])            # two examples, one channel
    >>> with slim.VariableStore(seed=0) as store:
    ...     y = slim.batch_norm(x, decay=0.9, epsilon=0.0, scope='bn')
    ...     queued = float(store['bn/moving_mean'][0])   # not updated yet
    ...     n = slim.run_update_ops()                    # as sess.run(UPDATE_OPS)
    >>> y[:, 0]                                   # (x - 2) / 1
    array([-1.,  1.])
    >>> queued, n, round(float(store['bn/moving_mean'][0]), 6)   # 0 - (0 - 2) * (1 - 0.9)
    (0.0, 2, 0.2)
    """
    if isinstance(data_format, str) and data_format.upper() in ("NHWC", "NCHW"):
        nchw = data_format.upper() == "NCHW"
    else:
        raise ValueError(f"data_format has to be either NCHW or NHWC, got {data_format!r}")
    if zero_debias_moving_mean:
        raise ValueError("zero_debias_moving_mean=True is not supported by pyconv.batch_norm")
    raw_decay = decay
    decay = _check_real(decay, "decay")
    epsilon = _check_real(epsilon, "epsilon")
    _check_callable(activation_fn, "activation_fn")
    _check_param_dict(param_initializers, "param_initializers")
    _check_param_dict(param_regularizers, "param_regularizers")
    _check_collections(variables_collections, "variables_collections")
    _check_collections(outputs_collections, "outputs_collections")
    if updates_collections is not None:
        _check_collections(updates_collections, "updates_collections")
    x = _as_input(inputs)
    if x.ndim < 1 or (nchw and x.ndim < 2):
        raise ValueError(f"batch_norm expects inputs with rank >= {2 if nchw else 1} "
                         f"({'NCHW' if nchw else 'NHWC'}), got rank {x.ndim}")
    var_dtype = _variable_dtype(x.dtype, "batch_norm")
    # Training: a float64 working copy, its squares, and the output.
    copies = 3 if is_training else 2
    _memory.check(f"batch_norm on inputs of shape {x.shape}",
                  {"float64 working copies": copies * x.size * 8})
    # slim 1.1's three code paths (see the docstring)
    fusable = fused is None or bool(fused)
    default_updates = updates_collections == GraphKeys.UPDATE_OPS
    own_fused = fusable and (x.ndim == 2 or (x.ndim == 4 and not default_updates))
    legacy = not own_fused and not default_updates
    keras_layer = not own_fused and not legacy
    if var_dtype == _FLOAT16 and not legacy:
        var_dtype = _FLOAT32  # TF keeps batch-norm parameters of float16 layers in float32
    out_dtype = x.dtype.newbyteorder("=")
    keras_fused = keras_layer and fusable and x.ndim in (4, 5) and var_dtype == _FLOAT32
    is_fused = var_dtype == _FLOAT32 and (own_fused or keras_fused)
    channel_axis = 1 if nchw else x.ndim - 1
    channels = x.shape[channel_axis]
    if reuse is not None and reuse is not True:
        reuse = _check_reuse(reuse) or None
    inits = param_initializers or {}
    regs = param_regularizers or {}
    if legacy:
        regs = {}  # slim's legacy ops never pass param_regularizers on (TF ignores them there)
    shape = (channels,)

    fold = _take_fold_request(inputs)
    if fold is not None and (is_training or activation_fn is not None or outputs_collections
                             or nchw != fold.nchw or var_dtype != x.dtype):
        fold.declined = True
        return None  # nothing touched: conv2d runs the separate passes instead
    store = get_default_store()
    frame = store._push_scope(scope, "BatchNorm", reuse)
    getter = 1 if keras_layer else 0  # TF's layer path opens the scope with slim's getter
    frame.state.model_getter += getter
    try:
        sc = frame.scope
        params = {}
        # TF's layer creates gamma before beta; slim's own fused op and legacy ops beta first
        order = ("beta", "gamma") if own_fused or legacy else ("gamma", "beta")
        for name in order:
            if center if name == "beta" else scale:
                params[name] = _model_variable(
                    store, sc, name, shape, var_dtype,
                    inits.get(name, zeros_initializer() if name == "beta" else ones_initializer()),
                    regs.get(name), trainable, _keras_collections(variables_collections,
                                                                  keras_layer), name,
                    name if keras_layer else None)  # TF's layer: loss in its name scope
        gamma, beta = params.get("gamma"), params.get("beta")
        moving_mean = _model_variable(store, sc, "moving_mean", shape, var_dtype,
                                      inits.get("moving_mean", zeros_initializer()), None,
                                      False, _keras_collections(variables_collections,
                                                                keras_layer), "moving_mean")
        moving_variance = _model_variable(store, sc, "moving_variance", shape, var_dtype,
                                          inits.get("moving_variance", ones_initializer()),
                                          None, False, _keras_collections(variables_collections,
                                                                          keras_layer),
                                          "moving_variance")
        if keras_layer and variables_collections:
            # TF's layer adds its variables to custom collections after creating them all,
            # moving statistics first
            for var, key in ((moving_mean, "moving_mean"), (moving_variance, "moving_variance"),
                             (beta, "beta"), (gamma, "gamma")):
                if var is not None:
                    _add_to_variables_collections(store, var, variables_collections, key)

        bshape = [1] * x.ndim
        bshape[channel_axis] = channels
        act = None  # relu/relu6 fused into the inference pass
        if is_training:
            outputs, mean, variance = _batch_norm_training(x, channel_axis, bshape, epsilon,
                                                           gamma, beta, out_dtype)
            count = x.size // channels if channels else 0
            update_variance = variance
            if is_fused and count > 1:
                update_variance = variance * (count / (count - 1))
            # TF's layer skips the updates of a non-trainable layer (its `updates` are empty)
            if not (keras_layer and not trainable):
                factor = float(var_dtype.type(_moving_average_factor(raw_decay, keras_fused)))
                updates = [AssignMovingAverage(f"{frame.state.name_stack}/AssignMovingAvg{suffix}"
                                               "/AssignSubVariableOp", var, value, factor)
                           for var, value, suffix in ((moving_mean, mean, ""),
                                                      (moving_variance, update_variance, "_1"))]
                if updates_collections is None:
                    for update in updates:
                        update()
                else:
                    for update in updates:
                        store.add_to_collections(updates_collections, update)
        else:
            # TF's arithmetic in the statistics' dtype (float32 for float16 and
            # integer inputs on the fused and Keras paths); one C pass
            pre, mult, shift = _bn_inference_terms(is_fused, gamma, beta, moving_mean,
                                                   moving_variance, epsilon, var_dtype)
            if fold is not None:
                fold.terms = (pre, mult, shift)
                fold.found = ((gamma, beta, moving_mean, moving_variance), is_fused, var_dtype,
                              epsilon)
                return inputs
            if var_dtype == _FLOAT16:  # slim's legacy ops on float16 variables: float16 math
                y = x.astype(_FLOAT16) * mult.reshape(bshape) + shift.reshape(bshape)
                outputs = np.ascontiguousarray(y, dtype=out_dtype)
            else:
                work = x.astype(var_dtype, copy=False)
                # relu/relu6 join the pass (same bits as a second pass over the output)
                act = _fused_activation(activation_fn) if out_dtype == var_dtype else None
                outputs = _nn._eltwise(work, channel_axis, pre, mult, shift, activation=act)
                outputs = outputs.astype(out_dtype, copy=False)
        if activation_fn is not None and act is None:
            outputs = activation_fn(outputs)
        if outputs_collections:
            op = _tf_output_op(activation_fn, "FusedBatchNormV3" if is_fused else
                               "batchnorm/add_1")
            collect_named_outputs(outputs_collections, sc.name, outputs,
                                  f"{frame.state.name_stack}/{op}:0")
        return outputs
    finally:
        frame.state.model_getter -= getter
        store._pop_scope(frame)

_fastpath._install()  # the repeated-call fast paths (pyconv/_fastpath.py)
