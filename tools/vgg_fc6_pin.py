#!/usr/bin/env python3
"""VGG-16 at batch 1: fc6 (7x7x512x4096, 411 MB of weights) and the whole forward,
with the slim layers' weights pinned in the weight cache (today's code) and
without (``Variable._pinned`` replaced by the plain value: the size-limited LRU
cache alone, as before). Median of ``--repeat`` calls each::

    python tools/vgg_fc6_pin.py --repeat 7
"""

import argparse
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.dirname(
    __import__("os").path.abspath(__file__))))

import pyconv  # noqa: E402
from pyconv import _conv, variables  # noqa: E402
from pyconv.nets import nets_factory  # noqa: E402


def median_ms(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def run(repeat):
    fn = nets_factory.get_network_fn("vgg_16", 1000)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)
    with pyconv.VariableStore(seed=0):
        fn(x)
        w = pyconv.get_variables_by_name("vgg_16/fc6/weights")[0]
        b = pyconv.get_variables_by_name("vgg_16/fc6/biases")[0]
        x6 = np.random.default_rng(1).uniform(0, 1, (1, 7, 7, 512)).astype(np.float32)
        fc6 = median_ms(lambda: pyconv.nn.conv2d(x6, w._pinned(), 1, "VALID", bias=b.value,
                                                 activation="relu"), repeat)
        whole = median_ms(lambda: fn(x), repeat)
    return fc6, whole


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args(argv)
    print(f"{pyconv.get_num_threads()} threads, {_conv.isa()}, weight cache limit "
          f"{pyconv.set_weight_cache_limit(128 << 20) >> 20} MiB")
    pinned = run(args.repeat)
    pyconv.clear_weight_cache()
    keep = variables.Variable._pinned
    variables.Variable._pinned = lambda self: self._value
    try:
        lru = run(args.repeat)
    finally:
        variables.Variable._pinned = keep
    print(f"{'':>14} {'fc6 ms':>8} {'VGG-16 ms':>10}")
    print(f"{'LRU only':>14} {lru[0]:8.1f} {lru[1]:10.1f}")
    print(f"{'pinned':>14} {pinned[0]:8.1f} {pinned[1]:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
