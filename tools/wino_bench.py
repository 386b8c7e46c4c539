"""Direct vs Winograd on the 3x3 stride-1 layers of ResNet-50 and VGG-16, in one process.

    python tools/wino_bench.py [--batch 1,8] [--threads 1,2] [--budget 0.6]
        [--algos direct,winograd] [--filter NAME-substring] [--isa avx512]

Every algorithm (``pyconv.set_algorithm``) runs on the same arrays, calls
interleaved, best time of each within ``--budget`` seconds per row; the
transformed weights are cached (a warm-up call fills the cache, as a model
called in a loop does). GFLOP/s-equivalent = the direct FLOPs
2 N OH OW Cout 9 Cin / time, for every algorithm, so the columns compare
times; ``x`` is the speed over direct's.
"""

import argparse
import time

import numpy as np

import pyconv
from pyconv import _conv

LAYERS = [  # name, h, w, cin, cout
    ("resnet_v1_50/block1/conv2", 56, 56, 64, 64),
    ("resnet_v1_50/block2/conv2", 28, 28, 128, 128),
    ("resnet_v1_50/block3/conv2", 14, 14, 256, 256),
    ("resnet_v1_50/block4/conv2", 7, 7, 512, 512),
    ("vgg_16/conv1/conv1_2", 224, 224, 64, 64),
    ("vgg_16/conv2/conv2_2", 112, 112, 128, 128),
    ("vgg_16/conv3/conv3_2", 56, 56, 256, 256),
    ("vgg_16/conv4/conv4_2", 28, 28, 512, 512),
    ("vgg_16/conv5/conv5_2", 14, 14, 512, 512),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", default="1,8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--budget", type=float, default=0.6)
    ap.add_argument("--algos", default="direct,winograd")
    ap.add_argument("--filter", default="")
    ap.add_argument("--isa", default="")
    a = ap.parse_args()
    if a.isa:
        _conv.set_isa(a.isa)
    algos = a.algos.split(",")
    peak = _conv.fma_peak_gflops()
    print(f"isa {_conv.isa()}, one-thread FMA peak {peak:.1f} GFLOP/s")
    print(f"{'layer':28s} {'N':>2s} {'thr':>3s} " +
          " ".join(f"{al:>10s}" for al in algos) + " " +
          " ".join(f"{'x ' + al:>12s}" for al in algos[1:]))
    rng = np.random.default_rng(0)
    before = pyconv.get_algorithm()
    try:
        for name, h, w, ci, co in LAYERS:
            if a.filter not in name:
                continue
            k = (rng.standard_normal((3, 3, ci, co)) / np.sqrt(9 * ci)).astype(np.float32)
            bias = rng.standard_normal(co).astype(np.float32)
            for n in map(int, a.batch.split(",")):
                x = np.maximum(rng.standard_normal((n, h, w, ci)), 0).astype(np.float32)
                flops = 2.0 * n * h * w * co * 9 * ci
                for th in map(int, a.threads.split(",")):
                    pyconv.set_num_threads(th)
                    best = {}
                    for al in algos:  # warm-up: threads, pages, weight caches
                        pyconv.set_algorithm(al)
                        _conv.conv2d(x, k, bias, 1, 1, 1, 1, 1, 1, 1, 1, 1)
                        best[al] = float("inf")
                    stop = time.perf_counter() + a.budget
                    reps = 0
                    while reps < 3 or time.perf_counter() < stop:
                        for al in algos:
                            pyconv.set_algorithm(al)
                            t0 = time.perf_counter()
                            _conv.conv2d(x, k, bias, 1, 1, 1, 1, 1, 1, 1, 1, 1)
                            best[al] = min(best[al], time.perf_counter() - t0)
                        reps += 1
                    g = {al: flops / best[al] / 1e9 for al in algos}
                    print(f"{name:28s} {n:2d} {th:3d} " +
                          " ".join(f"{g[al]:10.1f}" for al in algos) + " " +
                          " ".join(f"{g[al] / g[algos[0]]:12.2f}" for al in algos[1:]),
                          flush=True)
    finally:
        pyconv.set_algorithm(before)


if __name__ == "__main__":
    main()
