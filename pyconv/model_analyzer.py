"""slim's ``model_analyzer``: ``analyze_vars`` and ``analyze_ops`` with TF-Slim 1.1's
printed format.

``analyze_ops`` has no graph to walk here: it takes what holds pyconv's
outputs, a net's end points dict (or a :class:`pyconv.Summary`), and prints
one line per output as slim prints one per graph operation.
"""

import numpy as np

__all__ = ["analyze_ops", "analyze_vars", "tensor_description"]


def tensor_description(var):
    """slim's compact description, e.g. ``'(float32 1x8x8x1024)'``."""
    shape = tuple(getattr(var, "shape", ()))
    return "(" + np.dtype(var.dtype).name + " " + "x".join(str(d) for d in shape) + ")"


def analyze_vars(variables, print_info=False):
    """Sizes of ``variables`` (e.g. ``slim.get_model_variables()``); with
    ``print_info`` prints, as slim::

        ---------
        Variables: name (type shape) [size]
        ---------
        conv1/weights:0 (float32 3x3x3x4) [108, bytes: 432]
        ...
        Total size of variables: 112
        Total bytes of variables: 448

    Returns
    -------
    (int, int)
        Total size (elements) and total bytes of the variables.
    """
    if print_info:
        print("---------")
        print("Variables: name (type shape) [size]")
        print("---------")
    total_size = total_bytes = 0
    for var in variables:
        value = np.asarray(var)
        size = int(value.size)
        nbytes = size * value.dtype.itemsize
        total_size += size
        total_bytes += nbytes
        if print_info:
            name = getattr(var, "name", "?")
            print(f"{name}:0" if not name.endswith(":0") else name, tensor_description(value),
                  f"[{size}, bytes: {nbytes}]")
    if print_info:
        print(f"Total size of variables: {total_size}")
        print(f"Total bytes of variables: {total_bytes}")
    return total_size, total_bytes


def analyze_ops(graph, print_info=False):
    """Total size (elements) of the outputs in ``graph``: a net's end points
    dict ``{name: array}`` (pyconv has no graph of operations), or a
    :class:`pyconv.Summary` of a traced net (one line per layer). With
    ``print_info`` prints slim's lines ``name \\t-> (float32 1x112x112x64) [802816]``.
    """
    if hasattr(graph, "rows"):
        dtype = getattr(graph, "dtype", "float32")
        items = [(r["layer"], r.get("shape"), dtype) for r in graph.rows]
    elif hasattr(graph, "items"):
        items = [(k, tuple(np.shape(v)), np.asarray(v).dtype.name) for k, v in graph.items()]
    else:
        raise TypeError("analyze_ops: expected an end points dict or a pyconv.Summary, got "
                        f"{type(graph).__name__}")
    if print_info:
        print("---------")
        print("Operations: name -> (type shapes) [size]")
        print("---------")
    total = 0
    for name, shape, dtype in items:
        size = int(np.prod(shape, dtype=np.int64)) if shape is not None else 0
        total += size
        if print_info:
            desc = f"({dtype} {'x'.join(str(d) for d in shape)})" if shape else ""
            print(name, "\t->", desc, "[" + str(size) + "]")
    return total
