"""Inception networks as data: layers and mixed modules described by tuples,
built by one walker, so a net module lists its architecture and nothing else.

A layer is ``(kind, scope, depth, kernel, kwargs)`` with ``kind`` one of
``'conv'`` (``slim.conv2d``), ``'sep'`` (``slim.separable_conv2d``),
``'max'`` / ``'avg'`` (pools; ``depth`` is None) or ``'split'`` (``depth``
holds two layers applied to the same input and concatenated on channels).
A mixed module is a list of branches, each a list of layers, run in scopes
``Branch_0``, ``Branch_1``, ... and concatenated on channels.
"""

import pyconv as slim

from ._common import concat


def conv(depth, kernel, scope, **kwargs):
    return ("conv", scope, depth, kernel, kwargs)


def sep(depth, kernel, scope, **kwargs):
    return ("sep", scope, depth, kernel, kwargs)


def max_pool(kernel, scope, **kwargs):
    return ("max", scope, None, kernel, kwargs)


def avg_pool(kernel, scope, **kwargs):
    return ("avg", scope, None, kernel, kwargs)


def split(first, second):
    return ("split", None, (first, second), None, {})


def apply_layer(net, layer, depth):
    """Builds one layer; ``depth(d)`` maps a nominal depth to the built one."""
    kind, scope, d, kernel, kwargs = layer
    if kind == "conv":
        return slim.conv2d(net, depth(d), kernel, scope=scope, **kwargs)
    if kind == "max":
        return slim.max_pool2d(net, kernel, scope=scope, **kwargs)
    if kind == "avg":
        return slim.avg_pool2d(net, kernel, scope=scope, **kwargs)
    if kind == "split":
        return concat([apply_layer(net, part, depth) for part in d])
    if kind == "sep":
        kwargs = dict(kwargs)
        dm = kwargs.pop("depth_multiplier")
        return slim.separable_conv2d(net, depth(d), kernel,
                                     depth_multiplier=dm(depth) if callable(dm) else dm,
                                     scope=scope, **kwargs)
    raise ValueError(f"unknown layer kind {kind!r}")


def mixed(net, branches, depth):
    """A mixed module: each branch in its scope ``Branch_<i>``, concatenated."""
    outputs = []
    for i, branch in enumerate(branches):
        with slim.variable_scope(f"Branch_{i}"):
            out = net
            for layer in branch:
                out = apply_layer(out, layer, depth)
        outputs.append(out)
    return concat(outputs)


def build_base(net, table, final_endpoint, depth, end_points):
    """Walks ``table``, a list of ``(end_point, layer or branches)``, up to and
    including ``final_endpoint``; records every end point. Returns
    ``(net, end_points, reached)``."""
    for end_point, what in table:
        if isinstance(what, tuple):
            net = apply_layer(net, what, depth)
        else:
            with slim.variable_scope(end_point):
                net = mixed(net, what, depth)
        end_points[end_point] = net
        if end_point == final_endpoint:
            return net, end_points, True
    return net, end_points, False


def end_point_names(*tables):
    return [name for table in tables for name, _ in table]
