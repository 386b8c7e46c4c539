#!/usr/bin/env python3
"""slim.batch_norm's code paths (fused or not, variable dtype) against pyconv.

tf-slim 1.1 chooses between its own fused op, TF's BatchNormalization layer
and its legacy ops by rank, dtype, ``fused`` and ``updates_collections``; the
choice decides whether ``moving_variance`` gets the Bessel-corrected batch
variance and whether float16 inputs get float16 variables. The fixture
generator cannot cover the non-default ``updates_collections`` and rank-2
paths because in TF 2.21 they raise ``AttributeError: module
'tensorflow.python.framework.ops' has no attribute 'Tensor'`` inside tf-slim
1.1; TF 2.12 runs them. Two steps, as TF 2.12 and pyconv need different NumPy
versions::

    /work/venvs/tf212/bin/python tools/tf_reference/probe_batch_norm_paths.py tf /tmp/bn.npz
    python tools/tf_reference/probe_batch_norm_paths.py compare /tmp/bn.npz

The first step runs every case in TensorFlow and stores inputs, outputs,
variables (creation order, dtypes, values after one update) or the error; the
second replays them through pyconv and prints a summary (expected: every case TF computes matches; TF
refuses float64 on slim's own fused path, pyconv computes it).
"""
import json
import os
import sys

import numpy as np

DTYPES = ("float16", "float32", "float64")
SHAPES = ((6, 3), (4, 5, 3), (3, 2, 2, 3), (2, 3, 2, 2, 3))
TOL = {"float16": 1e-2, "float32": 1e-5, "float64": 1e-12}


def cases():
    for dt in DTYPES:
        for shape in SHAPES:
            for updates in ("default", None):
                for fused in (None, False, True):
                    for training in (True, False):
                        yield dt, shape, updates, fused, training


def run_tf(out):
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import generate_fixtures

    T = generate_fixtures._TF()
    tf, v1 = T.tf, T.v1
    rng = np.random.RandomState(0)
    arrays, meta = {}, []
    for i, (dt, shape, updates, fused, training) in enumerate(cases()):
        x = (rng.randn(*shape) * 2 + 1).astype(dt)
        arrays[f"c{i}/input"] = x
        rec = {"id": f"c{i}", "dtype": dt, "shape": list(shape), "updates": updates,
               "fused": fused, "training": training}
        g = tf.Graph()
        with g.as_default():
            kw = {"decay": 0.5, "is_training": training, "scale": True, "fused": fused,
                  "param_initializers": {"moving_mean": v1.constant_initializer(0.3),
                                         "moving_variance": v1.constant_initializer(1.7)}}
            if updates is None:
                kw["updates_collections"] = None
            try:
                y = T.slim.batch_norm(tf.constant(x), **kw)
                ups = g.get_collection(v1.GraphKeys.UPDATE_OPS)
                variables = g.get_collection(v1.GraphKeys.GLOBAL_VARIABLES)
                with v1.Session(graph=g) as sess:
                    sess.run(v1.global_variables_initializer())
                    arrays[f"c{i}/expected"] = sess.run(y)
                    if ups:
                        sess.run(ups)
                    for v in variables:
                        arrays[f"c{i}/after/{v.op.name}"] = sess.run(v)
                rec["variables"] = {v.op.name: v.dtype.base_dtype.name for v in variables}
            except Exception as e:  # noqa: BLE001 - recorded
                rec["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        meta.append(rec)
    np.savez_compressed(out, configs=np.array(json.dumps(meta)),
                        versions=np.array(json.dumps(T.versions())), **arrays)
    print(f"{len(meta)} cases, {sum('error' in m for m in meta)} raised in TF {tf.__version__}")


def compare(path):
    try:
        import pyconv as slim
    except ImportError:  # the working tree, built in place
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
        import pyconv as slim

    data = np.load(path)
    print("TF:", json.loads(str(data["versions"])))
    counts = {}
    for rec in json.loads(str(data["configs"])):
        cid = rec["id"]
        kw = {"decay": 0.5, "is_training": rec["training"], "scale": True, "fused": rec["fused"],
              "param_initializers": {"moving_mean": slim.constant_initializer(0.3),
                                     "moving_variance": slim.constant_initializer(1.7)}}
        if rec["updates"] is None:
            kw["updates_collections"] = None
        label = (rec["dtype"], tuple(rec["shape"]), rec["updates"], rec["fused"], rec["training"])
        with slim.VariableStore(seed=0) as store:
            try:
                y = slim.batch_norm(data[f"{cid}/input"], **kw)
            except Exception as e:  # noqa: BLE001 - reported
                y, err = None, f"{type(e).__name__}: {e}"
            if "error" in rec or y is None:
                key = ("TF raises" if "error" in rec else "TF computes",
                       "pyconv raises" if y is None else "pyconv computes")
                counts[key] = counts.get(key, 0) + 1
                print(label, "| TF:", rec.get("error", "ok")[:90], "| pyconv:",
                      "ok" if y is not None else err[:90])
                continue
            expected = data[f"{cid}/expected"]
            tol = TOL[rec["dtype"]]
            scale = max(1.0, float(np.abs(expected.astype(np.float64)).max()))
            problems = []
            if y.dtype != expected.dtype:
                problems.append(f"output dtype {y.dtype} vs {expected.dtype}")
            if np.abs(y.astype(np.float64) - expected).max() / scale > tol:
                problems.append("output values")
            if [v.name for v in slim.get_variables()] != list(rec["variables"]):
                problems.append(f"variable order {[v.name for v in slim.get_variables()]}")
            for name, dtype in rec["variables"].items():
                after = data[f"{cid}/after/{name}"]
                if store[name].dtype != np.dtype(dtype):
                    problems.append(f"{name} dtype {store[name].dtype} vs {dtype}")
                elif np.abs(store[name].astype(np.float64) - after).max() > max(tol, 1e-6):
                    problems.append(f"{name} after the update")
            key = ("both compute", "DIFFER" if problems else "match")
            counts[key] = counts.get(key, 0) + 1
            if problems:
                print(label, "DIFFER:", "; ".join(problems))
    print(counts)
    return 1 if counts.get(("both compute", "DIFFER")) else 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("tf", "compare"):
        sys.exit(__doc__)
    sys.exit(run_tf(sys.argv[2]) if sys.argv[1] == "tf" else compare(sys.argv[2]))
