"""What a notebook user sees outside the example notebooks: padding pictures
(SVG), summaries, model_analyzer, reprs, progress and the commands' help.

Expected values are independent of the code under test: TF-Slim 1.1's own
printout (model_analyzer), the receptive fields and multiply-adds published
for MobileNet v1 and ResNet-50 (tensorflow/models' receptive_field library
and the MobileNet paper), window taps enumerated one by one, NumPy statistics.
"""

import html
import io
import os
import re
import subprocess
import sys
import time
from contextlib import redirect_stdout

import numpy as np
import pytest

import pyconv
import pyconv as slim
from pyconv import _progress, _restore
from pyconv.nets import nets_factory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def texts(svg):
    return [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


# --------------------------------------------------------------------------- padding pictures

def test_explain_padding_is_still_its_text():
    text = slim.explain_padding(4, 3, 2, "SAME")
    assert isinstance(text, str)
    assert text == ("SAME: input 4, kernel 3, stride 2 -> output 2; pad before 0, after 1; "
                    "first output sees input 0..2, last output sees input 2..3 (+1 padding tap)")
    assert str(text) == text and repr(text) == repr(str(text))


@pytest.mark.parametrize("n,k,s,r", [(4, 3, 2, 1), (5, 3, 2, 1), (6, 3, 2, 2), (224, 7, 2, 1),
                                     (7, 1, 3, 1), (9, 4, 2, 3), (9, 3, 1, 2)])
def test_conv2d_same_explained_as_the_layer_pads(n, k, s, r):
    """'conv2d_same' gives the pads and output size of slim's conv2d_same layer."""
    text = slim.explain_padding(n, k, s, "conv2d_same", r)
    k_eff = k + (k - 1) * (r - 1)
    if s == 1:
        total = max((n - 1) + k_eff - n, 0)
        before, after = total // 2, total - total // 2
    else:
        before, after = (k_eff - 1) // 2, k_eff - 1 - (k_eff - 1) // 2
    out = (n + before + after - k_eff) // s + 1
    assert text.startswith(f"conv2d_same: input {n}, kernel {k}")
    assert f"-> output {out}; pad before {before}, after {after};" in text
    if s > 1 and r > 1:
        return  # the layer refuses stride and rate > 1 together, as TF
    with slim.VariableStore(seed=0):
        y = slim.conv2d_same(np.ones((1, n, n, 1), np.float32), 1, k, s, rate=r)
    assert y.shape[1:3] == (out, out)


def test_svg_draws_cells_pads_and_the_windows_taps():
    e = slim.explain_padding(6, 3, 2, "SAME", rate=2)   # k_eff 5, out 3, total 4: 2 / 2
    svg = e.svg()
    assert svg.startswith("<svg") and svg.endswith("</svg>") and e._repr_svg_() == svg
    # SAME's total is (3 - 1) * 2 + 5 - 6 = 3: 1 before, 2 after, TF's extra one last
    assert svg.count('<title>input ') == 6 and svg.count("<title>padding") == 2
    assert svg.count("<title>TF&#x27;s extra pad") == 1
    circles = re.findall(r'<circle cx="([\d.]+)"', svg)
    assert len(circles) == 2 * 3     # two windows of 3 taps each
    cells = [float(x) for x in re.findall(r'<rect x="([\d.]+)" y="\d+" width="22"', svg)]
    first = sorted(float(c) for c in circles[:3])
    # taps 0, 2, 4 of the padded row: every second cell from the first
    assert [c - 11 for c in first] == [cells[0], cells[2], cells[4]]
    assert any(t.startswith("SAME: input 6, kernel 3 rate 2 (k_eff 5), stride 2 -> output 3")
               for t in texts(svg))
    assert any(t == "stride 2" for t in texts(svg))


def test_svg_marks_tf_extra_pad_after_only_for_an_odd_same_total():
    tip = "TF's extra pad (SAME puts an odd total's extra one after)"
    assert html.escape(tip) in slim.explain_padding(4, 3, 2, "SAME").svg()
    assert html.escape(tip) not in slim.explain_padding(5, 3, 2, "SAME").svg()
    assert html.escape(tip) not in slim.explain_padding(4, 3, 2, "conv2d_same").svg()


def test_svg_is_bounded_for_huge_sizes():
    t0 = time.perf_counter()
    for e in (slim.explain_padding(5, 2**40, padding="FULL", rate=2**40),
              slim.explain_padding((5, 2**62), (10**8, 3), 1, "SAME"),
              slim.explain_padding(10**9, 10**6, 3, "conv2d_same")):
        svg = e.svg()
        assert len(svg) < 60_000
        assert "\u2026" in svg   # elided runs
    assert time.perf_counter() - t0 < 5


def test_svg_grid_of_a_small_hxw():
    """(4, 6), 3x3, stride 2, SAME: a 5 x 7 padded grid (TF's extra row and column
    after), the first window at the top left, the last at rows 2..4, columns 4..6."""
    svg = slim.explain_padding((4, 6), 3, 2, "SAME").svg()
    grid = svg[svg.index("both dimensions"):]
    cells = re.findall(r'<rect x="(\d+)" y="(\d+)" width="18" height="18" fill="([^"]+)"', grid)
    assert len(cells) == 5 * 7
    extra = {(int(x), int(y)) for x, y, f in cells if f == "#fdd0a2"}
    xs = sorted({int(x) for x, _, _ in cells})
    ys = sorted({int(y) for _, y, _ in cells})
    assert extra == {(x, ys[-1]) for x in xs} | {(xs[-1], y) for y in ys}
    taps = re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="3" fill="([^"]+)"', grid)
    last = sorted({(float(x), float(y)) for x, y, c in taps if c == "#d9534f"})
    assert [round((x - 9 - xs[0]) / 18) for x, _ in last[::3]] == [4, 5, 6]
    assert sorted({round((y - 9 - ys[0]) / 18) for _, y in last}) == [2, 3, 4]
    assert "both dimensions" not in slim.explain_padding((40, 6), 3, 2).svg()


def test_svg_of_both_dimensions_and_of_a_comparison(tmp_path):
    e = slim.explain_padding((224, 160), 7, 2, "SAME")
    labels = [t for t in texts(e.svg()) if "->" in t]
    assert labels == ["height: SAME: input 224, kernel 7, stride 2 -> output 112; pads 2 before, "
                      "3 after",
                      "width: SAME: input 160, kernel 7, stride 2 -> output 80; pads 2 before, "
                      "3 after"]
    c = slim.compare_padding(4, 3, stride=2)
    assert str(c).splitlines() == [str(slim.explain_padding(4, 3, 2, p))
                                   for p in ("SAME", "VALID", "FULL", "conv2d_same")]
    names = [t.split(":")[0] for t in texts(c.svg()) if "->" in t]
    assert names == ["SAME", "VALID", "FULL", "conv2d_same"]
    # the input cell 0 is at the same x in every strip
    xs = set(re.findall(r'<rect x="([\d.]+)" y="\d+" width="22" height="22" fill="#dbe9f6"'
                        r'[^>]*><title>input 0<', c.svg()))
    assert len(xs) == 1
    small = slim.compare_padding(2, 3, stride=1)
    assert "VALID: no output (VALID padding gives an output size of 0)" in str(small)
    path = tmp_path / "c.svg"
    c.save_svg(str(path))
    assert path.read_text() == c.svg()


# --------------------------------------------------------------------------- summary

def test_summary_of_mobilenet_matches_published_numbers():
    """MobileNet v1 1.0 at 224 with 1000 classes: 4,253,864 parameters of which
    4,231,976 trainable (Keras' MobileNet reports the same), ~569 M
    mult-adds (paper: 569 M for the convolutions, plus 1024 x 1001 logits);
    receptive field 315 and stride 32 at Conv2d_13_pointwise (tensorflow/models
    receptive_field README)."""
    s = slim.summary(nets_factory.get_network_fn("mobilenet_v1", 1000), (1, 224, 224, 3))
    assert s.trainable_params == 4_231_976 and s.total_params == 4_253_864
    assert abs(s.total_macs - 1024 * 1000 - 569e6) / 569e6 < 0.005
    row = {r["layer"]: r for r in s.rows}
    last = row["MobilenetV1/Conv2d_13_pointwise"]
    assert last["rf"] == (315, 315) and last["stride"] == (32, 32)
    assert last["shape"] == (1, 7, 7, 1024)
    first = row["MobilenetV1/Conv2d_0"]
    assert first["rf"] == (3, 3) and first["stride"] == (2, 2)
    assert first["params"] == 3 * 3 * 3 * 32 + 4 * 32 and first["macs"] == 112 * 112 * 27 * 32
    assert s.total_params == sum(v.value.size for v in s.store.variables())
    text = str(s)
    assert "Receptive field" in text and "Total params: 4,253,864" in text
    h = s._repr_html_()
    assert "<table>" in h and "MobilenetV1/Conv2d_13_pointwise" in h and "315x315" in h


def test_summary_of_resnet_receptive_field():
    """ResNet-50 v1: receptive field 483, stride 32 after block4 (receptive_field README)."""
    s = slim.summary(nets_factory.get_network_fn("resnet_v1_50", 10), (1, 96, 96, 3))
    row = {r["layer"]: r for r in s.rows}
    assert row["resnet_v1_50/conv1"]["rf"] == (7, 7)
    assert row["resnet_v1_50/pool1"]["rf"] == (11, 11) and row["resnet_v1_50/pool1"]["stride"] \
        == (4, 4)
    b4 = row["resnet_v1_50/block4/unit_3/bottleneck_v1/conv3"]
    assert b4["rf"] == (483, 483) and b4["stride"] == (32, 32) and b4["shape"] == (1, 3, 3, 2048)


def test_summary_of_end_points_and_of_a_store():
    with slim.VariableStore(seed=0) as store:
        _, ep = nets_factory.get_network_fn("mobilenet_v1", 10)(
            np.zeros((1, 64, 64, 3), np.float32), depth_multiplier=0.25)
    s = slim.summary(ep, store=store)
    row = {r["layer"]: r for r in s.rows}
    # Conv2d_0: 3x3x3x8 weights + batch norm (scale=True in mobilenet_v1_arg_scope): 4 x 8
    assert row["Conv2d_0"]["shape"] == (1, 32, 32, 8)
    assert row["Conv2d_0"]["params"] == 216 + 4 * 8
    assert row["Conv2d_0"]["macs"] == 32 * 32 * 216
    assert row["Conv2d_1_depthwise"]["macs"] == 32 * 32 * 9 * 8
    assert s.total_params == sum(v.value.size for v in store.variables())
    t = slim.summary(store)
    layers = [r["layer"] for r in t.rows]
    assert "MobilenetV1/Conv2d_0" in layers and "MobilenetV1/Conv2d_0/BatchNorm" in layers
    assert "weights (3, 3, 3, 8)" in str(t)
    with pytest.raises(ValueError, match="input_shape"):
        slim.summary(nets_factory.get_network_fn("mobilenet_v1", 10))
    with pytest.raises(TypeError, match="network function"):
        slim.summary(3)


def test_summary_leaves_the_operators_as_they_were():
    before = (pyconv._conv.conv2d, pyconv._conv.pool2d, pyconv._conv.depthwise_conv2d)
    def broken(images):
        slim.conv2d(images, 4, 3, scope="c")
        raise ValueError("a net that fails half way")

    with pytest.raises(ValueError, match="half way"):
        slim.summary(broken, (1, 8, 8, 3))
    assert (pyconv._conv.conv2d, pyconv._conv.pool2d, pyconv._conv.depthwise_conv2d) == before


# --------------------------------------------------------------------------- model_analyzer

def test_analyze_vars_prints_tf_slims_format():
    """TF-Slim 1.1 printed these lines for slim.conv2d(zeros([1, 8, 8, 3]), 4, 3,
    scope='conv1') (TF 2.21, graph mode)."""
    with slim.VariableStore(seed=0):
        slim.conv2d(np.zeros((1, 8, 8, 3), np.float32), 4, 3, scope="conv1")
        out = io.StringIO()
        with redirect_stdout(out):
            result = slim.model_analyzer.analyze_vars(slim.get_model_variables(),
                                                      print_info=True)
    assert result == (112, 448)
    assert out.getvalue() == (
        "---------\nVariables: name (type shape) [size]\n---------\n"
        "conv1/weights:0 (float32 3x3x3x4) [108, bytes: 432]\n"
        "conv1/biases:0 (float32 4) [4, bytes: 16]\n"
        "Total size of variables: 112\nTotal bytes of variables: 448\n")


def test_analyze_ops_of_end_points():
    ep = {"conv1": np.zeros((1, 8, 8, 4), np.float32), "logits": np.zeros((1, 10), np.float32)}
    out = io.StringIO()
    with redirect_stdout(out):
        total = slim.model_analyzer.analyze_ops(ep, print_info=True)
    assert total == 256 + 10
    assert "conv1 \t-> (float32 1x8x8x4) [256]\n" in out.getvalue()
    assert out.getvalue().startswith("---------\nOperations: name -> (type shapes) [size]\n")


# --------------------------------------------------------------------------- reprs

def test_variable_and_store_reprs():
    with slim.VariableStore(seed=0) as store:
        slim.conv2d(np.zeros((1, 8, 8, 3), np.float32), 4, 3, scope="conv1")
    w = store.variable("conv1/weights")
    v = w.value.astype(np.float64)
    r = repr(w)
    assert r.startswith("<pyconv.Variable 'conv1/weights' shape=(3, 3, 3, 4) dtype=float32 ")
    assert f"mean={v.mean():.4g}" in r and f"max={v.max():.4g}" in r
    assert "<code>conv1/weights</code>" in w._repr_html_()
    assert "parameters=112" in repr(store)
    h = store._repr_html_()
    assert h.count("<tr>") == 1 + 2 and "conv1/biases" in h and "112 parameters" in h


def test_store_html_is_bounded_for_many_variables():
    with slim.VariableStore(seed=0) as store:
        for i in range(5000):
            slim.variable(f"v{i}", shape=[2], initializer=slim.zeros_initializer())
    h = store._repr_html_()
    assert h.count("<tr>") < 70 and "4,940 more" in h and "v4999" in h
    assert len(h) < 40_000


def test_checkpoint_reader_reprs(tmp_path):
    prefix = str(tmp_path / "m.ckpt")
    pyconv.train.save_checkpoint(prefix, {"a/w": np.ones((3, 4), np.float32),
                                          "b": np.zeros(5, np.float64)})
    with pyconv.train.load_checkpoint(prefix) as reader:
        assert "2 tensors, 17 elements, 88 B>" in repr(reader)
        h = reader._repr_html_()
        assert "a/w" in h and "(3, 4)" in h and "float64" in h and "17 elements" in h


# --------------------------------------------------------------------------- progress

def _big_checkpoint(tmp_path):
    prefix = str(tmp_path / "big.ckpt")
    pyconv.train.save_checkpoint(prefix, {f"l{i}/w": np.ones((64, 64), np.float32)
                                          for i in range(8)})
    return prefix


def test_checkpoint_load_shows_progress_only_when_asked_or_on_a_terminal(tmp_path, capfd,
                                                                        monkeypatch):
    prefix = _big_checkpoint(tmp_path)
    monkeypatch.setattr(_restore, "PROGRESS_MIN_BYTES", 1)
    monkeypatch.delenv("PYCONV_PROGRESS", raising=False)
    monkeypatch.setitem(sys.modules, "tqdm", None)   # pyconv's own bar (tqdm's: below)
    with slim.VariableStore() as store:
        store.load(prefix)                     # stderr is no terminal here: silent
    assert capfd.readouterr().err == ""
    with slim.VariableStore() as store:
        store.load(prefix, progress=True)
    err = capfd.readouterr().err
    assert "loading big.ckpt: 100% |########################| 0.1/0.1 MB" in err
    monkeypatch.setenv("PYCONV_PROGRESS", "0")
    with slim.VariableStore() as store:
        store.load(prefix, progress=True)
        assert len(store.unused_values()) == 8
    assert capfd.readouterr().err == ""


def test_checkpoint_load_progress_through_tqdm(tmp_path, capfd, monkeypatch):
    """With tqdm installed (the test extra) a load shows tqdm's own bar on stderr."""
    import tqdm

    prefix = _big_checkpoint(tmp_path)
    monkeypatch.setattr(_restore, "PROGRESS_MIN_BYTES", 1)
    monkeypatch.delenv("PYCONV_PROGRESS", raising=False)
    made = []
    real = tqdm.tqdm

    class Recording(real):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(tqdm, "tqdm", Recording)
    with slim.VariableStore() as store:
        store.load(prefix, progress=True)
        assert len(store.unused_values()) == 8
    err = capfd.readouterr().err
    assert len(made) == 1
    bar = made[0]
    # 8 tensors of 64 x 64 float32: 131,072 bytes, counted in MB
    assert bar.total == pytest.approx(0.131072) and bar.n == pytest.approx(0.131072)
    assert bar.unit == "MB" and bar.desc == "loading big.ckpt"
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("loading big.ckpt: 100%|") and "MB" in last, err
    assert "|########################|" not in err          # not pyconv's own bar
    with slim.VariableStore() as store:
        store.load(prefix)                     # not asked, no terminal: silent
    assert capfd.readouterr().err == "" and len(made) == 1


def test_progress_bar_in_a_notebook_is_an_ipywidget(monkeypatch):
    """In a kernel (faked here: _in_notebook; the real kernel is
    tests/test_notebooks.py) the bar is an ipywidgets IntProgress + Label."""
    import ipywidgets
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: shown.append(a))
    monkeypatch.setattr(_progress, "_in_notebook", lambda: True)
    monkeypatch.delenv("PYCONV_PROGRESS", raising=False)
    with _progress.progress(300, "images", " img") as bar:
        assert len(shown) == 1 and isinstance(shown[0][0], ipywidgets.HBox)
        widget, label = shown[0][0].children
        assert isinstance(widget, ipywidgets.IntProgress) and widget.max == 300
        assert widget.description == "images" and widget.value == 0
        for _ in range(3):
            bar.update(100)
    assert widget.value == 300
    assert label.value.startswith("images: 100% |########################| 300/300 img [")


def test_progress_bar_counts():
    bar = _progress._Bar(200, "x", " MB", 100)
    bar.n = 50
    assert bar._text().startswith("x:  25% |######------------------| 0.5/2.0 MB [")


# --------------------------------------------------------------------------- commands

def _cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "pyconv", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300, env={**os.environ, **env})


def test_help_reads_as_help():
    top = _cli("--help").stdout
    ex = _cli("explain", "--help").stdout
    for text in (top, ex):
        assert "``" not in text and ":func:" not in text
    assert "--padding P" in ex and "conv2d_same" in ex and "--svg FILE" in ex and "HxW" in ex


def test_explain_command_hxw_padding_and_svg(tmp_path):
    path = tmp_path / "p.svg"
    proc = _cli("explain", "4x6", "--kernel", "3", "--stride", "2", "--padding", "conv2d_same",
                "--svg", str(path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:2] == [
        "height: " + str(slim.explain_padding(4, 3, 2, "conv2d_same")),
        "width: " + str(slim.explain_padding(6, 3, 2, "conv2d_same"))]
    assert path.read_text() == slim.explain_padding((4, 6), 3, 2, "conv2d_same").svg()
    proc = _cli("explain", "4x", "--kernel", "3")
    assert proc.returncode == 2 and "N or HxW" in proc.stderr


def test_nets_over_a_directory_of_images(tmp_path):
    fn = nets_factory.get_network_fn("mobilenet_v1_025", 3)
    with slim.VariableStore(seed=0) as store:
        fn(np.zeros((1, 224, 224, 3), np.float32))
    prefix = str(tmp_path / "ckpt" / "model.ckpt")
    pyconv.train.save_checkpoint(prefix, {v.name: v.value for v in store.variables()})
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        np.save(images / f"im{i}.npy", np.full((224, 224, 3), i / 3, np.float32))
    proc = _cli("nets", "mobilenet_v1_025", "--checkpoint", prefix, "--images", str(images),
                PYCONV_PROGRESS="1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == ["im0.npy", "im1.npy", "im2.npy"]
    assert lines[-1].startswith("3 images through mobilenet_v1_025 (3 classes)")
    assert "100% |########################| 3/3 images" in proc.stderr
    quiet = _cli("nets", "mobilenet_v1_025", "--checkpoint", prefix, "--images", str(images),
                 "--no-progress", PYCONV_PROGRESS="1")
    assert quiet.returncode == 0 and "images/s" not in quiet.stderr
    assert quiet.stdout.splitlines()[:3] == lines[:3]


def test_bench_has_a_no_progress_switch():
    from pyconv import bench

    assert bench.build_parser().parse_args(["--no-progress"]).progress is False
    assert bench.build_parser().parse_args([]).progress is True


def test_variable_repr_of_a_large_value_is_sampled():
    """Past 2**20 elements the statistics come from a strided sample, marked ~."""
    value = np.arange(3 * 2**20, dtype=np.float32)
    var = pyconv.variables.Variable("big/weights", value)
    r = repr(var)
    assert "mean=~" in r and "std=~" in r
    mean = float(re.search(r"mean=~([\d.e+]+)", r).group(1))
    assert abs(mean - value.mean(dtype=np.float64)) / value.mean(dtype=np.float64) < 1e-3
    ints = pyconv.variables.Variable("step", np.array(7, np.int64))
    assert "mean=7 std=0 min=7 max=7" in repr(ints)
    text = pyconv.variables.Variable("s", np.array([b"x"], dtype=object))
    assert repr(text) == "<pyconv.Variable 's' shape=(1,) dtype=object>"


def test_analyze_ops_of_a_traced_summary():
    s = slim.summary(nets_factory.get_network_fn("mobilenet_v1_025", 5), (1, 32, 32, 3),
                     dtype=np.float64)
    out = io.StringIO()
    with redirect_stdout(out):
        total = slim.model_analyzer.analyze_ops(s, print_info=True)
    assert "MobilenetV1/Conv2d_0 \t-> (float64 1x16x16x8) [2048]\n" in out.getvalue()
    assert total == sum(int(np.prod(r["shape"])) for r in s.rows)


def test_summary_of_a_small_net_with_a_fully_connected_head():
    """conv 3x3/2 -> rf 3, jump 2; pool 2x2/2 (VALID) -> rf 5, jump 4 on a 4 x 4 map;
    flatten + fully_connected sees 5 + 3 * 4 = 17 pixels per side."""
    def net(x):
        x = slim.conv2d(x, 8, 3, stride=2, scope="c1")
        x = slim.max_pool2d(x, 2, scope="p1")
        return slim.fully_connected(slim.flatten(x), 10, scope="fc")

    s = slim.summary(net, (2, 16, 16, 3))
    assert [r["layer"] for r in s.rows] == ["c1", "p1", "fc"]
    assert [r["rf"] for r in s.rows] == [(3, 3), (5, 5), (17, 17)]
    assert [r["stride"] for r in s.rows] == [(2, 2), (4, 4), (4, 4)]
    assert [r["shape"] for r in s.rows] == [(2, 8, 8, 8), (2, 4, 4, 8), (2, 10)]
    assert [r["macs"] for r in s.rows] == [2 * 64 * 27 * 8, 0, 2 * 128 * 10]
    assert [r["params"] for r in s.rows] == [216 + 8, 0, 1280 + 10]


# --------------------------------------------------------------------------- summary of end points: geometry

def test_summary_of_end_points_traces_receptive_field_and_stride():
    """MobileNet v1 at 224: receptive field 315, stride 32 at Conv2d_13_pointwise
    (tensorflow/models receptive_field README); with input_shape alone the
    stride comes from the sizes (224 / 7) and no receptive field is claimed."""
    fn = nets_factory.get_network_fn("mobilenet_v1", 1000)
    with slim.VariableStore(seed=1) as store:
        _, ep = fn(np.zeros((1, 224, 224, 3), np.float32))
    s = slim.summary(ep, (1, 224, 224, 3), store=store, network_fn=fn)
    row = {r["layer"]: r for r in s.rows}
    assert row["Conv2d_13_pointwise"]["rf"] == (315, 315)
    assert row["Conv2d_13_pointwise"]["stride"] == (32, 32)
    assert row["Conv2d_0"]["rf"] == (3, 3) and row["Conv2d_0"]["stride"] == (2, 2)
    # hand-computed: 3 (Conv2d_0) + 2 * 2 (the 3x3 depthwise on stride 2)
    assert row["Conv2d_1_depthwise"]["rf"] == (7, 7)
    assert "Receptive field" in str(s) and "315x315" in s._repr_html_()
    sized = slim.summary(ep, (224, 224, 3), store=store)
    row = {r["layer"]: r for r in sized.rows}
    assert row["Conv2d_13_pointwise"]["stride"] == (32, 32)
    assert row["Conv2d_6_pointwise"]["stride"] == (16, 16)
    assert row["Conv2d_13_pointwise"]["rf"] is None
    assert row["AvgPool_1a"]["stride"] is None and row["Logits"]["stride"] is None
    plain = slim.summary(ep, store=store)
    assert all(r["rf"] is None and r["stride"] is None for r in plain.rows)


def test_summary_of_resnet_end_points_receptive_field():
    """ResNet-50 v1: 483 / 32 after block4 (receptive_field README); block4's end
    point is a residual sum (NumPy), so its field is the widest traced under it."""
    fn = nets_factory.get_network_fn("resnet_v1_50", 10)
    with slim.VariableStore(seed=0) as store:
        _, ep = fn(np.zeros((1, 96, 96, 3), np.float32))
    s = slim.summary(ep, (1, 96, 96, 3), store=store, network_fn=fn)
    row = {r["layer"]: r for r in s.rows}
    assert row["resnet_v1_50/block4"]["rf"] == (483, 483)
    assert row["resnet_v1_50/block4"]["stride"] == (32, 32)
    assert row["resnet_v1_50/conv1"]["rf"] == (7, 7)
    # hand-computed: unit_1's sum of a 1x1 shortcut and 1x1 -> 3x3 -> 1x1 on pool1's
    # 11 / stride 4: 11 + 2 * 4 = 19
    assert row["resnet_v1_50/block1/unit_1/bottleneck_v1"]["rf"] == (19, 19)


def test_summary_of_end_points_of_a_small_net_and_bad_arguments():
    """conv 3x3/2 -> 3 / 2; max pool 3x3/2 -> 3 + 2 * 2 = 7 / 4; a NumPy sum of the
    pool and a 1x1 conv of it -> the widest traced under its scope, 7 / 4."""
    def net(x, depth=8):
        ep = {}
        x = ep["c1"] = slim.conv2d(x, depth, 3, stride=2, scope="c1")
        x = ep["p1"] = slim.max_pool2d(x, 3, stride=2, padding="SAME", scope="p1")
        with slim.variable_scope("res"):
            ep["res"] = x + slim.conv2d(x, depth, 1, scope="c2")
        return x, ep

    with slim.VariableStore() as store:
        _, ep = net(np.ones((2, 20, 20, 3), np.float32), depth=4)
    s = slim.summary(ep, (2, 20, 20, 3), store=store, network_fn=net, depth=4)
    assert [r["rf"] for r in s.rows] == [(3, 3), (7, 7), (7, 7)]
    assert [r["stride"] for r in s.rows] == [(2, 2), (4, 4), (4, 4)]
    with pytest.raises(ValueError, match=r"end point 'c1' has shape \(2, 10, 10, 4\)"):
        slim.summary(ep, (2, 20, 20, 3), store=store, network_fn=net)   # depth 8
    with pytest.raises(ValueError, match="end point 'c1'.*no such end point"):
        slim.summary({"c1": ep["c1"]}, (2, 20, 20, 3), store=store,
                     network_fn=lambda x: (x, {}))
    with pytest.raises(ValueError, match="network_fn needs the input_shape"):
        slim.summary(ep, store=store, network_fn=net)
    with pytest.raises(TypeError, match="network_fn must be a network function"):
        slim.summary(ep, (2, 20, 20, 3), store=store, network_fn=3)
    with pytest.raises(TypeError, match=r"arguments \['depth'\].*network_fn"):
        slim.summary(ep, (2, 20, 20, 3), store=store, depth=4)
    with pytest.raises(ValueError, match="input_shape must be"):
        slim.summary(ep, (20, 20), store=store)
