"""``arg_scope``: default keyword arguments for a set of layers, as TF-Slim.

A stack of dicts ``{op_key: {argument: value}}``. ``with arg_scope([conv2d],
padding='VALID'):`` pushes a copy of the current dict with ``conv2d``'s
defaults updated; every function decorated with :func:`add_arg_scope` looks
its own entry up in the top dict on each call and lets explicit keyword
arguments win.

Example
-------
>>> import numpy as np
>>> import pyconv as slim
>>> with slim.VariableStore(seed=0):
...     with slim.arg_scope([slim.conv2d], padding='VALID', activation_fn=None):
...         y = slim.conv2d(np.ones((1, 5, 5, 1), np.float32), 2, [3, 3])
>>> y.shape
(1, 3, 3, 2)

As in TF-Slim, a scope entered in the main thread is seen by every thread
(one process-wide stack). A scope entered in another thread stays in that
thread (it starts from the main thread's current scope), so two threads may
build nets under different arg scopes at once, e.g. two
``nets_factory.get_network_fn`` functions.
"""

import contextlib
import functools
import inspect
import threading

from ._errors import AttributeValueError

__all__ = [
    "add_arg_scope",
    "arg_scope",
    "arg_scope_func_key",
    "arg_scoped_arguments",
    "current_arg_scope",
    "has_arg_scope",
]

# The bottom dict is never popped, so ``_ARGSTACK[-1]`` is always valid.
# The main thread's stack; other threads read it until they enter a scope.
_ARGSTACK = [{}]
_THREAD = threading.local()  # .stack: a non-main thread's own stack, while it has scopes


def _current_stack():
    stack = getattr(_THREAD, "stack", None)
    return _ARGSTACK if stack is None else stack

# op key -> tuple of the keyword arguments arg_scope may set for that op.
_DECORATED_OPS = {}


def current_arg_scope():
    """The innermost arg scope: a dict ``{op_key: {argument: value}}``.

    Do not modify it; pass it to :func:`arg_scope` to re-enter it later.
    """
    return _current_stack()[-1]


def arg_scope_func_key(op):
    """The key under which ``op`` (decorated or not) is stored in a scope dict."""
    return getattr(op, "_key_op", str(op))


def _name_op(op):
    return (getattr(op, "__module__", None), getattr(op, "__name__", repr(op)))


def _kwarg_names(func):
    """Names of the arguments of ``func`` that have a default value."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return ()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(p.name for p in params
                 if p.kind in kinds and p.default is not inspect.Parameter.empty)


@contextlib.contextmanager
def arg_scope(list_ops_or_scope, **kwargs):
    """Set default keyword arguments for the given ops inside a ``with`` block.

    Parameters
    ----------
    list_ops_or_scope : list or tuple of functions, or dict
        The ops (each decorated with :func:`add_arg_scope`) whose defaults to
        set, or a scope dict yielded by an earlier ``arg_scope`` to re-enter
        it exactly (then ``kwargs`` must be empty).
    **kwargs
        ``argument=value`` defaults for every op in the list. Nested scopes
        update the enclosing scope's defaults; explicit arguments in a call
        always win. Unknown arguments surface as a ``TypeError`` when the op
        is called, as in slim.

    Yields
    ------
    dict
        The new current scope ``{op_key: {argument: value}}``; keep it to
        re-enter the same defaults with ``arg_scope(scope)``.

    Raises
    ------
    TypeError
        ``list_ops_or_scope`` is neither a list/tuple nor a dict.
    ValueError
        An op in the list is not decorated with ``@add_arg_scope``, or a
        dict is given together with keyword arguments.

    Examples
    --------
    >>> import pyconv as slim
    >>> with slim.arg_scope([slim.conv2d, slim.max_pool2d], padding='SAME') as sc:
    ...     pass
    >>> with slim.arg_scope(sc):
    ...     slim.current_arg_scope() == sc
    True
    """
    if isinstance(list_ops_or_scope, dict):
        if kwargs:
            raise ValueError("When attempting to re-use a scope by supplying a "
                             "dictionary, kwargs must be empty.")
        current_scope = list_ops_or_scope.copy()
    else:
        if not isinstance(list_ops_or_scope, (list, tuple)):
            raise TypeError("list_ops_or_scope must either be a list/tuple or reused "
                            "scope (i.e. dict)")
        current_scope = _current_stack()[-1].copy()
        for op in list_ops_or_scope:
            if isinstance(op, str):  # TF-Slim fails with AttributeError on a name
                raise AttributeValueError(
                    f"arg_scope takes the ops themselves, not their names: got {op!r} "
                    f"(e.g. arg_scope([slim.conv2d], ...))")
            if not has_arg_scope(op):
                raise ValueError(f"{_name_op(op)} is not decorated with @add_arg_scope")
            key = arg_scope_func_key(op)
            if key in current_scope:
                merged = current_scope[key].copy()
                merged.update(kwargs)
                current_scope[key] = merged
            else:
                current_scope[key] = kwargs.copy()
    if threading.current_thread() is threading.main_thread():
        stack = _ARGSTACK
    else:
        stack = getattr(_THREAD, "stack", None)
        if stack is None:
            stack = _THREAD.stack = [_ARGSTACK[-1]]
    stack.append(current_scope)
    try:
        yield current_scope
    finally:
        stack.pop()
        if stack is not _ARGSTACK and len(stack) == 1:
            del _THREAD.stack  # back to following the main thread's scope


def add_arg_scope(func):
    """Decorate ``func`` so that :func:`arg_scope` can set its defaults.

    The wrapper keeps ``func``'s name, docstring and signature
    (``functools.wraps``; ``inspect.signature`` shows the original), and
    costs one dict lookup per call when no scope mentions ``func``.

    Parameters
    ----------
    func : callable
        The function to decorate.

    Returns
    -------
    callable
        The wrapped function.
    """
    key = arg_scope_func_key(func)
    local = _THREAD
    fast = None  # a layer's repeated-call fast path (pyconv/_fastpath.py), set once

    @functools.wraps(func)
    def func_with_args(*args, **kwargs):
        stack = getattr(local, "stack", None) or _ARGSTACK
        if fast is not None:
            return fast(func, args, kwargs, stack[-1])
        scoped = stack[-1].get(key)
        if scoped:
            merged = scoped.copy()
            merged.update(kwargs)
            return func(*args, **merged)
        return func(*args, **kwargs)

    def set_fast_path(fn):
        """``fn(func, args, kwargs, innermost_scope)`` merges and calls ``func`` itself."""
        nonlocal fast
        fast = fn

    _DECORATED_OPS[key] = _kwarg_names(func)
    func_with_args._key_op = key
    func_with_args._set_fast_path = set_fast_path
    return func_with_args


def has_arg_scope(func):
    """Whether ``func`` has been decorated with :func:`add_arg_scope`."""
    return arg_scope_func_key(func) in _DECORATED_OPS


def arg_scoped_arguments(func):
    """The keyword arguments :func:`arg_scope` can set for ``func``.

    Parameters
    ----------
    func : callable
        A function decorated with :func:`add_arg_scope`.

    Returns
    -------
    tuple of str
        The names of ``func``'s arguments that have defaults, in order.

    Raises
    ------
    ValueError
        ``func`` is not decorated with ``@add_arg_scope``.
    """
    if not has_arg_scope(func):
        raise ValueError(f"{_name_op(func)} is not decorated with @add_arg_scope")
    return _DECORATED_OPS[arg_scope_func_key(func)]
