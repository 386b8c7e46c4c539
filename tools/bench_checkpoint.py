#!/usr/bin/env python3
"""Read time and peak memory of pyconv.train against tf.train.load_checkpoint on a
VGG-16-sized checkpoint (138 M float32 parameters, ~553 MB), formats V1 and V2.

    python tools/bench_checkpoint.py                  # writes the checkpoints first if needed
    python tools/bench_checkpoint.py --repeat 5 --json bench_checkpoint.json

TensorFlow writes both checkpoints (tf.raw_ops.SaveV2 / SaveSlices, the writers
behind Saver) into --dir (default /tmp/pyconv_bench_ckpt) with the reference
venv's python (--tf-python). Every measurement runs in a fresh subprocess
that imports its reader, notes its RSS, opens the checkpoint and calls
``get_tensor`` on every tensor, keeping them all (as loading a model does;
``pyconv-store`` is ``VariableStore().load(path)``, the values kept pending);
the time is that of opening and reading, the memory is the process's peak
RSS (``resource.getrusage``) minus the RSS before reading minus the bytes of
the tensors: what a reader needs beyond the arrays it returns. The files are
read right before every run so that each finds them in the page cache, and
the readers take turns going first. The table shows the median and the best
of the runs (on a loaded machine the best is the steadier figure), the JSON
every run.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

VGG16 = [  # (name, shape) of tf_slim.nets.vgg.vgg_16's variables
    *[(f"vgg_16/conv{b}/conv{b}_{i}/{kind}", shape)
      for b, cin_cout in ((1, [(3, 64), (64, 64)]), (2, [(64, 128), (128, 128)]),
                          (3, [(128, 256), (256, 256), (256, 256)]),
                          (4, [(256, 512), (512, 512), (512, 512)]),
                          (5, [(512, 512), (512, 512), (512, 512)]))
      for i, (cin, cout) in enumerate(cin_cout, 1)
      for kind, shape in (("weights", [3, 3, cin, cout]), ("biases", [cout]))],
    ("vgg_16/fc6/weights", [7, 7, 512, 4096]), ("vgg_16/fc6/biases", [4096]),
    ("vgg_16/fc7/weights", [1, 1, 4096, 4096]), ("vgg_16/fc7/biases", [4096]),
    ("vgg_16/fc8/weights", [1, 1, 4096, 1000]), ("vgg_16/fc8/biases", [1000]),
    ("global_step", []),
]

WRITE = r"""
import os, sys, json
import numpy as np
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf
spec = json.loads(sys.argv[1]); d = sys.argv[2]
os.makedirs(d, exist_ok=True)
rng = np.random.default_rng(0)
names = [n for n, _ in spec]
tensors = [tf.constant(np.int64(1000)) if not s else
           tf.constant(rng.standard_normal(s, dtype=np.float32) * 0.01) for n, s in spec]
tf.raw_ops.SaveV2(prefix=os.path.join(d, "vgg_16.v2.ckpt"), tensor_names=names,
                  shape_and_slices=[""] * len(names), tensors=tensors)
tf.raw_ops.SaveSlices(filename=os.path.join(d, "vgg_16.v1.ckpt"), tensor_names=names,
                      shapes_and_slices=[""] * len(names), data=tensors)
"""

READ = r"""
import os, resource, sys, time, json
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
which, path = sys.argv[1], sys.argv[2]
if which == "tf":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    load = tf.train.load_checkpoint
else:
    import pyconv
    from pyconv import train
    load = train.load_checkpoint
import numpy as np
before = rss()
peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t0 = time.perf_counter()
if which == "pyconv-store":       # VariableStore.load: every value kept as pending
    store = pyconv.VariableStore()
    store.load(path)
    kept = [store._vars[n]._value for n in store.unused_values()]
else:
    reader = load(path)
    kept = [np.asarray(reader.get_tensor(n)) for n in sorted(reader.get_variable_to_shape_map())]
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
tensor_bytes = sum(a.nbytes for a in kept)
print(json.dumps({"seconds": seconds, "rss_before": before, "peak_before": peak_before,
                  "peak": peak, "tensor_bytes": tensor_bytes}))
"""


def checkpoint_paths(d):
    v2 = os.path.join(d, "vgg_16.v2.ckpt")
    return {"V2": v2, "V1": os.path.join(d, "vgg_16.v1.ckpt")}


def files_of(path):
    d = os.path.dirname(path)
    if not os.path.isdir(d):
        return []
    return [os.path.join(d, f) for f in os.listdir(d) if f.startswith(os.path.basename(path))]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default="/tmp/pyconv_bench_ckpt")
    ap.add_argument("--tf-python", default="/work/venvs/tfextra/bin/python")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    paths = checkpoint_paths(args.dir)
    if not all(files_of(p) for p in paths.values()):
        print(f"writing VGG-16-sized checkpoints with TensorFlow into {args.dir} ...",
              flush=True)
        subprocess.run([args.tf_python, "-c", WRITE, json.dumps(VGG16), args.dir], check=True)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_ENABLE_ONEDNN_OPTS="0")
    pythons = {"pyconv": sys.executable, "pyconv-store": sys.executable, "tf": args.tf_python}
    runs = {(fmt, who): [] for fmt in paths for who in pythons}
    def warm(path):
        # into the page cache right before each run: on a shared machine other
        # processes evict it, and whichever reader ran first would pay the disk
        for f in files_of(path):
            with open(f, "rb") as fh:
                while fh.read(1 << 24):
                    pass

    for rep in range(args.repeat):
        for fmt, path in paths.items():
            order = list(pythons.items())
            for who, python in (order if rep % 2 == 0 else order[::-1]):
                warm(path)
                out = subprocess.run([python, "-c", READ, who, path], env=env, check=True,
                                     capture_output=True, text=True).stdout
                runs[fmt, who].append(json.loads(out.strip().splitlines()[-1]))
    size = {fmt: sum(os.path.getsize(f) for f in files_of(p)) for fmt, p in paths.items()}
    rows = []
    for fmt in paths:
        med = {}
        for who in pythons:
            r = runs[fmt, who]
            secs = statistics.median(x["seconds"] for x in r)
            best = min(x["seconds"] for x in r)
            extra = statistics.median(max(x["peak"], x["peak_before"]) - x["rss_before"]
                                      - x["tensor_bytes"] for x in r)
            med[who] = (secs, extra, best)
        for who in pythons:
            secs, extra, best = med[who]
            rows.append({"format": fmt, "reader": who, "checkpoint_bytes": size[fmt],
                         "seconds": secs, "best_seconds": best,
                         "best_vs_tf": best / med["tf"][2], "extra_rss_bytes": extra,
                         "extra_rss_pct_of_checkpoint": 100 * extra / size[fmt],
                         "time_vs_tf": secs / med["tf"][0]})
    print(f"\nVGG-16-sized checkpoint: {len(VGG16)} tensors; median of {args.repeat} fresh "
          "processes each; files in the page cache")
    print(f"{'format':6} {'reader':12} {'size MB':>8} {'median s':>9} {'vs TF':>6} "
          f"{'best s':>7} {'vs TF':>6} {'extra RSS MB':>13} {'% of ckpt':>10}")
    for r in rows:
        print(f"{r['format']:6} {r['reader']:12} {r['checkpoint_bytes'] / 1e6:8.1f} "
              f"{r['seconds']:9.3f} {r['time_vs_tf']:6.2f} {r['best_seconds']:7.3f} "
              f"{r['best_vs_tf']:6.2f} {r['extra_rss_bytes'] / 1e6:13.1f} "
              f"{r['extra_rss_pct_of_checkpoint']:9.1f}%")
    result = {"rows": rows, "runs": {f"{f}/{w}": v for (f, w), v in runs.items()}}
    print(json.dumps(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
