"""Times pyconv.nn.conv2d on rows of the shared layer suite and prints GFLOP/s.

A developer's measuring stick for kernel and operator tuning (the benchmark
against other frameworks is ``python -m pyconv.bench``)::

    python tools/time_layers.py [--batch 8] [--threads 1,2] [--isa avx512]
        [--filter 3x3|1x1|all|NAME-substring] [--dtype float32] [--peak GFLOPS]

``--filter 3x3`` (the default) is every 3x3 layer of VGG-16 and ResNet-50.
GFLOP/s = 2 N OH OW Cout KH KW Cin / time, best of the repetitions within
``--budget`` seconds; ``%pk`` divides by the measured one-thread FMA peak
(``pyconv._conv.fma_peak_gflops``) times the thread count.
"""

import argparse
import csv
import os
import time

import numpy as np

import pyconv
from pyconv import _conv

HERE = os.path.dirname(os.path.abspath(__file__))
LAYERS_CSV = os.environ.get("PYCONV_LAYERS_CSV") or next(
    (p for p in (os.path.join(HERE, "..", "..", "shared", "bench", "layers.csv"),
                 "/work/shared/bench/layers.csv") if os.path.exists(p)), "layers.csv")


def layers(selection):
    with open(LAYERS_CSV) as f:
        for row in csv.DictReader(f):
            kh, kw = int(row["kh"]), int(row["kw"])
            name = f"{row['suite']}/{row['name']}"
            if selection == "3x3":
                if (kh, kw) != (3, 3) or row["suite"] not in ("vgg_16", "resnet_v1_50"):
                    continue
            elif selection == "1x1":
                if (kh, kw) != (1, 1):
                    continue
            elif selection != "all" and selection not in name:
                continue
            yield name, row


def best_time(fn, budget, min_reps=3):
    fn()  # warm up: threads started, pages touched
    best, reps = float("inf"), 0
    stop = time.perf_counter() + budget
    while reps < min_reps or time.perf_counter() < stop:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        reps += 1
    return best


def padding_of(row):
    """SAME/VALID as given; conv2d_same as TF-Slim's explicit pads (stride > 1)."""
    pad, k, s, rate = row["padding"], int(row["kh"]), int(row["stride"]), int(row["rate"])
    if pad != "conv2d_same":
        return pad
    if s == 1:
        return "SAME"
    total = (k - 1) * rate
    return [(total // 2, total - total // 2)] * 2


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--isa", default=None, help="force scalar, avx2 or avx512")
    ap.add_argument("--filter", default="3x3")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--budget", type=float, default=0.6, help="seconds per measurement")
    ap.add_argument("--peak", type=float, default=None, help="GFLOP/s per thread (else measured)")
    args = ap.parse_args()
    if args.isa:
        _conv.set_isa(args.isa)
    peak = args.peak or _conv.fma_peak_gflops()
    threads = [int(t) for t in args.threads.split(",")]
    print(f"isa={_conv.isa()} dtype={args.dtype} batch={args.batch} "
          f"peak/thread={peak:.1f} GFLOP/s")
    print(f"{'layer':45s}" + "".join(f"{f'{t}T GF/s':>11s}{'%pk':>6s}" for t in threads))
    rng = np.random.default_rng(0)
    for name, row in layers(args.filter):
        h, w, cin, cout = (int(row[k]) for k in ("h", "w", "cin", "cout"))
        kh, kw, stride, rate = (int(row[k]) for k in ("kh", "kw", "stride", "rate"))
        x = rng.standard_normal((args.batch, h, w, cin)).astype(args.dtype)
        filters = rng.standard_normal((kh, kw, cin, cout)).astype(args.dtype)
        pad = padding_of(row)

        def call(x=x, filters=filters, stride=stride, pad=pad, rate=rate):
            return pyconv.nn.conv2d(x, filters, stride, pad, dilations=rate)

        _, oh, ow, _ = call().shape
        flops = 2.0 * args.batch * oh * ow * cout * kh * kw * cin
        line = f"{name:45s}"
        for t in threads:
            pyconv.set_num_threads(t)
            gflops = flops / best_time(call, args.budget) / 1e9
            line += f"{gflops:11.1f}{100 * gflops / (peak * t):5.0f}%"
        print(line, flush=True)


if __name__ == "__main__":
    main()
