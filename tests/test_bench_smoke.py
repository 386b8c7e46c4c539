"""The benchmark command runs end to end (``--quick``) with whichever peers are
installed, and writes JSON of the documented shape. Times are never checked."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyconv
from pyconv import bench

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ROOT / "pyconv" / "bench_layers.csv"
SHARED_LAYERS = ROOT.parent / "shared" / "bench" / "layers.csv"


def test_shipped_suite_is_the_shared_suite():
    if not SHARED_LAYERS.exists():
        pytest.skip("no ../shared/bench/layers.csv beside this checkout")
    assert LAYERS.read_bytes() == SHARED_LAYERS.read_bytes(), (
        "pyconv/bench_layers.csv is a copy of ../shared/bench/layers.csv: copy it again")


@pytest.mark.parametrize("layer", [
    bench.Layer("t", "conv2d_same s2 even", 10, 8, 3, 5, 3, 3, 2, 1, "conv2d_same", 1),
    bench.Layer("t", "conv2d_same k4 s2", 9, 9, 2, 3, 4, 4, 2, 1, "conv2d_same", 1),
    bench.Layer("t", "SAME s2 asym", 8, 8, 4, 3, 3, 3, 2, 1, "SAME", 1),
    bench.Layer("t", "SAME 1x7", 6, 9, 4, 3, 1, 7, 1, 1, "SAME", 1),
    bench.Layer("t", "atrous", 9, 9, 4, 3, 3, 3, 1, 2, "SAME", 1),
    bench.Layer("t", "VALID s2", 11, 11, 3, 4, 3, 3, 2, 1, "VALID", 1),
])
def test_numpy_peer_and_geometry_agree_with_pyconv(layer):
    case = bench.Case(layer, 2, seed=0, workdir=None)
    ours = pyconv.nn.conv2d(case.x, case.w, layer.stride, layer.pyconv_padding,
                            dilations=layer.rate)
    assert ours.shape[1:3] == layer.out_hw
    theirs = bench.numpy_conv2d(case.x, case.w, layer.pads, layer.stride, layer.rate)
    assert bench.rel_error(theirs, ours) < 1e-5


def test_conv2d_same_pads_match_the_slim_formula():
    layer = bench.Layer("t", "c", 224, 224, 3, 64, 7, 7, 2, 1, "conv2d_same", 1)
    assert layer.pads == ((3, 3), (3, 3))
    assert layer.out_hw == (112, 112)
    assert layer.flops(1) == 2 * 112 * 112 * 64 * 7 * 7 * 3


def test_quick_run_writes_the_documented_json(tmp_path):
    out = tmp_path / "bench.json"
    env = dict(os.environ)
    # the child imports the pyconv this test imports, wherever it was installed
    here = str(Path(pyconv.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "pyconv.bench", "--quick", "--batch", "1", "2",
           "--layers", str(LAYERS), "--json", str(out)]
    proc = subprocess.run(cmd, check=False, cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Weighted totals per network" in proc.stdout
    assert "Targets" in proc.stdout

    doc = json.loads(out.read_text())
    assert doc["schema"] == "pyconv.bench/1"
    machine = doc["machine"]
    for key in ("cpu_model", "cores_usable", "date", "versions", "fma_peak_gflops", "pyconv"):
        assert key in machine
    assert machine["versions"]["numpy"] == np.__version__
    assert machine["pyconv"]["isa"] == pyconv._conv.isa()

    config = doc["config"]
    assert config["quick"] is True and config["batch"] == [1, 2]
    assert "numpy" in config["peers"]  # numpy is always there
    threads = config["threads"]
    assert threads[0] == 1

    results = doc["results"]
    # --quick: three conv2d rows, one depthwise and one conv2d_transpose row
    # (pyconv/bench_ops.csv)
    assert len(results) == 5 * 2 * len(threads)
    assert sorted({r["op"] for r in results}) == ["conv2d", "conv2d_transpose", "depthwise"]
    for r in results:
        assert r["pyconv"]["median_s"] > 0 and r["pyconv"]["gflops"] > 0
        assert r["flops"] > 0 and len(r["out_shape"]) == 4
        assert set(r["peers"]) == set(config["peers"])
        for name, e in r["peers"].items():
            assert e["status"] in ("ok", "mismatch", "error", "skipped"), (name, e)
            if e["status"] == "ok":
                assert e["median_s"] > 0
                assert min(e["rel_err"].values()) <= config["rtol"]
        numpy_entry = r["peers"]["numpy"]
        assert numpy_entry["status"] == ("ok" if r["threads"] == 1 else "skipped"), numpy_entry
        if r["threads"] != threads[0]:
            assert r["deterministic"] is True  # same bits for every thread count

    assert len(doc["memory"]) == 5 * 2
    for m in doc["memory"]:
        assert m["analytic"]["im2col"] > 0
        if sys.platform.startswith("linux"):
            assert "extra" in m["measured"], m

    overhead = doc["overhead"]
    assert overhead["bare"]["median_s"] > 0 and overhead["nn"]["median_s"] > 0
    assert overhead["nn_over_bare"] > 0

    summary = doc["summary"]
    assert {e["suite"] for e in summary["networks"]} == {r["suite"] for r in results}
    assert len(summary["geomeans"]) == 3 * 2 * len(threads)  # per family, batch, threads
    assert {e["family"] for e in summary["geomeans"]} == {"conv2d", "depthwise",
                                                           "conv2d_transpose"}
    assert any("2x of the bare C call" in t["target"] for t in summary["targets"])


@pytest.mark.parametrize("layer", [
    bench.Layer("t", "dw s2", 9, 8, 5, 10, 3, 3, 2, 1, "SAME", 1, "depthwise", 2),
    bench.Layer("t", "dw atrous", 9, 9, 4, 4, 3, 3, 1, 2, "SAME", 1, "depthwise", 1),
    bench.Layer("t", "separable", 10, 10, 3, 7, 7, 7, 2, 1, "SAME", 1, "separable", 8),
])
def test_numpy_depthwise_peer_agrees_with_pyconv(layer):
    case = bench.Case(layer, 2, seed=0, workdir=None)
    ours = case.pyconv_call()()
    assert ours.shape[1:3] == layer.out_hw and ours.shape[3] == layer.cout
    theirs = bench.numpy_depthwise(case.x, case.w, layer.pads, layer.stride, layer.rate)
    if case.w2 is not None:
        theirs = np.tensordot(theirs, case.w2[0, 0], axes=1)
    assert bench.rel_error(theirs, ours) < 1e-5


def test_ops_csv_rows():
    rows = bench.load_layers(bench.OPS_CSV)
    dw = [r for r in rows if r.op == "depthwise"]
    assert sum(r.repeats for r in dw) == 13 and all(r.suite == "mobilenet_v1" for r in dw)
    (sep,) = [r for r in rows if r.op == "separable"]
    assert (sep.h, sep.cin, sep.kh, sep.stride, sep.multiplier, sep.cout) == (224, 3, 7, 2, 8, 64)


# ---- the network benchmark (pyconv/bench_nets.py): no peer needed

def test_nets_quick_runs_without_peers_and_reports_missing_ones(tmp_path, monkeypatch, capsys):
    from pyconv import bench_nets

    class Absent:
        name = "tf"

        def missing(self):
            return "tensorflow is not installed (test)"

    monkeypatch.setitem(bench_nets.PEER_CLASSES, "tf", Absent)
    out = tmp_path / "nets.json"
    rc = bench.main(["--nets", "--quick", "--net", "mobilenet_v1", "--threads", "1",
                     "--peers", "tf", "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "peer tf: skipped (tensorflow is not installed (test))" in printed
    assert "mobilenet_v1" in printed
    doc = json.loads(out.read_text())
    assert doc["schema"] == "pyconv.bench.nets/1"
    assert doc["config"]["skipped_peers"] == {"tf": "tensorflow is not installed (test)"}
    assert doc["config"]["peers"] == [] and doc["config"]["batch"] == [1]
    (row,) = doc["results"]
    assert (row["net"], row["batch"], row["threads"]) == ("mobilenet_v1", 1, 1)
    assert row["pyconv_ms"] > 0 and row["peers"] == {}
    assert 0 < row["conv_share"] <= 1 and 0 <= row["c_other_share"] < 1


@pytest.mark.parametrize("net, ops", [
    # conv3's fused shortcut sum replayed as an eltwise add; NumPy's mean found
    ("resnet_v2_50", {"conv", "eltwise", "pool", "mean"}),
    ("inception_v3", {"conv", "pool", "concat"}),  # batch norm folded into the convs
])
def test_nets_trace_covers_the_forward(net, ops):
    """Every operator input of a pyconv forward is traced back to the input,
    a recorded operator or NumPy's concat/add/mean of recorded values (what the
    torch and ORT peers replay)."""
    from pyconv import bench_nets

    n = bench_nets.PyconvNet(net, 0)
    size = 150 if net == "inception_v3" else 64
    x = np.random.default_rng(0).uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
    n(x)
    out, trace = bench_nets.trace_net(n, x)
    kinds = {node["op"] for node in trace.nodes[1:]}
    assert ops <= kinds, kinds
    np.testing.assert_array_equal(trace.values[trace.output].reshape(out.shape), out)
    for i, node in enumerate(trace.nodes):
        assert all(j < i for j in node["inputs"])  # a DAG in execution order
