"""The example notebooks run in a real Jupyter kernel (nbclient + ipykernel),
and what they display is checked: the padding pictures (SVG), the summary and
store tables (HTML), the numbers of the even-size trap.

The kernel imports this checkout's pyconv (its working directory and
PYTHONPATH are the repository root). nbclient, nbformat and ipykernel are in
the ``test`` extra.
"""

import html
import os
import re
import time

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
TIMES = {}


def run(name, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("PYCONV_NUM_THREADS", "2")
    monkeypatch.delenv("PYCONV_PROGRESS", raising=False)
    path = os.path.join(EXAMPLES, name)
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb.cells if c.cell_type == "code"), f"{name}: outputs not stripped"
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": ROOT}})
    t0 = time.perf_counter()
    client.execute()
    TIMES[name] = time.perf_counter() - t0
    return nb


def outputs(nb, kind):
    """Every ``kind`` ('image/svg+xml', 'text/html', 'text/plain' or 'stream')
    output, in order, with the index of its cell."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", ()):
            if kind == "stream" and out.output_type == "stream":
                found.append((i, out.text))
            elif out.output_type in ("display_data", "execute_result") and kind in out.data:
                found.append((i, out.data[kind]))
    return found


def svg_texts(svg):
    return [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def test_even_size_trap_notebook(monkeypatch):
    nb = run("01_even_size_trap.ipynb", monkeypatch)
    svgs = outputs(nb, "image/svg+xml")
    assert len(svgs) == 7, [i for i, _ in svgs]
    titles = [t for _, s in svgs for t in svg_texts(s) if "->" in t]
    # the SAME picture: pads 0 / 1 with TF's extra pad after; conv2d_same: 1 / 1
    assert "SAME: input 4, kernel 3, stride 2 -> output 2; pads 0 before, 1 after" in titles
    assert "conv2d_same: input 4, kernel 3, stride 2 -> output 2; pads 1 before, 1 after" \
        in titles
    extra = "SAME puts an odd total&#x27;s extra one after"   # the extra pad cell's tooltip
    assert svgs[0][1].count(extra) == 1 and extra not in svgs[1][1]
    comparison = svg_texts(svgs[2][1])
    for name in ("SAME", "VALID", "FULL", "conv2d_same"):
        assert any(t.startswith(name + ": input 4") for t in comparison), name
    assert sum(s.count("<circle") for s in [svgs[2][1]]) == 3 * (2 + 1 + 2 + 2)  # taps drawn
    # 4x4 in 2-D, SAME and conv2d_same: strips of both dimensions and a grid each, where the
    # first and last windows show 3 x 3 taps
    grid = svgs[4][1]
    assert sum("both dimensions" in t for t in svg_texts(grid)) == 2
    assert grid.count("<circle") == 2 * (2 * 2 * 3) + 2 * (2 * 9)
    assert any("height: SAME: input 224, kernel 7, stride 2 -> output 112; pads 2 before, "
               "3 after" in t for t in svg_texts(svgs[5][1]))
    assert any("width: conv2d_same: input 160, kernel 7, stride 2 -> output 80; pads 3 "
               "before, 3 after" in t for t in svg_texts(svgs[6][1]))
    text = "".join(t for _, t in outputs(nb, "stream"))
    assert "conv2d_same agrees: True | conv2d SAME agrees: False" in text
    assert "5x5 input (odd): conv2d_same agrees: True | conv2d SAME agrees: True" in text
    # TF-Slim's resnet_utils numbers (the 4x4 case)
    assert re.search(r"\[\[14\.\s+43\.\]\s+\[43\.\s+84\.\]\]", text)
    assert re.search(r"\[\[48\.\s+37\.\]\s+\[37\.\s+22\.\]\]", text)
    assert "SAME: input 4, kernel 3, stride 2 -> output 2; pad before 0, after 1" in text


def test_resnet_checkpoint_notebook(monkeypatch):
    nb = run("02_resnet_checkpoint.ipynb", monkeypatch)
    text = "".join(t for _, t in outputs(nb, "stream"))
    assert re.search(r"\(2, 1, 1, 10\) \d+ variables", text)
    assert "same logits as the saved weights give: True" in text
    # the ~95 MB load showed progress: an ipywidgets bar (the test extra has ipywidgets;
    # nbclient keeps the widgets' final state in the notebook's metadata), else one line
    # of text updated in place
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        bars = [t for _, t in outputs(nb, "text/plain") if "loading model.ckpt-0" in t]
        assert len(bars) == 1 and "100% |########################|" in bars[0], bars
    else:
        views = [d["model_id"] for _, d in outputs(nb, "application/vnd.jupyter.widget-view+json")]
        assert len(views) == 1, views
        state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
        box = state[views[0]]
        assert box["model_name"] == "HBoxModel"
        bar, label = (state[c[len("IPY_MODEL_"):]] for c in box["state"]["children"])
        assert bar["model_name"] == "IntProgressModel" and label["model_name"] == "LabelModel"
        assert bar["state"]["description"] == "loading model.ckpt-0"
        assert bar["state"]["value"] == bar["state"]["max"] > 90e6   # every byte counted
        assert label["state"]["value"].startswith(
            "loading model.ckpt-0: 100% |########################| 94.3/94.3 MB [")
    tables = [h for _, h in outputs(nb, "text/html")]
    reader = next(h for h in tables if "CheckpointReader" in h)
    assert "resnet_v1_50/conv1/weights" in reader and "(7, 7, 3, 64)" in reader
    assert "(V2)" in reader
    store = next(h for h in tables if "pyconv.VariableStore" in h)
    assert "resnet_v1_50/logits/biases" in store and "&hellip;" in store  # rows elided
    assert re.search(r"[\d,]+ variables, 23,5\d\d,\d{3} parameters", store)
    var = next(h for h in tables if "pyconv.Variable</b>" in h)
    assert "resnet_v1_50/conv1/weights" in var and "mean=" in var
    summary = next(h for h in tables if "Receptive field" in h)
    # conv1: 7x7x3x64 weights and batch norm (scale=True in resnet_arg_scope): 4 x 64
    for needle in ("Mult-adds", "resnet_v1_50/conv1", "(1, 32, 32, 64)", "9,664",
                   "resnet_v1_50/logits", "Total params: 23,5"):
        assert needle in summary, needle
    assert "7x7</td>" in summary  # conv1's receptive field
    assert "Variables: name (type shape) [size]" in text
    assert "resnet_v1_50/conv1/weights:0 (float32 7x7x3x64) [9408, bytes: 37632]" in text


def test_mobilenet_notebook(monkeypatch):
    nb = run("03_mobilenet.ipynb", monkeypatch)
    tables = [h for _, h in outputs(nb, "text/html")]
    summary = tables[0]
    assert "MobilenetV1/Conv2d_0" in summary and "(1, 64, 64, 16)" in summary
    assert "MobilenetV1/Conv2d_13_pointwise" in summary and "(1, 4, 4, 512)" in summary
    assert "3x3</td>" in summary and "Total mult-adds" in summary
    text = "".join(t for _, t in outputs(nb, "stream"))
    rows = re.findall(r"^\s+(0\.25|0\.5|1\.0)\s+([\d,]+)\s+([\d,]+)\s+([\d.]+)$", text, re.MULTILINE)
    assert [r[0] for r in rows] == ["0.25", "0.5", "1.0"], text
    params = [int(r[1].replace(",", "")) for r in rows]
    # mobilenet_v1 1.0 with 1001 classes: Keras' 4,253,864 (1000 classes) + 1024 + 1
    assert params[0] < params[1] < params[2] and params[2] == 4_254_889
    assert "top-5 classes" in text
    assert any("end points" in h and "Predictions" in h for h in tables)


def test_notebook_times_reported(request):
    """Not a check: prints how long each notebook took (see the README)."""
    if TIMES:
        print("\nnotebook run times: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMES.items()))
