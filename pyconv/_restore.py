"""Checkpoint values into variables: ``VariableStore.load`` and slim's
``assign_from_checkpoint`` / ``assign_from_checkpoint_fn``.

Nothing is dropped silently. A value loaded before the net is built is
*pending* until the layer that creates that variable takes it. The store
then says which of its variables did not come from loaded values
(:meth:`VariableStore.variables_not_loaded`) and which loaded values no
variable took (:meth:`VariableStore.unused_values`); ``check_loaded()``
raises listing both, and ``load(..., strict=True)`` does the same for a net
that is already built. A variable initialised while a pending value has its
name under another top scope (``resnet_v1/conv1/weights`` created while
``resnet_v1_50/conv1/weights`` waits: the net was built under another scope
name) gives a warning at once.
"""

import os
import warnings

import numpy as np

__all__ = ["assign_from_checkpoint", "assign_from_checkpoint_fn"]


def _strip(name):
    from .variables import _strip_output_index

    return _strip_output_index(name)


def _is_npz(path):
    """An .npz by name, or a zip file by its first bytes (not zipfile.is_zipfile:
    it searches the end of the file, where a checkpoint's data may hold the bytes)."""
    if path.endswith(".npz"):
        return True
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def read_values(values):
    """(name, ndarray, fresh) from a mapping, an ``.npz`` path or a checkpoint path;
    ``fresh`` arrays belong to nobody else and are kept without a copy. A
    checkpoint is read one tensor at a time, so loading it needs no more memory
    than its tensors."""
    if isinstance(values, (str, os.PathLike)):
        path = os.fspath(values)
        if _is_npz(path):
            with np.load(path, allow_pickle=False) as npz:
                return [(k, npz[k], True) for k in npz.files]
        from . import train

        reader = train.load_checkpoint(path)
        dtypes = reader.get_variable_to_dtype_map()

        def tensors():
            with reader:
                # string tensors (TF2's _CHECKPOINTABLE_OBJECT_GRAPH, vocabularies) are
                # no variables of a net: not loaded
                for n in sorted(dtypes):
                    if dtypes[n] != np.dtype(object):
                        yield n, np.asarray(reader.get_tensor(n)), True
        return tensors()
    if hasattr(values, "items") and callable(values.items):
        return [(k, v, False) for k, v in values.items()]
    raise TypeError("load: values must be a mapping {name: array}, the path of an .npz "
                    f"file or a TensorFlow checkpoint (prefix, directory, .index or V1 "
                    f"file), got {values!r}")


def load(store, values, strict=False):
    """The body of :meth:`VariableStore.load` (see there)."""
    from .variables import Variable

    items = read_values(values)
    loaded = []
    with store._lock:
        for raw_name, value, fresh in items:
            name = _strip(raw_name)
            arr = np.asarray(value)
            var = store._vars.get(name)
            if var is None or not var._claimed:
                own = arr if fresh and arr.flags.c_contiguous and arr.flags.writeable else \
                    np.array(arr, copy=True, order="C")
            if var is None:
                var = Variable(name, own, True, _claimed=False)
                var._loaded = True
                store._vars[name] = var
                store._pending_tails[name.split("/", 1)[-1]] = name
            elif not var._claimed:
                var._value = own
            else:
                if arr.shape != var._value.shape:
                    raise ValueError(f"Cannot load a value of shape {arr.shape} into "
                                     f"variable {name!r} of shape {var._value.shape}")
                var.assign(arr)
                var._loaded = True
            loaded.append(name)
        store._warned_scope = False
    if strict:
        if not store.variables():
            raise ValueError("load(strict=True) compares the loaded values with the store's "
                             "variables, but no variable exists yet: build the net first, or "
                             "load, build it, then call store.check_loaded()")
        check_loaded(store)
    return loaded


def claimed(store, name):
    """A pending value was taken by the variable ``name``."""
    tail = name.split("/", 1)[-1]
    if store._pending_tails.get(tail) == name:
        del store._pending_tails[tail]


def initialised(store, name):
    """The variable ``name`` got its initial value, not a loaded one: warn once if a
    loaded value waits under the same name in another top scope."""
    if not store._pending_tails or store._warned_scope or "/" not in name:
        return
    other = store._pending_tails.get(name.split("/", 1)[1])
    if other is None or other == name:
        return
    store._warned_scope = True
    n = len(store.unused_values())
    warnings.warn(
        f"variable {name!r} was initialised, not loaded, while the loaded value "
        f"{other!r} waits ({n} loaded values are not taken yet): was the net built under "
        "another scope name than the checkpoint's? store.variables_not_loaded() and "
        "store.unused_values() list them; store.check_loaded() raises", stacklevel=4)


def unused_values(store):
    return [n for n, v in store._vars.items() if not v._claimed]


def variables_not_loaded(store):
    return [n for n, v in store._vars.items() if v._claimed and not v._loaded]


def _listing(names, limit=20):
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def check_loaded(store):
    missing = variables_not_loaded(store)
    unused = unused_values(store)
    if not missing and not unused:
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} variables did not come from the loaded values: "
                     f"{_listing(missing)}")
    if unused:
        parts.append(f"{len(unused)} loaded values were taken by no variable: "
                     f"{_listing(unused)}")
    raise ValueError("; ".join(parts) + " (names differ? compare the scopes of the net with "
                     "pyconv.train.list_variables(checkpoint))")


# --------------------------------------------------------------------------- slim's API


def _group(var_list, fn_name):
    """slim's normalisation: {checkpoint name: [variables]}."""
    from .variables import Variable

    grouped = {}
    if isinstance(var_list, (tuple, list)):
        for var in var_list:
            if not isinstance(var, Variable):
                raise TypeError(f"{fn_name}: var_list holds variables, got {var!r}")
            grouped.setdefault(var.name, []).append(var)
    elif hasattr(var_list, "items"):
        for ckpt_name, value in var_list.items():
            vs = list(value) if isinstance(value, (tuple, list)) else [value]
            for var in vs:
                if not isinstance(var, Variable):
                    raise TypeError(f"{fn_name}: var_list maps checkpoint names to variables, "
                                    f"got {ckpt_name!r}: {var!r}")
            grouped[_strip(ckpt_name)] = vs
    else:
        raise TypeError(f"{fn_name}: var_list must be a list of variables or a dict "
                        f"{{checkpoint name: variable}}, got {var_list!r}")
    return grouped


class AssignOp:
    """What pyconv's :func:`assign_from_checkpoint` returns in place of TF's
    ``assign_op``: call it (``assign_op()``, or ``assign_op(sess)`` as TF code
    runs it; the session is ignored) to write the values into the variables."""

    def __init__(self, pairs):
        self._pairs = pairs

    def __call__(self, session=None, feed_dict=None):
        for var, value in self._pairs:
            var.assign(value if feed_dict is None else feed_dict.get(var, value))
            var._loaded = True

    def __repr__(self):
        return f"<pyconv AssignOp of {len(self._pairs)} variables>"


def _shape_error(ckpt_name, ckpt_shape, var_shape):
    return ValueError(f"Total size of new array must be unchanged for {ckpt_name} "
                      f"lh_shape: [{ckpt_shape}], rh_shape: [{var_shape}]")


def assign_from_checkpoint(model_path, var_list, ignore_missing_vars=False):
    """Read the values of ``var_list`` from a checkpoint, as slim: returns
    ``(assign_op, feed_dict)``.

    Without a TF session, ``assign_op`` is a callable: ``assign_op()`` (or
    ``assign_op(sess)``) writes the values into the variables;
    ``feed_dict`` maps each variable to the array read for it, so the values
    can be looked at (or changed) before they are assigned.

    Parameters
    ----------
    model_path : str
        A checkpoint (prefix, V1 file, directory, ``.index``), V1 or V2.
    var_list : list of Variable or dict
        Variables (checkpoint name = the variable's name) or
        ``{checkpoint name: variable or [variables]}``. Empty: nothing to do.
    ignore_missing_vars : bool, default False
        Skip variables the checkpoint lacks, with a warning, instead of raising.

    Raises
    ------
    ValueError
        ``'Checkpoint is missing variable [name]'``; a shape mismatch
        (``'Total size of new array must be unchanged for name lh_shape: [...],
        rh_shape: [...]'``, lh = the checkpoint's shape).
    """
    from . import train

    grouped = _group(var_list, "assign_from_checkpoint")
    pairs = []
    feed_dict = {}
    if grouped:
        with train.NewCheckpointReader(train._resolve(model_path)) as reader:
            for ckpt_name, variables in grouped.items():
                if not reader.has_tensor(ckpt_name):
                    msg = f"Checkpoint is missing variable [{ckpt_name}]"
                    if ignore_missing_vars:
                        warnings.warn(msg, stacklevel=2)
                        continue
                    raise ValueError(msg)
                value = np.asarray(reader.get_tensor(ckpt_name))
                for var in variables:
                    if var.shape != value.shape:
                        raise _shape_error(ckpt_name, value.shape, var.shape)
                    feed_dict[var] = value
                    pairs.append((var, value))
    return AssignOp(pairs), feed_dict


def assign_from_checkpoint_fn(model_path, var_list, ignore_missing_vars=False,
                              reshape_variables=False):
    """A function that assigns ``var_list`` from a checkpoint, as slim's.

    The returned ``callback(session=None)`` reads the checkpoint when called
    (as TF's ``Saver.restore``) and assigns every variable; the session
    argument is accepted and ignored. With ``ignore_missing_vars=True`` the
    checkpoint is looked at now: missing variables are dropped with a
    warning, and if none is left the result is None (with a warning), as slim.

    Parameters
    ----------
    model_path : str
        A checkpoint path (V1 or V2; prefix, directory, ``.index``, V1 file).
    var_list : list of Variable or dict
        As :func:`assign_from_checkpoint`.
    ignore_missing_vars : bool, default False
    reshape_variables : bool, default False
        Allow a checkpoint value of another shape with the same number of
        elements (reshaped in C order into the variable).

    Raises
    ------
    ValueError
        ``'var_list cannot be empty'`` (now); at the call: ``'Checkpoint is
        missing variable [name]'``, or a shape mismatch.
    """
    from . import train

    if not var_list:
        raise ValueError("var_list cannot be empty")
    grouped = _group(var_list, "assign_from_checkpoint_fn")
    if ignore_missing_vars:
        with train.NewCheckpointReader(train._resolve(model_path)) as reader:
            available = {}
            for name, variables in grouped.items():
                if reader.has_tensor(name):
                    available[name] = variables
                else:
                    warnings.warn(f"Variable {name} missing in checkpoint {model_path}",
                                  stacklevel=2)
        grouped = available
    if not grouped:
        warnings.warn("No Variables to restore", stacklevel=2)
        return None

    def callback(session=None):
        with train.NewCheckpointReader(train._resolve(model_path)) as reader:
            todo = []
            for name, variables in grouped.items():
                if not reader.has_tensor(name):
                    raise ValueError(f"Checkpoint is missing variable [{name}]")
                value = np.asarray(reader.get_tensor(name))
                for var in variables:
                    if var.shape != value.shape:
                        if not reshape_variables or var._value.size != value.size:
                            raise _shape_error(name, value.shape, var.shape)
                        value = value.reshape(var.shape)
                    todo.append((var, value))
        for var, value in todo:      # all read and checked before any is changed
            var.assign(value)
            var._loaded = True

    callback.__doc__ = f"Assigns {sum(map(len, grouped.values()))} variables from {model_path}."
    return callback
