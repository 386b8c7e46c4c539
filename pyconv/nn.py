"""Array operations mirroring ``tf.nn``: no variables, no scopes.

Argument checking happens here; arithmetic happens in the C operator
(``pyconv._conv``), which only ever sees NHWC arrays and explicit pads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names in the type hints only
    from ._typing import Any, ArrayLike, IntOrPair, Optional, Padding

import math
import numbers

import numpy as np

from . import _conv, _integer, _memory
from ._errors import UnimplementedValueError
from .geometry import explicit_padding_from_tf, normalize_padding, pair, resolve, transpose_padding

__all__ = ["conv2d", "bias_add", "relu", "relu6", "max_pool2d", "avg_pool2d",
           "depthwise_conv2d", "separable_conv2d", "add_relu"]

_ACTIVATIONS = {None: 0, "relu": 1, "relu6": 2}
_INDEX_MAX = np.iinfo(np.intp).max
_DATA_FORMATS = ("NHWC", "NCHW")
_F32 = np.dtype(np.float32)
# float itemsize -> (compute dtype, output dtype), native byte order
_FLOATS = {2: (_F32, np.dtype(np.float16)), 4: (_F32, _F32),
           8: (np.dtype(np.float64), np.dtype(np.float64))}
_NATIVE_FLOATS = (_F32, np.dtype(np.float64))


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
        if any(v != 1 for v in outer):  # TF: UnimplementedError when the kernel runs
            raise UnimplementedValueError(
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


def _cached_plan(plans, key, make, *args):
    """``plans[key]``, made by ``make(*args)`` on a miss; unhashable keys
    (list arguments) plan without caching; the cache is emptied past 4096."""
    try:
        plan = plans.get(key)
    except TypeError:
        return make(*args)
    if plan is None:
        plan = make(*args)
        if len(plans) > 4096:
            plans.clear()
        plans[key] = plan
    return plan


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
    # grouped convolution, as tf.nn.conv2d: input channels a multiple of the
    # filters', c // cin groups, each with cout // groups outputs (in C)
    grouped = cin != 0 and c > cin and c % cin == 0
    if cin != c and not grouped:
        raise ValueError(
            f"filters expect {cin} input channels but the input has {c}: input shape "
            f"{x.shape} ({fmt}), filters shape {w.shape} [kh, kw, in, out] (a grouped "
            f"convolution needs input channels a multiple of {cin})"
        )
    if grouped and cout % (c // cin):
        raise ValueError(
            f"a grouped convolution of {c} input channels with filters of {cin} input "
            f"channels has {c // cin} groups, which must divide the {cout} output channels "
            f"(filters shape {w.shape})")
    if cin == 0 or kh == 0 or kw == 0:
        raise ValueError(f"filters shape {w.shape} has a zero kernel size or input channel count")
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
    # the operator's own figures for the tile it will pick (packed filters:
    # out_c rounded up to the tile width, not out_c + 64); nothing is
    # allocated for an empty output. None: a size overflows in C, and the
    # bound below makes the MemoryError say how much
    ws = (_conv.conv2d_workspace(n, h, wd, c, kh, kw, cout, pt, pb, pl, pr, s[0], s[1],
                                 d[0], d[1], es) if out else (0, 0))
    if ws is None:
        ws = (-(-cout // 32) * 32 * (taps * cin + 1) * es, (pixels + 16) * taps * 8)
    _memory.check(
        f"conv2d of input shape {x.shape} ({fmt}) with filters shape {w.shape} "
        f"(output shape {(n, cout, oh, ow) if fmt == 'NCHW' else (n, oh, ow, cout)})",
        {"output": out * (es * (2 if fmt == "NCHW" else 1) + (od.itemsize if od != cd else 0)),
         "input copy": n * h * wd * c * es,
         "indirection buffer": ws[1],
         # and a converted copy of the filters, if one is needed
         "packed filters": ws[0] + (kh * kw * cin * cout * es if out else 0)})
    args = (pt, pb, pl, pr, s[0], s[1], d[0], d[1], _ACTIVATIONS[activation])
    if oh == 0 or ow == 0:  # SAME on an empty height or width (as TF): nothing to compute
        args = (None, (n, cout, oh, ow) if fmt == "NCHW" else (n, oh, ow, cout))
    return cd, od, fmt == "NCHW", cout, args


def conv2d(input: ArrayLike, filters: ArrayLike, strides: IntOrPair = 1, padding: Padding = "SAME",
           data_format: str = "NHWC", dilations: IntOrPair = 1, *, bias: Optional[ArrayLike] = None,
           activation: Optional[str] = None) -> np.ndarray:
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
            epilogue=None, add=None):
    """:func:`conv2d`, optionally with the fused epilogue ``epilogue = (pre,
    scale, shift, residual)`` (each None or an array of the compute dtype;
    the three vectors ``[out_channels]``, ``residual`` the output's shape in
    ``data_format``): every output tile becomes ``activation(((conv + bias +
    pre) * scale + shift) + residual)`` before it is stored, bit for bit what
    :func:`_eltwise` on the plain convolution gives.

    With ``add = (other, add_activation)`` (``other`` an array of the
    output's shape, ``add_activation`` None or 'relu'), returns the pair
    ``(output, add_activation(other + output))``, the second written by the
    same pass while each tile is in cache (ResNet v1's ``relu(shortcut +
    conv3)``, v2's ``shortcut + conv3``, where conv3's own output stays an
    end point); where the fused form does not apply (NCHW, float16, another
    shape or dtype) the pair is computed in two steps, with the same numbers."""
    x = input if type(input) is np.ndarray else _as_array(input, "input")
    w = filters if type(filters) is np.ndarray else _as_array(filters, "filters")
    if strides is None or dilations is None or data_format is None:  # tf.nn.conv2d's defaults
        strides = 1 if strides is None else strides
        dilations = 1 if dilations is None else dilations
        data_format = "NHWC" if data_format is None else data_format
    if x.dtype.kind in "biu":  # as tf.nn.conv2d: int32 in, exact int32 out (pyconv/_integer.py)
        w = _integer.check_conv_dtypes(x, w, bias)
        plan = _plan_conv2d(x, w, strides, padding, data_format, dilations, activation)
        if bias is not None:
            bias = _as_bias(bias, np.dtype(np.int64), plan[3])
        return _add_after(_integer.conv2d(x, w, plan, bias, plan[2]), add)
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
    plan = _cached_plan(_conv_plans, key, _plan_conv2d, x, w, strides, padding, data_format,
                        dilations, activation)
    cd, od, nchw, cout, args = plan
    if x.dtype != cd:
        x = x.astype(cd)
    if w.dtype != cd:
        w = w.astype(cd)
    if bias is not None:
        bias = _as_bias(bias, cd, cout)
    if args[0] is None:
        return _add_after(np.zeros(args[1], od), add)
    add_args = None
    if add is not None and not nchw and od == cd and w.shape[2] == x.shape[3]:
        add_args = _add_operands(x, w.shape, args, *add)  # None: two steps below
    if epilogue is not None or add_args is not None:
        pre, scale, shift, residual = epilogue if epilogue is not None else (None,) * 4
        if residual is not None and nchw:
            residual = np.ascontiguousarray(residual.transpose(0, 2, 3, 1))
        args = args + (pre, scale, shift, residual) + (add_args or ())
    if nchw:
        out = _conv.conv2d(x.transpose(0, 2, 3, 1), w, bias, *args)
        out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
    else:
        out = _conv.conv2d(x, w, bias, *args)
    if add_args is not None:
        return out  # the operator's pair
    return _add_after(out if od == cd else out.astype(od), add)


def _add_after(out, add):
    """``out``, or with ``add = (other, activation)`` the pair ``(out,
    activation(other + out))`` computed after the convolution."""
    if add is None:
        return out
    other, add_activation = add
    return out, (add_relu(other, out) if add_activation == "relu" else np.add(other, out))


def _add_operands(x, w_shape, args, add_to, add_activation):
    """The operator's (add_to, add_activation code) for a fused second output
    of the NHWC convolution of ``x`` planned as ``args``, or None when
    ``add_to`` is not an array of the output's exact shape and dtype."""
    if (type(add_to) is not np.ndarray or add_to.dtype != x.dtype or add_to.ndim != 4
            or add_activation not in (None, "relu")):
        return None
    pt, pb, pl, pr, sh, sw, dh, dw = args[:8]
    out_h = (x.shape[1] + pt + pb - (w_shape[0] - 1) * dh - 1) // sh + 1
    out_w = (x.shape[2] + pl + pr - (w_shape[1] - 1) * dw - 1) // sw + 1
    if add_to.shape != (x.shape[0], out_h, out_w, w_shape[3]):
        return None
    return np.ascontiguousarray(add_to), _ACTIVATIONS[add_activation]


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


def bias_add(value: Any, bias: ArrayLike, data_format: str = "NHWC") -> np.ndarray:
    """``value + bias`` along the channel axis (last for NHWC, 1 for NCHW), as ``tf.nn.bias_add``."""
    x = _as_array(value, "value")
    if x.dtype.kind in "iu":  # as TF: integers stay integers (with wrap-around)
        cd = od = x.dtype.newbyteorder("=")
        b = _as_array(bias, "bias")
        if b.dtype.kind not in "iu":
            raise TypeError(f"bias has dtype {b.dtype} but value is {x.dtype}: adding to an "
                            "integer value needs an integer bias")
    else:
        cd, od = compute_dtype(x.dtype, "value")
    fmt = check_data_format(data_format)
    if x.ndim < 2:
        raise ValueError(f"bias_add expects value with rank >= 2, got {x.ndim}")
    axis = 1 if fmt == "NCHW" else x.ndim - 1
    b = _as_bias(bias, cd, x.shape[axis])
    if x.dtype.kind in "iu":  # integer wrap-around: NumPy's add (the C pass is f32/f64)
        shape = [1] * x.ndim
        shape[axis] = b.shape[0]
        return np.add(x, b.reshape(shape), order="C")
    out = _eltwise(x.astype(cd, copy=False), axis, shift=b)
    return out.astype(od, copy=False)


def _float_array(x, name):
    a = _as_array(x, name)
    if a.dtype.kind in "iu":  # as tf.nn.relu: integers keep their dtype
        return a
    cd, od = compute_dtype(a.dtype, name)
    return a.astype(od, copy=False) if a.dtype != od else a


def relu(features: ArrayLike) -> np.ndarray:
    """``max(features, 0)``; NaN stays NaN."""
    x = _float_array(features, "features")
    if x.dtype.kind != "f" or x.dtype.itemsize == 2 or x.ndim == 0:  # the C pass: f32/f64
        return np.maximum(x, x.dtype.type(0), order="C")
    return _eltwise(x, x.ndim - 1, activation="relu")


def relu6(features: ArrayLike) -> np.ndarray:
    """``min(max(features, 0), 6)``; NaN stays NaN."""
    x = _float_array(features, "features")
    if x.dtype.kind != "f" or x.dtype.itemsize == 2 or x.ndim == 0:  # the C pass: f32/f64
        out = np.maximum(x, x.dtype.type(0), order="C")
        return np.minimum(out, x.dtype.type(6), out=out)
    return _eltwise(x, x.ndim - 1, activation="relu6")


def _exact(value):
    """``value`` if it is an int, a string, or a tuple/list of those (nested):
    a cache key that equal-but-different values (2.0, True) cannot reach; else None."""
    t = type(value)
    if t is int or t is str:
        return value
    if t is tuple or t is list:
        items = tuple(_exact(v) for v in value)
        return None if None in items else (t is list, items)
    return None


# Everything about a pooling call but the input's values, keyed by its exact
# arguments (see _exact), as _conv_plans for the convolutions.
_pool_plans = {}


def _pool(kind, input, ksize, strides, padding, data_format):
    x = _as_array(input, "input")
    key = (kind, x.shape, x.dtype, _exact(ksize), _exact(strides), _exact(padding),
           _exact(data_format))
    exact = None not in key[3:]
    plan = _pool_plans.get(key) if exact else None
    if plan is None:
        plan = _plan_pool(kind, x, ksize, strides, padding, data_format)
        if exact:
            if len(_pool_plans) > 4096:
                _pool_plans.clear()
            _pool_plans[key] = plan
    cd, od, nchw, args = plan
    if args[0] is None:
        return np.zeros(args[1], od)
    if nchw:
        x = x.transpose(0, 2, 3, 1)
    # The C operator walks the in-bounds part of each window: the work is the
    # output times that part, whatever the padding (a 200 x 200 FULL window
    # over a 6 x 6 input reads at most 36 pixels per output).
    out = _conv.pool2d(x.astype(cd, copy=False), *args)
    if kind == "max" and od != cd and od.kind == "f":
        # float16 computes in float32: a window with nothing above float32's
        # lowest gets float16's lowest, as TF (-65504, not the cast's -inf)
        out[out == np.finfo(cd).min] = np.finfo(od).min
    if nchw:
        out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
    return out if od == cd else out.astype(od)


def _plan_pool(kind, x, ksize, strides, padding, data_format):
    """(compute dtype, output dtype, NCHW?, the C operator's arguments after the
    input, or (None, shape) for an empty output); raises for bad arguments."""
    cd, od = compute_dtype(x.dtype, "input")
    fmt = check_data_format(data_format)
    _check_rank(x, "input", "Pooling")
    k = _spatial(ksize, "ksize", fmt)
    s = _spatial(strides, "strides", fmt)
    pad = normalize_padding(explicit_padding_from_tf(padding, fmt))
    if fmt == "NCHW":
        x = x.transpose(0, 2, 3, 1)
    n, h, w, c = x.shape
    (oh, ow), ((pt, pb), (pl, pr)) = resolve((h, w), k, s, pad, (1, 1))
    if oh == 0 or ow == 0:  # SAME on an empty height or width (as TF)
        shape = (n, c, oh, ow) if fmt == "NCHW" else (n, oh, ow, c)
        return cd, od, fmt == "NCHW", (None, shape)
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
    return cd, od, fmt == "NCHW", (0 if kind == "max" else 1, k[0], k[1], s[0], s[1],
                                   pt, pb, pl, pr)


def max_pool2d(input: ArrayLike, ksize: IntOrPair, strides: IntOrPair, padding: Padding = "VALID",
               data_format: str = "NHWC") -> np.ndarray:
    """Max pooling, as ``tf.nn.max_pool2d`` (padding never wins the max).

    As TF's CPU kernel, each window's maximum starts from the lowest finite
    value and NaN never wins: ``[nan, 1, -inf, 2]`` gives 2, a window of
    only -inf (or NaN) gives -3.4028235e38 in float32 (the lowest float64
    in float64, -65504 in float16).

    ``ksize`` and ``strides`` take an int, a pair or TF's 4-element form;
    ``padding`` is any of pyconv's paddings (pads must be smaller than the window).
    Integer inputs keep their dtype, as TF (bool is a TypeError).
    """
    x = _as_array(input, "input")
    if x.dtype.kind in "biu":
        _integer_only(x, "max_pool2d", "iu")
        fmt = check_data_format(data_format)
        _check_rank(x, "input", "Pooling")
        k, s = _spatial(ksize, "ksize", fmt), _spatial(strides, "strides", fmt)
        return _integer.max_pool2d(x, k, s, padding, fmt)
    return _pool("max", x, ksize, strides, padding, data_format)


def avg_pool2d(input: ArrayLike, ksize: IntOrPair, strides: IntOrPair, padding: Padding = "VALID",
               data_format: str = "NHWC") -> np.ndarray:
    """Average pooling, as ``tf.nn.avg_pool2d``: padded positions are left out
    of each window's count (SAME at the border averages fewer values).
    Integer and bool inputs are a TypeError, as TF."""
    x = _as_array(input, "input")
    if x.dtype.kind in "biu":
        _integer_only(x, "avg_pool2d", "")
    return _pool("avg", x, ksize, strides, padding, data_format)


def _integer_only(x, op, kinds):
    """TF's integer dtype rules for ``op``: ``kinds`` are the accepted kinds."""
    if x.dtype.kind not in kinds:
        raise TypeError(f"input has dtype {x.dtype}; {op} takes float16, float32, float64"
                        + (" and integer dtypes" if kinds else "")
                        + f", as tf.nn.{op}: cast it, e.g. input.astype(np.float32)")


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


def add_relu(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """``relu(x + y)`` in one pass: ResNet's ``relu(shortcut + residual)``.

    Same numbers as ``relu(x + y)`` (one rounding for the sum, NaN stays
    NaN), computed in C on all threads without the intermediate sum array.
    Arrays of different shapes broadcast as in NumPy (then in two passes).

    Parameters
    ----------
    x, y : array_like
        Real arrays; the result has their common dtype (integers stay integers,
        as TF's add and relu; bool computes as float32; float16 in float16 as
        NumPy).

    Returns
    -------
    numpy.ndarray
        A new C-contiguous array.

    Examples
    --------
    >>> add_relu(np.array([1.0, -3.0]), np.array([0.5, 1.0]))
    array([1.5, 0. ])
    """
    if (type(x) is np.ndarray and type(y) is np.ndarray and x.dtype in _NATIVE_FLOATS
            and y.dtype == x.dtype and x.shape == y.shape and x.ndim
            and x.flags.c_contiguous and y.flags.c_contiguous):
        # what the general path below does for two such arrays (a net's residual add)
        shape = x.shape
        view = (math.prod(shape[:-1]), shape[-1], 1)
        return _conv.eltwise(x.reshape(view), None, None, None, y.reshape(view),
                             _ACTIVATIONS["relu"]).reshape(shape)
    a = _float_array(x, "x")
    b = _float_array(y, "y")
    dtype = np.result_type(a.dtype, b.dtype)
    if a.shape != b.shape or dtype.itemsize == 2 or a.ndim == 0 or dtype.kind != "f":
        return relu(np.add(a, b, dtype=dtype))
    a = a.astype(dtype.newbyteorder("="), copy=False)
    b = b.astype(a.dtype, copy=False)
    return _eltwise(a, a.ndim - 1, residual=b, activation="relu")

# --------------------------------------------------------------------------- softmax, dropout
# (tf.nn.softmax and the TF2 tf.nn.dropout; the slim layers in core_layers.py build on them)

__all__ += ["dropout", "softmax"]


def _axis(axis, ndim, name="axis"):
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {axis!r}")
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for a tensor of rank {ndim}: it must be "
                         f"in [{-ndim}, {ndim})")
    return axis % ndim


def softmax(logits, axis=None):
    """``exp(logits) / sum(exp(logits))`` along ``axis``, as ``tf.nn.softmax``.

    Computed as TF's CPU kernel: the maximum along ``axis`` is subtracted
    first (no overflow for large logits), then ``exp(shifted) * (1 / sum)``.
    float16 is computed in float32 and returned as float16; integer and bool
    logits are computed as float32 (pyconv's rule; ``tf.nn.softmax`` refuses them).

    Parameters
    ----------
    logits : array_like, rank >= 1
    axis : int, optional
        Default None: the last axis.

    Returns
    -------
    numpy.ndarray
        A new C-contiguous array with the shape of ``logits``.

    Raises
    ------
    ValueError
        A scalar ``logits``; ``axis`` out of range.
    TypeError
        ``axis`` not an int; a dtype pyconv does not compute.

    Examples
    --------
    >>> softmax(np.log(np.array([[1.0, 3.0]])))
    array([[0.25, 0.75]])
    """
    x = _as_array(logits, "logits")
    cd, od = compute_dtype(x.dtype, "logits")
    if x.ndim == 0:
        raise ValueError("softmax expects logits with rank >= 1, got a scalar (shape ())")
    ax = x.ndim - 1 if axis is None else _axis(axis, x.ndim)
    _memory.check(f"softmax of logits of shape {x.shape}",
                  {"working copies": 2 * x.size * cd.itemsize})
    if x.size == 0:
        return np.zeros(x.shape, od)
    a = np.array(x, dtype=cd, order="C")  # the working copy, changed in place
    a -= a.max(axis=ax, keepdims=True)
    np.exp(a, out=a)
    total = a.sum(axis=ax, keepdims=True)
    a *= np.reciprocal(total, out=total)
    return a if od == cd else a.astype(od)


def _noise_shape(noise_shape, shape):
    """TF's ``_get_noise_shape``: None entries take x's size (same rank only);
    the mask must broadcast to exactly ``shape``."""
    if noise_shape is None:
        return shape
    if isinstance(noise_shape, np.ndarray) and noise_shape.ndim == 1:
        noise_shape = noise_shape.tolist()
    if isinstance(noise_shape, (str, bytes)) or not hasattr(noise_shape, "__len__"):
        raise TypeError(f"noise_shape must be None or a 1-D list of ints, got {noise_shape!r}")
    dims = list(noise_shape)
    if len(dims) == len(shape):
        dims = [s if d is None else d for d, s in zip(dims, shape)]
    for d in dims:
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral):
            raise TypeError(f"noise_shape must be None or a 1-D list of ints, got {noise_shape!r}")
    dims = tuple(int(d) for d in dims)
    try:
        ok = len(dims) <= len(shape) and min(dims, default=0) >= 0 and \
            np.broadcast_shapes(dims, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"noise_shape {list(noise_shape)} does not broadcast to the input's "
                         f"shape {tuple(shape)}: each entry must be 1 or the input's size, "
                         "counted from the last axis")
    return dims


def _generator(seed):
    if seed is None or isinstance(seed, np.random.Generator):
        return np.random.default_rng(seed)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be None, an int or a numpy.random.Generator, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.default_rng(int(seed))


def _dropout(x, rate, noise_shape, seed, what):
    """x * 1/(1 - rate) where a uniform [0, 1) draw >= rate, else 0 (TF's rule)."""
    cd, od = compute_dtype(x.dtype, "x")
    rng = _generator(seed)
    if rate == 0:  # TF's fast path: before noise_shape is looked at
        return x if x.dtype == od else x.astype(od)
    dims = _noise_shape(noise_shape, x.shape)
    n_noise = math.prod(dims)
    _memory.check(f"{what} of an input of shape {x.shape} with noise_shape {list(dims)}",
                  {"output": x.size * cd.itemsize * 2, "random draw": n_noise * 9})
    # TF: scale = 1 / (1 - rate) in Python floats, then cast to x's dtype;
    # the uniform draw in x's dtype is compared with rate in x's dtype.
    scale = cd.type(od.type(1.0 / (1.0 - rate)))  # float16 inputs: a float16 scale, as TF
    keep = rng.random(dims, dtype=np.float64 if cd.itemsize == 8 else np.float32) \
        >= cd.type(rate)
    out = np.multiply(x, scale, dtype=cd)
    np.copyto(out, cd.type(0), where=~keep)  # TF's where(): a dropped NaN or Inf is 0 too
    return out if od == cd else out.astype(od)


def dropout(x, rate, noise_shape=None, seed=None):
    """Sets elements to 0 with probability ``rate`` and scales the rest by
    ``1 / (1 - rate)``, as TF2's ``tf.nn.dropout``.

    The mask is drawn with NumPy's ``Generator`` (PCG64), so it cannot equal
    TF's (Philox) bit for bit: the distribution, the scaling and the
    ``noise_shape`` broadcasting are TF's. An element is kept where a
    uniform ``[0, 1)`` draw is ``>= rate``.

    Parameters
    ----------
    x : array_like
        float16/32/64 keep their dtype; integer and bool inputs are computed
        as float32 (``tf.nn.dropout`` refuses them).
    rate : float in [0, 1)
        The probability that an element is dropped. 0 returns ``x`` itself.
    noise_shape : list of int, optional
        The shape of the keep/drop mask, broadcast to ``x``'s shape (e.g.
        ``[N, 1, 1, C]`` drops whole channels). With ``x``'s rank, ``None``
        entries take ``x``'s sizes.
    seed : None, int >= 0 or numpy.random.Generator
        An int gives the same mask on every call with the same shapes; a
        Generator continues its stream; None draws fresh entropy.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        ``rate`` outside ``[0, 1)``; a ``noise_shape`` that does not
        broadcast to ``x``'s shape.
    TypeError
        ``rate``, ``noise_shape`` or ``seed`` of the wrong type; a dtype
        pyconv does not compute.

    Examples
    --------
    >>> out = dropout(np.ones((2, 4)), 0.5, seed=0)
    >>> sorted(set(out.ravel().tolist()))          # dropped or scaled by 2
    [0.0, 2.0]
    """
    a = _as_array(x, "x")
    if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, numbers.Real):
        raise TypeError(f"rate must be a float in the range [0, 1), got {rate!r}")
    if not 0 <= rate < 1:  # rate keeps its type: TF computes 1 / (1 - rate) with it
        raise ValueError("`rate` must be a scalar tensor or a float in the range [0, 1). "
                         f"Received: rate={float(rate)}")
    return _dropout(a, rate, noise_shape, seed, "dropout")
# --------------------------------------------------------------------------- depthwise

# Everything about a depthwise call that depends only on shapes, dtypes and
# the geometry arguments (as _conv_plans for conv2d).
_dw_plans = {}


def _plan_depthwise(x, w, strides, padding, data_format, dilations, activation, fname):
    cd, od = compute_dtype(x.dtype, "input")
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{fname} has dtype {w.dtype}; it must be a real numeric array")
    fmt = check_data_format(data_format, allow_none=True)
    _check_rank(x, "input", "Depthwise convolution")
    if w.ndim != 4:
        raise ValueError(
            f"{fname} must have rank 4 [filter_height, filter_width, in_channels, "
            f"channel_multiplier], got rank {w.ndim} (shape {w.shape})"
        )
    if not (activation is None or isinstance(activation, str)) or activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be None, 'relu' or 'relu6', got {activation!r}")
    if fmt == "NCHW":
        n, c, h, wd = x.shape
    else:
        n, h, wd, c = x.shape
    kh, kw, cin, dm = w.shape
    if cin != c:
        raise ValueError(
            f"{fname} expects {cin} input channels but the input has {c}: input shape "
            f"{x.shape} ({fmt}), {fname} shape {w.shape} [kh, kw, in_channels, multiplier]"
        )
    if cin == 0 or kh == 0 or kw == 0:
        raise ValueError(f"{fname} shape {w.shape} has a zero kernel size or input channel count")
    if h == 0 or wd == 0:
        raise ValueError(f"input shape {x.shape} ({fmt}) has a zero height or width")
    s = _spatial(strides, "strides", fmt)
    d = _spatial(1 if dilations is None else dilations, "dilations", fmt)
    pad = normalize_padding(explicit_padding_from_tf(padding, fmt))
    (oh, ow), ((pt, pb), (pl, pr)) = resolve((h, wd), (kh, kw), s, pad, d)
    for name, values in (("strides", s), ("dilations", d), ("padding", (pt, pb, pl, pr))):
        if max(values) > _INDEX_MAX:
            raise ValueError(
                f"{name}: {values} (from padding={padding!r}, strides={s}, dilations={d}, "
                f"{fname} shape {w.shape}) exceeds the largest array index {_INDEX_MAX}"
            )
    es, cout, taps = cd.itemsize, c * dm, kh * kw
    out = n * oh * ow * cout
    slots = (ow - 1) * (s[1] if d[1] == 1 else kw) + kw
    _memory.check(
        f"depthwise_conv2d of input shape {x.shape} ({fmt}) with {fname} shape {w.shape} "
        f"(output shape {(n, cout, oh, ow) if fmt == 'NCHW' else (n, oh, ow, cout)})",
        {"output": out * (es * (2 if fmt == "NCHW" else 1) + (od.itemsize if od != cd else 0)),
         "input copy": n * h * wd * c * es,
         # nothing below is allocated for an empty output
         "indirection buffer": oh * slots * kh * 8 if out else 0,
         "packed filter": (kh * kw * cout + (taps + 1) * (cout + 64)) * es if out else 0,
         "expanded image": h * wd * cout * es if out and dm > 1 else 0})
    args = (pt, pb, pl, pr, s[0], s[1], d[0], d[1], _ACTIVATIONS[activation])
    return cd, od, fmt == "NCHW", cout, args


def _depthwise_nhwc(input, filter, strides, padding, data_format, dilations, activation, bias,
                    fname="filter"):
    """The depthwise step: (NHWC output in the compute dtype, output dtype, NCHW?)."""
    x = input if type(input) is np.ndarray else _as_array(input, "input")
    w = filter if type(filter) is np.ndarray else _as_array(filter, fname)
    if dilations is None:
        dilations = 1
    if type(strides) is not int or type(dilations) is not int or type(padding) is not str:
        fmt = check_data_format(data_format, allow_none=True)
        if type(strides) is not int:
            strides = _spatial(strides, "strides", fmt)
        if type(dilations) is not int:
            dilations = _spatial(1 if dilations is None else dilations, "dilations", fmt)
        if type(padding) is not str:
            padding = normalize_padding(explicit_padding_from_tf(padding, fmt))
    key = (x.shape, x.dtype, w.shape, w.dtype, strides, padding, data_format, dilations,
           activation)
    plan = _cached_plan(_dw_plans, key, _plan_depthwise, x, w, strides, padding, data_format,
                        dilations, activation, fname)
    cd, od, nchw, cout, args = plan
    if x.dtype != cd:
        x = x.astype(cd)
    if w.dtype != cd:
        w = w.astype(cd)
    if bias is not None:
        bias = _as_bias(bias, cd, cout)
    if nchw:
        x = x.transpose(0, 2, 3, 1)
    return _conv.depthwise_conv2d(x, w, bias, *args), od, nchw


def depthwise_conv2d(input: ArrayLike, filter: ArrayLike, strides: IntOrPair, padding: Padding,
                     data_format: Optional[str] = None, dilations: Optional[IntOrPair] = None, *,
                     bias: Optional[ArrayLike] = None,
                     activation: Optional[str] = None) -> np.ndarray:
    """Depthwise 2-D convolution, as ``tf.nn.depthwise_conv2d``.

    Every input channel ``c`` is convolved (cross-correlation) with its own
    ``channel_multiplier`` filters ``filter[:, :, c, m]``; output channel
    ``c * channel_multiplier + m`` holds the result, as in TF. Computed by
    pyconv's depthwise C operator (not a dense convolution).

    Parameters
    ----------
    input : array_like, rank 4
        ``NHWC`` (default) or ``NCHW``. float16/32/64 keep their dtype
        (float16 accumulates in float32); integer and bool inputs are computed
        as float32.
    filter : array_like, ``[filter_height, filter_width, in_channels, channel_multiplier]``
    strides : int, (h, w) or TF's 4-element form
        TF requires the 4-element form with equal height and width strides;
        pyconv also takes an int or a pair, and unequal strides.
    padding : 'SAME', 'VALID', 'FULL' (any case), ``[(top, bottom), (left, right)]``
        or TF's 4-pair explicit form.
    data_format : None, 'NHWC' or 'NCHW'
        None is 'NHWC'.
    dilations : None, int, (h, w) or a 4-element form
        None is 1. Dilations and strides may both exceed 1: pyconv computes
        the strided dilated convolution (TF 2.21 warns and returns something
        else).
    bias : array_like ``[in_channels * channel_multiplier]``, optional
        Added in the kernel (fused); pyconv's extension.
    activation : None, 'relu' or 'relu6'
        Applied in the kernel (fused); pyconv's extension.

    Returns
    -------
    numpy.ndarray
        ``[batch, out_h, out_w, in_channels * channel_multiplier]`` (or NCHW),
        a new C-contiguous array.

    Raises
    ------
    ValueError
        Wrong ranks, a channel mismatch, bad padding/data_format/strides or
        an output size below 1 (the message shows the formula).
    TypeError
        A dtype pyconv does not compute.

    Examples
    --------
    >>> x = np.ones((1, 4, 4, 2), np.float32)
    >>> w = np.ones((3, 3, 2, 3), np.float32)
    >>> depthwise_conv2d(x, w, [1, 1, 1, 1], 'VALID').shape
    (1, 2, 2, 6)
    """
    out, od, nchw = _depthwise_nhwc(input, filter, strides, padding, data_format, dilations,
                                    activation, bias)
    if nchw:
        out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
    return out if out.dtype == od else out.astype(od)


def separable_conv2d(input: ArrayLike, depthwise_filter: ArrayLike, pointwise_filter: ArrayLike,
                     strides: IntOrPair, padding: Padding, data_format: Optional[str] = None,
                     dilations: Optional[IntOrPair] = None, *, bias: Optional[ArrayLike] = None,
                     activation: Optional[str] = None) -> np.ndarray:
    """Depthwise convolution followed by a 1x1 convolution, as ``tf.nn.separable_conv2d``.

    The depthwise step is :func:`depthwise_conv2d` (``strides``, ``padding``,
    ``dilations`` apply to it); the pointwise step is a 1x1 VALID
    convolution with ``pointwise_filter`` by pyconv's igemm operator, with
    ``bias`` and ``activation`` fused into it. float16 inputs keep the
    intermediate in float32 (TF rounds it to float16).

    Parameters
    ----------
    input : array_like, rank 4
    depthwise_filter : array_like ``[kh, kw, in_channels, channel_multiplier]``
    pointwise_filter : array_like ``[1, 1, in_channels * channel_multiplier, out_channels]``
    strides, padding, data_format, dilations
        As :func:`depthwise_conv2d` (same leniency).
    bias : array_like ``[out_channels]``, optional
    activation : None, 'relu' or 'relu6'

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        As :func:`depthwise_conv2d`, and a ``pointwise_filter`` that is not
        ``[1, 1, in_channels * channel_multiplier, out_channels]``.

    Examples
    --------
    >>> x = np.ones((1, 5, 5, 3), np.float32)
    >>> y = separable_conv2d(x, np.ones((3, 3, 3, 2), np.float32),
    ...                      np.ones((1, 1, 6, 4), np.float32), 1, 'SAME')
    >>> y.shape, float(y[0, 2, 2, 0])
    ((1, 5, 5, 4), 54.0)
    """
    pw = pointwise_filter if type(pointwise_filter) is np.ndarray else _as_array(
        pointwise_filter, "pointwise_filter")
    if pw.dtype.kind not in "biuf":
        raise TypeError(f"pointwise_filter has dtype {pw.dtype}; it must be a real numeric array")
    if pw.ndim != 4 or pw.shape[0] != 1 or pw.shape[1] != 1:
        raise ValueError(
            "pointwise_filter must have shape [1, 1, in_channels * channel_multiplier, "
            f"out_channels], got shape {pw.shape}"
        )
    dw = depthwise_filter if type(depthwise_filter) is np.ndarray else _as_array(
        depthwise_filter, "depthwise_filter")
    if dw.ndim == 4 and pw.shape[2] != dw.shape[2] * dw.shape[3]:
        raise ValueError(
            f"pointwise_filter has {pw.shape[2]} input channels but the depthwise step gives "
            f"in_channels * channel_multiplier = {dw.shape[2]} * {dw.shape[3]} = "
            f"{dw.shape[2] * dw.shape[3]} (depthwise_filter shape {dw.shape}, pointwise_filter "
            f"shape {pw.shape})"
        )
    mid, od, nchw = _depthwise_nhwc(input, dw, strides, padding, data_format, dilations, None,
                                    None, "depthwise_filter")
    out = conv2d(mid, pw.astype(mid.dtype, copy=False), 1, "VALID", "NHWC", 1, bias=bias,
                 activation=activation)
    if nchw:
        out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
    return out if out.dtype == od else out.astype(od)


# ---- transposed convolution (csrc/deconv.c) ----

__all__ += ["conv2d_backprop_input", "conv2d_transpose"]


def _output_shape(output_shape, name):
    """``output_shape`` as a tuple of ints (TF accepts a list, tuple, array or tensor)."""
    if isinstance(output_shape, (str, bytes)) or output_shape is None:
        raise TypeError(f"{name} must be a 1-D sequence of ints, got {output_shape!r}")
    try:
        arr = np.asarray(output_shape)
    except Exception:  # noqa: BLE001
        arr = None
    if arr is None or arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise TypeError(f"{name} must be a 1-D sequence of ints, got {output_shape!r}")
    if arr.size not in (2, 4):
        raise ValueError(f"Conv2DBackpropInput requires input_sizes to contain 4 values or 2 "
                         f"values, but got: {arr.size} ({name}={output_shape!r})")
    dims = tuple(int(v) for v in arr)
    for v in dims:
        if v < 0:
            raise ValueError(f"Dimension {v} must be >= 0 ({name}={output_shape!r})")
    return dims


def _transpose(fn, x, w, output_shape, shape_name, strides, padding, data_format, dilations,
               bias, activation):
    cd, od = compute_dtype(x.dtype, "input")
    if w.dtype.kind not in "biuf":
        raise TypeError(f"filters have dtype {w.dtype}; they must be a real numeric array")
    fmt = check_data_format(data_format)
    _check_rank(x, "input", fn)
    if w.ndim != 4:
        raise ValueError(
            "Conv2DCustomBackpropInput: filter must be 4-dimensional "
            f"[kernel_h, kernel_w, out_channels, in_channels], got rank {w.ndim} "
            f"(shape {w.shape})")
    if not (activation is None or isinstance(activation, str)) or activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be None, 'relu' or 'relu6', got {activation!r}")
    if fmt == "NCHW":
        n, c, h, wd = x.shape
    else:
        n, h, wd, c = x.shape
    kh, kw, cout, cin = w.shape
    dims = _output_shape(output_shape, shape_name)
    if len(dims) == 2:
        on, (oh, ow), oc = n, dims, cout
    elif fmt == "NCHW":
        on, oc, oh, ow = dims
    else:
        on, oh, ow, oc = dims
    s = _spatial(strides, "strides", fmt)
    d = _spatial(1 if dilations is None else dilations, "dilations", fmt)
    if d != (1, 1):
        raise ValueError("Current CPU implementations do not yet support dilation rates larger "
                         "than 1. TensorFlow's CPU kernel refuses them too; got dilations="
                         f"{dilations!r}")
    if cin != c:
        raise ValueError(
            "Conv2DCustomBackpropInput: filter and out_backprop must have the same out_depth: "
            f"filters shape {w.shape} [kh, kw, out, in] has {cin} input channels, the input "
            f"shape {x.shape} ({fmt}) has {c}")
    if oc != cout:
        raise ValueError(
            "Conv2DCustomBackpropInput: input depth must be evenly divisible by filter depth: "
            f"{shape_name} {dims} ({fmt}) has {oc} channels, filters shape {w.shape} "
            f"[kh, kw, out, in] give {cout}")
    if on != n:
        raise ValueError(
            "Conv2DCustomBackpropInput: input and out_backprop must have the same batch size. "
            f"Input batch: {on}, outbackprop batch: {n}, batch_dim: 0 ({shape_name} {dims}, "
            f"input shape {x.shape})")
    if kh == 0 or kw == 0 or cin == 0:
        raise ValueError(f"filters shape {w.shape} has a zero kernel size or input channel count")
    if h == 0 or wd == 0:
        raise ValueError(f"input shape {x.shape} ({fmt}) has a zero height or width")
    pad = normalize_padding(explicit_padding_from_tf(padding, fmt))
    sd = (2, 3) if fmt == "NCHW" else (1, 2)
    (pt, pb), (pl, pr) = transpose_padding((oh, ow), (h, wd), (kh, kw), s, pad, sd)
    for name, values in (("strides", s), ("padding", (pt, pb, pl, pr)),
                         (shape_name, (oh, ow))):
        if max(values) > _INDEX_MAX:
            raise ValueError(f"{name}: {values} exceeds the largest array index {_INDEX_MAX}")
    es, pixels = cd.itemsize, oh * ow
    out = n * pixels * cout
    phases = min(s[0], oh) * min(s[1], ow)
    taps = -(-kh // s[0]) * -(-kw // s[1])
    _memory.check(
        f"{fn} of input shape {x.shape} ({fmt}) with filters shape {w.shape} to "
        f"{shape_name} {dims}",
        {"output": out * (es * (2 if fmt == "NCHW" else 1) + (od.itemsize if od != cd else 0)),
         "input copy": n * h * wd * c * es,
         "tiles and indirection buffer": (pixels + 16 * phases) * (taps * 8 + 64) if out else 0,
         "packed filters": (kh * kw * cin * cout + (cout + 64) * (kh * kw * cin + kh * kw)) * es
         if out else 0,
         # few output channels: every input pixel times every (tap, channel), then a gather
         "columns": n * h * wd * kh * kw * cout * es if out and cout <= 8 else 0})
    if x.dtype != cd:
        x = x.astype(cd)
    if w.dtype != cd:
        w = w.astype(cd)
    if bias is not None:
        bias = _as_bias(bias, cd, cout)
    args = (oh, ow, pt, pb, pl, pr, s[0], s[1], _ACTIVATIONS[activation])
    if fmt == "NCHW":
        y = _conv.conv2d_transpose(x.transpose(0, 2, 3, 1), w, bias, *args)
        y = np.ascontiguousarray(y.transpose(0, 3, 1, 2))
    else:
        y = _conv.conv2d_transpose(x, w, bias, *args)
    return y if od == cd else y.astype(od)


def conv2d_transpose(input, filters, output_shape, strides, padding="SAME", data_format="NHWC",
                     dilations=None, name=None, *, bias=None, activation=None):
    """The transpose of ``conv2d`` (its gradient with respect to its input),
    as ``tf.nn.conv2d_transpose``; often called deconvolution.

    Every input pixel ``(i, j)`` adds ``input[i, j] @ filters[ky, kx].T`` to
    output pixel ``(i * s_h + ky - pad_top, j * s_w + kx - pad_left)``, where
    the pads are those of the forward convolution from ``output_shape`` to
    the input's size (``pyconv.geometry.transpose_padding``). Computed by
    pyconv's transposed-convolution operator (``stride_h * stride_w``
    sub-convolutions; no zero-stuffed input).

    Parameters
    ----------
    input : array_like, rank 4
        ``NHWC`` (default) or ``NCHW``. float16/32/64 keep their dtype
        (float16 accumulates in float32); integer and bool are computed as float32.
    filters : array_like, ``[kernel_h, kernel_w, out_channels, in_channels]``
        Note the order: output channels before input channels (TF's).
    output_shape : sequence of 4 ints in ``data_format`` order (or 2: height, width)
        Any size TF accepts: SAME needs ``ceil(out / s) == in``, VALID
        ``ceil((out - k + 1) / s) == in``, explicit pads
        ``(out + before + after - k) // s + 1 == in``.
    strides : int, (h, w) or TF's 4-element form
    padding : 'SAME', 'VALID' (any case; also 'FULL'), ``[(top, bottom), (left, right)]``
        or TF's 4-pair explicit form.
    data_format : 'NHWC' or 'NCHW'
        NCHW is computed as NHWC plus transposes (TF's CPU kernel has only NHWC).
    dilations : None, 1 or all ones
        TensorFlow's CPU kernel refuses dilations > 1; so does pyconv (ValueError).
    name : ignored (there is no graph)
    bias : array_like ``[out_channels]``, optional, keyword only
        Added in the kernel (fused).
    activation : None, 'relu' or 'relu6', keyword only
        Applied in the kernel (fused).

    Returns
    -------
    numpy.ndarray of ``output_shape``, C-contiguous, in ``data_format``.

    Raises
    ------
    ValueError
        TF's messages: an ``output_shape`` whose forward convolution does not
        give the input size ("Size of out_backprop doesn't match computed"),
        channel or batch mismatches, a wrong rank or length, negative sizes,
        bad strides/padding/data_format, dilations > 1.
    TypeError
        A dtype pyconv does not compute, or an ``output_shape`` that is not a
        sequence of ints.

    Examples
    --------
    >>> x = np.ones((1, 2, 2, 1), np.float32)
    >>> conv2d_transpose(x, np.ones((3, 3, 1, 1), np.float32), [1, 4, 4, 1], 2)[0, :, :, 0]
    array([[1., 1., 2., 1.],
           [1., 1., 2., 1.],
           [2., 2., 4., 2.],
           [1., 1., 2., 1.]], dtype=float32)
    """
    x = input if type(input) is np.ndarray else _as_array(input, "input")
    w = filters if type(filters) is np.ndarray else _as_array(filters, "filters")
    return _transpose("conv2d_transpose", x, w, output_shape, "output_shape", strides, padding,
                      data_format, dilations, bias, activation)


def conv2d_backprop_input(input_sizes, filter=None, out_backprop=None, strides=None,
                          padding=None, use_cudnn_on_gpu=True, data_format="NHWC",
                          dilations=(1, 1, 1, 1), name=None, filters=None):
    """The gradient of ``conv2d`` with respect to its input, as
    ``tf.compat.v1.nn.conv2d_backprop_input`` (the op behind ``conv2d_transpose``).

    ``input_sizes`` is the shape of the forward convolution's input (this
    call's output), ``filter`` (or ``filters``) ``[kh, kw, in, out]`` of the
    forward convolution (the same array ``conv2d_transpose`` takes),
    ``out_backprop`` the gradient of its output. ``strides`` and ``padding``
    are required, as in TF; ``use_cudnn_on_gpu`` and ``name`` are ignored.
    Same results, rules and errors as :func:`conv2d_transpose`.
    """
    if filter is not None and filters is not None:
        raise ValueError("Cannot specify both 'filter' and 'filters' (they are one argument)")
    w = filters if filter is None else filter
    if w is None:
        raise TypeError("conv2d_backprop_input() missing the filter argument ('filter' or "
                        "'filters')")
    if out_backprop is None:
        raise TypeError("conv2d_backprop_input() missing the out_backprop argument")
    if strides is None:
        raise TypeError("conv2d_backprop_input() missing the strides argument")
    if padding is None:
        raise TypeError("conv2d_backprop_input() missing the padding argument")
    if not isinstance(use_cudnn_on_gpu, (bool, np.bool_)):
        raise TypeError(f"use_cudnn_on_gpu must be a bool, got {use_cudnn_on_gpu!r}")
    x = out_backprop if type(out_backprop) is np.ndarray else _as_array(out_backprop,
                                                                        "out_backprop")
    w = w if type(w) is np.ndarray else _as_array(w, "filter")
    return _transpose("conv2d_backprop_input", x, w, input_sizes, "input_sizes", strides,
                      padding, data_format, dilations, None, None)

# ---- end of transposed convolution ----
