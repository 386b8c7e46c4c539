"""``tf_slim.layers.utils`` for NumPy arrays: what users and nets call.

The alias and collection helpers are :mod:`pyconv.variables`' (one
implementation): arrays cannot carry an ``aliases`` attribute, so the
default :class:`pyconv.VariableStore` records them. ``constant_value``,
``static_cond`` and ``smart_cond`` are here for code written against slim;
without a graph every value is constant, so ``smart_cond`` is ``static_cond``.
"""

import numbers
from collections import namedtuple

import numpy as np

from .variables import (
    append_tensor_alias,
    collect_named_outputs,
    convert_collection_to_dict,
    get_tensor_aliases,
)

__all__ = [
    "append_tensor_alias",
    "channel_dimension",
    "collect_named_outputs",
    "constant_value",
    "convert_collection_to_dict",
    "gather_tensors_aliases",
    "get_tensor_aliases",
    "get_variable_collections",
    "last_dimension",
    "n_positive_integers",
    "smart_cond",
    "static_cond",
    "two_element_tuple",
]

NamedOutputs = namedtuple("NamedOutputs", ["name", "outputs"])


def gather_tensors_aliases(tensors):
    """The aliases of every array in ``tensors``, in order (slim's helper)."""
    aliases = []
    for tensor in tensors:
        aliases += get_tensor_aliases(tensor)
    return aliases


def constant_value(value_or_tensor_or_var, dtype=None):
    """The value itself (everything is constant without a graph); a
    :class:`pyconv.Variable` gives None, as slim's for a TF variable.

    Raises
    ------
    ValueError
        ``value_or_tensor_or_var`` is None, or an array or variable whose
        dtype differs from ``dtype`` (slim: "It has the wrong type").
    """
    from .variables import Variable

    if value_or_tensor_or_var is None:
        raise ValueError("value_or_tensor_or_var cannot be None")
    value = value_or_tensor_or_var
    if isinstance(value, (np.ndarray, Variable)):
        if dtype is not None and np.dtype(dtype) != value.dtype:
            raise ValueError(f"It has the wrong type {value.dtype} instead of {np.dtype(dtype)}")
        if isinstance(value, Variable):
            return None
    return value


def static_cond(pred, fn1, fn2):
    """``fn1()`` if ``pred`` else ``fn2()``; both must be callable (TypeError)."""
    if not callable(fn1):
        raise TypeError("fn1 must be callable.")
    if not callable(fn2):
        raise TypeError("fn2 must be callable.")
    return fn1() if pred else fn2()


def smart_cond(pred, fn1, fn2, name=None):
    """:func:`static_cond`: every ``pred`` is known without a graph."""
    value = constant_value(pred)
    return static_cond(value, fn1, fn2)


def get_variable_collections(variables_collections, name):
    """``variables_collections[name]`` for a dict (None if missing), else the value itself."""
    if isinstance(variables_collections, dict):
        return variables_collections.get(name, None)
    return variables_collections


def _shape_of(shape):
    if isinstance(shape, np.ndarray):
        return shape.shape
    if hasattr(shape, "shape") and not isinstance(shape, (list, tuple)):
        return tuple(shape.shape)
    if isinstance(shape, (list, tuple)):
        return tuple(shape)
    raise TypeError(f"shape must be a tuple/list of ints or an array, got {shape!r}")


def _get_dimension(shape, dim, min_rank=1):
    dims = _shape_of(shape)
    if len(dims) < min_rank:
        raise ValueError("rank of shape must be at least %d not: %d" % (min_rank, len(dims)))
    if not dims:
        raise ValueError(f"dimension {dim} of shape {dims} does not exist (rank 0)")
    value = dims[dim]
    if value is None:
        raise ValueError("dimension %d of shape must be known but is None: %s" % (dim, dims))
    return value


def channel_dimension(shape, data_format, min_rank=1):
    """The channel size of ``shape`` (a tuple, list or array): axis 1 for
    ``data_format='channels_first'``, else the last (slim's helper).

    Raises
    ------
    ValueError
        Fewer than ``min_rank`` dimensions.
    """
    return _get_dimension(shape, 1 if data_format == "channels_first" else -1, min_rank)


def last_dimension(shape, min_rank=1):
    """The last dimension of ``shape`` (a tuple, list or an array's shape).

    Raises
    ------
    ValueError
        Fewer than ``min_rank`` dimensions ("rank of shape must be at least
        2 not: 1"), or the last dimension is None.

    Examples
    --------
    >>> last_dimension((2, 8, 8, 3), min_rank=2)
    3
    """
    return _get_dimension(shape, -1, min_rank)


def two_element_tuple(int_or_tuple):
    """``int`` -> ``(int, int)``; a 2-element list/tuple -> a tuple of ints.

    Raises
    ------
    ValueError
        Anything else (slim's messages).

    Examples
    --------
    >>> two_element_tuple(3), two_element_tuple([2, 5])
    ((3, 3), (2, 5))
    """
    if isinstance(int_or_tuple, (list, tuple)):
        if len(int_or_tuple) != 2:
            raise ValueError("Must be a list with 2 elements: %s" % (int_or_tuple,))
        return int(int_or_tuple[0]), int(int_or_tuple[1])
    if isinstance(int_or_tuple, numbers.Integral):
        return int(int_or_tuple), int(int_or_tuple)
    raise ValueError("Must be an int, a list with 2 elements or a TensorShape of length 2, "
                     f"got {int_or_tuple!r}")


def n_positive_integers(n, value):
    """``value`` as a tuple of ``n`` positive ints (one int is repeated ``n`` times).

    Raises
    ------
    ValueError
        ``n`` not a positive integer; a sequence of another length; a value < 1
        (slim's messages).
    TypeError
        ``n`` not convertible to an int.

    Examples
    --------
    >>> n_positive_integers(3, 2), n_positive_integers(2, [1, 4])
    ((2, 2, 2), (1, 4))
    """
    n_orig = n
    n = int(n)
    if n < 1 or n != n_orig:
        raise ValueError("n must be a positive integer")
    try:
        value = int(value)
    except (TypeError, ValueError):
        try:
            sequence_len = len(value)
        except TypeError:
            raise ValueError("Expected sequence of %d positive integers, but received %r"
                             % (n, value)) from None
        if sequence_len != n:
            raise ValueError("Expected sequence of %d positive integers, but received %r"
                             % (n, value)) from None
        try:
            values = tuple(int(x) for x in value)
        except (TypeError, ValueError):
            raise ValueError("Expected sequence of %d positive integers, but received %r"
                             % (n, value)) from None
        for x in values:
            if x < 1:
                raise ValueError("expected positive integer, but received %d" % x) from None
        return values
    if value < 1:
        raise ValueError("expected positive integer, but received %d" % value)
    return (value,) * n
