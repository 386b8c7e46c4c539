"""TF-Slim's layers that are not convolutions: ``fully_connected``, ``dropout``,
``flatten``, ``repeat``, ``stack``, ``softmax``, ``one_hot_encoding``,
``bias_add`` and ``layer_norm`` (``tf_slim.layers.layers`` 1.1).

Each has slim's argument names, order and defaults, slim's default scope
name (``fully_connected``, ``Dropout``, ``Flatten``, ``softmax``,
``OneHotEncoding``, ``BiasAdd``, ``LayerNorm``; ``repeat``/``stack`` open
``Repeat``/``Stack``) and is decorated with :func:`pyconv.add_arg_scope`
where slim's is (``repeat`` and ``stack`` are not, in slim 1.1 either).
``fully_connected``'s matrix product runs in the C igemm operator (a 1x1
convolution over the rows seen as pixels), with the bias and a ReLU/ReLU6
fused, as ``conv2d``'s.

Every argument is checked before a layer touches the variable store, so a
refused call creates no variables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names in the type hints only
    from ._typing import (
        Any, ArrayLike, Callable, Collections, Initializer, Optional, Regularizer, Sequence
    )

import functools
import math
import numbers

import numpy as np

from . import _memory
from . import nn as _nn
from .activations import relu
from .arg_scope import add_arg_scope
from .initializers import ones_initializer, xavier_initializer, zeros_initializer
from .layers import (
    _CHECKED_WEIGHT_ELEMENTS,
    _adopt_variable_dtype,
    _as_input,
    _check_callable,
    _check_collections,
    _check_mapping,
    _fused_activation,
    _variable_dtype,
)
from .variables import _check_reuse, _model_variable, collect_named_outputs, get_default_store

__all__ = [
    "bias_add",
    "dropout",
    "flatten",
    "fully_connected",
    "layer_norm",
    "linear",
    "one_hot_encoding",
    "repeat",
    "softmax",
    "stack",
]


def _check_reuse_arg(reuse):
    if reuse is not None and reuse is not True:
        reuse = _check_reuse(reuse) or None
    return reuse


def _check_scope(scope, what):
    """None, a name, or a VariableScope (the layers with a variable scope)."""
    from .variables import VariableScope

    if scope is None or isinstance(scope, (str, VariableScope)):
        return
    raise TypeError(f"scope of {what} must be a string, a VariableScope or None, got {scope!r}")


def _check_name_scope(scope, what):
    if scope is not None and not isinstance(scope, str):
        raise TypeError(f"scope of {what} must be a string or None, got {scope!r}")


def _check_bool(value, name):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name} must be a bool, got {value!r}")


def _float_inputs(inputs, what):
    """(array, compute dtype, output dtype) with pyconv's dtype rule."""
    x = _as_input(inputs)
    try:
        cd, od = _nn.compute_dtype(x.dtype, "inputs")
    except TypeError as exc:
        raise TypeError(f"{what}: {exc}") from None
    return x, cd, od


# --------------------------------------------------------------------------- fully_connected


def _check_fc_num_outputs(num_outputs):
    # slim: ValueError for a non-int; Keras' Dense: TypeError for a bool
    # (it reaches the shape), ValueError for a negative count. 0 is allowed.
    if isinstance(num_outputs, (bool, np.bool_)):
        raise TypeError(f"num_outputs must be an int, got the bool {num_outputs!r}")
    if not isinstance(num_outputs, numbers.Integral):
        raise ValueError(  # noqa: TRY004 - slim's error type
            f"num_outputs type should be one of [<class 'int'>], got {type(num_outputs)}: "
            "num_outputs must be an int >= 0")
    if num_outputs < 0:
        raise ValueError("Received an invalid value for `units`, expected a positive integer, "
                         f"got {int(num_outputs)}: num_outputs must be an int >= 0")
    return int(num_outputs)


@add_arg_scope
def fully_connected(inputs: ArrayLike,
                    num_outputs: Optional[int],
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
    """A fully connected layer: ``inputs @ weights + biases``, then an optional
    normalizer and activation, as ``slim.fully_connected``.

    Creates (or reuses) ``<scope>/weights`` of shape ``[in, num_outputs]``
    (``in`` = the last dimension of ``inputs``) and, when ``normalizer_fn``
    is None and ``biases_initializer`` is not None, ``<scope>/biases`` of
    shape ``[num_outputs]``. Inputs of rank > 2 keep their leading
    dimensions: ``[2, 8, 8, 3]`` with ``num_outputs=7`` gives ``[2, 8, 8, 7]``.
    With ``normalizer_fn``, ``normalizer_fn(outputs, **normalizer_params)``
    is called inside the layer's scope (``<scope>/BatchNorm/...``), then
    ``activation_fn``.

    The product runs in pyconv's C igemm operator (the rows as pixels of a
    1x1 convolution); ``relu``/``relu6`` and the biases are fused into it
    when there is no normalizer. Variables have the inputs' dtype
    (float16/32/64; integer and bool inputs are a TypeError, as in slim)
    and go to ``GLOBAL_VARIABLES``, ``MODEL_VARIABLES`` and, when
    ``trainable``, ``TRAINABLE_VARIABLES``.

    Parameters
    ----------
    inputs : array_like, rank >= 2
    num_outputs : int >= 0
        Output units (0 gives an empty last axis, as slim).
    activation_fn : callable or None, default pyconv.relu
    normalizer_fn : callable, optional
        E.g. :func:`pyconv.batch_norm`; replaces the biases.
    normalizer_params : dict, optional
    weights_initializer : initializer or array, default xavier_initializer()
    weights_regularizer : callable, optional
        Its loss (``<scope>/kernel/Regularizer/...``) is added to
        ``REGULARIZATION_LOSSES`` when the weights are created.
    biases_initializer : initializer, array or None, default zeros_initializer()
    biases_regularizer : callable, optional
    reuse : None, True or AUTO_REUSE
    variables_collections : list of str, or dict {'weights': [...], 'biases': [...]}
    outputs_collections : str or list of str, optional
        The output is added under the alias ``<scope>``.
    trainable : bool, default True
    scope : str or VariableScope, optional
        Default ``'fully_connected'``, made unique (``fully_connected_1``, ...).

    Returns
    -------
    numpy.ndarray
        ``inputs.shape[:-1] + (num_outputs,)``.

    Raises
    ------
    ValueError
        Rank below 2; ``num_outputs`` not an int (slim's message) or
        negative; an input size that disagrees with existing weights (both
        shapes shown); reuse errors naming the variable.
    TypeError
        ``num_outputs`` a bool; an input dtype pyconv does not compute.

    Examples
    --------
    >>> import numpy as np
    >>> import pyconv as slim
    >>> with slim.VariableStore(seed=0) as store:
    ...     y = slim.fully_connected(np.ones((2, 8, 8, 3), np.float32), 7)
    >>> y.shape, store['fully_connected/weights'].shape
    ((2, 8, 8, 7), (3, 7))
    """
    num_outputs = _check_fc_num_outputs(num_outputs)
    x = inputs if type(inputs) is np.ndarray else _as_input(inputs)
    if x.ndim < 2:
        raise ValueError("Input 0 of layer fully_connected is incompatible with the layer: "
                         f"expected min_ndim=2, found ndim={x.ndim}. Full shape received: "
                         f"{x.shape}")
    dtype = _variable_dtype(x.dtype, "fully_connected")
    reuse = _check_reuse_arg(reuse)
    _check_callable(activation_fn, "activation_fn")
    _check_callable(normalizer_fn, "normalizer_fn")
    _check_mapping(normalizer_params, "normalizer_params")
    _check_callable(weights_regularizer, "weights_regularizer")
    _check_callable(biases_regularizer, "biases_regularizer")
    _check_collections(variables_collections, "variables_collections")
    _check_collections(outputs_collections, "outputs_collections")
    _check_scope(scope, "fully_connected")
    cin = x.shape[-1]
    lead = x.shape[:-1]
    rows = math.prod(lead)
    n = cin * num_outputs
    if n > _CHECKED_WEIGHT_ELEMENTS:
        _memory.check(f"fully_connected with {cin} inputs and num_outputs={num_outputs}",
                      {"weights": n * dtype.itemsize, "their float64 random draw": n * 8})
    _memory.check(f"fully_connected of inputs of shape {x.shape} with num_outputs={num_outputs}",
                  {"output": rows * num_outputs * (4 + dtype.itemsize),
                   "input copy": rows * cin * max(dtype.itemsize, 4)})
    store = get_default_store()
    frame = store._push_scope(scope, "fully_connected", reuse)
    try:
        sc = frame.scope
        dtype, x = _adopt_variable_dtype(store, sc, "weights", dtype, x)
        weights = _model_variable(store, sc, "weights", (cin, num_outputs), dtype,
                                  weights_initializer, weights_regularizer, trainable,
                                  variables_collections, "weights", "kernel")
        bias = None
        if not normalizer_fn and biases_initializer is not None:
            bias = _model_variable(store, sc, "biases", (num_outputs,), dtype,
                                   biases_initializer, biases_regularizer, trainable,
                                   variables_collections, "biases", "bias")._pinned()
        fused = _fused_activation(activation_fn) if normalizer_fn is None else None
        outputs = _matmul(x, rows, weights._pinned(), bias, fused)
        if normalizer_fn is not None:
            outputs = normalizer_fn(outputs, **(normalizer_params or {}))
        if activation_fn is not None and fused is None:
            outputs = activation_fn(outputs)
        if outputs_collections:
            collect_named_outputs(outputs_collections, sc.name, outputs)
        return outputs
    finally:
        store._pop_scope(frame)


# slim 1.1's alias. (slim's relu, relu6 and elu are fully_connected partials too;
# pyconv's are the activation functions, as SPEC says, so they are not redefined.)
linear = functools.partial(fully_connected, activation_fn=None)
linear.__doc__ = """``fully_connected`` with ``activation_fn=None`` (slim's ``linear``)."""


def _matmul(x, rows, w, bias, fused):
    """``x @ w (+ bias, relu/relu6)`` over the last axis, through the igemm operator."""
    cin, cout = w.shape
    out_shape = x.shape[:-1] + (cout,)
    if rows == 0 or cin == 0 or cout == 0:
        # Nothing to multiply: zeros, plus the bias (rows with zero inputs).
        _, od = _nn.compute_dtype(x.dtype, "inputs")
        out = np.zeros(out_shape, od)
        if bias is not None and out.size:
            out += bias.astype(od, copy=False)
        if fused == "relu":
            out = _nn.relu(out)
        elif fused == "relu6":
            out = _nn.relu6(out)
        return out
    # [rows, cin] as a 1 x rows x 1 image of cin channels; weights [1, 1, cin, cout]
    pixels = x.reshape(1, rows, 1, cin)
    out = _nn.conv2d(pixels, w.reshape(1, 1, cin, cout), 1, "VALID", bias=bias,
                     activation=fused)
    return out.reshape(out_shape)


# --------------------------------------------------------------------------- dropout


@add_arg_scope
def dropout(inputs: ArrayLike,
            keep_prob: float = 0.5,
            noise_shape: Optional[Sequence[int]] = None,
            is_training: bool = True,
            outputs_collections: Collections = None,
            scope: Optional[str] = None,
            seed: Optional[int] = None) -> np.ndarray:
    """Dropout, as ``slim.dropout``: with probability ``keep_prob`` an element
    is kept and scaled by ``1 / keep_prob``, else set to 0.

    - ``is_training=False``: the identity. The result is a new view of the
      input array (``inputs.view()``: same data, no copy, a distinct object
      so that ``outputs_collections`` aliases stay its own, like TF's
      ``Identity``); a list is converted with ``np.asarray``. Any dtype.
    - ``is_training=True`` and ``keep_prob == 1``: ``inputs`` itself (TF's
      fast path returns the same tensor).
    - Otherwise a new array: ``x * (1 / keep_prob)`` where a uniform
      ``[0, 1)`` draw of shape ``noise_shape`` is ``>= 1 - keep_prob``, else
      0 (a dropped NaN or Inf is 0 too, as TF's ``where``).

    The mask comes from NumPy's ``Generator`` (PCG64), so it cannot equal
    TF's (Philox) bit for bit; the keep probability, the scaling and the
    ``noise_shape`` broadcasting are TF's.

    Parameters
    ----------
    inputs : array_like
        Training: float16/32/64 keep their dtype, integer and bool inputs
        are computed as float32 (slim refuses them).
    keep_prob : float in [0, 1], default 0.5
        0 is refused when training (TF: ``rate`` must be < 1).
    noise_shape : list of int, optional
        Shape of the keep/drop mask, broadcast to the input's shape
        (``[N, 1, 1, C]`` drops whole feature maps); with the input's rank,
        ``None`` entries take its sizes. Checked only when training, as TF.
    is_training : bool, default True
    outputs_collections : str or list of str, optional
        The output is added under the alias ``<scope>``.
    scope : str or VariableScope, optional
        Default ``'Dropout'``, made unique.
    seed : None, int >= 0 or numpy.random.Generator
        An int gives the same mask on every call with that seed and shape
        (pyconv has no graph: pass a different seed, or a Generator, to get
        a new mask each step); a Generator continues its stream; None
        draws fresh entropy.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        ``keep_prob`` outside [0, 1] (whether training or not, as TF), or 0
        when training; a ``noise_shape`` that does not broadcast.
    TypeError
        ``keep_prob``, ``is_training``, ``seed`` or ``noise_shape`` of the
        wrong type.

    Examples
    --------
    >>> import numpy as np
    >>> import pyconv as slim
    >>> x = np.ones((2, 4), np.float32)
    >>> slim.dropout(x, 0.5, is_training=False).base is x
    True
    >>> sorted(set(slim.dropout(x, 0.5, seed=0).ravel().tolist()))
    [0.0, 2.0]
    """
    if isinstance(keep_prob, (bool, np.bool_)) or not isinstance(keep_prob, numbers.Real):
        raise TypeError(f"keep_prob must be a float in [0, 1], got {keep_prob!r}")
    rate = 1 - keep_prob  # as slim: rate=1 - keep_prob, in Python floats
    if not 0 <= rate <= 1:
        raise ValueError(f"Invalid value {rate} received for `rate`, expected a value between "
                         f"0 and 1: keep_prob must be in [0, 1], got {keep_prob}")
    is_training = _check_bool(is_training, "is_training")
    if not (seed is None or isinstance(seed, np.random.Generator)):
        _nn._generator(seed)  # the type and sign check
    _check_collections(outputs_collections, "outputs_collections")
    _check_scope(scope, "dropout")
    x = _as_input(inputs)
    if is_training:
        if rate >= 1:
            raise ValueError("`rate` must be a scalar tensor or a float in the range [0, 1). "
                             f"Received: rate={float(rate)}: keep_prob must be > 0 when "
                             "training")
        if rate > 0:  # TF returns the input before looking at noise_shape
            _float_inputs(x, "dropout")
            _nn._noise_shape(noise_shape, x.shape)
    store = get_default_store()
    frame = store._push_scope(scope, "Dropout")
    try:
        if not is_training:
            outputs = x.view()
        elif rate == 0:
            outputs = x
        else:
            outputs = _nn._dropout(x, rate, noise_shape, seed, "dropout")
        return collect_named_outputs(outputs_collections, frame.scope.name, outputs)
    finally:
        store._pop_scope(frame)


# --------------------------------------------------------------------------- flatten


@add_arg_scope
def flatten(inputs: ArrayLike, outputs_collections: Collections = None,
            scope: Optional[str] = None) -> np.ndarray:
    """``[batch, d1, d2, ...]`` -> ``[batch, d1 * d2 * ...]`` in row-major
    order, as ``slim.flatten``; rank 1 ``[n]`` gives ``[n, 1]`` (as Keras).

    Returns a C-contiguous array: a view of ``inputs`` when they are
    C-contiguous (no copy; a distinct object), else a copy. Any dtype. An
    input with an empty inner dimension gives ``[batch, 0]`` (TF 2.21's
    reshape to ``[-1, 0]`` makes ``[2, 2, 0, 4, 4]`` into ``[64, 0]``).

    Parameters
    ----------
    inputs : array_like, rank >= 1
    outputs_collections : str or list of str, optional
        The output is added under the alias of the name scope ``Flatten``
        (made unique) or ``scope``.
    scope : str, optional

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        A scalar input.

    Examples
    --------
    >>> import numpy as np
    >>> flatten(np.zeros((2, 3, 4, 5))).shape
    (2, 60)
    """
    _check_collections(outputs_collections, "outputs_collections")
    _check_name_scope(scope, "flatten")
    x = _as_input(inputs)
    if x.ndim == 0:
        raise ValueError("Input 0 of layer flatten is incompatible with the layer: expected "
                         "min_ndim=1, found ndim=0. Full shape received: (): flatten needs "
                         "inputs with a batch axis")
    if x.ndim == 1:
        shape = (x.shape[0], 1)
    else:
        shape = (x.shape[0], math.prod(x.shape[1:]))
    if not x.flags.c_contiguous:
        _memory.check(f"flatten of inputs of shape {x.shape} (not C-contiguous: copied)",
                      {"copy": x.size * x.dtype.itemsize})
    store = get_default_store()
    frame, sc = store._push_name_scope(scope, "Flatten")
    try:
        outputs = np.ascontiguousarray(x).reshape(shape)
        if outputs is x:
            outputs = x.view()
        return collect_named_outputs(outputs_collections, sc, outputs)
    finally:
        store._pop_name_scope(frame)


# --------------------------------------------------------------------------- repeat, stack


def _layer_name(layer, fallback):
    if hasattr(layer, "__name__"):
        return layer.__name__
    if isinstance(layer, functools.partial) or hasattr(layer, "func"):
        func = getattr(layer, "func", None)
        if hasattr(func, "__name__"):
            return func.__name__
    return fallback


def _check_layer(layer, scope, what):
    if not callable(layer):
        raise TypeError(f"{what}: layer must be a callable (e.g. pyconv.conv2d), got {layer!r}")
    if scope is not None and not isinstance(scope, str):
        raise TypeError(f"{what}: scope must be a string or None (the calls get "
                        f"scope='<scope>_1', ...), got {scope!r}")


def repeat(inputs: ArrayLike, repetitions, layer, *args, **kwargs) -> np.ndarray:
    """Applies ``layer`` ``repetitions`` times with the same arguments, as
    ``slim.repeat``.

    ``repeat(x, 3, conv2d, 64, [3, 3], scope='conv1')`` is
    ``conv2d(conv2d(conv2d(x, 64, [3, 3], scope='conv1/conv1_1'), ...,
    scope='conv1/conv1_2'), ..., scope='conv1/conv1_3')``: the calls run
    inside ``variable_scope(scope, 'Repeat')`` with ``scope=<name>_<i>``,
    where ``<name>`` is ``scope``, else ``layer.__name__`` (``func.__name__``
    of a ``functools.partial``), else ``'repeat'``. Without ``scope``:
    ``Repeat/convolution2d_1``, ... (pyconv's ``conv2d`` is
    ``convolution2d``, as slim's). Not decorated with ``add_arg_scope``
    (neither is slim's).

    Parameters
    ----------
    inputs : array_like
    repetitions : int >= 0
        0 returns ``inputs``.
    layer : callable
        Called as ``layer(outputs, *args, **kwargs, scope=...)``.
    *args, **kwargs
        Passed to every call; ``scope`` (a string) names the block.

    Returns
    -------
    The last call's output.

    Raises
    ------
    TypeError
        ``repetitions`` not an int; ``layer`` not callable; ``scope`` not a string.
    ValueError
        ``repetitions`` negative (slim silently returns ``inputs``).

    Examples
    --------
    >>> import numpy as np
    >>> import pyconv as slim
    >>> with slim.VariableStore(seed=0) as store:
    ...     y = slim.repeat(np.ones((1, 4, 4, 3)), 2, slim.conv2d, 8, [3, 3], scope='conv1')
    >>> [name for name in store.keys() if name.endswith('weights')]
    ['conv1/conv1_1/weights', 'conv1/conv1_2/weights']
    """
    if isinstance(repetitions, (bool, np.bool_)) or not isinstance(repetitions,
                                                                   numbers.Integral):
        raise TypeError(f"repeat: repetitions must be an int, got {repetitions!r}")
    if repetitions < 0:
        raise ValueError(f"repeat: repetitions must be >= 0, got {int(repetitions)}")
    scope = kwargs.pop("scope", None)
    _check_layer(layer, scope, "repeat")
    store = get_default_store()
    frame = store._push_scope(scope, "Repeat")
    try:
        name = scope if scope is not None else _layer_name(layer, "repeat")
        outputs = inputs
        for i in range(int(repetitions)):
            kwargs["scope"] = f"{name}_{i + 1}"
            outputs = layer(outputs, *args, **kwargs)
        return outputs
    finally:
        store._pop_scope(frame)


def stack(inputs: ArrayLike, layer, stack_args, **kwargs) -> np.ndarray:
    """Applies ``layer`` once per entry of ``stack_args``, as ``slim.stack``.

    ``stack(x, fully_connected, [32, 64, 128], scope='fc')`` is
    ``fully_connected(x, 32, scope='fc/fc_1')``, then 64 (``fc/fc_2``), then
    128 (``fc/fc_3``). Each entry is a tuple/list of positional arguments or
    a single value. Scope naming as :func:`repeat` (``Stack/<name>_<i>``
    without ``scope``). Not decorated with ``add_arg_scope`` (neither is
    slim's).

    Parameters
    ----------
    inputs : array_like
    layer : callable
    stack_args : list or tuple
    **kwargs
        Passed to every call; ``scope`` (a string) names the block.

    Returns
    -------
    The last call's output.

    Raises
    ------
    ValueError
        ``stack_args`` is not a list or tuple (slim's message).
    TypeError
        ``layer`` not callable; ``scope`` not a string.

    Examples
    --------
    >>> import numpy as np
    >>> import pyconv as slim
    >>> with slim.VariableStore(seed=0) as store:
    ...     y = slim.stack(np.ones((2, 3)), slim.fully_connected, [4, 5], scope='fc')
    >>> y.shape, sorted(store.keys())[:2]
    ((2, 5), ['fc/fc_1/biases', 'fc/fc_1/weights'])
    """
    scope = kwargs.pop("scope", None)
    if not isinstance(stack_args, (list, tuple)):
        raise ValueError(  # noqa: TRY004 - slim's error type
            f"stack_args need to be a list or tuple, got {stack_args!r}")
    _check_layer(layer, scope, "stack")
    store = get_default_store()
    frame = store._push_scope(scope, "Stack")
    try:
        name = scope if scope is not None else _layer_name(layer, "stack")
        outputs = inputs
        for i, layer_args in enumerate(stack_args):
            kwargs["scope"] = f"{name}_{i + 1}"
            if not isinstance(layer_args, (list, tuple)):
                layer_args = [layer_args]
            outputs = layer(outputs, *layer_args, **kwargs)
        return outputs
    finally:
        store._pop_scope(frame)


# --------------------------------------------------------------------------- softmax


@add_arg_scope
def softmax(logits: ArrayLike, scope: Optional[str] = None) -> np.ndarray:
    """Softmax over the last axis of logits of any rank >= 2, as ``slim.softmax``
    (slim reshapes to ``[-1, classes]``, applies ``tf.nn.softmax`` and
    reshapes back; the numbers are :func:`pyconv.nn.softmax`'s, TF's).

    Opens ``variable_scope(scope, 'softmax')`` like slim (nets pass
    ``scope='Predictions'``); creates no variables. For another axis or
    rank-1 logits use :func:`pyconv.nn.softmax`.

    Parameters
    ----------
    logits : array_like, rank >= 2
    scope : str or VariableScope, optional

    Returns
    -------
    numpy.ndarray
        Same shape; float16/32/64 keep their dtype, integer and bool logits
        give float32 (slim refuses them).

    Raises
    ------
    ValueError
        Rank below 2 (slim's message: "rank of shape must be at least 2 not: 1").

    Examples
    --------
    >>> import numpy as np
    >>> softmax(np.log(np.array([[1.0, 3.0]])))
    array([[0.25, 0.75]])
    """
    _check_scope(scope, "softmax")
    x = _as_input(logits)
    if x.ndim < 2:
        raise ValueError(f"rank of shape must be at least 2 not: {x.ndim} (softmax of logits "
                         f"of shape {x.shape}; use pyconv.nn.softmax for rank 1)")
    _nn.compute_dtype(x.dtype, "logits")
    store = get_default_store()
    frame = store._push_scope(scope, "softmax")
    try:
        return _nn.softmax(x)
    finally:
        store._pop_scope(frame)


# --------------------------------------------------------------------------- one_hot_encoding

_ONE_HOT_DTYPES = {bool: np.dtype(np.bool_), int: np.dtype(np.int32),
                   float: np.dtype(np.float32)}


def _value_dtype(value, name):
    """TF's dtype for a Python or NumPy scalar (convert_to_tensor's rule)."""
    if isinstance(value, (np.generic, np.ndarray)):
        a = np.asarray(value)
        if a.ndim != 0 or a.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a real scalar, got {value!r}")
        return a.dtype
    for kind in (bool, int, float):
        if isinstance(value, kind):
            if kind is int and not -2**31 <= value < 2**31:
                return np.dtype(np.int64)
            return _ONE_HOT_DTYPES[kind]
    raise TypeError(f"{name} must be a real scalar, got {value!r}")


@add_arg_scope
def one_hot_encoding(labels: ArrayLike,
                     num_classes: Optional[int],
                     on_value: float = 1.0,
                     off_value: float = 0.0,
                     outputs_collections: Collections = None,
                     scope: Optional[str] = None) -> np.ndarray:
    """One-hot encoding of integer labels, as ``slim.one_hot_encoding``
    (``tf.one_hot`` along a new last axis).

    ``labels`` of any shape give ``labels.shape + (num_classes,)``; a label
    outside ``[0, num_classes)`` gives a row of ``off_value``. The dtype is
    TF's for ``on_value`` (a Python float: float32, an int: int32, a NumPy
    scalar: its dtype), which ``off_value`` must share.

    Parameters
    ----------
    labels : array_like of integers
        Any integer dtype (TF takes uint8, int8, int32 and int64).
    num_classes : int >= 0
    on_value, off_value : scalar, default 1.0 and 0.0
    outputs_collections : str or list of str, optional
        Alias: the name scope ``OneHotEncoding`` (made unique) or ``scope``.
    scope : str, optional

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    TypeError
        Non-integer labels; ``num_classes`` not an int; ``on_value`` and
        ``off_value`` of different dtypes (TF's "dtype ... of on_value does
        not match dtype ... of off_value").
    ValueError
        ``num_classes`` negative.

    Examples
    --------
    >>> one_hot_encoding([0, 2], 3)
    array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    y = _as_input(labels)
    if y.dtype.kind not in "iu":
        raise TypeError(f"labels have dtype {y.dtype}; one_hot_encoding takes integer labels "
                        "(TF: uint8, int8, int32, int64)")
    if isinstance(num_classes, (bool, np.bool_)) or not isinstance(num_classes,
                                                                   numbers.Integral):
        raise TypeError(f"num_classes must be an int, got {num_classes!r}")
    if num_classes < 0:
        raise ValueError(f"num_classes must be non-negative, got {int(num_classes)}")
    num_classes = int(num_classes)
    on_dtype = _value_dtype(on_value, "on_value")
    off_dtype = _value_dtype(off_value, "off_value")
    if on_dtype != off_dtype:
        raise TypeError(f"dtype {on_dtype} of on_value does not match dtype {off_dtype} of "
                        f"off_value (on_value={on_value!r}, off_value={off_value!r})")
    _check_collections(outputs_collections, "outputs_collections")
    _check_name_scope(scope, "one_hot_encoding")
    _memory.check(f"one_hot_encoding of labels of shape {y.shape} with num_classes="
                  f"{num_classes}", {"output": y.size * num_classes * on_dtype.itemsize,
                                     "labels as int64 and their masks": y.size * 26})
    store = get_default_store()
    frame, sc = store._push_name_scope(scope, "OneHotEncoding")
    try:
        outputs = np.full(y.shape + (num_classes,), off_value, on_dtype)
        if outputs.size:
            flat = outputs.reshape(-1, num_classes)
            idx = y.reshape(-1).astype(np.int64)
            valid = (idx >= 0) & (idx < num_classes)
            flat[np.nonzero(valid)[0], idx[valid]] = on_value
        return collect_named_outputs(outputs_collections, sc, outputs)
    finally:
        store._pop_name_scope(frame)


# --------------------------------------------------------------------------- bias_add


def _slim_data_format(data_format):
    if isinstance(data_format, str) and data_format.upper() in ("NHWC", "NCHW"):
        return data_format.upper()
    raise ValueError(f"data_format has to be either NCHW or NHWC, got {data_format!r}")


@add_arg_scope
def bias_add(inputs: ArrayLike,
             activation_fn: Optional[Callable] = None,
             initializer: Optional[Initializer] = zeros_initializer(),  # noqa: B008 - slim's default
             regularizer: Optional[Regularizer] = None,
             reuse: Optional[bool] = None,
             variables_collections: Collections = None,
             outputs_collections: Collections = None,
             trainable: bool = True,
             data_format: str = "NHWC",
             scope: Optional[str] = None) -> np.ndarray:
    """Adds a learned bias per channel, as ``slim.bias_add`` (usable as a
    ``normalizer_fn`` of ``conv2d`` and ``fully_connected``).

    Creates (or reuses) ``<scope>/biases`` of shape ``[C]`` (``C`` = the last
    axis, or axis 1 for ``NCHW``) in the inputs' dtype (integer and bool
    inputs give float32), adds it (:func:`pyconv.nn.bias_add`), then
    ``activation_fn`` (``relu``/``relu6`` in the same pass of the C
    elementwise operator). ``pyconv.nn.bias_add(value, bias)`` is the op
    without a variable.

    Parameters
    ----------
    inputs : array_like, rank >= 2 (exactly 4 for NCHW)
    activation_fn : callable, optional
    initializer : initializer or array, default zeros_initializer()
    regularizer : callable, optional
        Its loss (``<scope>/biases/Regularizer/...``) goes to ``REGULARIZATION_LOSSES``.
    reuse : None, True or AUTO_REUSE
    variables_collections : list of str, or dict {'biases': [...]}
    outputs_collections : str or list of str, optional
    trainable : bool, default True
    data_format : 'NHWC' or 'NCHW', default 'NHWC'
        Any case (slim accepts upper case only).
    scope : str or VariableScope, optional
        Default ``'BiasAdd'``, made unique.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        A bad ``data_format`` ("data_format has to be either NCHW or NHWC");
        ``NCHW`` with rank other than 4 ("Data format NCHW only supports 4D
        Tensor"); rank below 2; reuse errors.

    Examples
    --------
    >>> import numpy as np
    >>> import pyconv as slim
    >>> with slim.VariableStore(seed=0) as store:
    ...     y = slim.bias_add(np.zeros((2, 3)), initializer=np.array([1.0, 2.0, 3.0]))
    >>> y[0], list(store.keys())
    (array([1., 2., 3.]), ['BiasAdd/biases'])
    """
    fmt = _slim_data_format(data_format)
    x = _as_input(inputs)
    if fmt == "NCHW" and x.ndim != 4:
        raise ValueError(f"Data format NCHW only supports 4D Tensor, got inputs of shape "
                         f"{x.shape}")
    if x.ndim < 2:
        raise ValueError(f"Shape must be at least rank 2 but is rank {x.ndim}: bias_add "
                         f"expects inputs with rank >= 2, got shape {x.shape}")
    dtype = _variable_dtype(x.dtype, "bias_add")
    reuse = _check_reuse_arg(reuse)
    _check_callable(activation_fn, "activation_fn")
    _check_callable(regularizer, "regularizer")
    _check_collections(variables_collections, "variables_collections")
    _check_collections(outputs_collections, "outputs_collections")
    _check_scope(scope, "bias_add")
    channels = x.shape[1] if fmt == "NCHW" else x.shape[-1]
    _memory.check(f"bias_add of inputs of shape {x.shape}",
                  {"output": x.size * (dtype.itemsize + 4)})
    store = get_default_store()
    frame = store._push_scope(scope, "BiasAdd", reuse)
    try:
        sc = frame.scope
        biases = _model_variable(store, sc, "biases", (channels,), dtype, initializer,
                                 regularizer, trainable, variables_collections, "biases")
        fused = _fused_activation(activation_fn)
        if fused is None:
            outputs = _nn.bias_add(x, biases._value, fmt)
            if activation_fn is not None:
                outputs = activation_fn(outputs)
        else:  # bias and relu/relu6 in one pass of the C elementwise operator
            cd, od = _nn.compute_dtype(x.dtype, "inputs")
            b = _nn._as_bias(biases._value, cd, channels)
            outputs = _nn._eltwise(x.astype(cd.newbyteorder("="), copy=False),
                                   1 if fmt == "NCHW" else x.ndim - 1, shift=b,
                                   activation=fused).astype(od, copy=False)
        return collect_named_outputs(outputs_collections, sc.name, outputs)
    finally:
        store._pop_scope(frame)


# --------------------------------------------------------------------------- layer_norm


def _check_axis_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    return int(value)


@add_arg_scope
def layer_norm(inputs: ArrayLike,
               center: bool = True,
               scale: Any = True,
               activation_fn: Optional[Callable] = None,
               reuse: Optional[bool] = None,
               variables_collections: Collections = None,
               outputs_collections: Collections = None,
               trainable: bool = True,
               begin_norm_axis: int = 1,
               begin_params_axis: int = -1,
               scope: Optional[str] = None) -> np.ndarray:
    """Layer normalisation (Ba, Kiros & Hinton, 2016), as ``slim.layer_norm``.

    The mean and variance are taken over axes ``begin_norm_axis .. R-1``
    (default: all but the first); ``beta`` (``center``) and ``gamma``
    (``scale``) have shape ``inputs.shape[begin_params_axis:]`` (default:
    the last axis) and broadcast. As TF: ``inv = rsqrt(variance + eps) *
    gamma``, ``y = x * inv + (beta - mean * inv)`` with ``eps = 1e-12``
    (``1e-3`` for float16), the moments of float16 inputs in float32.

    Variables ``<scope>/beta`` then ``<scope>/gamma`` in the inputs' dtype
    (integer and bool inputs are a TypeError, as TF): ``GLOBAL_VARIABLES``,
    ``MODEL_VARIABLES``, and ``TRAINABLE_VARIABLES`` when ``trainable``.

    Parameters
    ----------
    inputs : array_like, rank R >= 1
    center, scale : bool, default True
    activation_fn : callable, optional
    reuse : None, True or AUTO_REUSE
    variables_collections : list of str, or dict {'beta': [...], 'gamma': [...]}
    outputs_collections : str or list of str, optional
    trainable : bool, default True
    begin_norm_axis : int, default 1
        Negative counts from the end.
    begin_params_axis : int, default -1
        Python slicing: ``shape[begin_params_axis:]``.
    scope : str or VariableScope, optional
        Default ``'LayerNorm'``, made unique.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``inputs`` (float32 for integers).

    Raises
    ------
    ValueError
        ``begin_params_axis`` or ``begin_norm_axis`` not < R (slim's
        message); ``begin_norm_axis`` below ``-R`` (slim then reduces over a
        repeated axis); reuse errors.

    Examples
    --------
    >>> import numpy as np
    >>> import pyconv as slim
    >>> with slim.VariableStore(seed=0):
    ...     y = slim.layer_norm(np.array([[1.0, 3.0]]))
    >>> y.round(6)
    array([[-1.,  1.]])
    """
    x = _as_input(inputs)
    rank = x.ndim
    norm_axis = _check_axis_int(begin_norm_axis, "begin_norm_axis")
    params_axis = _check_axis_int(begin_params_axis, "begin_params_axis")
    if norm_axis < 0:
        norm_axis += rank
    if params_axis >= rank or norm_axis >= rank:
        raise ValueError(f"begin_params_axis ({params_axis}) and begin_norm_axis ({norm_axis}) "
                         f"must be < rank(inputs) ({rank})")
    if norm_axis < 0:
        raise ValueError(f"begin_norm_axis ({begin_norm_axis}) must be >= -rank(inputs) "
                         f"(-{rank})")
    dtype = _variable_dtype(x.dtype, "layer_norm")
    reuse = _check_reuse_arg(reuse)
    _check_callable(activation_fn, "activation_fn")
    _check_collections(variables_collections, "variables_collections")
    _check_collections(outputs_collections, "outputs_collections")
    _check_scope(scope, "layer_norm")
    params_shape = x.shape[params_axis:]
    _memory.check(f"layer_norm of inputs of shape {x.shape}",
                  {"float64 working copies": 3 * x.size * 8, "output": x.size * dtype.itemsize})
    store = get_default_store()
    frame = store._push_scope(scope, "LayerNorm", reuse)
    try:
        sc = frame.scope
        beta = gamma = None
        if center:
            beta = _model_variable(store, sc, "beta", params_shape, dtype, zeros_initializer(),
                                   None, trainable, variables_collections, "beta")._value
        if scale:
            gamma = _model_variable(store, sc, "gamma", params_shape, dtype,
                                    ones_initializer(), None, trainable, variables_collections,
                                    "gamma")._value
        outputs = _layer_norm(x, dtype, tuple(range(norm_axis, rank)), beta, gamma)
        if activation_fn is not None:
            outputs = activation_fn(outputs)
        return collect_named_outputs(outputs_collections, sc.name, outputs)
    finally:
        store._pop_scope(frame)


def _layer_norm(x, dtype, axes, beta, gamma):
    """TF's nn.moments + nn.batch_normalization, in float64 for float32/64
    (rounded once), and as TF's float32 moments for float16."""
    eps = 1e-3 if dtype == np.float16 else 1e-12
    work = np.float64
    y = np.asarray(x, dtype=work)
    if x.size == 0:
        return np.zeros(x.shape, dtype)
    mean = y.mean(axis=axes, keepdims=True)
    variance = np.square(y - mean).mean(axis=axes, keepdims=True)
    if dtype == np.float16:  # TF: float32 moments, cast back to float16
        mean = mean.astype(np.float16).astype(work)
        variance = variance.astype(np.float16).astype(work)
    inv = 1.0 / np.sqrt(variance + eps)
    if gamma is not None:
        inv = inv * gamma.astype(work)
    shift = -mean * inv if beta is None else beta.astype(work) - mean * inv
    out = y * inv
    out += shift
    return out.astype(dtype)
