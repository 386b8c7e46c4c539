"""``pyconv.summary``: a table of a net's layers, as Keras' ``Model.summary``
and torchinfo show one, as text (``print``) and HTML (a notebook).

Three inputs:

- ``summary(network_fn, input_shape)``: the net is run once on zeros in a
  fresh store (seed 0) while pyconv's C operators are traced. One row per
  layer (a slim layer's variable scope; a pool's name scope; the batch norm
  and the pointwise step of a layer join the layer's row): output shape,
  parameters, multiply-adds, receptive field and stride so far.
- ``summary(end_points)`` (a net's dict, after building it in a store): one
  row per end point, its output shape and the parameters of the variables
  under its scope (each variable counted once, in the most specific end
  point); multiply-adds when the row holds one convolution or fully
  connected layer (a transposed convolution's only with ``network_fn=``:
  its weights do not tell its input size); receptive field and stride so
  far as below.
- ``summary(store)``: one row per layer of a :class:`VariableStore` (its
  variables' scope), the variables' shapes and parameters.

End points mode and geometry: a dict of arrays cannot tell a receptive
field (the kernels, rates and paddings are gone), so it is traced:
``summary(end_points, input_shape, network_fn=fn, **kwargs)`` runs ``fn`` on
zeros of ``input_shape`` like the traced mode (the end points' shapes must
match that run's, or ValueError) and gives each end point the receptive field
and stride of the array the traced run put under its key (written by a traced
operator, or a view of one: a squeeze, a dropout), else of the traced layers
under its scope of its size together (a residual sum, a concatenation), else
of the nearest earlier end point of its shape (a softmax of the logits), else
none. With ``input_shape`` alone the stride so far is the input's size over
the end point's when that divides exactly (SAME padding; VALID nets such as
Inception rarely divide; not for a 1 x 1 output), or a fraction when the end
point is an exact multiple of the input (upsampled), and no receptive field;
with neither, both columns show "-".

Receptive field and stride so far, per spatial dimension: the receptive field
of an output pixel is the number of input pixels that can change it, counted
as TF-Slim's ``receptive_field`` library counts them (padding positions
included, so it may exceed the input: MobileNet v1's Conv2d_13_pointwise sees
315 pixels of a 224 input, ResNet-50's block4 483); the stride so far is the
distance in input pixels between neighbouring output pixels. For
convolutions and pools that is the recurrence rf += (k - 1) * rate * stride so
far, stride so far *= stride. A pool over the whole map (MobileNet's
``AvgPool_1a``, 7 x 7 VALID on 7 x 7) and a NumPy global mean (ResNet's
``reduce_mean`` pool5, ``np.mean(net, (1, 2), keepdims=True)``) see the whole
map: rf + (map size - 1) * stride so far (ResNet-50 at 224: 483 + 6 * 32 =
675); the global mean has no stride of its own, so the stride so far stays
(32), while a slim pool's stride multiplies in as TF-Slim counts it
(MobileNet's ``AvgPool_1a`` 7 x 7 / 2: 315 + 6 * 32 = 507, stride 64). A
fully connected layer on a flattened map sees the whole map likewise.

After upsampling (``conv2d_transpose``, slim's layer or ``pyconv.nn``'s) the
stride so far is a fraction, the input pixels per output pixel: 1/2 after one
stride-2 transposed convolution, so a DCGAN generator's 4 x 4 -> 32 x 32 ends
at 1/8. The receptive field stays what it means for a convolution: how many
input pixels can change one output pixel. A transposed convolution of kernel
k and stride s gives each output pixel at most ceil(k / s) neighbouring
input pixels (which ones depends on the pixel's position modulo s), so
neighbouring output pixels need not see equally many input pixels, and
what a later layer sees depends on how its window lines up with those
phases. The summary counts it exactly: every traced array keeps, per
dimension, the interval of input pixels behind each output pixel over one
period of its strides. A recurrence on sizes alone (rf += (ceil(k / s) - 1)
* stride so far, or (k - 1) * stride so far / s) is off both ways: 4 + 1/4
for the third layer of a 5/2, 5/2, 4/2 generator whose count is 4; 13 for a
3/2, 3/2 encoder followed by two 4/2 transposed layers, whose count is 15
(outputs 2m and 2m + 1 of the first one see inputs shifted by a whole stride
of the encoder). Multiply-adds of a transposed
convolution: input height x width x kh x kw x in channels x out channels
per image, each input pixel times every tap (TF's float operation count of
``Conv2DBackpropInput``, halved, gives the same for SAME padding, where the
output is the input times the stride).

Receptive fields follow the data: an operator's input that came out of a
traced operator (or is a view of one) carries that operator's field; an input
made by NumPy (a concatenation, a residual sum) gets the fields traced so far
at that height x width together, a 1 x 1 map after larger ones is taken as a
global mean of the last feature map, else the largest field so far; a fully
connected layer sees every pixel of the map flattened into it. The tracing
patches ``pyconv._conv`` for the duration of the call (not thread-safe, like
``nets._count``): nothing is added to a normal forward pass.
"""

import math
import weakref
from fractions import Fraction
from html import escape

import numpy as np

from . import _conv

__all__ = ["Summary", "summary"]

MAX_ROWS = 400        # rows shown in full; a longer table elides its middle


def _fmt_shape(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")" if shape is not None else "-"


class Summary:
    """The result of :func:`summary`: ``rows`` (dicts with ``layer``, ``shape``,
    ``params``, ``macs``, ``rf``, ``stride``; None where unknown; ``rf`` and
    ``stride`` are (height, width) pairs of ints, a stride a
    :class:`fractions.Fraction` after upsampling) and totals
    ``total_params``, ``trainable_params``, ``total_macs``, ``total_bytes``.
    ``str()`` is the text table; a notebook shows an HTML table."""

    def __init__(self, title, rows, total_params, trainable_params, total_bytes, columns):
        self.title = title
        self.rows = rows
        self.total_params = total_params
        self.trainable_params = trainable_params
        self.total_bytes = total_bytes
        macs = [r["macs"] for r in rows if r.get("macs") is not None]
        self.total_macs = sum(macs) if macs else None
        self.columns = columns

    _HEAD = {"layer": "Layer", "shape": "Output shape", "params": "Param #",
             "macs": "Mult-adds", "rf": "Receptive field", "stride": "Stride",
             "variables": "Variables"}

    def _cells(self, row):
        out = []
        for c in self.columns:
            v = row.get(c)
            if c == "shape":
                out.append(_fmt_shape(v))
            elif c in ("params", "macs"):
                out.append("-" if v is None else f"{v:,}")
            elif c in ("rf", "stride"):
                out.append("-" if v is None else "x".join(str(x) for x in v))
            else:
                out.append("-" if v is None else str(v))
        return out

    def _shown(self):
        if len(self.rows) <= MAX_ROWS:
            return self.rows, 0
        half = MAX_ROWS // 2
        return self.rows[:half] + [None] + self.rows[-half:], len(self.rows) - 2 * half

    def _footer(self):
        lines = [f"Total params: {self.total_params:,} ({self.total_bytes / 2**20:.2f} MiB)",
                 f"Trainable params: {self.trainable_params:,}",
                 f"Non-trainable params: {self.total_params - self.trainable_params:,}"]
        if self.total_macs is not None:
            lines.append(f"Total mult-adds: {self.total_macs:,} ({self.total_macs / 1e9:.3f} G)")
        return lines

    def __str__(self):
        shown, hidden = self._shown()
        head = [self._HEAD[c] for c in self.columns]
        body = [self._cells(r) if r is not None else None for r in shown]
        widths = [max([len(h)] + [len(b[i]) for b in body if b is not None])
                  for i, h in enumerate(head)]
        right = [c in ("params", "macs") for c in self.columns]

        def line(cells):
            return "  ".join(v.rjust(w) if r else v.ljust(w)
                             for v, w, r in zip(cells, widths, right)).rstrip()

        rule = "=" * max(len(line(head)), 40)
        out = [self.title, rule, line(head), rule.replace("=", "-")]
        for b in body:
            out.append(line(b) if b is not None else f"... {hidden:,} more rows ...")
        out += [rule, *self._footer(), rule]
        return "\n".join(out)

    def __repr__(self):
        return str(self)

    def _repr_html_(self):
        shown, hidden = self._shown()
        head = "".join(f"<th>{escape(self._HEAD[c])}</th>" for c in self.columns)
        rows = []
        for r in shown:
            if r is None:
                rows.append(f'<tr><td colspan="{len(self.columns)}" style="text-align:center">'
                            f"&hellip; {hidden:,} more rows &hellip;</td></tr>")
                continue
            cells = self._cells(r)
            rows.append("<tr>" + "".join(
                f'<td style="text-align:{"right" if c in ("params", "macs") else "left"}">'
                f"{escape(v)}</td>" for c, v in zip(self.columns, cells)) + "</tr>")
        foot = "<br>".join(escape(x) for x in self._footer())
        return (f'<div class="pyconv-summary"><b>{escape(self.title)}</b>'
                f'<table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
                f"<p>{foot}</p></div>")


def _var_totals(variables):
    total = sum(int(v.value.size) for v in variables)
    trainable = sum(int(v.value.size) for v in variables if v.trainable)
    nbytes = sum(int(v.value.nbytes) for v in variables)
    return total, trainable, nbytes


def _layer_of(name):
    return name.rsplit("/", 1)[0] if "/" in name else name


def _store_summary(store):
    variables = store.variables()
    rows, index = [], {}
    for v in variables:
        layer = _layer_of(v.name)
        if layer not in index:
            index[layer] = {"layer": layer, "params": 0, "variables": []}
            rows.append(index[layer])
        index[layer]["params"] += int(v.value.size)
        index[layer]["variables"].append(f"{v.name.rsplit('/', 1)[-1]} {_fmt_shape(v.shape)}")
    for r in rows:
        r["variables"] = ", ".join(r["variables"])
    return Summary(f"VariableStore: {len(variables)} variables in {len(rows)} layers", rows,
                   *_var_totals(variables), ["layer", "variables", "params"])


def _assign(variables, scopes):
    """{scope: [variables]} with every variable in the longest scope that holds it."""
    owned = {s: [] for s in scopes}
    by_len = sorted(scopes, key=len, reverse=True)
    for v in variables:
        for s in by_len:
            if v.name.startswith(s + "/") or f"/{s}/" in v.name:
                owned[s].append(v)
                break
    return owned


def _macs_of(vars_, shape):
    """Multiply-adds of a row that holds one conv / depthwise / fully connected
    layer (its weights' shapes and the row's output shape), else None."""
    if shape is None:
        return None
    weights = [v for v in vars_ if v.name.endswith(("/weights", "/depthwise_weights",
                                                    "/pointwise_weights"))]
    if not weights or any(v.ndim not in (2, 4) for v in weights):
        return None
    names = sorted(v.name.rsplit("/", 1)[-1] for v in weights)
    if names not in (["weights"], ["depthwise_weights"],
                     ["depthwise_weights", "pointwise_weights"]):
        return None
    if (names == ["weights"] and weights[0].ndim == 4 and len(shape) == 4
            and weights[0].shape[3] != shape[3] and weights[0].shape[2] == shape[3]):
        # [kh, kw, out, in]: a transposed convolution, whose cost is per input
        # pixel; the end points do not tell its input size (network_fn= does)
        return None
    # every output pixel of a conv, depthwise (alone or in a separable layer:
    # same pixels) or pointwise step costs the product of its weights' shape
    pixels = int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) >= 2 else 1
    return int(sum(pixels * int(np.prod(v.shape, dtype=np.int64)) for v in weights))


def _under(layer, key):
    """Whether a traced layer name lies in end point ``key``'s scope (keys are
    full scopes, as resnet's, or the net's scope left out, as mobilenet's)."""
    return (layer == key or layer.startswith(key + "/") or layer.endswith("/" + key)
            or f"/{key}/" in layer)


def _stride_from_sizes(input_shape, shape):
    if shape is None or len(shape) != 4:
        return None
    if tuple(shape[1:3]) == (1, 1) and tuple(input_shape[1:3]) != (1, 1):
        return None   # a global pool or a logits layer: no stride to tell from sizes
    out = []
    for i, o in zip(input_shape[1:3], shape[1:3]):
        if o > 0 and i % o == 0:
            out.append(i // o)
        elif o > i and o % i == 0:
            out.append(Fraction(i, o))   # upsampled (SAME transposed convolutions)
        else:
            return None
    return tuple(out)


def _end_points_geometry(end_points, input_shape, network_fn, dtype, kwargs):
    """{key: (rf, stride, macs)} for the end points (see the module docstring);
    ``macs`` is the traced count of a row that holds one transposed
    convolution layer (its weights alone cannot tell its input size), else None."""
    shape = _input_shape(input_shape)
    if network_fn is None:
        return {k: (None, _stride_from_sizes(shape, tuple(getattr(a, "shape", ())) or None),
                    None)
                for k, a in end_points.items()}
    _, tracer, traced = _trace(network_fn, shape, dtype, kwargs)
    geometry, earlier = {}, []
    for k, a in end_points.items():
        t = traced.get(k)
        want = tuple(getattr(a, "shape", ()))
        if t is None or tuple(getattr(t, "shape", ())) != want:
            got = None if t is None else tuple(t.shape)
            raise ValueError(
                f"summary: end point {k!r} has shape {want} but network_fn="
                f"{getattr(network_fn, '__name__', network_fn)!r} on input_shape={shape} "
                f"(with the same kwargs) gives {'no such end point' if got is None else got}; "
                "pass the network function, input shape and arguments that built the end points")
        under = [c for c in tracer.calls if _under(c[0], k)]
        macs = (sum(c[2] for c in under) if under and len({c[0] for c in under}) == 1
                and any(c[5] == "conv2d_transpose" for c in under) else None)
        field = tracer.field_of(t) if isinstance(t, np.ndarray) else None
        if field is None and under:
            # a residual sum or a concatenation (NumPy) of the layers under its scope:
            # all those of its size together, else the widest of them
            same = [c[3] for c in under if c[1][1:3] == want[1:3] and not c[4]]
            for f in same or [c[3] for c in under]:
                field = _union(field, f) if same else _widest(field, f)
        if field is None:
            # made by NumPy from earlier end points, not by a layer of its own (a
            # softmax of the logits): the nearest earlier end point of its shape
            field = next((f for s, f in reversed(earlier) if s == want), None)
        if field is not None:
            earlier.append((want, field))
        geometry[k] = (*_shown(field), macs)
    return geometry


def _end_points_summary(end_points, store, input_shape=None, network_fn=None,
                        dtype=np.float32, kwargs=None):
    variables = store.variables()
    keys = [k for k in end_points]
    owned = _assign(variables, keys)
    geometry = ({} if input_shape is None else
                _end_points_geometry(end_points, input_shape, network_fn, dtype, kwargs or {}))
    rows = []
    for k in keys:
        arr = end_points[k]
        shape = tuple(getattr(arr, "shape", ())) or None
        vars_ = owned[k]
        rf, stride, macs = geometry.get(k, (None, None, None))
        rows.append({"layer": k, "shape": shape, "params": sum(int(v.value.size) for v in vars_),
                     "macs": macs if macs is not None else _macs_of(vars_, shape),
                     "rf": rf, "stride": stride})
    return Summary(f"end points: {len(rows)}", rows, *_var_totals(variables),
                   ["layer", "shape", "params", "macs", "rf", "stride"])


# --------------------------------------------------------------------------- geometry

class _Dim:
    """Where one spatial dimension of a traced array looks in the input: output
    index o depends on input indices ``lo(o)`` to ``hi(o)``, unclipped (indices
    past the input's edges are its padding, counted as TF-Slim's
    ``receptive_field`` tables count them: MobileNet v1 sees 315 pixels at 224).
    The pattern repeats: ``lo(o + period) = lo(o) + shift``, so the stride so far
    is ``shift / period`` (below 1 after upsampling) and the receptive field the
    widest ``hi(o) - lo(o) + 1``; exact, with the strides' phases, where a
    recurrence on sizes alone misses them after a transposed convolution."""

    __slots__ = ("hi", "lo", "period", "shift")

    def __init__(self, period, shift, lo, hi):
        self.period, self.shift, self.lo, self.hi = period, shift, tuple(lo), tuple(hi)

    def at(self, o):
        q, r = divmod(o, self.period)
        return self.lo[r] + q * self.shift, self.hi[r] + q * self.shift

    def span(self, first, last):
        """(lo, hi) of input indices ``first`` to ``last`` together (math.inf, -math.inf
        for none: an output of a transposed convolution with k < s no tap reaches)."""
        lo, hi = math.inf, -math.inf
        for i in range(first, last + 1):
            a, b = self.at(i)
            lo, hi = min(lo, a), max(hi, b)
        return lo, hi

    @property
    def rf(self):
        return max(max(h - lo + 1 for lo, h in zip(self.lo, self.hi)), 0)

    @property
    def jump(self):
        return _exact(Fraction(self.shift, self.period))

    def conv(self, k, s, d, pad):
        """Through a convolution or pool: output o reads o*s - pad + t*d, t < k."""
        period = self.period // math.gcd(self.period, s)
        spans = [self._taps(o * s - pad, k, d) for o in range(period)]
        return _Dim(period, self.shift * (period * s // self.period), *zip(*spans))

    def _taps(self, first, k, d):
        if d == 1:
            return self.span(first, first + k - 1)
        lo, hi = math.inf, -math.inf
        for t in range(k):
            a, b = self.at(first + t * d)
            lo, hi = min(lo, a), max(hi, b)
        return lo, hi

    def deconv(self, k, s, pad):
        """Through a transposed convolution whose forward convolution has ``pad``
        before: output o receives input i when i*s + t - pad == o, t < k."""
        spans = [self.span(-((k - 1 - o - pad) // s), (o + pad) // s)   # ceil .. floor
                 for o in range(self.period * s)]
        return _Dim(self.period * s, self.shift, *zip(*spans))

    def whole(self, n):
        """One value from all ``n`` positions (a global pool, a flatten): the first
        to last position's inputs; the stride so far stays."""
        lo, hi = self.span(0, n - 1)
        return _Dim(self.period, self.shift, (lo,) * self.period, (hi,) * self.period)

    def union(self, other):
        """Pixel by pixel, both (two arrays of one map: a sum, a concatenation)."""
        if self.shift * other.period != other.shift * self.period:
            return _wider(self, other)
        period = self.period * other.period // math.gcd(self.period, other.period)
        spans = []
        for o in range(period):
            (a, b), (c, e) = self.at(o), other.at(o)
            spans.append((min(a, c), max(b, e)))
        return _Dim(period, self.shift * (period // self.period), *zip(*spans))


_INPUT = (_Dim(1, 1, (0,), (0,)), _Dim(1, 1, (0,), (0,)))


def _wider(a, b):
    return a if (a.rf, a.jump) >= (b.rf, b.jump) else b


def _widest(a, b):
    """Per dimension, the wider field (its receptive field, then its stride)."""
    return b if a is None else tuple(_wider(x, y) for x, y in zip(a, b))


def _union(a, b):
    """Per dimension, the union of two fields of one map."""
    return b if a is None else tuple(x.union(y) for x, y in zip(a, b))


def _whole_map(res, field):
    return tuple(d.whole(n) for d, n in zip(field, res))


def _exact(v):
    """An int when ``v`` is whole, else the Fraction (a stride so far below 1
    after upsampling)."""
    v = Fraction(v)
    return int(v) if v.denominator == 1 else v


def _shown(field):
    """(rf, stride) as reported: each a (height, width) pair."""
    if field is None:
        return None, None
    return tuple(d.rf for d in field), tuple(d.jump for d in field)


# --------------------------------------------------------------------------- tracing

class _Tracer:
    """Wraps the operators of ``pyconv._conv`` and records one entry per call."""

    OPS = ("conv2d", "depthwise_conv2d", "pool2d", "conv2d_transpose")

    def __init__(self, store):
        self.store = store
        self.calls = []            # (name, out NHWC shape, macs, field, fc, op)
        self.fields = {}           # id(array) -> (weakref, field)
        self.by_res = {}           # (h, w) -> the union of the fields traced at that size
        self.largest = _INPUT
        self.last_map = ((1, 1), _INPUT)   # the last feature map: (h, w), field
        self.saved = {}

    def __enter__(self):
        for name in self.OPS:
            fn = getattr(_conv, name)
            self.saved[name] = fn
            setattr(_conv, name, self._wrap(name, fn))
        return self

    def __exit__(self, *exc):
        for name, fn in self.saved.items():
            setattr(_conv, name, fn)
        return False

    def _record(self, x, field):
        try:
            self.fields[id(x)] = (weakref.ref(x), field)
        except TypeError:  # pragma: no cover - arrays take weak references
            pass

    def source(self, x):
        """(array, field) of ``x`` or of the array it is a view of (a dropout or
        squeeze view, a reshape), when a traced operator made it or it was
        already given a field; else None."""
        a = x
        while isinstance(a, np.ndarray):
            hit = self.fields.get(id(a))
            if hit is not None and hit[0]() is a:
                return a, hit[1]
            a = a.base
        return None

    def field_of(self, x, src=None):
        """The field of an array (``src``: its :meth:`source`)."""
        src = self.source(x) if src is None else src
        if src is None:
            return None
        a, field = src
        if (a is x or a.ndim != 4 or x.ndim != 4 or a.shape[:3] == x.shape[:3]
                or tuple(a.shape[1:3]) == (1, 1)):
            return field
        return _whole_map(a.shape[1:3], field)   # a reshape that moves pixels: all of them

    def _last_map_field(self):
        res = self.last_map[0]
        return _whole_map(res, self.by_res.get(res, self.last_map[1]))

    def _input_field(self, x):
        src = self.source(x)
        field = self.field_of(x, src)
        if field is None:
            res = tuple(x.shape[1:3])
            if res == (1, 1) and self.calls and self.last_map[0] != (1, 1):
                # a 1 x 1 map made by NumPy after larger maps: a global mean or max
                # (the nets' reduce_mean pool5, np.mean(net, (1, 2), keepdims=True))
                field = self._last_map_field()
            else:
                field = self.by_res.get(res)
                if field is None:
                    field = self.largest if self.calls else _INPUT
        if src is None or src[0] is not x:
            self._record(x, field)    # first seen: frozen
        if src is None:
            # a view of a NumPy-made array (a dropout's, as the global pool's in
            # MobileNet): the array it views has the same pixels
            a = x.base
            while (isinstance(a, np.ndarray) and a.ndim == 4
                   and (a.shape[:3] == x.shape[:3]
                        or (tuple(a.shape[1:3]) == (1, 1) and a.size == x.size))):
                self._record(a, field)
                a = a.base
        return field

    def _layer_name(self):
        from .variables import get_variable_scope

        scope = get_variable_scope().name
        stack = self.store._state().name_stack
        last = stack.rsplit("/", 1)[-1]
        if last and last != scope.rsplit("/", 1)[-1]:   # a pool: a name scope only
            return f"{scope}/{last}" if scope else last
        return scope

    def _wrap(self, name, fn):
        def traced(*args, **kwargs):
            out = fn(*args, **kwargs)
            x = args[0]
            fh, fw = self._input_field(x)
            if name == "conv2d_transpose":
                w = args[1]
                kh, kw = w.shape[0], w.shape[1]
                pt, _, pl, _ = args[5:9]
                sh, sw = args[9:11]
                # every input pixel times every tap and output channel (TF's float
                # operation count of Conv2DBackpropInput / 2, for SAME padding)
                macs = int(x.size) * kh * kw * w.shape[2]
                field = (fh.deconv(kh, sh, pt), fw.deconv(kw, sw, pl))
            else:
                if name == "pool2d":
                    kh, kw, sh, sw = args[2:6]
                    pt, _, pl, _ = args[6:10]
                    dh = dw = 1
                    macs = 0
                else:
                    w = args[1]
                    pt, _, pl, _ = args[3:7]
                    sh, sw, dh, dw = args[7:11]   # after the four pads
                    kh, kw = w.shape[0], w.shape[1]
                    taps = kh * kw * (w.shape[2] if name == "conv2d" else 1)
                    macs = int(out.size) * taps
                field = (fh.conv(kh, sh, dh, pt), fw.conv(kw, sw, dw, pl))
            fc = (name == "conv2d" and x.shape[0] == 1 and x.shape[2] == 1 and kh == kw == 1
                  and (x.shape[1] > 1 or (isinstance(x.base, np.ndarray)
                                          and x.base.shape != x.shape)))
            if fc:  # fully_connected's rows as a 1 x rows x 1 image: its input was flattened
                src = self.source(x)
                if src is not None and src[0].ndim == 4 and src[0].shape != x.shape:
                    field = _whole_map(src[0].shape[1:3], src[1])
                else:   # from the last feature map, so it sees all of that map's fields
                    field = self._last_map_field()
            if name == "conv2d" and len(args) > 15 and args[15] is not None:
                # a fused residual sum: both
                field = _union(field, self._input_field(args[15]))
            self.calls.append((self._layer_name(), tuple(out.shape), macs, field, fc, name))
            self._record(out, field)
            res = tuple(out.shape[1:3])
            if not fc:
                self.last_map = (res, field)
                self.by_res[res] = _union(self.by_res.get(res), field)
            self.largest = _widest(self.largest, field)
            return out
        return traced


def _input_shape(input_shape):
    try:
        shape = tuple(int(d) for d in input_shape)
    except TypeError:
        raise TypeError(f"summary: input_shape must be a sequence of ints, got "
                        f"{input_shape!r}") from None
    if len(shape) == 3:
        shape = (1,) + shape
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"summary: input_shape must be (batch, height, width, channels) or "
                         f"(height, width, channels) of positive sizes, got {input_shape!r}")
    return shape


def _trace(network_fn, shape, dtype, kwargs):
    """Runs ``network_fn`` on zeros of ``shape`` in a fresh store, traced:
    (store, tracer, end points)."""
    from .variables import VariableStore

    x = np.zeros(shape, dtype)
    with VariableStore(seed=0) as store, _Tracer(store) as tracer:
        result = network_fn(x, **kwargs)
    end_points = result[1] if isinstance(result, tuple) and len(result) == 2 and isinstance(
        result[1], dict) else {}
    return store, tracer, end_points


def _traced_summary(network_fn, input_shape, dtype, kwargs):
    shape = _input_shape(input_shape)
    store, tracer, end_points = _trace(network_fn, shape, dtype, kwargs)
    shapes = {k: tuple(v.shape) for k, v in end_points.items() if hasattr(v, "shape")}
    rows, index = [], {}
    for layer, out_shape, macs, field, fc, _ in tracer.calls:
        parent = next((r for r in reversed(rows[-2:]) if layer.startswith(r["layer"] + "/")),
                      None)
        row = index.get(layer) or parent
        if row is None:
            row = {"layer": layer, "macs": 0}
            index[layer] = row
            rows.append(row)
        row["macs"] += macs
        row["shape"] = shapes.get(row["layer"]) or (
            (out_shape[1], out_shape[3]) if fc else out_shape)
        row["rf"], row["stride"] = _shown(field)
    owned = _assign(store.variables(), [r["layer"] for r in rows])
    for r in rows:
        r["params"] = sum(int(v.value.size) for v in owned[r["layer"]])
    name = getattr(network_fn, "__name__", "network")
    title = f"{name} on input {_fmt_shape(shape)} ({np.dtype(dtype).name})"
    s = Summary(title, rows, *_var_totals(store.variables()),
                ["layer", "shape", "params", "macs", "rf", "stride"])
    s.store = store
    s.end_points = end_points
    s.dtype = np.dtype(dtype).name
    return s


def summary(what, input_shape=None, store=None, dtype=np.float32, network_fn=None, **kwargs):
    """A table of a net's layers: output shape, parameters, multiply-adds,
    receptive field and stride so far, with totals.

    The receptive field of a layer is how many input pixels (per dimension,
    padding positions counted, as in TF-Slim's ``receptive_field`` tables)
    can change one of its output pixels; the stride so far, the input pixels
    between neighbouring output pixels: a fraction such as 1/8 after
    upsampling by ``conv2d_transpose`` (counted exactly, see the module
    ``pyconv._summary``). A global pool or a NumPy global mean sees its whole
    map: rf + (size - 1) * stride so far.

    Parameters
    ----------
    what : callable, dict or VariableStore
        A network function (``nets_factory.get_network_fn(...)`` or a net such
        as ``nets.resnet_v1.resnet_v1_50``, called as ``what(images, **kwargs)``)
        with ``input_shape``; a net's end points dict (the variables come
        from ``store``, default the current store); or a store.
    input_shape : sequence of int, optional
        ``(batch, height, width, channels)`` or ``(height, width, channels)``;
        needed with a network function. The net runs once on zeros of this
        shape in a fresh store (seed 0); the summary's ``store`` and
        ``end_points`` attributes hold what that run built. With an end
        points dict: the input the end points came from, for the stride so
        far (input size over the end point's, when that divides exactly)
        and, with ``network_fn``, the receptive field.
    store : VariableStore, optional
        With an end points dict: where its variables are (default: the
        current default store).
    dtype : numpy dtype, default float32
        Of the zeros fed to a network function.
    network_fn : callable, optional
        With an end points dict and ``input_shape``: the network function
        that built the end points. It is run once more, traced, on zeros
        (with ``**kwargs``), for each end point's exact receptive field and
        stride so far (a dict of arrays cannot tell them); the end points'
        shapes must match that run's.
    **kwargs
        Passed to the network function (``num_classes=10``,
        ``depth_multiplier=0.25``, ``is_training=False``, ...).

    Returns
    -------
    Summary
        ``print`` it for text; a notebook shows an HTML table.

    Examples
    --------
    >>> import pyconv
    >>> from pyconv.nets import mobilenet_v1
    >>> s = pyconv.summary(mobilenet_v1.mobilenet_v1, (1, 64, 64, 3), num_classes=10,
    ...                    depth_multiplier=0.25)
    >>> s.rows[0]['layer'], s.rows[0]['shape'], s.rows[0]['rf'], s.rows[0]['stride']
    ('MobilenetV1/Conv2d_0', (1, 32, 32, 8), (3, 3), (2, 2))
    """
    from .variables import VariableStore, get_default_store

    if isinstance(what, VariableStore):
        return _store_summary(what)
    if callable(what):
        if input_shape is None:
            raise ValueError("summary: a network function needs input_shape, e.g. "
                             "summary(fn, (1, 224, 224, 3))")
        return _traced_summary(what, input_shape, dtype, kwargs)
    if hasattr(what, "items") and callable(what.items):
        if network_fn is not None and not callable(network_fn):
            raise TypeError(f"summary: network_fn must be a network function, got "
                            f"{type(network_fn).__name__}")
        if network_fn is not None and input_shape is None:
            raise ValueError("summary: network_fn needs the input_shape the end points were "
                             "built from, e.g. summary(end_points, (1, 224, 224, 3), "
                             "network_fn=fn)")
        if kwargs and network_fn is None:
            raise TypeError(f"summary: arguments {sorted(kwargs)} go to a network function; "
                            "with end points pass network_fn= too")
        return _end_points_summary(what, store if store is not None else get_default_store(),
                                   input_shape, network_fn, dtype, kwargs)
    raise TypeError(f"summary: expected a network function (with input_shape), an end points "
                    f"dict or a VariableStore, got {type(what).__name__}")
