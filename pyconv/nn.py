"""Array operations mirroring ``tf.nn``: no variables, no scopes.

Argument checking happens here; arithmetic happens in the C operator
(``pyconv._conv``), which only ever sees NHWC arrays and explicit pads.
"""

import math
import numbers

import numpy as np

from . import _conv, _memory
from .geometry import explicit_padding_from_tf, normalize_padding, pair, resolve

__all__ = ["conv2d", "bias_add", "relu", "relu6", "max_pool2d", "avg_pool2d", "add_relu"]

_ACTIVATIONS = {None: 0, "relu": 1, "relu6": 2}
_INDEX_MAX = np.iinfo(np.intp).max
_DATA_FORMATS = ("NHWC", "NCHW")
_F32 = np.dtype(np.float32)
# float itemsize -> (compute dtype, output dtype), native byte order
_FLOATS = {2: (_F32, np.dtype(np.float16)), 4: (_F32, _F32),
           8: (np.dtype(np.float64), np.dtype(np.float64))}


def compute_dtype(dtype, name="input"):
    """The dtype pyconv computes in for an array of ``dtype``, and the output dtype.

    float32/float64 are kept; float16 is computed in float32 and returned as
    float16; integer and bool are computed and returned as float32.
    """
    kind, size = dtype.kind, dtype.itemsize
    if kind == "f" and size in _FLOATS:
        return _FLOATS[size]
    if kind in "biu":
        return _F32, _F32
    raise TypeError(
        f"{name} has dtype {dtype}; pyconv computes float16, float32, float64 "
        "(integer and bool arrays are computed as float32)"
    )


def check_data_format(data_format, allow_none=False):
    """'NHWC' or 'NCHW' (None → 'NHWC' when allowed); else a ValueError naming data_format."""
    if data_format is None and allow_none:
        return "NHWC"
    if isinstance(data_format, str) and data_format.upper() in _DATA_FORMATS:
        return data_format.upper()
    raise ValueError(f"data_format must be 'NHWC' or 'NCHW', got {data_format!r}")


def _spatial(value, name, data_format, minimum=1):
    """An int, a pair, or TF's 1- or 4-element form, as an (h, w) pair."""
    if isinstance(value, numbers.Integral) or isinstance(value, (str, bytes)) or value is None:
        return pair(value, name, minimum)
    try:
        items = list(value)
    except TypeError:
        return pair(value, name, minimum)  # raises the TypeError naming `name`
    if len(items) == 1:
        return pair(items[0], name, minimum)
    if len(items) == 4:
        if data_format == "NCHW":
            outer, hw = (items[0], items[1]), items[2:]
        else:
            outer, hw = (items[0], items[3]), items[1:3]
        if any(v != 1 for v in outer):
            raise ValueError(
                f"{name}: the batch and channel entries of the 4-element form must be 1 "
                f"({data_format} order), got {value!r}"
            )
        return pair(hw, name, minimum)
    return pair(items, name, minimum)


def _as_array(value, name):
    if type(value) is np.ndarray:
        return value
    try:
        return np.asarray(value)
    except Exception as exc:  # ragged lists, objects that refuse conversion
        raise TypeError(f"{name} could not be converted to a numeric array: {exc}") from None


def _check_rank(x, name, what):
    if x.ndim != 4:
        raise ValueError(f"{what} expects {name} with rank 4, got {x.ndim} (shape {x.shape})")


# Everything about a conv2d call that depends only on shapes, dtypes and the
# geometry arguments, keyed by those; keeps the per-call Python work small.
_conv_plans = {}


def _plan_conv2d(x, w, strides, padding, data_format, dilations, activation):
    cd, od = compute_dtype(x.dtype, "input")
    if w.dtype.kind not in "biuf":
        raise TypeError(f"filters have dtype {w.dtype}; they must be a real numeric array")
    fmt = check_data_format(data_format)
    _check_rank(x, "input", "Convolution")
    if w.ndim != 4:
        raise ValueError(
            "filters must have rank 4 [kernel_h, kernel_w, in_channels, out_channels], "
            f"got rank {w.ndim} (shape {w.shape})"
        )
    if not (activation is None or isinstance(activation, str)) or activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be None, 'relu' or 'relu6', got {activation!r}")
    if fmt == "NCHW":
        n, c, h, wd = x.shape
    else:
        n, h, wd, c = x.shape
    kh, kw, cin, cout = w.shape
    if cin != c:
        raise ValueError(
            f"filters expect {cin} input channels but the input has {c}: input shape "
            f"{x.shape} ({fmt}), filters shape {w.shape} [kh, kw, in, out]"
        )
    if cin == 0 or kh == 0 or kw == 0:
        raise ValueError(f"filters shape {w.shape} has a zero kernel size or input channel count")
    if h == 0 or wd == 0:
        raise ValueError(f"input shape {x.shape} ({fmt}) has a zero height or width")
    s = _spatial(strides, "strides", fmt)
    d = _spatial(dilations, "dilations", fmt)
    pad = normalize_padding(explicit_padding_from_tf(padding, fmt))
    (oh, ow), ((pt, pb), (pl, pr)) = resolve((h, wd), (kh, kw), s, pad, d)
    # The C operator takes sizes as Py_ssize_t; larger ones could only overflow there.
    for name, values in (("strides", s), ("dilations", d), ("padding", (pt, pb, pl, pr))):
        if max(values) > _INDEX_MAX:
            raise ValueError(
                f"{name}: {values} (from padding={padding!r}, strides={s}, dilations={d}, "
                f"filters shape {w.shape}) exceeds the largest array index {_INDEX_MAX}"
            )
    es, pixels, taps = cd.itemsize, oh * ow, kh * kw
    out = n * pixels * cout
    _memory.check(
        f"conv2d of input shape {x.shape} ({fmt}) with filters shape {w.shape} "
        f"(output shape {(n, cout, oh, ow) if fmt == 'NCHW' else (n, oh, ow, cout)})",
        {"output": out * (es * (2 if fmt == "NCHW" else 1) + (od.itemsize if od != cd else 0)),
         "input copy": n * h * wd * c * es,
         # nothing below is allocated for an empty output
         "indirection buffer": (pixels + 64) * taps * 8 if out else 0,
         "packed filters": (kh * kw * cin * cout + (cout + 64) * (taps * cin + 1)) * es
         if out else 0})
    args = (pt, pb, pl, pr, s[0], s[1], d[0], d[1], _ACTIVATIONS[activation])
    return cd, od, fmt == "NCHW", cout, args


def conv2d(input, filters, strides=1, padding="SAME", data_format="NHWC", dilations=1, *,
           bias=None, activation=None):
    """2-D convolution, as ``tf.nn.conv2d`` (cross-correlation, no kernel flip).

    Parameters
    ----------
    input : array_like, rank 4
        ``NHWC`` (default) or ``NCHW`` per ``data_format``. float16/32/64 keep
        their dtype (float16 accumulates in float32); integer and bool inputs are
        computed as float32.
    filters : array_like, ``[kernel_h, kernel_w, in_channels, out_channels]``
        Cast to the input's compute dtype.
    strides, dilations : int, (h, w) or TF's 4-element form
        Both may exceed 1 together (unlike ``pyconv.conv2d``).
    padding : 'SAME', 'VALID', 'FULL' (any case), ``[(top, bottom), (left, right)]``
        or TF's 4-pair explicit form.
    data_format : 'NHWC' or 'NCHW'
    bias : array_like ``[out_channels]``, optional
        Added in the kernel (fused).
    activation : None, 'relu' or 'relu6'
        Applied in the kernel (fused).

    Returns
    -------
    numpy.ndarray
        A new C-contiguous array in ``data_format``.

    Raises
    ------
    ValueError
        Wrong rank, channel mismatch, bad padding/data_format/strides, or an
        output size below 1 (the message shows the formula).
    TypeError
        A dtype pyconv does not compute (complex, object, strings...).

    Examples
    --------
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    >>> conv2d(x, np.ones((3, 3, 1, 1), np.float32), strides=2).shape
    (1, 2, 2, 1)
    """
    return _conv2d(input, filters, strides, padding, data_format, dilations, bias, activation)


def _conv2d(input, filters, strides, padding, data_format, dilations, bias, activation,
            epilogue=None):
    """:func:`conv2d`, optionally with the fused epilogue ``epilogue = (pre,
    scale, shift, residual)`` (each None or an array of the compute dtype;
    the three vectors ``[out_channels]``, ``residual`` the output's shape in
    ``data_format``): every output tile becomes ``activation(((conv + bias +
    pre) * scale + shift) + residual)`` before it is stored, bit for bit what
    :func:`_eltwise` on the plain convolution gives."""
    x = input if type(input) is np.ndarray else _as_array(input, "input")
    w = filters if type(filters) is np.ndarray else _as_array(filters, "filters")
    # Normalise what could compare equal across types (2.0 == 2, True == 1)
    # before it becomes part of the cache key; plain ints skip this.
    if type(strides) is not int or type(dilations) is not int or type(padding) is not str:
        fmt = check_data_format(data_format)
        if type(strides) is not int:
            strides = _spatial(strides, "strides", fmt)
        if type(dilations) is not int:
            dilations = _spatial(dilations, "dilations", fmt)
        if type(padding) is not str:
            padding = normalize_padding(explicit_padding_from_tf(padding, fmt))
    key = (x.shape, x.dtype, w.shape, w.dtype, strides, padding, data_format, dilations,
           activation)
    try:
        plan = _conv_plans.get(key)
    except TypeError:  # unhashable arguments (lists): plan without caching
        key, plan = None, None
    if plan is None:
        plan = _plan_conv2d(x, w, strides, padding, data_format, dilations, activation)
        if key is not None:
            if len(_conv_plans) > 4096:
                _conv_plans.clear()
            _conv_plans[key] = plan
    cd, od, nchw, cout, args = plan
    if x.dtype != cd:
        x = x.astype(cd)
    if w.dtype != cd:
        w = w.astype(cd)
    if bias is not None:
        bias = _as_bias(bias, cd, cout)
    if epilogue is not None:
        pre, scale, shift, residual = epilogue
        if residual is not None and nchw:
            residual = np.ascontiguousarray(residual.transpose(0, 2, 3, 1))
        args = args + (pre, scale, shift, residual)
    if nchw:
        out = _conv.conv2d(x.transpose(0, 2, 3, 1), w, bias, *args)
        out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
    else:
        out = _conv.conv2d(x, w, bias, *args)
    return out if od == cd else out.astype(od)


def _as_bias(bias, dtype, channels):
    b = bias if type(bias) is np.ndarray else _as_array(bias, "bias")
    if b.ndim != 1 or b.shape[0] != channels:
        raise ValueError(f"bias must have shape ({channels},) (one per output channel), "
                         f"got shape {b.shape}")
    if b.dtype != dtype:
        if b.dtype.kind not in "biuf":
            raise TypeError(f"bias has dtype {b.dtype}; it must be a real numeric array")
        b = b.astype(dtype)
    return b


def bias_add(value, bias, data_format="NHWC"):
    """``value + bias`` along the channel axis (last for NHWC, 1 for NCHW), as ``tf.nn.bias_add``."""
    x = _as_array(value, "value")
    cd, od = compute_dtype(x.dtype, "value")
    fmt = check_data_format(data_format)
    if x.ndim < 2:
        raise ValueError(f"bias_add expects value with rank >= 2, got {x.ndim}")
    axis = 1 if fmt == "NCHW" else x.ndim - 1
    b = _as_bias(bias, cd, x.shape[axis])
    out = _eltwise(x.astype(cd, copy=False), axis, shift=b)
    return out.astype(od, copy=False)


def _float_array(x, name):
    a = _as_array(x, name)
    cd, od = compute_dtype(a.dtype, name)
    return a.astype(od, copy=False) if a.dtype != od else a


def relu(features):
    """``max(features, 0)``; NaN stays NaN."""
    x = _float_array(features, "features")
    if x.dtype.itemsize == 2 or x.ndim == 0:
        return np.maximum(x, x.dtype.type(0), order="C")
    return _eltwise(x, x.ndim - 1, activation="relu")


def relu6(features):
    """``min(max(features, 0), 6)``; NaN stays NaN."""
    x = _float_array(features, "features")
    if x.dtype.itemsize == 2 or x.ndim == 0:
        out = np.maximum(x, x.dtype.type(0), order="C")
        return np.minimum(out, x.dtype.type(6), out=out)
    return _eltwise(x, x.ndim - 1, activation="relu6")


def _pool(kind, input, ksize, strides, padding, data_format):
    x = _as_array(input, "input")
    cd, od = compute_dtype(x.dtype, "input")
    fmt = check_data_format(data_format)
    _check_rank(x, "input", "Pooling")
    k = _spatial(ksize, "ksize", fmt)
    s = _spatial(strides, "strides", fmt)
    pad = normalize_padding(explicit_padding_from_tf(padding, fmt))
    if fmt == "NCHW":
        x = x.transpose(0, 2, 3, 1)
    n, h, w, c = x.shape
    if h == 0 or w == 0:
        raise ValueError(f"input shape {x.shape} has a zero height or width")
    (oh, ow), ((pt, pb), (pl, pr)) = resolve((h, w), k, s, pad, (1, 1))
    if max(pt, pb) >= k[0] or max(pl, pr) >= k[1]:
        raise ValueError(
            f"padding {padding!r} gives pooling windows that lie entirely in the padding: "
            f"every pad must be smaller than the window ({k[0]} x {k[1]})"
        )
    for name, values in (("ksize", k), ("strides", s), ("padding", (pt, pb, pl, pr))):
        if max(values) > _INDEX_MAX:
            raise ValueError(f"{name}: {values} (from padding={padding!r}) exceeds the largest "
                             f"array index {_INDEX_MAX}")
    es = cd.itemsize
    _memory.check(
        f"{kind}_pool2d of input shape {x.shape} (NHWC) with ksize {k}, strides {s} and "
        f"padding {padding!r} (output {oh} x {ow})",
        {"input copy": n * h * w * c * es,
         "output": n * oh * ow * c * (es * (2 if fmt == "NCHW" else 1)
                                      + (od.itemsize if od != cd else 0))})
    # The C operator walks the in-bounds part of each window: the work is the
    # output times that part, whatever the padding (a 200 x 200 FULL window
    # over a 6 x 6 input reads at most 36 pixels per output).
    out = _conv.pool2d(x.astype(cd, copy=False), 0 if kind == "max" else 1, k[0], k[1],
                       s[0], s[1], pt, pb, pl, pr)
    if kind == "max" and od != cd and od.kind == "f":
        # float16 computes in float32: a window with nothing above float32's
        # lowest gets float16's lowest, as TF (-65504, not the cast's -inf)
        out[out == np.finfo(cd).min] = np.finfo(od).min
    if fmt == "NCHW":
        out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
    return out if od == cd else out.astype(od)


def max_pool2d(input, ksize, strides, padding="VALID", data_format="NHWC"):
    """Max pooling, as ``tf.nn.max_pool2d`` (padding never wins the max).

    As TF's CPU kernel, each window's maximum starts from the lowest finite
    value and NaN never wins: ``[nan, 1, -inf, 2]`` gives 2, a window of
    only -inf (or NaN) gives -3.4028235e38 in float32 (the lowest float64
    in float64, -65504 in float16).

    ``ksize`` and ``strides`` take an int, a pair or TF's 4-element form;
    ``padding`` is any of pyconv's paddings (pads must be smaller than the window).
    """
    return _pool("max", input, ksize, strides, padding, data_format)


def avg_pool2d(input, ksize, strides, padding="VALID", data_format="NHWC"):
    """Average pooling, as ``tf.nn.avg_pool2d``: padded positions are left out
    of each window's count (SAME at the border averages fewer values)."""
    return _pool("avg", input, ksize, strides, padding, data_format)


# ---- The elementwise epilogue operator (csrc/eltwise.c): batch norm at
# inference, bias, residual add and ReLU/ReLU6 as one threaded pass.

def _eltwise(x, axis, pre=None, scale=None, shift=None, residual=None, activation=None):
    """``activation(((x + pre) * scale + shift) + residual)`` with per-channel
    ``pre``, ``scale``, ``shift`` along ``axis`` (each None to skip; same
    dtype as ``x``, float32 or float64) and ``residual`` of ``x``'s shape.

    The C operator sees ``x`` as ``[outer, channels, inner]``: channels-last
    arrays as rows of channels, channels-first ones as runs of one channel.
    Returns a new C-contiguous array of ``x``'s shape.
    """
    shape = x.shape
    outer, inner = math.prod(shape[:axis]), math.prod(shape[axis + 1:])
    view = (outer, shape[axis], inner)
    if residual is not None:
        residual = residual.reshape(view) if residual.flags.c_contiguous else \
            np.ascontiguousarray(residual).reshape(view)
    x3 = x.reshape(view) if x.flags.c_contiguous else np.ascontiguousarray(x).reshape(view)
    out = _conv.eltwise(x3, pre, scale, shift, residual, _ACTIVATIONS[activation])
    return out.reshape(shape)


def add_relu(x, y):
    """``relu(x + y)`` in one pass: ResNet's ``relu(shortcut + residual)``.

    Same numbers as ``relu(x + y)`` (one rounding for the sum, NaN stays
    NaN), computed in C on all threads without the intermediate sum array.
    Arrays of different shapes broadcast as in NumPy (then in two passes).

    Parameters
    ----------
    x, y : array_like
        Real arrays; the result has their common float dtype (integer and bool
        inputs compute as float32, float16 in float16 as NumPy).

    Returns
    -------
    numpy.ndarray
        A new C-contiguous array.

    Examples
    --------
    >>> add_relu(np.array([1.0, -3.0]), np.array([0.5, 1.0]))
    array([1.5, 0. ])
    """
    a = _float_array(x, "x")
    b = _float_array(y, "y")
    dtype = np.result_type(a.dtype, b.dtype)
    if a.shape != b.shape or dtype.itemsize == 2 or a.ndim == 0:
        return relu(np.add(a, b, dtype=dtype))
    a = a.astype(dtype.newbyteorder("="), copy=False)
    b = b.astype(a.dtype, copy=False)
    return _eltwise(a, a.ndim - 1, residual=b, activation="relu")
