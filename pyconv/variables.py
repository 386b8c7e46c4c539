"""Variables, variable scopes and collections: TF 1.x's graph bookkeeping for NumPy.

A :class:`VariableStore` plays the part of TF's graph: it owns the variables
(by full name, e.g. ``'conv1/weights'``), the collections
(``GraphKeys.GLOBAL_VARIABLES``, ...), and the counters that make default
scope names unique (``Conv``, ``Conv_1``, ...). ``with VariableStore(seed=0)
as store:`` makes a store the default inside the block; outside any
``with`` a process-wide default store is used (:func:`get_default_store`,
:func:`reset_default_store`).

:func:`variable_scope` follows ``tf.compat.v1.variable_scope``:

- ``reuse=True`` gets existing variables and raises a ``ValueError`` naming a
  missing one; ``reuse=None``/``False`` creates them and raises a
  ``ValueError`` naming one that already exists; :data:`AUTO_REUSE` does
  either. ``reuse`` is inherited by nested scopes (``False`` inside a reusing
  scope does not switch it off).
- ``variable_scope(None, default_name='Conv')`` makes ``Conv``, ``Conv_1``, ...
  unique within the enclosing scope; leaving a named scope forgets the
  counts of the scopes opened inside it, so re-entering it (e.g. with
  ``reuse=True``) gives the same names again. A default name cannot be
  combined with ``reuse=True`` (no name to reuse).
- A :class:`VariableScope` object (what ``with variable_scope(...) as sc``
  yields) may be passed back to jump into the same scope from anywhere.

The current scope is per thread (as in TF), so threads can run layers that
share variables concurrently; the variables themselves are shared.

Initial values are reproducible: a variable's random generator is derived
from a stable hash (SHA-256) of the store's seed and the variable's full
name, so the same seed and name give the same values whatever the order in
which variables are created.

Variables loaded with :meth:`VariableStore.load` (a mapping, an ``.npz`` or a
TensorFlow checkpoint) before the model is built are *pending*: the layer
that first asks for that name takes the loaded value (its shape must match
what the layer needs) instead of initialising it, whatever its ``reuse``
mode. Pending values are not variables (``len``, iteration, ``in``, ``save``
see variables only); ``unused_values()``, ``variables_not_loaded()`` and
``check_loaded()`` tell what did not match (``pyconv/_restore.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names in the type hints only
    from ._typing import (
        Any, Initializer, Optional, Regularizer, Sequence, Variable, VariableScope,
        VariableStore
    )

import enum
import hashlib
import inspect
import itertools
import math
import numbers
import os
import re
import sys
import threading
import zipfile
from collections import OrderedDict

import numpy as np

from . import _conv, _memory, _restore
from ._errors import TypeValueError
from . import initializers as _initializers
from .arg_scope import add_arg_scope

__all__ = [
    "AUTO_REUSE",
    "GraphKeys",
    "Variable",
    "VariableScope",
    "VariableStore",
    "add_model_variable",
    "add_to_collection",
    "add_to_collections",
    "append_tensor_alias",
    "clear_collection",
    "collect_named_outputs",
    "convert_collection_to_dict",
    "get_collection",
    "get_collection_ref",
    "get_default_store",
    "get_local_variables",
    "get_model_variables",
    "get_regularization_loss",
    "get_regularization_losses",
    "get_tensor_aliases",
    "get_trainable_variables",
    "get_unique_variable",
    "get_variable",
    "get_variable_scope",
    "get_variables",
    "get_variables_by_name",
    "get_variables_by_suffix",
    "get_variables_to_restore",
    "global_variables",
    "model_variable",
    "name_scope",
    "reset_default_store",
    "trainable_variables",
    "variable",
    "variable_scope",
]


class _ReuseMode(enum.Enum):
    AUTO_REUSE = 1

    def __repr__(self):
        return "AUTO_REUSE"


AUTO_REUSE = _ReuseMode.AUTO_REUSE
"""``reuse=AUTO_REUSE``: create variables that do not exist, get those that do."""


class GraphKeys:
    """Standard collection names (the same strings as ``tf.compat.v1.GraphKeys``)."""

    GLOBAL_VARIABLES = "variables"
    VARIABLES = GLOBAL_VARIABLES
    LOCAL_VARIABLES = "local_variables"
    MODEL_VARIABLES = "model_variables"
    TRAINABLE_VARIABLES = "trainable_variables"
    REGULARIZATION_LOSSES = "regularization_losses"
    UPDATE_OPS = "update_ops"
    ACTIVATIONS = "activations"


def _strip_output_index(name):
    """``'conv1/weights:0'`` -> ``'conv1/weights'`` (TF tensor names)."""
    if not isinstance(name, str):
        raise TypeError(f"variable names are strings, got {name!r}")
    head, sep, tail = name.rpartition(":")
    return head if sep and tail.isdigit() else name


def _check_reuse(reuse):
    if reuse is None or reuse is True or reuse is False or reuse is AUTO_REUSE:
        return reuse
    raise ValueError(f"The reuse parameter must be True or False or None or AUTO_REUSE, "
                     f"got {reuse!r}")


# --------------------------------------------------------------------------- Variable


def _refcounts(var):
    """sys.getrefcount of a variable's array and of every object down its
    ``.base`` chain (the memory's owner last)."""
    counts = []
    obj = var._value
    while obj is not None:
        counts.append(sys.getrefcount(obj))
        obj = obj.base if isinstance(obj, np.ndarray) else None
    return counts


def _exclusive(var, held):
    """Whether nothing but ``var`` can reach its array's memory: no other
    reference to the array, and no other reference to any object of its base
    chain (every view and every exported buffer holds one). Such an array can
    be made read-only and trusted not to change behind pyconv's back. The
    counts are compared with those of a private chain measured the same way,
    so the interpreter's own reference counting does not matter. ``held``:
    references to the array the caller knows of (pyconv's own)."""
    counts = _refcounts(var)
    counts[0] -= held
    return len(counts) <= len(_EXCLUSIVE_COUNTS) and counts == _EXCLUSIVE_COUNTS[:len(counts)]


class Variable:
    """A named ndarray in a :class:`VariableStore`.

    Attributes
    ----------
    name : str
        Full name without TF's ``:0``, e.g. ``'conv1/weights'``: TF's op name,
        which TF makes unique case-insensitively, so a variable created as
        ``'conv/weights'`` after ``'Conv/weights'`` is named
        ``'conv/weights_1'`` (the store still keys it ``'conv/weights'``).
    value : numpy.ndarray
        The variable's own array (not a copy). Once a slim layer has used it,
        and nothing else held it then, it is read-only (NumPy raises
        "assignment destination is read-only"): the layer keeps its packed
        copy and reuses it without reading the weights again. Write with
        :meth:`assign` (setting ``value`` is ``assign``), or
        ``VariableStore.load``; do not flip ``flags.writeable`` back. While
        another reference or view of the array exists (taken before the first
        use), it stays writeable and every call checks the packing byte for
        byte, so in-place changes are seen.
    shape : tuple of int
    dtype : numpy.dtype
    trainable : bool
    """

    __slots__ = ("__weakref__", "_claimed", "_loaded", "_match_name", "_pin", "_value", "name",
                 "trainable")

    def __init__(self, name, value, trainable=True, _claimed=True):
        self.name = name
        self._value = value
        self.trainable = bool(trainable)
        self._claimed = _claimed
        self._loaded = False      # the value came from VariableStore.load / a checkpoint
        self._match_name = name + ":0"  # what TF's scope filters see
        self._pin = None          # (array, pin) while a layer keeps the array's packing

    def _pinned(self):
        """The value, with its packed copy kept by the C weight cache outside the
        cache's size limit for as long as this variable holds this array (slim
        layers pass their weights and biases through here): a big filter such as
        VGG's fc6 is not repacked at every call.

        When no one else holds the array or a view of it (see ``_exclusive``),
        the pin is *trusted*: the array is made read-only, its packing is
        checked once and then reused without reading the weights again
        (:meth:`assign` lets go of the pin before it writes). Otherwise every
        reuse is checked byte for byte, as for any array, and trust is tried
        again at the next call. An array that replaces the value is pinned
        instead of the old one."""
        pin = self._pin
        if pin is not None and pin[0] is self._value:
            if pin[2]:
                return self._value
            del pin
            if not _exclusive(self, 1):  # (the pin's tuple holds one reference)
                return self._value
        else:
            del pin
        self._pin = None  # unpin the old array first (and drop the pin's reference)
        trusted = _exclusive(self, 0)
        if trusted:
            self._value.flags.writeable = False
        self._pin = (self._value, _conv.pin_weights(self._value, trusted), trusted)
        return self._value

    def __getstate__(self):  # copy/pickle: the pin stays with this object
        return {k: getattr(self, k) for k in self.__slots__
                if k not in ("__weakref__", "_pin") and hasattr(self, k)}

    def __setstate__(self, state):
        for k, v in state.items():
            setattr(self, k, v)
        self._pin = None

    @property
    def value(self) -> np.ndarray:
        return self._value

    @value.setter
    def value(self, new_value):
        self.assign(new_value)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._value.shape

    @property
    def dtype(self) -> np.dtype:
        return self._value.dtype

    @property
    def ndim(self) -> int:
        return self._value.ndim

    @property
    def op_name(self) -> str:
        """TF's ``var.op.name``: the same as :attr:`name`."""
        return self.name

    def get_shape(self) -> tuple[int, ...]:
        """The shape, as TF's ``Variable.get_shape()``."""
        return self._value.shape

    def numpy(self) -> np.ndarray:
        """A copy of the value."""
        return self._value.copy()

    def assign(self, value: Any) -> Variable:
        """Write ``value`` into the variable (in place; cast to its dtype).

        Parameters
        ----------
        value : array_like
            Must have exactly the variable's shape.

        Returns
        -------
        Variable
            ``self``.

        Raises
        ------
        ValueError
            The shape differs; the message names the variable and both shapes.
        TypeError
            ``value`` cannot be cast safely to the variable's dtype
            (e.g. float into an integer variable).
        """
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Cannot assign {value!r} to variable {self.name!r}: {exc}") from None
        if arr.shape != self._value.shape:
            raise ValueError(f"Cannot assign a value of shape {arr.shape} to variable "
                             f"{self.name!r} of shape {self._value.shape}")
        self._pin = None  # the packing must be checked again after this write
        if not self._value.flags.writeable:
            try:  # read-only while it was pinned (_pinned): pyconv's own array
                self._value.flags.writeable = True
            except ValueError:  # truly read-only memory: the variable gets its own copy
                self._value = np.array(self._value, order="C")
        try:
            np.copyto(self._value, arr, casting="same_kind")
        except TypeError:
            raise TypeError(f"Cannot assign a value of dtype {arr.dtype} to variable "
                            f"{self.name!r} of dtype {self._value.dtype}") from None
        return self

    def __array__(self, dtype=None, copy=None):
        if copy:
            return np.array(self._value, dtype=dtype, copy=True)
        if dtype is None or np.dtype(dtype) == self._value.dtype:
            return self._value
        if copy is False:
            raise ValueError(f"variable {self.name!r} has dtype {self._value.dtype}; "
                             f"converting it to {np.dtype(dtype)} needs a copy")
        return self._value.astype(dtype)

    def __repr__(self):
        from ._reprs import stats

        text, _ = stats(self._value)
        return (f"<pyconv.Variable {self.name!r} shape={self._value.shape} "
                f"dtype={self._value.dtype}{'' if self.trainable else ' trainable=False'}"
                f"{' ' + text if text else ''}>")

    def _repr_html_(self):
        from ._reprs import variable_html

        return variable_html(self)


def _calibrate_exclusive():
    # a chain as deep as a loaded checkpoint tensor's: a view of a uint8 view of
    # a buffer object; each link held only by the next one
    var = Variable.__new__(Variable)
    var._value = np.frombuffer(bytearray(64), np.uint8)[8:40].view(np.float32)
    return _refcounts(var)


_EXCLUSIVE_COUNTS = _calibrate_exclusive()


class RegularizationLoss:
    """A variable's regularization loss, evaluated on its current value.

    Items of ``GraphKeys.REGULARIZATION_LOSSES``;
    :func:`get_regularization_losses` returns their values.
    """

    __slots__ = ("_match_name", "name", "regularizer", "variable")

    def __init__(self, name, variable, regularizer):
        self.name = name
        self.variable = variable
        self.regularizer = regularizer
        self._match_name = name + ":0"

    @property
    def value(self):
        loss = self.regularizer(self.variable._value)
        return np.float32(0.0) if loss is None else loss

    def __float__(self):
        return float(self.value)

    def __array__(self, dtype=None, copy=None):
        return np.array(self.value, dtype=dtype)

    def __add__(self, other):
        return self.value + np.asarray(other)

    __radd__ = __add__

    def __repr__(self):
        return f"<pyconv.RegularizationLoss {self.name!r} value={self.value!r}>"


# --------------------------------------------------------------------------- scopes


class VariableScope:
    """What ``with variable_scope(...) as sc`` yields; may be passed back to
    :func:`variable_scope` (or a layer's ``scope=``) to re-enter the scope.

    Attributes
    ----------
    name : str
        Full scope name, e.g. ``'block1/conv1'`` ('' at the root).
    reuse : bool or AUTO_REUSE
    original_name_scope : str
        The name scope opened when the scope was first entered, with a
        trailing '/'.
    initializer, regularizer
        Defaults for :func:`get_variable` calls without one.
    """

    __slots__ = ("initializer", "name", "original_name_scope", "regularizer", "reuse")

    def __init__(self, reuse, name="", initializer=None, regularizer=None, name_scope=""):
        self.name = name
        self.reuse = reuse
        self.initializer = initializer
        self.regularizer = regularizer
        self.original_name_scope = name_scope

    def reuse_variables(self):
        """Reuse variables in this scope from now on (TF's ``scope.reuse_variables()``)."""
        self.reuse = True

    def set_initializer(self, initializer: Initializer):
        self.initializer = initializer

    def set_regularizer(self, regularizer: Regularizer):
        self.regularizer = regularizer

    def __repr__(self):
        return f"<pyconv.VariableScope {self.name!r} reuse={self.reuse!r}>"


class _ThreadState:
    """A thread's current scopes (TF keeps these per thread, too)."""

    __slots__ = ("children", "counts", "model_getter", "name_stack", "scope")

    def __init__(self):
        self.scope = VariableScope(False)
        self.name_stack = ""
        self.model_getter = 0  # > 0 inside a slim layer's scope: its custom getter applies
        self.counts = {}    # variable scope name -> times opened (TF's variable_scopes_count)
        self.children = {}  # variable scope name -> set of scope names opened directly below it


class _ScopeFrame:
    """What entering a scope changed, for leaving it."""

    __slots__ = ("generated", "old_name_stack", "old_scope", "scope", "snapshot", "state")

    def __init__(self, state, old_scope, old_name_stack, scope, snapshot, generated):
        self.generated = generated  # key of a generated name scope, forgotten on leaving
        self.state = state
        self.old_scope = old_scope
        self.old_name_stack = old_name_stack
        self.scope = scope
        self.snapshot = snapshot


_LAYER_RENAMES = {"kernel": "weights", "bias": "biases"}


def _stable_seed(seed, name):
    """A 128-bit seed from (seed, name) that does not change between runs."""
    digest = hashlib.sha256(f"{seed}\x00{name}".encode()).digest()
    return int.from_bytes(digest[:16], "little")


def _default_float(dtype):
    return np.dtype(np.float32) if dtype is None else np.dtype(dtype)


_REUSE_MISSING = ("Variable {} does not exist, or was not created with get_variable(). "
                  "Did you mean to set reuse=AUTO_REUSE in variable_scope?")
_EXISTS = ("Variable {} already exists, disallowed. Did you mean to set reuse=True or "
           "reuse=AUTO_REUSE in variable_scope?")


class VariableStore:
    """Variables, collections and scope bookkeeping: pyconv's stand-in for a TF graph.

    Parameters
    ----------
    seed : int, optional
        Base seed of every random initial value. With None, a random base
        seed is drawn (as TF without a graph seed).

    Examples
    --------
    >>> import numpy as np
    >>> import pyconv as slim
    >>> with slim.VariableStore(seed=0) as store:
    ...     y = slim.conv2d(np.ones((1, 4, 4, 3), np.float32), 8, 3, scope='conv1')
    >>> store['conv1/weights'].shape
    (3, 3, 3, 8)
    >>> 'conv1/biases:0' in store
    True
    """

    def __init__(self, seed=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self._base_seed = (self.seed if seed is not None
                           else int.from_bytes(os.urandom(8), "little"))
        self._vars = {}
        self._collections = {}
        self._aliases = {}       # id(output) -> (output, [aliases], TF tensor name or None)
        # Name scopes made unique, as TF's graph.unique_name, stored compactly so
        # that a model called in a loop does not grow them: requested names
        # with their use counts; names generated from a base ('c_1', 'c_2', ...)
        # only as the highest suffix per base; and, per scope, the names
        # requested directly inside it, forgotten when a generated scope closes.
        self._names_in_use = {}
        self._generated_max = {}
        self._names_inside = {}
        # lower-cased TF op names of the variables: TF makes op names unique
        # case-insensitively, so 'conv/weights' after 'Conv/weights' is op 'conv/weights_1'
        self._var_op_names = set()
        self._lock = threading.RLock()
        self._local = threading.local()
        # pending loaded values by name without the top scope (see _restore.initialised)
        self._pending_tails = {}
        self._warned_scope = False
        _stores.add(self)  # its lock is renewed in a forked child (_after_fork_in_child)

    # -- default-store stack
    def __enter__(self):
        stack = getattr(_store_stack, "stack", None)
        if stack is None:
            stack = _store_stack.stack = []
        stack.append(self)
        return self

    def __exit__(self, *exc):
        stack = _store_stack.stack
        if not stack or stack[-1] is not self:
            raise RuntimeError("VariableStore contexts were exited out of order")
        stack.pop()
        return False

    # -- mapping-like access: variables only, not pending loaded values
    def _claimed_var(self, name):
        var = self._vars.get(_strip_output_index(name))
        if var is None or not var._claimed:
            hint = (" (a loaded value of that name waits for the layer that creates it)"
                    if var is not None else "")
            raise KeyError(f"no variable named {name!r} in this store{hint}")
        return var

    def __getitem__(self, name):
        """The value (ndarray) of the variable ``name`` (``':0'`` allowed)."""
        return self._claimed_var(name)._value

    def __contains__(self, name):
        if not isinstance(name, str):
            return False
        var = self._vars.get(_strip_output_index(name))
        return var is not None and var._claimed

    def __len__(self):
        """The number of variables (pending loaded values do not count)."""
        return sum(1 for v in self._vars.values() if v._claimed)

    def __iter__(self):
        return iter(self.keys())

    def keys(self) -> list[str]:
        return [n for n, v in self._vars.items() if v._claimed]

    def variables(self) -> list[Variable]:
        """Every variable created (or claimed after loading), in creation order."""
        return [v for v in self._vars.values() if v._claimed]

    def variable(self, name: str) -> Variable:
        """The :class:`Variable` object called ``name`` (``':0'`` allowed)."""
        return self._claimed_var(name)

    def __repr__(self):
        pending = len(_restore.unused_values(self))
        extra = f" unused_values={pending}" if pending else ""
        params = sum(v._value.size for v in self.variables())
        return (f"<pyconv.VariableStore seed={self.seed!r} variables={len(self)}{extra} "
                f"parameters={params:,}>")

    def _repr_html_(self):
        from ._reprs import store_html

        return store_html(self)

    # -- what loading left unmatched (pyconv/_restore.py)
    def unused_values(self) -> list[str]:
        """Names of loaded values that no variable has taken (yet), in load order.

        Before the net is built every loaded value is here; after it, the
        ones whose names match no variable of the net.
        """
        return _restore.unused_values(self)

    def variables_not_loaded(self) -> list[str]:
        """Names of the variables whose value did not come from :meth:`load` (or
        ``assign_from_checkpoint``): they hold their initial values."""
        return _restore.variables_not_loaded(self)

    def check_loaded(self) -> None:
        """Raise ``ValueError`` listing :meth:`variables_not_loaded` and
        :meth:`unused_values` unless both are empty: call it after building a
        net from loaded values to make sure every weight came from them."""
        _restore.check_loaded(self)

    # -- save / load
    def save(self, path: Any) -> None:
        """Write every variable (not pending loaded values) to an ``.npz`` file,
        keyed by full name. (:func:`pyconv.train.save_checkpoint` writes a
        TensorFlow checkpoint.)

        Parameters
        ----------
        path : str or os.PathLike or file
            As ``numpy.savez``: '.npz' is appended to a path without it.
        """
        if isinstance(path, (str, os.PathLike)):
            path = os.fspath(path)
            if not path.endswith(".npz"):
                path += ".npz"
        elif not hasattr(path, "write"):
            raise TypeError(f"save: path must be a file name, a path or a writable file, "
                            f"got {path!r}")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, var in self._vars.items():
                if not var._claimed:
                    continue
                with zf.open(name + ".npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.ascontiguousarray(var._value),
                                              allow_pickle=False)

    def load(self, values: Any, strict: bool = False, progress: Optional[bool] = None) -> list[str]:
        """Set variables from a mapping, an ``.npz`` file or a TensorFlow checkpoint.

        Names may carry TF's ``':0'``. An existing variable is assigned the
        value (shape checked, cast to its dtype). A name not yet created is
        kept as a pending value: the layer that creates that variable takes
        it (see :meth:`unused_values`, :meth:`variables_not_loaded`,
        :meth:`check_loaded`).

        Parameters
        ----------
        values : mapping, str or os.PathLike
            A dict-like of arrays; the path of an ``.npz`` file (e.g. one
            written by :meth:`save`); or any checkpoint path TF takes, V1 or V2:
            a prefix (``model.ckpt-1000``), a directory (its latest
            checkpoint), the ``.index`` file, a V1 file (``resnet_v1_50.ckpt``)
            or V1 shard pattern (see :mod:`pyconv.train`). String tensors of a
            checkpoint (e.g. TF2's ``_CHECKPOINTABLE_OBJECT_GRAPH``) are skipped.
        strict : bool, default False
            For a net already built: raise ``ValueError`` (after loading) if a
            variable did not get a loaded value or a loaded value matched no
            variable. (Loading before building: call :meth:`check_loaded`
            after building instead.)
        progress : bool, optional
            A checkpoint of 64 MiB or more shows a progress bar on a terminal
            or in a notebook; False never, True also on a non-terminal
            (``PYCONV_PROGRESS=0`` silences it everywhere).

        Returns
        -------
        list of str
            The names loaded.

        Raises
        ------
        ValueError
            A value's shape differs from an existing variable's (the message
            names the variable and both shapes); a corrupt checkpoint; with
            ``strict``, unmatched names.
        FileNotFoundError
            No file or checkpoint at that path.
        """
        return _restore.load(self, values, strict, progress)

    # -- collections
    def get_collection_ref(self, key: str) -> list[Any]:
        """The list behind collection ``key`` (created empty if needed)."""
        coll = self._collections.get(key)
        if coll is None:
            coll = self._collections[key] = []
        return coll

    def get_collection(self, key: str, scope: Optional[str] = None) -> list[Any]:
        """A copy of collection ``key``, filtered like TF by ``re.match(scope, name)``."""
        coll = self._collections.get(key)
        if not coll:
            return []
        if scope is None:
            return list(coll)
        if isinstance(scope, VariableScope):
            scope = scope.name
        regex = re.compile(scope)
        return [item for item in coll
                if (m := self._match_name(item)) is not None and regex.match(m)]

    def _match_name(self, item):
        name = getattr(item, "_match_name", None)
        if name is not None:
            return name
        entry = self._aliases.get(id(item))
        if entry is not None and entry[0] is item:
            # TF filters outputs by their tensor name ('ns/c/Relu:0'), when the layer knows it
            return entry[2] if entry[2] else entry[1][-1] + "/"
        name = getattr(item, "name", None)
        return name if isinstance(name, str) else None

    def add_to_collection(self, key: str, value: Any):
        with self._lock:
            self.get_collection_ref(key).append(value)

    def add_to_collections(self, keys, value: Any):
        keys = (keys,) if isinstance(keys, str) else set(keys)
        for key in keys:
            self.add_to_collection(key, value)

    def clear_collection(self, key: str):
        with self._lock:
            items = self._collections.pop(key, [])
            if not items:
                return
            # the aliases of the items that no other collection holds; one pass
            # over the other collections, in C (a net's end points are cleared
            # after every call; a scan per item was quadratic)
            aliases = self._aliases
            doomed = {id(item) for item in items
                      if (entry := aliases.get(id(item))) is not None and entry[0] is item}
            if doomed:
                doomed -= doomed.intersection(
                    map(id, itertools.chain.from_iterable(self._collections.values())))
                for i in doomed:
                    del aliases[i]

    def _in_any_collection(self, item):
        return any(any(x is item for x in coll) for coll in self._collections.values())

    def get_all_collection_keys(self) -> list[str]:
        return list(self._collections)

    # -- aliases of outputs (arrays cannot carry attributes)
    def _append_alias(self, output, alias, tensor_name=None):
        with self._lock:
            entry = self._aliases.get(id(output))
            if entry is None or entry[0] is not output:
                self._aliases[id(output)] = (output, [alias], tensor_name)
            else:
                entry[1].append(alias)

    def _get_aliases(self, output):
        entry = self._aliases.get(id(output))
        if entry is not None and entry[0] is output:
            return list(entry[1])
        return None

    # -- scopes
    def _state(self):
        try:
            return self._local.state
        except AttributeError:
            state = self._local.state = _ThreadState()
            return state

    def _was_generated(self, key):
        """Whether ``key`` is 'base_N' with N no higher than base's highest
        generated suffix: every such name was generated or skipped for being in use."""
        base, sep, suffix = key.rpartition("_")
        return (bool(sep) and suffix.isdigit() and suffix[0] != "0"
                and int(suffix) <= self._generated_max.get(base, 0))

    def _unique_name(self, state, name):
        """TF's ``graph.unique_name`` for a name scope: 'a', 'a_1', ... (case-insensitive).

        Returns (name, generated): ``generated`` is the lower-case key of a
        name made unique with a suffix, whose inner names are forgotten when
        it closes (``_forget_names_inside``), else None.
        """
        parent = state.name_stack
        if parent:
            name = parent + "/" + name
        key = name.lower()
        used = self._names_in_use
        i = used.get(key)
        if i is None:
            i = 1 if self._was_generated(key) else 0
        used[key] = i + 1
        if parent:
            parent_key = parent.lower()
            inside = self._names_inside.get(parent_key)
            if inside is None:
                self._names_inside[parent_key] = {key}
            else:
                inside.add(key)
        if i == 0:
            return name, None
        while f"{key}_{i}" in used or self._was_generated(f"{key}_{i}"):
            i += 1
        if i > self._generated_max.get(key, 0):
            self._generated_max[key] = i
        return f"{name}_{i}", f"{key}_{i}"

    def _forget_names_inside(self, key):
        """Drops what was recorded inside the generated name scope ``key``: it
        cannot be entered again by name, so nothing inside it can collide."""
        inside, used, generated_max = self._names_inside, self._names_in_use, self._generated_max
        pending = [key]
        while pending:
            inner = inside.pop(pending.pop(), None)
            if inner:
                for name in inner:
                    used.pop(name, None)
                    generated_max.pop(name, None)
                pending.extend(inner)

    def _push_scope(self, name_or_scope, default_name=None, reuse=None, initializer=None,
                    regularizer=None):
        """Enter a variable scope (and its name scope); returns the frame for _pop_scope."""
        try:
            state = self._local.state
        except AttributeError:
            state = self._state()
        old = state.scope
        counts = state.counts
        snapshot = None
        if name_or_scope is None:
            if not isinstance(default_name, str):
                if default_name is None:
                    raise TypeError("If default_name is None then name_or_scope is required")
                raise TypeError(f"default_name must be a string, got {default_name!r}")
            if reuse:
                raise ValueError("reuse=True cannot be used without a name_or_scope")
            name_scope, generated = self._unique_name(state, default_name)
            new_name = old.name + "/" + default_name if old.name else default_name
            if counts.get(new_name, 0):
                idx = 1
                while counts.get(f"{new_name}_{idx}", 0):
                    idx += 1
                new_name = f"{new_name}_{idx}"
            scope = VariableScope(old.reuse, new_name, old.initializer, old.regularizer,
                                  name_scope + "/")
        elif isinstance(name_or_scope, str):
            name_scope, generated = (self._unique_name(state, name_or_scope) if name_or_scope
                                     else (state.name_stack, None))
            new_name = old.name + "/" + name_or_scope if old.name else name_or_scope
            scope = VariableScope(reuse or old.reuse, new_name, old.initializer,
                                  old.regularizer, name_scope + "/" if name_scope else "")
        elif isinstance(name_or_scope, VariableScope):
            new_name = name_or_scope.name
            name_scope, generated = (self._unique_name(state, new_name.rsplit("/", 1)[-1])
                                     if new_name else (state.name_stack, None))
            scope = VariableScope(reuse if reuse else name_or_scope.reuse, new_name,
                                  name_or_scope.initializer, name_or_scope.regularizer,
                                  name_or_scope.original_name_scope)
        else:
            raise TypeError("VariableScope: name_or_scope must be a string or VariableScope, "
                            f"got {name_or_scope!r}")
        if initializer is not None:
            scope.initializer = initializer
        if regularizer is not None:
            scope.regularizer = regularizer
        counts[new_name] = counts.get(new_name, 0) + 1
        if new_name:  # the root scope is nobody's child
            parent = new_name.rpartition("/")[0]
            kids = state.children.get(parent)
            if kids is None:
                state.children[parent] = {new_name}
            else:
                kids.add(new_name)
        if isinstance(name_or_scope, VariableScope):
            snapshot = (dict(counts), {k: set(v) for k, v in state.children.items()})
        frame = _ScopeFrame(state, old, state.name_stack, scope, snapshot, generated)
        state.scope = scope
        state.name_stack = name_scope
        return frame

    def _pop_scope(self, frame):
        state = frame.state
        if frame.snapshot is not None:
            state.counts, state.children = frame.snapshot
        elif frame.scope.name:
            # TF forgets the counts of every scope opened inside the one we leave.
            children = state.children
            pending = list(children.pop(frame.scope.name, ()))
            counts = state.counts
            while pending:
                name = pending.pop()
                counts.pop(name, None)
                pending.extend(children.pop(name, ()))
        state.scope = frame.old_scope
        state.name_stack = frame.old_name_stack
        if frame.generated is not None:
            self._forget_names_inside(frame.generated)

    def _push_name_scope(self, name, default_name):
        """Enter a name scope only (pools); returns (frame, unique name)."""
        state = self._state()
        if name is None:
            name = default_name
        old = state.name_stack
        generated = None
        if name.endswith("/"):  # an absolute scope, re-entered as is
            new = name[:-1]
        else:
            new, generated = self._unique_name(state, name)
        state.name_stack = new
        return (state, old, generated), new

    def _pop_name_scope(self, frame):
        state, old, generated = frame
        state.name_stack = old
        if generated is not None:
            self._forget_names_inside(generated)

    # -- variables
    def get_variable(self, name: str, shape: Optional[Sequence[int]] = None, dtype: Any = None,
                     initializer: Optional[Initializer] = None,
                     regularizer: Optional[Regularizer] = None, trainable: bool = True,
                     collections: Optional[Sequence[str]] = None) -> Variable:
        """Get or create ``name`` in the current variable scope of this store.

        Same as :func:`pyconv.get_variable` but on this store. See there.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"get_variable: name must be a non-empty string, got {name!r}")
        state = self._state()
        scope = state.scope
        if state.model_getter:
            # slim's layers open their scope with a model-variable getter that renames
            # the Keras names: variables that callables create there are model variables
            name = _LAYER_RENAMES.get(name, name)
            collections = list(collections or []) + [GraphKeys.GLOBAL_VARIABLES,
                                                      GraphKeys.MODEL_VARIABLES]
        full = scope.name + "/" + name if scope.name else name
        if shape is not None and not isinstance(shape, tuple):
            shape = _check_shape(shape, full)
        return self._get_variable(full, shape, dtype, initializer, regularizer, trainable,
                                  collections, scope)

    def _get_variable(self, full, shape, dtype, initializer, regularizer, trainable,
                      collections, scope, loss_base=None):
        """The one place that applies TF's reuse rules.

        ``loss_base`` names the regularization loss (default ``full``): slim's
        conv2d names it after the Keras weight, ``<scope>/kernel``.
        """
        reuse = scope.reuse
        var = self._vars.get(full)
        if var is not None and var._claimed:
            if reuse is False or reuse is None:
                raise ValueError(_EXISTS.format(full))
            if shape is not None and tuple(shape) != var._value.shape:
                raise ValueError(f"Trying to share variable {full}, but specified shape {tuple(shape)} and "
                                 f"found shape {var._value.shape}.")
            if dtype is not None and np.dtype(dtype) != var._value.dtype:
                raise ValueError(f"Trying to share variable {full}, but specified dtype {np.dtype(dtype)} and "
                                 f"found dtype {var._value.dtype}.")
            return var
        if var is None and reuse is True:
            raise ValueError(_REUSE_MISSING.format(full))
        if initializer is None:
            initializer = scope.initializer
        if regularizer is None:
            regularizer = scope.regularizer
            loss_base = None  # the scope's regularizer: TF names the loss after the variable
        with self._lock:
            return self._create(full, shape, dtype, initializer, regularizer, trainable,
                                collections, loss_base or full)

    def _create(self, full, shape, dtype, initializer, regularizer, trainable, collections,
                loss_base):
        pending = self._vars.get(full)
        if pending is not None and pending._claimed:  # created by another thread meanwhile
            return pending
        shape = _check_shape(shape, full)
        collections = _check_collection_names(collections, full)
        if regularizer is not None and not callable(regularizer):
            raise TypeValueError(f"regularizer of variable {full} must be a callable or None, "
                            f"got {regularizer!r}")
        if pending is not None:
            _restore.claimed(self, full)
            value = pending._value
            if shape is not None and value.shape != shape:
                raise ValueError(f"Variable {full} was loaded with shape {value.shape}, but "
                                 f"the layer needs shape {shape}.")
            if dtype is not None and value.dtype != np.dtype(dtype):
                value = _cast_value(value, np.dtype(dtype), f"variable {full} (loaded)")
            var = pending
            self._var_op_names.add(full.lower())
            var._value = value
            var.trainable = bool(trainable)
            var._claimed = True
            del self._vars[full]  # re-insert: creation order is claim order
        else:
            value = self._initial_value(full, shape, dtype, initializer)
            var = Variable(self._variable_op_name(full), value, trainable)
            _restore.initialised(self, full)
        self._vars[full] = var
        keys = [GraphKeys.GLOBAL_VARIABLES] if collections is None else list(collections)
        if trainable and GraphKeys.TRAINABLE_VARIABLES not in keys:
            keys.append(GraphKeys.TRAINABLE_VARIABLES)
        for key in dict.fromkeys(keys):
            self.get_collection_ref(key).append(var)
        # TF adds the loss unless the regularizer returns None; pyconv's own never
        # do (a zero scale gives None instead of a function), so they are not
        # evaluated here: on VGG's 100M-weight fc6 that took seconds at every build
        if regularizer is not None and (getattr(regularizer, "_never_none", False)
                                        or regularizer(var._value) is not None):
            reg_name = getattr(regularizer, "__name__", "regularizer")
            self.get_collection_ref(GraphKeys.REGULARIZATION_LOSSES).append(
                RegularizationLoss(f"{loss_base}/Regularizer/{reg_name}", var, regularizer))
        return var

    def _variable_op_name(self, full):
        """TF's op name of a new variable: ``full``, made unique case-insensitively
        among the variables' op names (``conv/weights_1`` after ``Conv/weights``)."""
        key = full.lower()
        if key in self._var_op_names:
            i = 1
            while f"{key}_{i}" in self._var_op_names:
                i += 1
            full, key = f"{full}_{i}", f"{key}_{i}"
        self._var_op_names.add(key)
        return full

    def _initial_value(self, full, shape, dtype, initializer):
        if initializer is not None and not callable(initializer):
            value = np.asarray(initializer)
            if shape is not None and value.shape != shape:
                raise ValueError(f"The initial value given for variable {full} has shape "
                                 f"{value.shape}, but the variable's shape is {shape}.")
            dt = np.dtype(dtype) if dtype is not None else (
                value.dtype if value.dtype.kind == "f" else np.dtype(np.float32))
            return _cast_value(value, dt, f"the initial value of variable {full}").copy(order="C")
        if shape is None:
            raise ValueError(f"Shape of a new variable ({full}) must be fully defined, "
                             "but instead was None.")
        dt = _default_float(dtype)
        nbytes = math.prod(shape) * dt.itemsize
        if nbytes > _CHECKED_BYTES:
            _memory.check(f"creating variable {full} of shape {shape}",
                          {"value": nbytes, "float64 random draw": nbytes // dt.itemsize * 8})
        if initializer is None:
            initializer = (_initializers.xavier_initializer() if dt.kind == "f"
                           else _initializers.zeros_initializer())
        if isinstance(initializer, _initializers.Initializer):
            rng = (np.random.default_rng(_stable_seed(self._base_seed, full))
                   if initializer.random and initializer.seed is None else None)
            value = initializer(shape, dt, rng=rng)
        else:
            if _accepts_partition_info(initializer):
                value = initializer(list(shape), dtype=dt, partition_info=None)
            else:
                value = initializer(list(shape), dtype=dt)
        try:
            value = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"The initializer of variable {full} returned {value!r}, "
                             f"not an array: {exc}") from None
        if value.shape != shape:
            raise ValueError(f"The initializer of variable {full} returned shape "
                             f"{value.shape}, expected {shape}.")
        return _cast_value(value, dt, f"the initial value of variable {full}").copy(order="C")


# Variables beyond this size get a memory check before their value is drawn.
_CHECKED_BYTES = 1 << 24


def _cast_value(value, dtype, what):
    """``value`` as ``dtype``, refusing casts that lose meaning (complex, strings, objects)."""
    if value.dtype == dtype:
        return value
    if value.dtype.kind not in "biuf" or not np.can_cast(value.dtype, dtype, "same_kind"):
        raise TypeError(f"{what} has dtype {value.dtype}, which cannot be cast to {dtype}")
    return value.astype(dtype)


def _check_shape(shape, full):
    if shape is None:
        return None
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        raise TypeError(f"shape of variable {full} must be a sequence of ints, got {shape!r}")
    dims = []
    for d in shape:
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral):
            raise TypeError(f"shape of variable {full} must be a sequence of ints, "
                            f"got {shape!r}")
        if d < 0:
            raise ValueError(f"shape of variable {full} must not have negative dimensions, "
                             f"got {tuple(shape)!r}")
        dims.append(int(d))
    return tuple(dims)


def _check_collection_names(collections, full):
    if collections is None:
        return None
    if isinstance(collections, str):
        return [collections]
    if not isinstance(collections, (list, tuple, set)):
        raise TypeError(f"collections of variable {full} must be a list of collection names, "
                        f"got {collections!r}")
    return list(collections)


def _accepts_partition_info(fn):
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "partition_info" in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


# --------------------------------------------------------------------------- fork

# A forked child has only the thread that forked: a store lock another thread
# held at that moment (it is held while an initializer runs) would stay locked
# forever, and the child's next get_variable would hang. The child gets a
# fresh lock for every store, except one the forking thread itself holds (it
# forked from an initializer) and will release. The store's dicts are only
# ever changed one operation at a time under the GIL, so they are consistent.
import weakref  # noqa: E402

_stores = weakref.WeakSet()


def _after_fork_in_child():
    for store in list(_stores):
        if not store._lock._is_owned():
            store._lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# --------------------------------------------------------------------------- default store

_store_stack = threading.local()
_global_store = VariableStore()


def get_default_store() -> VariableStore:
    """The store of the innermost ``with VariableStore()`` of this thread, else
    the process-wide default store."""
    stack = getattr(_store_stack, "stack", None)
    return stack[-1] if stack else _global_store


def reset_default_store(seed: Optional[int] = None) -> VariableStore:
    """Replace the process-wide default store by an empty one and return it.

    Parameters
    ----------
    seed : int, optional
        The new store's seed.

    Raises
    ------
    RuntimeError
        Called inside a ``with VariableStore()`` block (as
        ``tf.reset_default_graph`` inside a graph context).
    """
    global _global_store
    if getattr(_store_stack, "stack", None):
        raise RuntimeError("reset_default_store() cannot be called inside a "
                           "`with VariableStore()` block")
    _global_store = VariableStore(seed)
    return _global_store


class variable_scope:
    """Context manager for a variable scope, as ``tf.compat.v1.variable_scope``.

    Parameters
    ----------
    name_or_scope : str, VariableScope or None
        The scope to open, relative to the current one (a string), or a
        scope object to jump into (absolute).
    default_name : str, optional
        Used, made unique (``Conv``, ``Conv_1``, ...), when
        ``name_or_scope`` is None.
    values : list, optional
        Ignored (TF uses it to pick the graph).
    initializer, regularizer : optional
        Defaults for :func:`get_variable` calls in this scope and below.
    reuse : None, True, False or AUTO_REUSE
        None/False inherit the enclosing scope's mode; True and AUTO_REUSE
        apply to this scope and every scope inside it.

    Yields
    ------
    VariableScope

    Raises
    ------
    ValueError
        ``reuse=True`` (or AUTO_REUSE) without a name; a ``reuse`` value that
        is not one of the four.
    TypeError
        Neither ``name_or_scope`` nor ``default_name`` given, or
        ``name_or_scope`` of another type.

    Examples
    --------
    >>> import pyconv as slim
    >>> with slim.VariableStore(seed=0):
    ...     with slim.variable_scope('net'):
    ...         w = slim.get_variable('w', [2])
    ...     with slim.variable_scope('net', reuse=True):
    ...         w2 = slim.get_variable('w', [2])
    >>> w is w2, w.name
    (True, 'net/w')
    """

    __slots__ = ("_args", "_frame", "_store")

    def __init__(self, name_or_scope, default_name=None, values=None, initializer=None,
                 regularizer=None, reuse=None):
        if default_name is None and name_or_scope is None:
            raise TypeError("If default_name is None then name_or_scope is required")
        if reuse is not None:
            reuse = _check_reuse(reuse)
            if reuse is False:
                reuse = None  # False means "inherit", as None
        self._args = (name_or_scope, default_name, reuse, initializer, regularizer)
        self._frame = None

    def __enter__(self):
        if self._frame is not None:
            raise RuntimeError("this variable_scope is already entered")
        stack = getattr(_store_stack, "stack", None)  # get_default_store(), inline
        self._store = stack[-1] if stack else _global_store
        self._frame = self._store._push_scope(*self._args)
        return self._frame.scope

    def __exit__(self, *exc):
        frame = self._frame
        if frame.state.scope is not frame.scope:
            raise RuntimeError("Improper nesting of variable_scope.")
        self._frame = None
        self._store._pop_scope(frame)
        return False


class name_scope:
    """Context manager for a name scope only, as ``tf.name_scope``; yields the
    unique scope name with a trailing '/'.

    Variable names do not depend on name scopes; output aliases of pools do.
    """

    __slots__ = ("_default", "_frame", "_name", "_store")

    def __init__(self, name, default_name=None, values=None):
        if name is None and default_name is None:
            raise TypeError("name_scope needs a name or a default_name")
        self._name = name
        self._default = default_name
        self._frame = None

    def __enter__(self):
        self._store = get_default_store()
        self._frame, new = self._store._push_name_scope(self._name, self._default)
        return new + "/" if new else ""

    def __exit__(self, *exc):
        self._store._pop_name_scope(self._frame)
        return False


def get_variable_scope() -> VariableScope:
    """The current :class:`VariableScope` of this thread in the default store."""
    return get_default_store()._state().scope


# --------------------------------------------------------------------------- get / create


def get_variable(name: str, shape: Optional[Sequence[int]] = None, dtype: Any = None,
                 initializer: Optional[Initializer] = None,
                 regularizer: Optional[Regularizer] = None, trainable: bool = True,
                 collections: Optional[Sequence[str]] = None) -> Variable:
    """Get an existing variable or create a new one, as ``tf.compat.v1.get_variable``.

    The full name is the current variable scope's name + '/' + ``name``.

    Parameters
    ----------
    name : str
    shape : sequence of int, optional
        Required to create a variable unless ``initializer`` is an array.
        When getting an existing variable, it must match.
    dtype : dtype, optional
        Default float32 (or the array initializer's float dtype).
    initializer : callable or array_like, optional
        Default: the scope's initializer, else Glorot uniform.
    regularizer : callable, optional
        Default: the scope's. Its loss on the new variable is registered in
        ``GraphKeys.REGULARIZATION_LOSSES`` once, at creation.
    trainable : bool, default True
        Also add the variable to ``GraphKeys.TRAINABLE_VARIABLES``.
    collections : list of str, optional
        Default ``[GraphKeys.GLOBAL_VARIABLES]``.

    Returns
    -------
    Variable

    Raises
    ------
    ValueError
        The variable exists and the scope does not reuse; it does not exist
        and the scope has ``reuse=True``; shape or dtype differ from the
        existing variable's. Each message names the variable.
    """
    return get_default_store().get_variable(name, shape, dtype, initializer, regularizer,
                                            trainable, collections)


@add_arg_scope
def variable(name: str, shape: Optional[Sequence[int]] = None, dtype: Any = None,
             initializer: Optional[Initializer] = None, regularizer: Optional[Regularizer] = None,
             trainable: bool = True, collections: Optional[Sequence[str]] = None) -> Variable:
    """slim's ``variable``: :func:`get_variable` with duplicate collections removed."""
    if collections is not None:
        collections = list(dict.fromkeys(collections))
    return get_variable(name, shape, dtype, initializer, regularizer, trainable, collections)


@add_arg_scope
def model_variable(name: str, shape: Optional[Sequence[int]] = None, dtype: Any = np.float32,
                   initializer: Optional[Initializer] = None,
                   regularizer: Optional[Regularizer] = None, trainable: bool = True,
                   collections: Optional[Sequence[str]] = None) -> Variable:
    """slim's ``model_variable``: a variable also in ``GLOBAL_VARIABLES`` and
    ``MODEL_VARIABLES`` (plus ``collections``)."""
    collections = list(collections or []) + [GraphKeys.GLOBAL_VARIABLES,
                                              GraphKeys.MODEL_VARIABLES]
    return variable(name, shape, dtype, initializer, regularizer, trainable, collections)


def add_model_variable(var):
    """Add ``var`` to ``GraphKeys.MODEL_VARIABLES`` unless it is there already."""
    coll = get_default_store().get_collection_ref(GraphKeys.MODEL_VARIABLES)
    if not any(v is var for v in coll):
        coll.append(var)


def _model_variable(store, scope, short_name, shape, dtype, initializer, regularizer,
                    trainable, variables_collections, collections_key, loss_name=None):
    """The layers' fast path: slim's model_variable + _add_variable_to_collections."""
    full = scope.name + "/" + short_name if scope.name else short_name
    var = store._vars.get(full)
    if var is not None and var._claimed and scope.reuse and var._value.shape == shape \
            and var._value.dtype == dtype:
        pass  # reuse of a matching variable: nothing else to check
    else:
        loss_base = None
        if loss_name is not None:
            # TF's layer names the loss inside its *name* scope ('foo/c/kernel/...' in
            # name_scope('foo'), 'net_1/b/kernel/...' in a re-entered variable_scope)
            name_scope = store._state().name_stack
            loss_base = name_scope + "/" + loss_name if name_scope else loss_name
        var = store._get_variable(full, shape, dtype, initializer, regularizer, trainable,
                                  [GraphKeys.GLOBAL_VARIABLES, GraphKeys.MODEL_VARIABLES], scope,
                                  loss_base)
    if variables_collections:
        _add_to_variables_collections(store, var, variables_collections, collections_key)
    return var


def _add_to_variables_collections(store, var, variables_collections, key):
    """slim's ``_add_variable_to_collections``: the entry for ``key`` (of a dict)
    or the whole value, iterated as TF-Slim iterates it: a string gives one
    collection per character (``'ab'`` -> ``'a'`` and ``'b'``), each item of a
    list is a name (or an iterable of names), a set or dict gives its keys."""
    names = variables_collections.get(key) if isinstance(variables_collections, dict) \
        else variables_collections
    if not names:
        return
    for item in names:
        for name in (item,) if isinstance(item, str) else item:
            coll = store.get_collection_ref(name)
            if not any(v is var for v in coll):
                coll.append(var)


# --------------------------------------------------------------------------- lookups


def get_collection(key: str, scope: Optional[str] = None) -> list[Any]:
    """A copy of the default store's collection ``key``, optionally filtered by
    ``scope`` (a regex matched at the start of each item's TF name, e.g.
    ``'conv1/weights:0'``; a :class:`VariableScope` means its name)."""
    return get_default_store().get_collection(key, scope)


def get_collection_ref(key: str) -> list[Any]:
    """The default store's list behind collection ``key`` (modifiable)."""
    return get_default_store().get_collection_ref(key)


def add_to_collection(name: str, value: Any):
    """Append ``value`` to collection ``name`` of the default store."""
    get_default_store().add_to_collection(name, value)


def add_to_collections(names, value: Any):
    """Append ``value`` to each collection in ``names`` (a string or a list)."""
    get_default_store().add_to_collections(names, value)


def clear_collection(name: str):
    """Empty collection ``name`` of the default store."""
    get_default_store().clear_collection(name)


def get_variables(scope: Optional[str] = None, suffix: Optional[str] = None,
                  collection: str = GraphKeys.GLOBAL_VARIABLES) -> list[Variable]:
    """Variables of ``collection``, filtered by ``scope`` and/or ``suffix``, as slim.

    Parameters
    ----------
    scope : str or VariableScope, optional
        A regex matched at the start of the name (so ``'conv1'`` also
        matches ``'conv1_1/...'``; use ``'conv1/'`` for the scope alone).
    suffix : str, optional
        Matched at the end of the name (e.g. ``'weights'``).
    collection : str, default GraphKeys.GLOBAL_VARIABLES
    """
    if scope and isinstance(scope, VariableScope):
        scope = scope.name
    if suffix is not None:
        if ":" not in suffix:
            suffix += ":"
        scope = (scope or "") + ".*" + suffix
    return get_default_store().get_collection(collection, scope)


def get_model_variables(scope: Optional[str] = None,
                        suffix: Optional[str] = None) -> list[Variable]:
    """Variables in ``GraphKeys.MODEL_VARIABLES`` (see :func:`get_variables`)."""
    return get_variables(scope, suffix, GraphKeys.MODEL_VARIABLES)


def get_trainable_variables(scope: Optional[str] = None,
                            suffix: Optional[str] = None) -> list[Variable]:
    """Variables in ``GraphKeys.TRAINABLE_VARIABLES`` (see :func:`get_variables`)."""
    return get_variables(scope, suffix, GraphKeys.TRAINABLE_VARIABLES)


def get_local_variables(scope: Optional[str] = None,
                        suffix: Optional[str] = None) -> list[Variable]:
    """Variables in ``GraphKeys.LOCAL_VARIABLES`` (see :func:`get_variables`)."""
    return get_variables(scope, suffix, GraphKeys.LOCAL_VARIABLES)


def global_variables(scope: Optional[str] = None) -> list[Variable]:
    """``tf.compat.v1.global_variables``."""
    return get_collection(GraphKeys.GLOBAL_VARIABLES, scope)


def trainable_variables(scope: Optional[str] = None) -> list[Variable]:
    """``tf.compat.v1.trainable_variables``."""
    return get_collection(GraphKeys.TRAINABLE_VARIABLES, scope)


def get_variables_by_suffix(suffix: str, scope: Optional[str] = None) -> list[Variable]:
    """Variables whose name ends with ``suffix``."""
    return get_variables(scope=scope, suffix=suffix)


def get_variables_by_name(given_name: str, scope: Optional[str] = None) -> list[Variable]:
    """Variables called ``given_name`` (the last component of the name), e.g.
    every ``'weights'``."""
    suffix = "/" + given_name + ":|^" + given_name + ":"
    return get_variables(scope=scope, suffix=suffix)


def get_unique_variable(var_op_name: str) -> Variable:
    """The variable whose full name is exactly ``var_op_name``.

    Raises
    ------
    ValueError
        No variable, or none with exactly that name.
    """
    candidates = get_variables(scope=var_op_name)
    if not candidates:
        raise ValueError(f"Couldn't find variable {var_op_name}")
    for candidate in candidates:
        if candidate.name == _strip_output_index(var_op_name):
            return candidate
    raise ValueError(f"Variable {var_op_name} does not uniquely identify a variable")


def get_variables_to_restore(include: Optional[Sequence[str]] = None,
                             exclude: Optional[Sequence[str]] = None) -> list[Variable]:
    """Global variables under the scopes in ``include`` (default all) and not
    under those in ``exclude``, as slim.

    Raises
    ------
    TypeError
        ``include`` or ``exclude`` is not a list or tuple.
    """
    if include is None:
        chosen = get_variables()
    else:
        if not isinstance(include, (list, tuple)):
            raise TypeError("include is provided but is not a list or a tuple.")
        chosen = []
        for scope in include:
            chosen += get_variables(scope)
    excluded = set()
    if exclude is not None:
        if not isinstance(exclude, (list, tuple)):
            raise TypeError("exclude is provided but is not a list or a tuple.")
        for scope in exclude:
            excluded |= {id(v) for v in get_variables(scope)}
    return [v for v in chosen if id(v) not in excluded]


def get_regularization_losses(scope: Optional[str] = None) -> list[Any]:
    """The regularization losses of the default store, evaluated on the
    variables' current values (NumPy scalars), optionally filtered by scope.

    Examples
    --------
    >>> import numpy as np
    >>> import pyconv as slim
    >>> with slim.VariableStore(seed=0):
    ...     w = slim.get_variable('w', initializer=np.array([3.0, 4.0]),
    ...                           regularizer=slim.l2_regularizer(0.1))
    ...     [float(v) for v in slim.get_regularization_losses()]
    [1.25]
    """
    items = get_collection(GraphKeys.REGULARIZATION_LOSSES, scope)
    return [item.value if isinstance(item, RegularizationLoss) else item for item in items]


def get_regularization_loss(scope: Optional[str] = None):
    """The sum of :func:`get_regularization_losses` (0.0 when there are none)."""
    losses = get_regularization_losses(scope)
    if not losses:
        return np.float32(0.0)
    total = losses[0]
    for loss in losses[1:]:
        total = total + loss
    return total


# --------------------------------------------------------------------------- named outputs


def append_tensor_alias(tensor, alias: str):
    """Record ``alias`` (a trailing '/' is dropped) for the array ``tensor``."""
    alias = alias.removesuffix("/")
    get_default_store()._append_alias(tensor, alias)
    return tensor


def collect_named_outputs(collections: Sequence[str], alias: str, outputs,
                          tensor_name: Optional[str] = None):
    """Add ``outputs`` to ``collections`` under ``alias``, as slim's
    ``utils.collect_named_outputs``; returns ``outputs``. Nothing happens when
    ``collections`` is empty. ``tensor_name`` (pyconv's layers pass TF's, e.g.
    ``'ns/c/Relu:0'``) is what ``get_collection(key, scope)`` matches, as TF
    matches the tensor's name; without it, the alias and a '/'."""
    if collections:
        store = get_default_store()
        alias = alias.removesuffix("/")
        # store._append_alias, then store.add_to_collections, under one hold of the lock
        with store._lock:
            entry = store._aliases.get(id(outputs))
            if entry is None or entry[0] is not outputs:
                store._aliases[id(outputs)] = (outputs, [alias], tensor_name)
            else:
                entry[1].append(alias)
            for key in (collections,) if isinstance(collections, str) else set(collections):
                store.get_collection_ref(key).append(outputs)
    return outputs


def get_tensor_aliases(tensor):
    """The aliases recorded for ``tensor``; for a variable, its name; else []."""
    aliases = get_default_store()._get_aliases(tensor)
    if aliases is not None:
        return aliases
    name = getattr(tensor, "name", None)
    return [name] if isinstance(name, str) else []


def convert_collection_to_dict(collection: str, clear_collection: bool = False) -> dict[str, Any]:
    """``OrderedDict`` ``{alias: array}`` of a collection of layer outputs.

    Parameters
    ----------
    collection : str
        E.g. the ``outputs_collections`` given to the layers.
    clear_collection : bool, default False
        Empty the collection afterwards.

    Examples
    --------
    >>> import numpy as np
    >>> import pyconv as slim
    >>> with slim.VariableStore(seed=0):
    ...     y = slim.conv2d(np.ones((1, 4, 4, 1)), 2, 3, scope='conv1',
    ...                     outputs_collections='end_points')
    ...     list(slim.convert_collection_to_dict('end_points'))
    ['conv1']
    """
    store = get_default_store()
    output = OrderedDict()
    for item in store.get_collection(collection):
        aliases = store._get_aliases(item)  # get_tensor_aliases(item), in this store
        if aliases is None:
            name = getattr(item, "name", None)
            aliases = [name] if isinstance(name, str) else []
        for alias in aliases:
            output[alias] = item
    if clear_collection:
        store.clear_collection(collection)
    return output
