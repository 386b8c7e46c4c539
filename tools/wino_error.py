"""Error of each conv2d algorithm against the float64 reference, over input channels.

    PYTHONPATH=. python tools/wino_error.py [--cin 64,128,...,2048] [--seeds 3]

For float32 3x3 stride-1 SAME layers (14x14, batch 1, 64 outputs), inputs
ReLU(N(0, 1)) as after a ReLU layer, He-scaled weights N(0, 1/(9 cin)) and a
bias N(0, 0.1^2): the largest max|y - ref| / max(1, max|ref|) over the seeds
(the TF fixtures' fidelity measure, tolerance 1e-5 for float32), and the same
difference relative to sum |x| |w| (the rounding-error scale).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from reference import conv2d_reference, error_scale

import pyconv
from pyconv import _conv

PADS = ((1, 1), (1, 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cin", default="64,128,256,512,1024,2048")
    ap.add_argument("--cout", type=int, default=64)
    ap.add_argument("--hw", type=int, default=14)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--algos", default="direct,winograd,winograd_f2x2")
    a = ap.parse_args()
    algos = a.algos.split(",")
    print(f"isa {_conv.isa()}; max|d|/max(1,max|ref|)  (and max|d|/max sum|x||w|)")
    print(f"{'cin':>5s} " + " ".join(f"{al:>24s}" for al in algos))
    before = pyconv.get_algorithm()
    try:
        for ci in map(int, a.cin.split(",")):
            worst = {al: [0.0, 0.0] for al in algos}
            for seed in range(a.seeds):
                rng = np.random.default_rng(seed)
                x = np.maximum(rng.standard_normal((1, a.hw, a.hw, ci)), 0).astype(np.float32)
                k = (rng.standard_normal((3, 3, ci, a.cout)) / np.sqrt(9 * ci)).astype(np.float32)
                b = (0.1 * rng.standard_normal(a.cout)).astype(np.float32)
                ref = conv2d_reference(x, k, pads=PADS, bias=b)
                scale = error_scale(x, k, (1, 1), PADS, (1, 1)).max()
                for al in algos:
                    pyconv.set_algorithm(al)
                    d = np.abs(_conv.conv2d(x, k, b, 1, 1, 1, 1, 1, 1, 1, 1, 0) - ref).max()
                    worst[al][0] = max(worst[al][0], d / max(1.0, np.abs(ref).max()))
                    worst[al][1] = max(worst[al][1], d / scale)
            print(f"{ci:5d} " + " ".join(f"{worst[al][0]:10.2e} ({worst[al][1]:9.2e}) "
                                        for al in algos), flush=True)
    finally:
        pyconv.set_algorithm(before)


if __name__ == "__main__":
    main()
