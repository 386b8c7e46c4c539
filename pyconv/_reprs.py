"""Text and HTML reprs of :class:`Variable`, :class:`VariableStore` and the
checkpoint reader: name, shape, dtype and a few statistics; a store or a
reader as a table of its tensors with totals, at most :data:`MAX_ROWS` rows
(the middle is elided). Statistics of a large value come from an evenly
strided sample of at most :data:`SAMPLE` elements, marked ``~``, so a repr
costs little for any size.
"""

from html import escape

import numpy as np

MAX_ROWS = 60
SAMPLE = 1 << 20


def stats(value):
    """``(text, approximate)`` with mean, std, min and max of a numeric array
    (NaN-aware), or ``('', False)`` for other dtypes and empty arrays."""
    a = np.asarray(value)
    if a.size == 0 or a.dtype.kind not in "fiub":
        return "", False
    flat = a.reshape(-1)
    approx = flat.size > SAMPLE
    if approx:
        flat = flat[:: -(-flat.size // SAMPLE)]
    f = flat.astype(np.float64)
    with np.errstate(all="ignore"):
        finite = f[np.isfinite(f)]
    if finite.size == 0:
        return "no finite values", approx
    mark = "~" if approx else ""
    nan = int(f.size - finite.size)
    text = (f"mean={mark}{finite.mean():.4g} std={mark}{finite.std():.4g} "
            f"min={mark}{finite.min():.4g} max={mark}{finite.max():.4g}")
    if nan:
        text += f" non-finite={mark}{nan}"
    return text, approx


def shape_text(shape):
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def human_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def variable_html(var):
    text, _ = stats(var.value)
    flags = "" if var.trainable else " (not trainable)"
    return (f"<div><b>pyconv.Variable</b> <code>{escape(var.name)}</code>{flags}<br>"
            f"shape {escape(shape_text(var.shape))}, {escape(var.dtype.name)}, "
            f"{var.value.size:,} elements ({human_bytes(var.value.nbytes)})"
            + (f"<br>{escape(text)}" if text else "") + "</div>")


def table_html(title, header, rows, footer, right=()):
    """An HTML table of ``rows`` (lists of str), the middle elided past MAX_ROWS."""
    shown, hidden = rows, 0
    if len(rows) > MAX_ROWS:
        half = MAX_ROWS // 2
        shown, hidden = rows[:half] + [None] + rows[-half:], len(rows) - 2 * half
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for r in shown:
        if r is None:
            body.append(f'<tr><td colspan="{len(header)}" style="text-align:center">'
                        f"&hellip; {hidden:,} more &hellip;</td></tr>")
        else:
            body.append("<tr>" + "".join(
                f'<td style="text-align:{"right" if i in right else "left"}">{escape(v)}</td>'
                for i, v in enumerate(r)) + "</tr>")
    return (f"<div><b>{escape(title)}</b><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table><p>{escape(footer)}</p></div>")


def store_html(store):
    variables = store.variables()
    rows = []
    total = nbytes = 0
    for v in variables:
        total += v.value.size
        nbytes += v.value.nbytes
        shown = len(rows) < MAX_ROWS // 2 or len(variables) - len(rows) <= MAX_ROWS // 2
        text = stats(v.value)[0] if shown else ""   # elided rows cost nothing
        rows.append([v.name, shape_text(v.shape), v.dtype.name, f"{v.value.size:,}",
                     "yes" if v.trainable else "no", text])
    pending = len(store.unused_values())
    footer = (f"{len(variables):,} variables, {total:,} parameters ({human_bytes(nbytes)})"
              + (f"; {pending:,} loaded values not taken yet" if pending else ""))
    return table_html(f"pyconv.VariableStore (seed {store.seed!r})",
                      ["name", "shape", "dtype", "elements", "trainable", "statistics"],
                      _elide(rows), footer, right=(3,))


def _elide(rows):
    """Rows of a long table: statistics only for the rows that will be shown."""
    if len(rows) > MAX_ROWS:
        half = MAX_ROWS // 2
        for r in rows[half:-half]:
            r[-1] = ""
    return rows


def reader_rows(reader):
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_tf_dtype_name_map()
    np_dtypes = reader.get_variable_to_dtype_map()
    rows, total, nbytes = [], 0, 0
    for name in sorted(shapes):
        n = int(np.prod(shapes[name], dtype=object)) if shapes[name] else 1
        dt = np_dtypes[name]
        size = 0 if dt == np.dtype(object) else n * (2 if dtypes[name] == "DT_BFLOAT16"
                                                   else dt.itemsize)
        total += n
        nbytes += size
        shown = {"DT_BFLOAT16": "bfloat16", "DT_STRING": "string"}.get(
            dtypes[name], dt.name if dt != np.dtype(object) else dtypes[name])
        rows.append([name, shape_text(shapes[name]), shown, f"{n:,}"])
    return rows, total, nbytes


def reader_html(reader):
    rows, total, nbytes = reader_rows(reader)
    return table_html(f"pyconv.train.CheckpointReader {reader.path} ({reader.format})",
                      ["name", "shape", "dtype", "elements"], rows,
                      f"{len(rows):,} tensors, {total:,} elements ({human_bytes(nbytes)})",
                      right=(3,))
