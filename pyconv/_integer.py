"""Integer inputs of ``pyconv.nn``, as ``tf.nn``: exact results in the input's dtype.

``tf.nn.conv2d`` takes int32 (and no other integer dtype) and returns int32
with two's-complement wrap-around: the result is the exact sum of products
modulo 2**32. pyconv computes it exactly:

- when every partial sum is bounded by ``taps * max|x| * max|w| < 2**53`` (and
  so is exact in float64), through the float64 C operator, then reduced
  modulo 2**32;
- otherwise with int64 arithmetic in NumPy (one matrix product per kernel
  tap), whose wrap-around modulo 2**64 leaves the result modulo 2**32
  unchanged. This path is slow; it only serves huge integer values.

``tf.nn.max_pool2d`` keeps every integer dtype (not bool); the maximum is
taken in that dtype. ``avg_pool2d`` and the other integer dtypes of
``conv2d`` are a TypeError, as in TF.
"""

import numpy as np

from . import _conv, _memory
from .geometry import explicit_padding_from_tf, normalize_padding, resolve

_INT32 = np.dtype(np.int32)
_EXACT_FLOAT64 = 2.0 ** 53


def check_conv_dtypes(x, w, bias):
    """TF's dtype rules for an integer conv2d input; returns the filters as int32."""
    if x.dtype.kind != "i" or x.dtype.itemsize != 4:
        raise TypeError(
            f"input has dtype {x.dtype}; conv2d takes float16, float32, float64 and, as "
            "tf.nn.conv2d, int32 (computed exactly, with int32 wrap-around): cast it, e.g. "
            "input.astype(np.float32)")
    if w.dtype.kind not in "iu":
        raise TypeError(f"filters have dtype {w.dtype} but the input is int32: an int32 "
                        "convolution needs integer filters (tf.nn.conv2d needs int32)")
    if bias is not None:
        b = np.asarray(bias)
        if b.dtype.kind not in "iu":
            raise TypeError(f"bias has dtype {b.dtype} but the input is int32: it must be "
                            "an integer array")
    return w.astype(_INT32, copy=False)


def conv2d(x, w, plan, bias, nchw):
    """The int32 convolution of ``x`` (int32, NHWC or NCHW) with int32 ``w``.

    ``plan`` is ``nn._plan_conv2d``'s, which checked every argument and size.
    """
    _, _, _, cout, args = plan
    if args[0] is None:  # an empty height or width
        return np.zeros(args[1], _INT32)
    pt, pb, pl, pr, sh, sw, dh, dw, act = args
    xh = x.transpose(0, 2, 3, 1) if nchw else x
    kh, kw, cin, _ = w.shape
    n, h, wd, _ = xh.shape
    oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow = (wd + pl + pr - (kw - 1) * dw - 1) // sw + 1
    _memory.check(f"int32 conv2d of input shape {xh.shape} (NHWC) with filters shape {w.shape}",
                  {"float64 or int64 copies": 8 * (xh.size + w.size + 2 * n * oh * ow * cout)})
    amax = int(np.abs(xh.astype(np.int64)).max()) if xh.size else 0
    wmax = int(np.abs(w.astype(np.int64)).max()) if w.size else 0
    if kh * kw * cin * amax * wmax < _EXACT_FLOAT64:
        out = _conv.conv2d(xh.astype(np.float64), w.astype(np.float64), None,
                           pt, pb, pl, pr, sh, sw, dh, dw, 0)
        out = out.astype(np.int64)
    else:
        out = _int64_conv(xh.astype(np.int64), w.astype(np.int64), (pt, pb, pl, pr),
                          (sh, sw), (dh, dw))
    if bias is not None:
        out += np.asarray(bias).astype(np.int64).reshape(1, 1, 1, cout)
    out = out.astype(_INT32)  # modulo 2**32, as TF's int32 arithmetic
    if act:
        np.maximum(out, 0, out=out)
        if act == 2:
            np.minimum(out, 6, out=out)
    if nchw:
        out = out.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out)


def _int64_conv(x, w, pads, strides, dilations):
    pt, pb, pl, pr = pads
    (sh, sw), (dh, dw) = strides, dilations
    kh, kw, _, cout = w.shape
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh = (xp.shape[1] - (kh - 1) * dh - 1) // sh + 1
    ow = (xp.shape[2] - (kw - 1) * dw - 1) // sw + 1
    out = np.zeros((x.shape[0], oh, ow, cout), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i * dh: i * dh + (oh - 1) * sh + 1: sh,
                       j * dw: j * dw + (ow - 1) * sw + 1: sw, :]
            out += patch @ w[i, j]
    return out


def max_pool2d(x, k, s, padding, fmt):
    """Max pooling of an integer array in its own dtype (the padding never wins)."""
    x = x.astype(x.dtype.newbyteorder("="), copy=False)
    if fmt == "NCHW":
        x = x.transpose(0, 2, 3, 1)
    n, h, w, c = x.shape
    pad = normalize_padding(explicit_padding_from_tf(padding, fmt))
    (oh, ow), ((pt, pb), (pl, pr)) = resolve((h, w), k, s, pad, (1, 1))
    if max(pt, pb) >= k[0] or max(pl, pr) >= k[1]:
        raise ValueError(
            f"padding {padding!r} gives pooling windows that lie entirely in the padding: "
            f"every pad must be smaller than the window ({k[0]} x {k[1]})")
    _memory.check(f"max_pool2d of input shape {x.shape} (NHWC, {x.dtype})",
                  {"padded input": n * c * (h + pt + pb) * (w + pl + pr) * x.itemsize,
                   "output": 2 * n * oh * ow * c * x.itemsize})
    if oh == 0 or ow == 0 or n == 0 or c == 0:
        out = np.zeros((n, oh, ow, c), x.dtype)
    else:
        lowest = np.iinfo(x.dtype).min
        xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=lowest)
        win = np.lib.stride_tricks.sliding_window_view(xp, k, axis=(1, 2))
        win = win[:, : (oh - 1) * s[0] + 1: s[0], : (ow - 1) * s[1] + 1: s[1]]
        out = win.max(axis=(-2, -1))
    if fmt == "NCHW":
        out = out.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out)
