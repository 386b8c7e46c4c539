"""Sizes and pads: the one place that turns SAME / VALID / FULL into numbers.

With ``k_eff = k + (k - 1) * (rate - 1)`` for a dimension of size ``n`` and
stride ``s``:

=========  ============================  ==========================================
padding    output size                   pad before / after
=========  ============================  ==========================================
SAME       ``ceil(n / s)``               total ``max((out - 1) * s + k_eff - n, 0)``,
                                         before ``total // 2``, after the rest
VALID      ``ceil((n - k_eff + 1) / s)``  0 / 0
FULL       ``ceil((n + k_eff - 1) / s)``  ``k_eff - 1`` / ``k_eff - 1``
explicit   ``floor((n + b + a - k_eff) / s) + 1``  as given
=========  ============================  ==========================================

Everything else in pyconv (``nn``, the layers, the C operator) works with
explicit ``(before, after)`` pads computed here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names in the type hints only
    from ._typing import Any, IntOrPair, Padding, PaddingComparison, PaddingExplanation, Union

import difflib
import numbers
from functools import lru_cache

from ._errors import TypeValueError  # sizes of another type: TF raises ValueError

__all__ = ["compare_padding", "conv_output_size", "conv_padding", "explain_padding"]

PADDINGS = ("SAME", "VALID", "FULL")


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeValueError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def pair(value, name, minimum=1):
    """``value`` as an ``(h, w)`` tuple of ints >= ``minimum``.

    Accepts an int or a sequence of two ints; anything else raises a
    ``TypeError``/``ValueError`` that names ``name``.
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeValueError(f"{name} must be an int or a pair (h, w) of ints, got {value!r}")
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        v = _check_int(value, name, minimum)
        return (v, v)
    try:
        items = list(value)
    except TypeError:
        raise TypeValueError(
            f"{name} must be an int or a pair (h, w) of ints, got {value!r} "
            f"({type(value).__name__})"
        ) from None
    if len(items) != 2:
        raise ValueError(f"{name} must be an int or a pair (h, w) of ints, got {value!r}")
    return (_check_int(items[0], name, minimum), _check_int(items[1], name, minimum))


def normalize_padding(padding):
    """``'SAME'``, ``'VALID'``, ``'FULL'`` or explicit ``((top, bottom), (left, right))``.

    Strings are case-insensitive; an unknown one raises a ``ValueError`` that
    lists the valid choices and suggests the nearest.
    """
    if isinstance(padding, str):
        name = padding.upper()
        if name in PADDINGS:
            return name
        close = difflib.get_close_matches(name, PADDINGS, n=1, cutoff=0.4)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"padding must be one of 'SAME', 'VALID', 'FULL' (any case) or explicit "
            f"[(top, bottom), (left, right)], got {padding!r}.{hint}"
        )
    if isinstance(padding, bytes) or padding is None:
        raise TypeError(
            "padding must be 'SAME', 'VALID', 'FULL' or explicit [(top, bottom), (left, right)], "
            f"got {padding!r}"
        )
    try:
        rows = [tuple(r) for r in padding]
    except TypeError:
        raise TypeError(
            "padding must be 'SAME', 'VALID', 'FULL' or explicit [(top, bottom), (left, right)], "
            f"got {padding!r}"
        ) from None
    if len(rows) != 2 or any(len(r) != 2 for r in rows):
        raise ValueError(
            "explicit padding must be [(top, bottom), (left, right)], "
            f"got {padding!r}"
        )
    return tuple(tuple(_check_int(v, "padding", 0) for v in r) for r in rows)


def explicit_padding_from_tf(padding, data_format):
    """TF's 4-pair explicit padding (``[[0, 0], [t, b], [l, r], [0, 0]]`` in
    ``data_format`` order) to ``((t, b), (l, r))``; other values pass through."""
    if isinstance(padding, (str, bytes)) or padding is None:
        return padding
    try:
        rows = [tuple(r) for r in padding]
    except TypeError:
        return padding
    if len(rows) != 4:
        return padding
    if data_format == "NCHW":
        batch, chan, h, w = rows
    else:
        batch, h, w, chan = rows
    if any(v != 0 for v in batch + chan):
        raise ValueError(
            f"padding: explicit padding of the batch and channel dimensions must be 0, "
            f"got {padding!r}"
        )
    return (h, w)


def effective_kernel(kernel_size, rate):
    """``k + (k - 1) * (rate - 1)``: the span of a dilated kernel."""
    return kernel_size + (kernel_size - 1) * (rate - 1)


def _dim(n, k, s, padding, rate, label=""):
    """(out, before, after) for one dimension; ``padding`` is normalised."""
    k_eff = effective_kernel(k, rate)
    if padding == "SAME":
        out = -(-n // s)
        total = max((out - 1) * s + k_eff - n, 0)
        before, after = total // 2, total - total // 2
        formula = f"ceil(n / s) = ceil({n} / {s})"
    elif padding == "VALID":
        out = -(-(n - k_eff + 1) // s)
        before = after = 0
        formula = f"ceil((n - k_eff + 1) / s) = ceil(({n} - {k_eff} + 1) / {s})"
    elif padding == "FULL":
        out = -(-(n + k_eff - 1) // s)
        before = after = k_eff - 1
        formula = f"ceil((n + k_eff - 1) / s) = ceil(({n} + {k_eff} - 1) / {s})"
    else:
        before, after = padding
        out = (n + before + after - k_eff) // s + 1
        formula = (
            f"floor((n + before + after - k_eff) / s) + 1 = "
            f"floor(({n} + {before} + {after} - {k_eff}) / {s}) + 1"
        )
    if out < 1 and not (n == 0 and padding == "SAME"):  # TF: SAME keeps an empty input empty
        name = padding if isinstance(padding, str) else "explicit"
        where = f" along the {label}" if label else ""
        raise ValueError(
            f"{name} padding gives an output size of {out}{where}: {formula} = {out} "
            f"(kernel {k}, rate {rate}, so k_eff = {k_eff}; input size {n}, stride {s}). "
            "The output must be at least 1: use a smaller kernel or rate, more padding "
            "or a larger input."
        )
    return out, before, after


@lru_cache(maxsize=1024)
def _resolve(in_hw, k_hw, s_hw, padding, r_hw):
    """((out_h, out_w), ((top, bottom), (left, right))) — cached, arguments normalised."""
    labels = ("height", "width")
    dims = []
    for i in range(2):
        p = padding if isinstance(padding, str) else padding[i]
        dims.append(_dim(in_hw[i], k_hw[i], s_hw[i], p, r_hw[i], labels[i]))
    return (dims[0][0], dims[1][0]), ((dims[0][1], dims[0][2]), (dims[1][1], dims[1][2]))


def resolve(in_hw, k_hw, s_hw, padding, r_hw):
    """Output size and explicit pads for a 2-D window op (all arguments already pairs)."""
    return _resolve(in_hw, k_hw, s_hw, normalize_padding(padding), r_hw)


def conv2d_same_padding(kernel_size, rate=1):
    """ResNet's ``conv2d_same`` pads for stride > 1: ``k_eff - 1`` in total,
    ``// 2`` before and the rest after, whatever the input size."""
    total = effective_kernel(kernel_size, rate) - 1
    return (total // 2, total - total // 2)


def _is_pair(v):
    return not isinstance(v, (numbers.Integral, str)) and v is not None


def _per_dim(input_size, kernel_size, stride, padding, rate):
    """Normalised arguments per dimension and whether the caller gave pairs."""
    pad = normalize_padding(padding)
    as_pair = any(_is_pair(v) for v in (input_size, kernel_size, stride, rate)) or not isinstance(
        pad, str
    )
    n = pair(input_size, "input_size")
    k = pair(kernel_size, "kernel_size")
    s = pair(stride, "stride")
    r = pair(rate, "rate")
    return n, k, s, pad, r, as_pair


def conv_output_size(input_size: IntOrPair, kernel_size: IntOrPair, stride: IntOrPair = 1,
                     padding: Padding = "SAME", rate: IntOrPair = 1) -> Union[int, tuple[int, int]]:
    """Output size of a convolution or pooling along one or two dimensions.

    Parameters
    ----------
    input_size, kernel_size, stride, rate : int or (int, int)
    padding : 'SAME', 'VALID', 'FULL' (any case) or [(top, bottom), (left, right)]

    Returns
    -------
    int, or an ``(h, w)`` tuple when any argument is a pair (or padding is explicit).

    Examples
    --------
    >>> conv_output_size(4, 3, stride=2, padding='SAME')
    2
    >>> conv_output_size((224, 224), 7, stride=2, padding='VALID')
    (109, 109)
    """
    n, k, s, pad, r, as_pair = _per_dim(input_size, kernel_size, stride, padding, rate)
    out, _ = _resolve(n, k, s, pad, r)
    return out if as_pair else out[0]


def conv_padding(input_size: IntOrPair, kernel_size: IntOrPair, stride: IntOrPair = 1,
                 padding: Padding = "SAME",
                 rate: IntOrPair = 1) -> Union[tuple[int, int], tuple[tuple[int, int], tuple[int, int]]]:
    """``(before, after)`` pads of a convolution, or one such pair per dimension.

    Examples
    --------
    >>> conv_padding(4, 3, stride=2, padding='SAME')   # TF puts the extra row after
    (0, 1)
    >>> conv_padding(5, 3, stride=2, padding='SAME')
    (1, 1)
    """
    n, k, s, pad, r, as_pair = _per_dim(input_size, kernel_size, stride, padding, rate)
    _, pads = _resolve(n, k, s, pad, r)
    return pads if as_pair else pads[0]


def _window_inside(start, k, r, n):
    """Taps ``start + i * r`` (``0 <= i < k``) inside ``[0, n)``: ``(first, last,
    count)``, or ``None`` if none is. Constant time for any size."""
    lo = max(0, -(start // r))           # first i with start + i * r >= 0
    hi = min(k - 1, (n - 1 - start) // r)  # last i with start + i * r <= n - 1
    if lo > hi:
        return None
    return start + lo * r, start + hi * r, hi - lo + 1


def _explain_dim(n, k, s, pad, r, name=None):
    """(text, record) for one dimension; ``record`` holds the numbers the
    drawing in :mod:`pyconv._svg` shows (no arithmetic is done there)."""
    out, before, after = _dim(n, k, s, pad, r)
    k_eff = effective_kernel(k, r)

    def window(o):
        inside = _window_inside(o * s - before, k, r, n)
        count = inside[2] if inside else 0
        padded = k - count
        seen = f"input {inside[0]}..{inside[1]}" if inside else "only padding"
        step = f" every {r}" if r > 1 and count > 1 else ""
        extra = f" (+{padded} padding tap{'s' if padded != 1 else ''})" if padded else ""
        return f"{seen}{step}{extra}"

    if name is None:
        name = pad if isinstance(pad, str) else f"explicit {pad}"
    text = (
        f"{name}: input {n}, kernel {k}"
        + (f" rate {r} (k_eff {k_eff})" if r > 1 else "")
        + f", stride {s} -> output {out}; pad before {before}, after {after}; "
        f"first output sees {window(0)}, last output sees {window(out - 1)}"
    )
    record = {"name": name, "n": n, "k": k, "stride": s, "rate": r, "k_eff": k_eff,
              "out": out, "before": before, "after": after,
              # TF's SAME puts an odd total's extra pad after: drawn apart
              "extra_after": pad == "SAME" and after > before}
    return text, record


CONV2D_SAME = "conv2d_same"


class PaddingExplanation(str):
    """The text of :func:`explain_padding` (a ``str``: printing it is the
    explanation) that a notebook also draws.

    Attributes
    ----------
    dims : list of dict
        Per dimension (one, or height and width): ``name``, ``n``, ``k``,
        ``stride``, ``rate``, ``k_eff``, ``out``, ``before``, ``after``,
        ``extra_after`` and ``label`` ('' or 'height' / 'width').
    """

    dims = ()

    def svg(self):
        """The picture as an SVG document (a ``str``): per dimension the input
        cells, the pads before and after (TF's extra one at the end marked),
        and the first and last kernel windows with stride and rate. Long rows
        are elided around those windows, so its size is bounded for any size."""
        from ._svg import padding_svg

        return padding_svg(self.dims)

    def _repr_svg_(self):
        return self.svg()

    def save_svg(self, path):
        """Write :meth:`svg` to ``path``."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.svg())


def explain_padding(input_size: IntOrPair, kernel_size: IntOrPair, stride: IntOrPair = 1,
                    padding: Padding = "SAME", rate: IntOrPair = 1) -> PaddingExplanation:
    """A short human-readable account of a padding choice.

    Says the output size, the pads, and which input positions the first and
    last outputs see (0-based; taps that fall in the padding are counted).
    The result is a ``str`` (:class:`PaddingExplanation`); in a notebook it
    is also drawn (``_repr_svg_``), and ``.svg()`` returns the picture.

    Parameters
    ----------
    input_size, kernel_size, stride, rate : int or (int, int)
    padding : 'SAME', 'VALID', 'FULL', 'conv2d_same' or [(top, bottom), (left, right)]
        ``'conv2d_same'`` explains ResNet's :func:`pyconv.conv2d_same`: SAME for
        stride 1, else explicit pads of ``k_eff - 1`` in total (``// 2``
        before) followed by VALID, whatever the input size.

    Examples
    --------
    >>> print(explain_padding(4, 3, stride=2, padding='SAME'))
    SAME: input 4, kernel 3, stride 2 -> output 2; pad before 0, after 1; first output sees input 0..2, last output sees input 2..3 (+1 padding tap)
    >>> print(explain_padding(4, 3, stride=2, padding='conv2d_same'))
    conv2d_same: input 4, kernel 3, stride 2 -> output 2; pad before 1, after 1; first output sees input 0..1 (+1 padding tap), last output sees input 1..3
    """
    same = isinstance(padding, str) and padding.lower() == CONV2D_SAME
    n, k, s, pad, r, as_pair = _per_dim(input_size, kernel_size, stride,
                                        "SAME" if same else padding, rate)
    lines, dims = [], []
    for i, label in enumerate(("height", "width") if as_pair else ("",)):
        p = pad if isinstance(pad, str) else pad[i]
        if same and s[i] > 1:
            p = conv2d_same_padding(k[i], r[i])
        text, record = _explain_dim(n[i], k[i], s[i], p, r[i], CONV2D_SAME if same else None)
        record["label"] = label
        dims.append(record)
        lines.append(f"{label}: {text}" if label else text)
    result = PaddingExplanation("\n".join(lines))
    result.dims = dims
    return result


class PaddingComparison(str):
    """The text of :func:`compare_padding` (a ``str``) that a notebook draws:
    the explanations stacked, input cells aligned. ``explanations`` holds the
    :class:`PaddingExplanation` of every padding that gives an output."""

    explanations = ()

    def svg(self):
        """The pictures of every padding of the comparison, as one SVG document."""
        from ._svg import comparison_svg

        return comparison_svg([e.dims for e in self.explanations])

    def _repr_svg_(self):
        return self.svg()

    def save_svg(self, path):
        """Write :meth:`svg` to ``path``."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.svg())


def compare_padding(input_size: IntOrPair, kernel_size: IntOrPair, stride: IntOrPair = 2,
                    paddings: Any = ("SAME", "VALID", "FULL", CONV2D_SAME),
                    rate: IntOrPair = 1) -> PaddingComparison:
    """:func:`explain_padding` of several paddings of the same input, side by side.

    The default compares SAME, VALID, FULL and ResNet's ``conv2d_same``: at an
    even input size and stride 2, SAME pads ``0`` before and ``1`` after while
    ``conv2d_same`` pads ``1`` and ``1``, so their windows are one pixel apart
    (the even-size trap). A padding that gives no output (VALID with a
    kernel larger than the input) is listed with the reason and not drawn.

    Returns
    -------
    PaddingComparison
        A ``str`` (one line per padding and dimension); ``.svg()`` and a
        notebook show the pictures stacked with the input cells aligned.

    Examples
    --------
    >>> print(compare_padding(4, 3, stride=2, paddings=('SAME', 'conv2d_same')))
    SAME: input 4, kernel 3, stride 2 -> output 2; pad before 0, after 1; first output sees input 0..2, last output sees input 2..3 (+1 padding tap)
    conv2d_same: input 4, kernel 3, stride 2 -> output 2; pad before 1, after 1; first output sees input 0..1 (+1 padding tap), last output sees input 1..3
    """
    if isinstance(paddings, str):
        paddings = (paddings,)
    lines, explanations = [], []
    for padding in paddings:
        try:
            e = explain_padding(input_size, kernel_size, stride, padding, rate)
        except ValueError as exc:
            name = padding if isinstance(padding, str) else "explicit"
            lines.append(f"{name}: no output ({str(exc).split(': ', 1)[0]})")
            continue
        explanations.append(e)
        lines.append(str(e))
    result = PaddingComparison("\n".join(lines))
    result.explanations = explanations
    return result


def _transpose_dim(out, n_in, k, s, padding, spatial_dim):
    """(before, after) of the forward convolution that maps ``out`` to ``n_in``."""
    if padding == "SAME":
        computed = -(-out // s)
        total = max((computed - 1) * s + k - out, 0)
        before, after = total // 2, total - total // 2
    elif padding == "VALID":
        computed = -(-(out - k + 1) // s)
        before = after = 0
    elif padding == "FULL":
        computed = -(-(out + k - 1) // s)
        before = after = k - 1
    else:
        before, after = padding
        computed = (out + before + after - k) // s + 1
    if computed != n_in:
        name = padding if isinstance(padding, str) else f"explicit {tuple(padding)}"
        raise ValueError(
            f"Conv2DCustomBackpropInput: Size of out_backprop doesn't match computed: "
            f"actual = {n_in}, computed = {computed} spatial_dim: {spatial_dim} input: {out} "
            f"filter: {k} output: {n_in} stride: {s} dilation: 1 ({name} padding: a "
            f"convolution of an input of size {out} with kernel {k} and stride {s} gives "
            f"{computed}, but the transposed convolution's input has size {n_in}; choose an "
            f"output size whose forward convolution gives {n_in})"
        )
    return before, after


def transpose_padding(output_hw, input_hw, kernel_hw, strides_hw, padding, spatial_dims=(1, 2)):
    """Explicit pads of a transposed convolution, as TF computes them.

    A transposed convolution from ``input_hw`` to ``output_hw`` is the
    gradient of the forward convolution from ``output_hw`` to ``input_hw``;
    its pads are that forward convolution's: SAME, VALID and FULL as in the
    table above (with the output as the forward input), explicit pads as
    given. TF requires the forward convolution to give back the input size
    (SAME: ``ceil(out / s) == in``; VALID: ``ceil((out - k + 1) / s) == in``);
    otherwise this raises TF's ``ValueError`` ("Size of out_backprop doesn't
    match computed: actual = .., computed = .."). ``spatial_dims`` are the
    axis numbers TF names in that message (1, 2 for NHWC; 2, 3 for NCHW).

    Returns ``((top, bottom), (left, right))``.

    Examples
    --------
    >>> transpose_padding((8, 8), (4, 4), (3, 3), (2, 2), 'SAME')
    ((0, 1), (0, 1))
    >>> transpose_padding((9, 9), (4, 4), (3, 3), (2, 2), 'VALID')
    ((0, 0), (0, 0))
    """
    pad = normalize_padding(padding)
    return tuple(
        _transpose_dim(output_hw[i], input_hw[i], kernel_hw[i], strides_hw[i],
                       pad if isinstance(pad, str) else pad[i], spatial_dims[i])
        for i in range(2))


def transpose_output_size(input_size, kernel_size, stride, padding):
    """TF-Slim's (Keras' ``deconv_output_length``) output size of
    ``conv2d_transpose``: ``n * s`` for SAME, ``n * s + max(k - s, 0)`` for
    VALID (per dimension; ints or pairs as given)."""
    pad = normalize_padding(padding)
    if pad not in ("SAME", "VALID"):
        raise ValueError(f"padding must be 'SAME' or 'VALID' here, got {padding!r}")
    as_pair = any(_is_pair(v) for v in (input_size, kernel_size, stride))
    n, k, s = pair(input_size, "input_size"), pair(kernel_size, "kernel_size"), pair(stride,
                                                                                      "stride")
    out = tuple(n[i] * s[i] + (max(k[i] - s[i], 0) if pad == "VALID" else 0) for i in range(2))
    return out if as_pair else out[0]
