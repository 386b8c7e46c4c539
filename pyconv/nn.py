"""Array operations mirroring ``tf.nn``: no variables, no scopes.

Argument checking happens here; arithmetic happens in the C operator
(``pyconv._conv``), which only ever sees NHWC arrays and explicit pads.
"""

import numbers

import numpy as np

from . import _conv, _memory
from .geometry import explicit_padding_from_tf, normalize_padding, pair, resolve, transpose_padding

__all__ = ["conv2d", "bias_add", "relu", "relu6", "max_pool2d", "avg_pool2d"]

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
    shape = [1] * x.ndim
    shape[axis] = b.shape[0]
    out = np.add(x.astype(cd, copy=False), b.reshape(shape), order="C")
    return out.astype(od, copy=False)


def _float_array(x, name):
    a = _as_array(x, name)
    cd, od = compute_dtype(a.dtype, name)
    return a.astype(od, copy=False) if a.dtype != od else a


def relu(features):
    """``max(features, 0)``; NaN stays NaN."""
    x = _float_array(features, "features")
    return np.maximum(x, x.dtype.type(0), order="C")


def relu6(features):
    """``min(max(features, 0), 6)``; NaN stays NaN."""
    x = _float_array(features, "features")
    out = np.maximum(x, x.dtype.type(0), order="C")
    return np.minimum(out, x.dtype.type(6), out=out)


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
    es, padded = cd.itemsize, (h + pt + pb) * (w + pl + pr)
    _memory.check(
        f"{kind}_pool2d of input shape {x.shape} (NHWC) with ksize {k}, strides {s} and "
        f"padding {padding!r} (output {oh} x {ow})",
        {"padded input": n * c * padded * es, "input copy": n * h * w * c * es,
         "output": 3 * n * oh * ow * c * es,
         "window counts": (padded + oh * ow) * es if kind == "avg" else 0})
    x = x.astype(cd, copy=False)
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    win = np.lib.stride_tricks.sliding_window_view(xp, k, axis=(1, 2))
    win = win[:, : (oh - 1) * s[0] + 1 : s[0], : (ow - 1) * s[1] + 1 : s[1]]
    if kind == "max":
        out = win.max(axis=(-2, -1))
    else:
        total = win.sum(axis=(-2, -1))
        ones = np.pad(np.ones((h, w), cd), ((pt, pb), (pl, pr)))
        cw = np.lib.stride_tricks.sliding_window_view(ones, k)
        count = cw[: (oh - 1) * s[0] + 1 : s[0], : (ow - 1) * s[1] + 1 : s[1]].sum(axis=(-2, -1))
        out = total / count[None, :, :, None]
    if fmt == "NCHW":
        out = out.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out, dtype=od)


def max_pool2d(input, ksize, strides, padding="VALID", data_format="NHWC"):
    """Max pooling, as ``tf.nn.max_pool2d`` (padding never wins the max).

    ``ksize`` and ``strides`` take an int, a pair or TF's 4-element form;
    ``padding`` is any of pyconv's paddings (pads must be smaller than the window).
    """
    return _pool("max", input, ksize, strides, padding, data_format)


def avg_pool2d(input, ksize, strides, padding="VALID", data_format="NHWC"):
    """Average pooling, as ``tf.nn.avg_pool2d``: padded positions are left out
    of each window's count (SAME at the border averages fewer values)."""
    return _pool("avg", input, ksize, strides, padding, data_format)


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
