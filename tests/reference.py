"""The slow, obviously-correct float64 twin of pyconv's arithmetic.

Written from TensorFlow's documented formulas, independently of
``pyconv.geometry``, so that a mistake there cannot hide in the tests.
Everything here is float64 NumPy over an explicitly padded NHWC input.
"""

import math

import numpy as np


def same_pads(n, k, s, rate=1):
    """TF's SAME: output ceil(n / s); the odd pad goes after (bottom/right)."""
    k_eff = (k - 1) * rate + 1
    out = math.ceil(n / s)
    total = max((out - 1) * s + k_eff - n, 0)
    return total // 2, total - total // 2


def pads_for(padding, n, k, s, rate=1):
    """(before, after) for one dimension from a padding name or explicit pair."""
    k_eff = (k - 1) * rate + 1
    if isinstance(padding, str):
        name = padding.upper()
        if name == "SAME":
            return same_pads(n, k, s, rate)
        if name == "VALID":
            return 0, 0
        if name == "FULL":
            return k_eff - 1, k_eff - 1
        raise ValueError(padding)
    return tuple(padding)


def conv2d_reference(x, w, strides=(1, 1), pads=((0, 0), (0, 0)), dilations=(1, 1), bias=None,
                     activation=None):
    """float64 convolution of NHWC ``x`` with HWIO ``w`` over explicit pads.

    One loop over kernel taps; each tap is a strided slice of the padded input
    times that tap's [cin, cout] matrix.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    (pt, pb), (pl, pr) = pads
    sh, sw = strides
    dh, dw = dilations
    kh, kw, cin, cout = w.shape
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    n, hp, wp, _ = xp.shape
    oh = (hp - ((kh - 1) * dh + 1)) // sh + 1
    ow = (wp - ((kw - 1) * dw + 1)) // sw + 1
    out = np.zeros((n, oh, ow, cout))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i * dh: i * dh + (oh - 1) * sh + 1: sh,
                       j * dw: j * dw + (ow - 1) * sw + 1: sw, :]
            out += patch @ w[i, j]
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64)
    if activation == "relu":
        out = np.where(out < 0, 0.0, out)
    elif activation == "relu6":
        out = np.where(out < 0, 0.0, np.where(out > 6, 6.0, out))
    return out


def conv2d_padded(x, w, strides, padding, dilations=(1, 1), **kw):
    """``conv2d_reference`` with the pads of a padding name (NHWC)."""
    x = np.asarray(x)
    pads = tuple(
        pads_for(padding if isinstance(padding, str) else padding[d], x.shape[1 + d],
                 w.shape[d], strides[d], dilations[d])
        for d in range(2)
    )
    return conv2d_reference(x, w, strides, pads, dilations, **kw)


def error_scale(x, w, strides, pads, dilations):
    """sum |x| |w| per output element: what a rounding error is relative to."""
    return conv2d_reference(np.abs(np.asarray(x, np.float64)), np.abs(np.asarray(w, np.float64)),
                            strides, pads, dilations)


def tf_max(values, lowest):
    """TF's max over one window of one channel, by its rule: start from the
    lowest finite value, and a value replaces the maximum only if it is
    greater (so NaN, which compares false, never does)."""
    best = lowest
    for v in values:
        if v > best:
            best = v
    return best


def pool_reference(kind, x, k, s, pads, dtype=None):
    """Max or average pooling of NHWC ``x`` by explicit loops over the
    in-bounds part of each window (padding never counts), as TF: average
    pooling divides by the number of positions inside the input; max pooling
    follows :func:`tf_max` with the lowest finite value of ``dtype``
    (default ``x``'s dtype if floating, else float64)."""
    if dtype is None:
        dtype = x.dtype if np.asarray(x).dtype.kind == "f" else np.float64
    lowest = float(np.finfo(dtype).min)
    x = np.asarray(x, dtype=np.float64)
    n, h, w, c = x.shape
    (pt, pb), (pl, pr) = pads
    oh = (h + pt + pb - k[0]) // s[0] + 1
    ow = (w + pl + pr - k[1]) // s[1] + 1
    out = np.empty((n, oh, ow, c))
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * s[0] - pt, ox * s[1] - pl
            ys = slice(max(y0, 0), min(y0 + k[0], h))
            xs = slice(max(x0, 0), min(x0 + k[1], w))
            window = x[:, ys, xs, :]
            window = window.reshape(n, window.shape[1] * window.shape[2], c)
            if kind == "max":  # tf_max, vectorised: NaN never wins, -inf loses to lowest
                out[:, oy, ox, :] = np.maximum(
                    np.where(np.isnan(window), -np.inf, window).max(axis=1), lowest)
            else:
                out[:, oy, ox, :] = window.mean(axis=1)
    return out


def slim_test_image(n):
    """TF-Slim's resnet_utils test input: value = row + column, shape [1, n, n, 1]."""
    r = np.arange(n, dtype=np.float64)
    return (r[:, None] + r[None, :]).reshape(1, n, n, 1)


def dense_reference(x, w, bias=None, activation=None):
    """float64 ``x @ w`` over the last axis of ``x`` (any rank >= 2), one
    input unit at a time, plus ``bias`` and 'relu'/'relu6'."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    out = np.zeros(x.shape[:-1] + (w.shape[1],))
    for i in range(w.shape[0]):
        out += x[..., i:i + 1] * w[i]
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64)
    if activation == "relu":
        out = np.maximum(out, 0)
    elif activation == "relu6":
        out = np.clip(out, 0, 6)
    return out


def dense_error_scale(x, w):
    """sum_i |x_i| |w_ij| per output element: the scale of a dot product's rounding."""
    x = np.abs(np.asarray(x, dtype=np.float64))
    w = np.abs(np.asarray(w, dtype=np.float64))
    return dense_reference(x, w)
def depthwise_reference(x, w, strides=(1, 1), pads=((0, 0), (0, 0)), dilations=(1, 1),
                        bias=None, activation=None):
    """float64 depthwise convolution of NHWC ``x`` with ``w`` [kh, kw, c, m] over
    explicit pads, as tf.nn.depthwise_conv2d: output channel ``c * m + j`` is
    channel c of the input convolved with ``w[:, :, c, j]``.

    One loop over kernel taps; each tap is a strided slice of the padded input
    times that tap's [c, m] weights, broadcast (no dense [c, c*m] matrix).
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    (pt, pb), (pl, pr) = pads
    sh, sw = strides
    dh, dw = dilations
    kh, kw, c, m = w.shape
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    n, hp, wp, _ = xp.shape
    oh = (hp - ((kh - 1) * dh + 1)) // sh + 1
    ow = (wp - ((kw - 1) * dw + 1)) // sw + 1
    out = np.zeros((n, oh, ow, c, m))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i * dh: i * dh + (oh - 1) * sh + 1: sh,
                       j * dw: j * dw + (ow - 1) * sw + 1: sw, :]
            out += patch[..., None] * w[i, j]
    out = out.reshape(n, oh, ow, c * m)
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64)
    if activation == "relu":
        out = np.where(out < 0, 0.0, out)
    elif activation == "relu6":
        out = np.where(out < 0, 0.0, np.where(out > 6, 6.0, out))
    return out
