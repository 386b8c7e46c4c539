"""Pictures of padding as inline SVG (no matplotlib): what a notebook shows for
:func:`pyconv.explain_padding` and :func:`pyconv.compare_padding`, and what
``python -m pyconv explain ... --svg FILE`` writes.

Only drawing lives here: every number (output size, pads, windows) comes from
:mod:`pyconv.geometry`'s per-dimension records. A row of cells is the padded
input (pads before, input, pads after); below it the first and the last
kernel windows with their taps (every ``rate``-th cell) and the stride
between the first two windows. Rows longer than :data:`MAX_CELLS` cells show
only the cells around the pads and the windows, with the rest elided as
"... N ...", so a picture stays small for any size (a 2**40-tap kernel too).
"""

from html import escape

MAX_CELLS = 40    # rows up to this many padded cells are drawn whole
MARGIN = 2        # cells kept on each side of a point of interest when eliding
CELL = 22         # cell size in px
GAP = 34          # width of an elided run
LEFT = 96         # room for the row labels

_COLORS = {"input": "#dbe9f6", "pad": "#eeeeee", "extra": "#fdd0a2", "window0": "#2b7bba",
           "window1": "#d9534f", "stroke": "#555555", "text": "#222222"}


def _visible_runs(dim):
    """Sorted, disjoint ``[(first, last)]`` runs of padded positions to draw."""
    total = dim["before"] + dim["n"] + dim["after"]
    if total <= MAX_CELLS:
        return [(0, total - 1)]
    b, n, s, k_eff, out = dim["before"], dim["n"], dim["stride"], dim["k_eff"], dim["out"]
    last = (out - 1) * s
    points = [0, b, b + n - 1, total - 1, k_eff - 1, last, last + k_eff - 1]
    if out > 1:
        points.append(s)
    runs = sorted((max(0, p - MARGIN), min(total - 1, p + MARGIN)) for p in points)
    merged = [list(runs[0])]
    for lo, hi in runs[1:]:
        if lo <= merged[-1][1] + 2:   # a gap of one cell is drawn, not elided
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [tuple(r) for r in merged]


class _Axis:
    """Padded position -> x coordinate, with elided runs of fixed width."""

    def __init__(self, runs, x0):
        self.runs, self.starts, x = runs, [], x0
        self.gaps = []    # (x, hidden count)
        for i, (lo, hi) in enumerate(runs):
            if i:
                hidden = lo - runs[i - 1][1] - 1
                self.gaps.append((x, hidden))
                x += GAP
            self.starts.append(x)
            x += (hi - lo + 1) * CELL
        self.end = x

    def x(self, p):
        """Left edge of cell ``p`` (a position in an elided run maps to its middle)."""
        for (lo, hi), start in zip(self.runs, self.starts):
            if p < lo:
                return start - GAP / 2 - CELL / 2
            if p <= hi:
                return start + (p - lo) * CELL
        return self.end - CELL

    def visible(self, first, step, count):
        """Positions ``first + i * step`` (``0 <= i < count``) inside drawn runs."""
        for lo, hi in self.runs:
            i0 = max(0, -(-(lo - first) // step))
            i1 = min(count - 1, (hi - first) // step)
            for i in range(i0, i1 + 1) if i1 - i0 < 4 * MAX_CELLS else ():
                yield first + i * step


def _text(x, y, s, size=11, anchor="start", color=None, weight="normal"):
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{color or _COLORS["text"]}">{escape(str(s))}</text>')


def _strip(dim, y, x_input=None):
    """SVG elements of one dimension's picture starting at ``y``; returns
    (elements, height, right edge). ``x_input`` aligns input cell 0 across strips."""
    b, n, a = dim["before"], dim["n"], dim["after"]
    runs = _visible_runs(dim)
    axis = _Axis(runs, LEFT)
    if x_input is not None:
        axis = _Axis(runs, LEFT + max(0.0, x_input - axis.x(b)))
    els = []
    label = f"{dim['label']}: " if dim.get("label") else ""
    rate = f" rate {dim['rate']} (k_eff {dim['k_eff']})" if dim["rate"] > 1 else ""
    title = (f"{label}{dim['name']}: input {n}, kernel {dim['k']}{rate}, stride "
             f"{dim['stride']} -> output {dim['out']}; pads {b} before, {a} after")
    els.append(_text(8, y + 12, title, 12, weight="bold"))
    title_right = 8 + 7.8 * len(title)
    cy = y + 22
    els.append(_text(LEFT - 6, cy + 15, "padded input", 10, "end"))
    total = b + n + a
    for lo, hi in runs:
        for p in range(lo, hi + 1):
            x = axis.x(p)
            if b <= p < b + n:
                fill, tip = _COLORS["input"], f"input {p - b}"
            elif dim.get("extra_after") and p == total - 1:
                fill = _COLORS["extra"]
                tip = "TF's extra pad (SAME puts an odd total's extra one after)"
            else:
                fill, tip = _COLORS["pad"], "padding (zeros)"
            els.append(f'<rect x="{x:.1f}" y="{cy}" width="{CELL}" height="{CELL}" fill="{fill}" '
                       f'stroke="{_COLORS["stroke"]}" stroke-width="0.6"><title>{escape(tip)}'
                       "</title></rect>")
            if b <= p < b + n and len(str(p - b)) <= 3:
                els.append(_text(x + CELL / 2, cy + 15, p - b, 9, "middle"))
            elif not b <= p < b + n:
                els.append(_text(x + CELL / 2, cy + 15, "0", 9, "middle", "#999999"))
    for gx, hidden in axis.gaps:
        els.append(_text(gx + GAP / 2, cy + 15, "\u2026", 14, "middle"))
        els.append(_text(gx + GAP / 2, cy + CELL + 11, f"{hidden:,}", 8, "middle", "#777777"))
    wy = cy + CELL + 16
    windows = [(0, _COLORS["window0"])]
    if dim["out"] > 1:
        windows.append((dim["out"] - 1, _COLORS["window1"]))
    for row, (o, color) in enumerate(windows):
        start = o * dim["stride"]
        end = start + dim["k_eff"] - 1
        x0, x1 = axis.x(start), axis.x(min(end, total - 1)) + CELL
        yy = wy + row * 22
        name = f"output {o}" if len(str(o)) <= 5 else "last output"
        els.append(_text(LEFT - 6, yy + 11, name, 10, "end", color))
        els.append(f'<rect x="{x0:.1f}" y="{yy}" width="{max(x1 - x0, 2):.1f}" height="14" '
                   f'rx="3" fill="none" stroke="{color}" stroke-width="1.6"/>')
        for p in axis.visible(start, dim["rate"], dim["k"]):
            els.append(f'<circle cx="{axis.x(p) + CELL / 2:.1f}" cy="{yy + 7}" r="3.5" '
                       f'fill="{color}"/>')
        if o == 0 and dim["out"] > 1:
            sx = axis.x(dim["stride"]) + CELL / 2
            els.append(f'<line x1="{x0 + CELL / 2:.1f}" y1="{yy - 3}" x2="{sx:.1f}" '
                       f'y2="{yy - 3}" stroke="{color}" stroke-width="1" '
                       'marker-end="url(#arrow)"/>')
            els.append(_text(max(x1, sx) + 6, yy + 11, f"stride {dim['stride']}", 10, "start",
                             color))
    height = wy + 22 * len(windows) + 10 - y
    return els, height, max(axis.end + 60, title_right)


def _document(strips, legend=True):
    """An SVG document of strips ``[(elements, height, right)]`` stacked."""
    width = max(max(right for _, _, right in strips) + 30, 560)
    height = sum(h for _, h, _ in strips) + (22 if legend else 0)
    body, y = [], 0
    for els, h, _ in strips:
        body.extend(els)
        y += h
    if legend:
        x = 8
        for fill, what in ((_COLORS["input"], "input"), (_COLORS["pad"], "padding"),
                           (_COLORS["extra"], "TF's extra pad after")):
            body.append(f'<rect x="{x}" y="{y + 4}" width="12" height="12" fill="{fill}" '
                        f'stroke="{_COLORS["stroke"]}" stroke-width="0.6"/>')
            body.append(_text(x + 16, y + 14, what, 10))
            x += 30 + 7 * len(what)
        body.append(_text(x, y + 14, "\u25cf taps of the first / last window", 10))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif">'
            '<defs><marker id="arrow" markerWidth="6" markerHeight="6" refX="5" refY="3" '
            'orient="auto"><path d="M0,0 L6,3 L0,6 z" fill="#2b7bba"/></marker></defs>'
            '<rect width="100%" height="100%" fill="white"/>' + "".join(body) + "</svg>")


MAX_GRID = 16     # an H x W explanation also draws the 2-D grid up to this many padded cells


def _grid(hd, wd, y):
    """The padded H x W input as a grid with the first and last windows' taps."""
    cell = 18
    th, tw = (d["before"] + d["n"] + d["after"] for d in (hd, wd))
    x0 = LEFT
    els = [_text(8, y + 12, "both dimensions: the first (top left) and last (bottom right) "
                 "windows", 12, weight="bold")]
    gy = y + 22

    def kind(d, p):
        if d["before"] <= p < d["before"] + d["n"]:
            return "input"
        total = d["before"] + d["n"] + d["after"]
        return "extra" if d.get("extra_after") and p == total - 1 else "pad"

    for r in range(th):
        for c in range(tw):
            kr, kc = kind(hd, r), kind(wd, c)
            fill = _COLORS["input"] if kr == kc == "input" else (
                _COLORS["extra"] if "extra" in (kr, kc) else _COLORS["pad"])
            els.append(f'<rect x="{x0 + c * cell}" y="{gy + r * cell}" width="{cell}" '
                       f'height="{cell}" fill="{fill}" stroke="{_COLORS["stroke"]}" '
                       'stroke-width="0.5"/>')
    windows = [((0, 0), _COLORS["window0"])]
    if hd["out"] > 1 or wd["out"] > 1:
        windows.append(((hd["out"] - 1, wd["out"] - 1), _COLORS["window1"]))
    for (oy, ox), color in windows:
        top, left = oy * hd["stride"], ox * wd["stride"]
        els.append(f'<rect x="{x0 + left * cell + 1}" y="{gy + top * cell + 1}" '
                   f'width="{wd["k_eff"] * cell - 2}" height="{hd["k_eff"] * cell - 2}" '
                   f'fill="none" stroke="{color}" stroke-width="2" rx="2"/>')
        for i in range(hd["k"]):
            for j in range(wd["k"]):
                cy = gy + (top + i * hd["rate"]) * cell + cell / 2
                cx = x0 + (left + j * wd["rate"]) * cell + cell / 2
                els.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{color}"/>')
    return els, 22 + th * cell + 12, x0 + tw * cell


def padding_svg(dims):
    """The picture of one :func:`pyconv.explain_padding` (one strip per dimension,
    and for small H x W sizes the 2-D grid too)."""
    strips, y = [], 4
    for dim in dims:
        strip = _strip(dim, y)
        strips.append(strip)
        y += strip[1]
    if len(dims) == 2 and all(d["before"] + d["n"] + d["after"] <= MAX_GRID for d in dims):
        strips.append(_grid(dims[0], dims[1], y))
    return _document(strips)


def comparison_svg(explanations):
    """Several explanations of the same input stacked, input cell 0 aligned."""
    def x_of_input(dim):
        axis = _Axis(_visible_runs(dim), LEFT)
        return axis.x(dim["before"])

    align = max((x_of_input(d) for e in explanations for d in e), default=LEFT)
    strips, y = [], 4
    for dims in explanations:
        for dim in dims:
            strip = _strip(dim, y, align)
            strips.append(strip)
            y += strip[1]
        if len(dims) == 2 and all(d["before"] + d["n"] + d["after"] <= MAX_GRID for d in dims):
            strips.append(_grid(dims[0], dims[1], y))
            y += strips[-1][1]
    return _document(strips)
