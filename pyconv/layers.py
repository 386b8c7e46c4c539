"""TF-Slim's conv2d family for NumPy arrays: ``conv2d``, ``conv2d_same``,
``subsample``, ``max_pool2d``, ``avg_pool2d`` and ``batch_norm``.

Each layer has slim's argument names, order and defaults, is decorated with
:func:`pyconv.add_arg_scope`, takes anything ``np.asarray`` accepts and
returns a new ndarray. Variables live in the default
:class:`pyconv.VariableStore` under slim's names (``Conv/weights``,
``Conv/BatchNorm/beta``, ...). The arithmetic is ``pyconv.nn``'s.
"""

import numbers

import numpy as np

from . import _memory
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
from .variables import (
    GraphKeys,
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


def _variable_dtype(dtype):
    """The dtype of a layer's variables for inputs of ``dtype`` (as the compute rules)."""
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):  # any byte order
        return dtype.newbyteorder("=")
    if dtype.kind in "biu":
        return _FLOAT32
    raise TypeError(f"inputs have dtype {dtype}; pyconv computes float16, float32, float64 "
                    "(integer and bool arrays are computed as float32)")


def _conv_data_format(data_format):
    if data_format is None:
        return "NHWC"
    if isinstance(data_format, str):
        upper = data_format.upper()
        if upper == "NHWC" or upper == "NCHW":
            return upper
    raise ValueError(f"Invalid data_format: {data_format!r}; conv2d takes None, 'NHWC' or 'NCHW'")


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
    if type(num_outputs) is int and num_outputs > 0:
        return num_outputs
    if isinstance(num_outputs, (bool, np.bool_)) or not isinstance(num_outputs,
                                                                   (int, np.integer)):
        raise TypeError(f"num_outputs must be a positive int, got {num_outputs!r}")
    if num_outputs <= 0:
        raise ValueError(f"num_outputs must be a positive int, got {num_outputs}")
    return int(num_outputs)


def _check_callable(value, name):
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a callable or None, got {value!r}")


def _check_mapping(value, name):
    if value is not None and not isinstance(value, dict):
        raise TypeError(f"{name} must be a dict or None, got {value!r}")


def _check_collections(value, name):
    """None, a collection name, a list/tuple of names (or, for variables, a dict)."""
    if value is None or isinstance(value, (str, list, tuple)):
        return
    if name == "variables_collections" and isinstance(value, dict):
        return
    kinds = "a name, a list of names or a dict" if name == "variables_collections" else \
        "a name or a list of names"
    raise TypeError(f"{name} must be None, {kinds}; got {value!r}")


def _check_real(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float, got {value!r}")
    return float(value)


# Weights beyond this many elements get a memory check before they are drawn
# (the random draw is float64, twice the size of float32 weights).
_CHECKED_WEIGHT_ELEMENTS = 1 << 20


def _fused_activation(activation_fn):
    if activation_fn is relu or activation_fn is _nn.relu:
        return "relu"
    if activation_fn is relu6 or activation_fn is _nn.relu6:
        return "relu6"
    return None


@add_arg_scope
def convolution2d(inputs,
                  num_outputs,
                  kernel_size,
                  stride=1,
                  padding="SAME",
                  data_format=None,
                  rate=1,
                  activation_fn=relu,
                  normalizer_fn=None,
                  normalizer_params=None,
                  weights_initializer=xavier_initializer(),  # noqa: B008 - slim's default
                  weights_regularizer=None,
                  biases_initializer=zeros_initializer(),  # noqa: B008
                  biases_regularizer=None,
                  reuse=None,
                  variables_collections=None,
                  outputs_collections=None,
                  trainable=True,
                  scope=None):
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
    give float32) and go to ``GLOBAL_VARIABLES`` and ``MODEL_VARIABLES``, and
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
    dtype = _variable_dtype(x.dtype)
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
    resolve(hw, (kh, kw), strides, explicit_padding_from_tf(padding, df), rates)
    if kh * kw * cin * num_outputs > _CHECKED_WEIGHT_ELEMENTS:
        n = kh * kw * cin * num_outputs
        _memory.check(f"conv2d with kernel_size {(kh, kw)}, {cin} input channels and "
                      f"num_outputs={num_outputs}",
                      {"weights": n * dtype.itemsize, "their float64 random draw": n * 8})
    store = get_default_store()
    frame = store._push_scope(scope, "Conv", reuse)
    try:
        sc = frame.scope
        weights = _model_variable(store, sc, "weights", (kh, kw, cin, num_outputs), dtype,
                                  weights_initializer, weights_regularizer, trainable,
                                  variables_collections, "weights", "kernel")
        bias = None
        if normalizer_fn is None and biases_initializer is not None:
            bias = _model_variable(store, sc, "biases", (num_outputs,), dtype,
                                   biases_initializer, biases_regularizer, trainable,
                                   variables_collections, "biases", "bias")._value
        fused = _fused_activation(activation_fn) if normalizer_fn is None else None
        outputs = _nn.conv2d(x, weights._value, nn_strides, padding, df, nn_rates, bias=bias,
                             activation=fused)
        if normalizer_fn is not None:
            outputs = normalizer_fn(outputs, **(normalizer_params or {}))
        if activation_fn is not None and fused is None:
            outputs = activation_fn(outputs)
        if outputs_collections:
            collect_named_outputs(outputs_collections, sc.name, outputs)
        return outputs
    finally:
        store._pop_scope(frame)


conv2d = convolution2d


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


@add_arg_scope
def conv2d_same(inputs, num_outputs, kernel_size, stride, rate=1, scope=None):
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
    strides = pair(stride, "stride")
    if strides == (1, 1):
        return conv2d(inputs, num_outputs, kernel_size, stride=1, rate=rate, padding="SAME",
                      scope=scope)
    k = pair(kernel_size, "kernel_size")
    r = pair(rate, "rate")
    pads = (conv2d_same_padding(k[0], r[0]), conv2d_same_padding(k[1], r[1]))
    return conv2d(inputs, num_outputs, kernel_size, stride=stride, rate=rate, padding=pads,
                  scope=scope)


@add_arg_scope
def subsample(inputs, factor, scope=None):
    """Keep every ``factor``-th row and column (``resnet_utils.subsample``).

    ``factor == 1`` returns ``inputs`` itself (the same object, no copy);
    otherwise ``max_pool2d(inputs, [1, 1], stride=factor, scope=scope)``.

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
    if pair(factor, "factor") == (1, 1):
        return inputs
    return max_pool2d(inputs, [1, 1], stride=factor, scope=scope)


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
        outputs = op(inputs, k, s, padding, df)
        return collect_named_outputs(outputs_collections, sc, outputs)
    finally:
        store._pop_name_scope(frame)


@add_arg_scope
def max_pool2d(inputs, kernel_size, stride=2, padding="VALID", data_format="NHWC",
               outputs_collections=None, scope=None):
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
def avg_pool2d(inputs, kernel_size, stride=2, padding="VALID", data_format="NHWC",
               outputs_collections=None, scope=None):
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
def batch_norm(inputs,
               decay=0.999,
               center=True,
               scale=False,
               epsilon=0.001,
               activation_fn=None,
               param_initializers=None,
               param_regularizers=None,
               is_training=True,
               reuse=None,
               variables_collections=None,
               outputs_collections=None,
               trainable=True,
               data_format="NHWC",
               scope=None,
               *,
               updates_collections="update_ops",
               fused=None,
               zero_debias_moving_mean=False):
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

    With ``is_training=True`` the moving statistics are updated in the store
    right away, as slim's update ops would when run (pyconv has no deferred
    ops): ``moving -= (moving - batch_value) * (1 - decay)``. As in TF, the
    variance that goes into ``moving_variance`` is the unbiased batch variance
    (times ``m / (m - 1)``, ``m`` values per channel) on slim's fused paths
    and the biased one otherwise. slim 1.1 picks the path so: with ``fused``
    None or True, rank 2 (and rank 4 when ``updates_collections`` is not
    ``GraphKeys.UPDATE_OPS``) goes to slim's own fused op; else, with the
    default ``updates_collections``, TF's layer fuses float16/float32 of rank
    4 or 5; anything else takes slim's legacy ops, whose variables keep the
    input's dtype (float16 too). ``epsilon`` is used as given (TF's CPU fused
    kernel does not raise it to cuDNN's 1.001e-5). The normalisation itself
    always uses the biased batch variance.

    Parameters
    ----------
    inputs : array_like, rank >= 2
        Channels last (``NHWC``) or second (``NCHW``).
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
    updates_collections : optional
        The update is always applied at once; the value only picks slim's
        code path (fused or not, variable dtype for float16), see above.
    fused : None, True or False
        Chooses TF's fused (None, True) or non-fused arithmetic for the
        moving variance, see above.
    zero_debias_moving_mean : bool, default False
        Only False is supported.

    Returns
    -------
    numpy.ndarray
        Same shape as ``inputs``; float16 stays float16, integers give float32.

    Raises
    ------
    ValueError
        ``data_format`` is neither 'NHWC' nor 'NCHW'; rank below 2;
        ``zero_debias_moving_mean=True``; reuse errors naming the variable.

    Examples
    --------
    >>> import numpy as np
    >>> import pyconv as slim
    >>> x = np.array([[1.0], [3.0]])            # two examples, one channel
    >>> with slim.VariableStore(seed=0) as store:
    ...     y = slim.batch_norm(x, decay=0.9, epsilon=0.0, scope='bn')
    >>> y[:, 0]                                   # (x - 2) / 1
    array([-1.,  1.])
    >>> round(float(store['bn/moving_mean'][0]), 6)   # 0 - (0 - 2) * (1 - 0.9)
    0.2
    """
    if isinstance(data_format, str) and data_format.upper() in ("NHWC", "NCHW"):
        nchw = data_format.upper() == "NCHW"
    else:
        raise ValueError(f"data_format has to be either NCHW or NHWC, got {data_format!r}")
    if zero_debias_moving_mean:
        raise ValueError("zero_debias_moving_mean=True is not supported by pyconv.batch_norm")
    decay = _check_real(decay, "decay")
    epsilon = _check_real(epsilon, "epsilon")
    _check_callable(activation_fn, "activation_fn")
    _check_mapping(param_initializers, "param_initializers")
    _check_mapping(param_regularizers, "param_regularizers")
    _check_collections(variables_collections, "variables_collections")
    _check_collections(outputs_collections, "outputs_collections")
    x = _as_input(inputs)
    if x.ndim < 2:
        raise ValueError(f"batch_norm expects inputs with rank >= 2, got {x.ndim}")
    var_dtype = _variable_dtype(x.dtype)
    # Training: a float64 working copy, its squares, and the output.
    copies = 3 if is_training else 2
    _memory.check(f"batch_norm on inputs of shape {x.shape}",
                  {"float64 working copies": copies * x.size * 8})
    # slim 1.1's three code paths (see the docstring)
    fusable = fused is None or bool(fused)
    default_updates = updates_collections == GraphKeys.UPDATE_OPS
    own_fused = fusable and (x.ndim == 2 or (x.ndim == 4 and not default_updates))
    legacy = not own_fused and not default_updates
    if var_dtype == _FLOAT16 and not legacy:
        var_dtype = _FLOAT32  # TF keeps batch-norm parameters of float16 layers in float32
    out_dtype = var_dtype if x.dtype.kind != "f" else x.dtype.newbyteorder("=")
    is_fused = var_dtype == _FLOAT32 and (own_fused or (
        default_updates and fusable and x.ndim in (4, 5)))
    channel_axis = 1 if nchw else x.ndim - 1
    channels = x.shape[channel_axis]
    if reuse is not None and reuse is not True:
        reuse = _check_reuse(reuse) or None
    inits = param_initializers or {}
    regs = param_regularizers or {}
    shape = (channels,)

    store = get_default_store()
    frame = store._push_scope(scope, "BatchNorm", reuse)
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
                    regs.get(name), trainable, variables_collections, name)
        gamma, beta = params.get("gamma"), params.get("beta")
        moving_mean = _model_variable(store, sc, "moving_mean", shape, var_dtype,
                                      inits.get("moving_mean", zeros_initializer()), None,
                                      False, variables_collections, "moving_mean")
        moving_variance = _model_variable(store, sc, "moving_variance", shape, var_dtype,
                                          inits.get("moving_variance", ones_initializer()),
                                          None, False, variables_collections, "moving_variance")

        bshape = [1] * x.ndim
        bshape[channel_axis] = channels
        if is_training:
            axes = tuple(a for a in range(x.ndim) if a != channel_axis)
            y = np.array(x, dtype=np.float64, order="C")  # one working copy, changed in place
            mean = y.mean(axis=axes)
            y -= mean.reshape(bshape)
            variance = np.mean(np.square(y), axis=axes)
            multiplier = np.float64(1.0) / np.sqrt(variance + epsilon)
            if gamma is not None:
                multiplier = multiplier * gamma._value
            y *= multiplier.reshape(bshape)
            if beta is not None:
                y += beta._value.astype(np.float64).reshape(bshape)
            outputs = y.astype(out_dtype, copy=False)
            count = x.size // channels if channels else 0
            update_variance = variance
            if is_fused and count > 1:
                update_variance = variance * (count / (count - 1))
            keep = float(np.float32(1.0 - decay))  # TF makes (1 - decay) a float32 scalar
            for var, batch_value in ((moving_mean, mean), (moving_variance, update_variance)):
                old = var._value.astype(np.float64)
                var.assign(old - (old - batch_value) * keep)
        else:
            work = _FLOAT64 if x.dtype.kind == "f" and x.dtype.itemsize == 8 else _FLOAT32
            multiplier = (1.0 / np.sqrt(moving_variance._value.astype(np.float64) + epsilon))
            if gamma is not None:
                multiplier = multiplier * gamma._value
            y = np.array(x, dtype=work, order="C")  # a new C-contiguous array, changed in place
            y -= moving_mean._value.astype(work).reshape(bshape)
            y *= multiplier.astype(work).reshape(bshape)
            if beta is not None:
                y += beta._value.astype(work).reshape(bshape)
            outputs = y.astype(out_dtype, copy=False)
        if activation_fn is not None:
            outputs = activation_fn(outputs)
        if outputs_collections:
            collect_named_outputs(outputs_collections, sc.name, outputs)
        return outputs
    finally:
        store._pop_scope(frame)
