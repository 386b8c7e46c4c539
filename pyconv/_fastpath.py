"""Repeated-call fast paths of the layers a net calls per block.

A net applied to one batch after another (``nets_factory``'s network fn,
any ``reuse=True`` model) calls the same layers with the same arguments,
shapes and variables every time; only the input values change. On such a
call the slow path of ``conv2d`` checks its arguments, resolves its
variables, computes the pads and the C operator's arguments and asks batch
norm for its folded terms, all of which depend only on what the call had
the last time. Here they are remembered per store, under a key made of
everything the slow path's result depends on apart from the input's values:

- the enclosing variable scope's name and the layer's ``scope`` (a string:
  default-named layers, whose names depend on counts, take the slow path),
  the ``reuse`` argument;
- the input's shape and dtype;
- every argument the slow path reads on a reuse, after arg_scope merging:
  ``num_outputs``, ``kernel_size``, ``stride``, ``padding``,
  ``data_format``, ``rate``, ``activation_fn``, ``normalizer_fn``,
  ``normalizer_params`` (by content), whether ``biases_initializer`` is
  None, and batch norm's arg_scope entry (by content) when it is the
  normalizer. ``outputs_collections`` (of a type the slow path accepts) is
  used as given: a net's end-point collection has a new name at every call.
  Values enter the key only in exact forms (ints, strings, pairs of ints,
  functions by identity, dicts of hashable values with their types);
  anything else takes the slow path. Initializers, ``trainable`` and the
  regularizers act only when a variable is created, which a reuse never
  does (regularizers must still be None or callable, as the slow path
  checks).

An entry is used only while it is provably still right, checked on every
call before anything is touched: the enclosing scope reuses (True or
AUTO_REUSE); the same Variable objects are still in the store under their
names, claimed, holding arrays of the same shape and dtype (the arrays
themselves go through ``Variable._pinned`` as on the slow path, which sees
``assign``, ``store.load`` and in-place writes; no reference to them is
kept, so a pin can still be trusted); and batch norm's statistics still
have the bytes they had when the folded terms were taken from the fold
cache (``layers._fold_cached``), so in-place writes are seen too. Otherwise
the call takes the slow path, which records a fresh entry. On a hit the
layer's scopes (and the BatchNorm scope inside) leave exactly what the slow
path's frames leave: unique name scopes, scope counts and children
(``_layer_scopes``), and the same end-point aliases and tensor names.

Entries are recorded only from a slow call that ran the plain reuse path:
variables reused (not created), the input's dtype kept (no cast to the
variables' dtype), NHWC, float32 or float64, the activation fused into the
C kernel (None, relu, relu6) and, with batch norm, its terms folded from
the fold cache. The C operator gets exactly the arguments the slow path
gives it (``nn._plan_conv2d``'s), so the results are bit for bit the same.
"""

import itertools
import threading

import numpy as np

from . import _conv, _memory
from .variables import AUTO_REUSE, collect_named_outputs, get_default_store

__all__ = []  # private

_MISS = object()
_CACHE_LIMIT = 4096
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class _Local(threading.local):
    want = None  # (inputs, key, store) of the slow call to record, while it runs


_tl = _Local()


class _Unkeyable(Exception):
    pass


def _k(value):
    """``value`` as an exact key: ints, strings and None as themselves,
    pairs (and pairs of pairs) of ints as tuples; anything else raises."""
    t = type(value)
    if t is int or t is str or value is None:
        return value
    if (t is tuple or t is list) and len(value) == 2:
        a, b = value
        ta, tb = type(a), type(b)
        if ta is int and tb is int:
            return (a, b)
        if (ta is tuple or ta is list) and (tb is tuple or tb is list):
            return (_k(a), _k(b))
    raise _Unkeyable


# what the slow path's _check_collections accepts; the value itself is used
# at call time (a net's end-point collection is named after its unique name
# scope, new at every call)
_COLLECTION_TYPES = frozenset((str, list, tuple, set, frozenset, dict))


# id(dict) -> (dict, its keys, ids of its values, token): a dict is frozen
# again only when another dict, other keys or other value objects are seen
# (values are hashable, i.e. immutable or compared by identity, so the same
# objects mean the same content). The dicts are kept alive while listed, so
# their ids cannot be reused meanwhile.
_frozen = {}
_UNKEYABLE = -1
# frozen content -> a token (an int, cheap to hash in a key); numbers are
# never reused, so dropping the table can only make old entries unreachable
_tokens = {}
_next_token = itertools.count(1)


def _freeze(d):
    """A token standing for the dict ``d``'s exact content (values with their
    types): equal tokens mean equal content. None for None."""
    if d is None:
        return None
    if type(d) is not dict:
        raise _Unkeyable
    memo = _frozen.get(id(d))
    if memo is not None and memo[0] is d and memo[1] == tuple(d) \
            and memo[2] == tuple(map(id, d.values())):
        token = memo[3]
    else:
        frozen = tuple((k, type(v), v) for k, v in d.items())
        try:
            token = _tokens.get(frozen)
        except TypeError:  # an unhashable value (remembered too: a net's every layer has it)
            token = _UNKEYABLE
        else:
            if token is None:
                if len(_tokens) >= 4096:
                    _tokens.clear()
                token = _tokens[frozen] = next(_next_token)
        if len(_frozen) >= 256:
            _frozen.clear()
        _frozen[id(d)] = (d, tuple(d), tuple(map(id, d.values())), token)
    if token is _UNKEYABLE:
        raise _Unkeyable
    return token


# ---- scope bookkeeping of a layer that opens its own scope (and batch norm's)


def _layer_scopes(store, state, scope, new_name, bn_name):
    """What ``_push_scope(scope, ...)``, then (with ``bn_name``) batch norm's
    ``_push_scope(None, 'BatchNorm')`` and ``_pop_scope``, then the layer's
    ``_pop_scope`` leave behind, without the frames: the unique name scopes
    (kept or forgotten as there), the scope counts and children. Returns the
    layer's name scope. ``scope`` is a non-empty string and no
    ``<new_name>/BatchNorm`` is counted (both checked by the caller); no code
    runs between the push and the pop on the fast path, so nothing can see
    the difference."""
    counts, children = state.counts, state.children
    name_scope, generated = store._unique_name(state, scope)
    counts[new_name] = counts.get(new_name, 0) + 1
    parent = new_name.rpartition("/")[0]
    kids = children.get(parent)
    if kids is None:
        children[parent] = {new_name}
    else:
        kids.add(new_name)
    if bn_name is not None:
        outer = state.name_stack
        state.name_stack = name_scope
        try:
            _, bn_generated = store._unique_name(state, "BatchNorm")
        finally:
            state.name_stack = outer
        pending = list(children.pop(bn_name, ()))  # batch norm's pop
        while pending:
            name = pending.pop()
            counts.pop(name, None)
            pending.extend(children.pop(name, ()))
        if bn_generated is not None:
            store._forget_names_inside(bn_generated)
    pending = list(children.pop(new_name, ()))  # the layer's pop
    while pending:
        name = pending.pop()
        counts.pop(name, None)
        pending.extend(children.pop(name, ()))
    if generated is not None:
        store._forget_names_inside(generated)
    return name_scope


# ---- conv2d

_CONV_ARGS = frozenset((
    "stride", "padding", "data_format", "rate", "activation_fn", "normalizer_fn",
    "normalizer_params", "weights_initializer", "weights_regularizer", "biases_initializer",
    "biases_regularizer", "reuse", "variables_collections", "outputs_collections",
    "trainable", "scope"))
_NO_BIASES = object()


def conv2d(func, args, kwargs, top):
    """``func(*args, **merged)`` (``func`` is the undecorated convolution2d,
    ``top`` the innermost arg scope), through the cache when it applies."""
    scoped = top.get(_CONV_KEY)
    if scoped:
        merged = scoped.copy()
        merged.update(kwargs)
    else:
        merged = kwargs
    if len(args) != 3 or type(args[0]) is not np.ndarray or not merged.keys() <= _CONV_ARGS:
        return func(*args, **merged)
    get = merged.get
    scope = get("scope")
    reuse = get("reuse")
    collections = get("outputs_collections")
    store = get_default_store()
    state = store._state()
    parent = state.scope
    if (type(scope) is not str or not scope
            or not (reuse is None or reuse is True or reuse is AUTO_REUSE)
            or not (reuse or parent.reuse) or get("variables_collections") is not None
            or not (collections is None or type(collections) in _COLLECTION_TYPES)):
        return func(*args, **merged)
    x = args[0]
    normalizer_fn = get("normalizer_fn")
    try:
        params = _freeze(get("normalizer_params"))  # first: unkeyable in some nets' scopes
        key = (parent.name, scope, reuse, x.shape, x.dtype, _k(args[1]), _k(args[2]),
               _k(get("stride", 1)), _k(get("padding", "SAME")), _k(get("data_format")),
               _k(get("rate", 1)), get("activation_fn", _RELU), normalizer_fn, params,
               _freeze(top.get(_BN_KEY)) if normalizer_fn is _BATCH_NORM else None,
               get("biases_initializer", _NO_BIASES) is None)
        cache = store.__dict__.get("_fast_cache")
        entry = cache.get(key) if cache is not None else None
    except (_Unkeyable, TypeError):  # TypeError: an unhashable activation_fn...
        return func(*args, **merged)
    if entry is not None:
        out = _conv2d_hit(store, state, x, entry, merged, parent, scope, collections)
        if out is not _MISS:
            return out
    saved = _tl.want
    _tl.want = (x, key, store)
    try:
        return func(*args, **merged)
    finally:
        _tl.want = saved


def _conv2d_hit(store, state, x, entry, merged, parent, scope, collections):
    (wname, wvar, wshape, bname, bvar, bshape, cargs, bn, op, mem) = entry
    reg = merged.get("weights_regularizer")
    if reg is not None and not callable(reg):
        return _MISS  # the slow path raises
    reg = merged.get("biases_regularizer")
    if reg is not None and not callable(reg):
        return _MISS
    # (no reference to the variables' arrays is kept, here or in the entry: a
    # pin is trusted only while nothing else holds the array, see Variable._pinned)
    vars_ = store._vars
    dtype = x.dtype
    if (vars_.get(wname) is not wvar or not wvar._claimed or wvar._value.shape != wshape
            or wvar._value.dtype != dtype):
        return _MISS
    if bvar is not None and (vars_.get(bname) is not bvar or not bvar._claimed
                             or bvar._value.shape != bshape or bvar._value.dtype != dtype):
        return _MISS
    new_name = parent.name + "/" + scope if parent.name else scope
    bn_name = None
    if bn is not None:
        bn_name, checks, terms = bn
        if state.counts.get(bn_name, 0):
            return _MISS  # the slow path would open BatchNorm_1
        for name, var, snapshot in checks:
            if vars_.get(name) is not var or not var._claimed \
                    or var._value.tobytes() != snapshot:
                return _MISS  # the slow path recomputes the folded terms
    if mem is not None:
        _memory.check(*mem)
    add = _THEN_ADD.request
    add_args = None
    if add is not None:  # the output's own add (layers._conv2d_then_add), if it fits
        add_args = _add_operands(x, wshape, cargs, *add)
        if add_args is not None:
            _THEN_ADD.request = None
    name_scope = _layer_scopes(store, state, scope, new_name, bn_name)
    bias = None if bvar is None else bvar._pinned()
    if add_args is not None:  # the operator's pair
        outputs, _THEN_ADD.result = _conv.conv2d(
            x, wvar._pinned(), bias, *cargs, *(terms if bn is not None else (None,) * 3), None,
            *add_args)
    elif bn is not None:
        outputs = _conv.conv2d(x, wvar._pinned(), None, *cargs, *terms, None)
    else:
        outputs = _conv.conv2d(x, wvar._pinned(), bias, *cargs)
    if collections:
        collect_named_outputs(collections, new_name, outputs, f"{name_scope}/{op}:0")
    return outputs


def record_conv2d(inputs, x, store, frame, df, weights, bias, terms, fused, activation_fn,
                  normalizer_fn, nn_strides, padding, nn_rates, dims):
    """Called by the slow conv2d before it returns, while a record is wanted."""
    want = _tl.want
    _tl.want = None
    if want is None or want[0] is not inputs or want[2] is not store:
        return
    if x is not inputs or df != "NHWC" or x.dtype not in _FLOATS:
        return
    if activation_fn is not None and fused is None:
        return
    sc = frame.scope
    key = want[1]
    if not sc.reuse or sc.name != (key[0] + "/" + key[1] if key[0] else key[1]):
        return
    w = weights._value
    if w.dtype != x.dtype:
        return
    vars_ = store._vars
    wname = sc.name + "/weights"
    if vars_.get(wname) is not weights:
        return
    bname = bvar = None
    if bias is not None:
        bname = sc.name + "/biases"
        bvar = vars_.get(bname)
        if bvar is None or bvar._value is not bias or bias.dtype != x.dtype or bias.ndim != 1:
            return
    bn = None
    if normalizer_fn is not None:
        fold_key = getattr(_fold_local, "key", None)
        fentry = store.__dict__.get("_fold_cache", {}).get(fold_key) if fold_key else None
        if terms is None or fentry is None or fentry[3] is not terms:
            return
        variables, names = fentry[:2]
        # the statistics' bytes now: the terms are theirs (the fold cache just
        # checked or computed them)
        checks = tuple((name, var, var._value.tobytes())
                       for var, name in zip(variables, names) if var is not None)
        bn = (sc.name + "/BatchNorm", checks, terms)
    from . import nn
    from .layers import _CHECKED_WEIGHT_ELEMENTS, _tf_output_op

    cd, od, nchw, _, cargs = nn._plan_conv2d(x, w, nn_strides, padding, df, nn_rates, fused)
    if cd != x.dtype or od != cd or nchw or cargs[0] is None:
        return
    kh, kw, cin, num_outputs = dims
    mem = None
    if kh * kw * cin * num_outputs > _CHECKED_WEIGHT_ELEMENTS:  # as the slow path, every call
        n = kh * kw * cin * num_outputs
        mem = ((f"conv2d with kernel_size {(kh, kw)}, {cin} input channels and "
                f"num_outputs={num_outputs}"),
               {"weights": n * w.dtype.itemsize, "their float64 random draw": n * 8})
    op = _tf_output_op(activation_fn, "BiasAdd" if bias is not None else "Conv2D")
    cache = store.__dict__.get("_fast_cache")
    if cache is None:
        cache = store._fast_cache = {}
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = (wname, weights, w.shape, bname, bvar, None if bias is None else bias.shape,
                  cargs, bn, op, mem)


def _install():
    global _CONV_KEY, _BN_KEY, _BATCH_NORM, _RELU, _fold_local, _THEN_ADD, _add_operands
    from . import layers
    from .activations import relu
    from .nn import _add_operands

    _THEN_ADD = layers._then_add

    _CONV_KEY = layers.conv2d._key_op
    _BN_KEY = layers.batch_norm._key_op
    _BATCH_NORM = layers.batch_norm
    _RELU = relu
    _fold_local = layers._fold
    layers.conv2d._set_fast_path(conv2d)
