#!/usr/bin/env python3
"""How much of a whole net's forward pass is outside pyconv's C operators.

Builds a net with random weights under its arg scope (inference), warms it
up, then times ``--repeat`` forward passes while every function of
``pyconv._conv`` is wrapped with a timer. Prints, per batch size, the median
whole call, the C operators' share, and the rest (per-layer Python work plus
whatever arithmetic still runs in NumPy, e.g. reduce_mean). On a loaded
machine wall times swing with scheduling, so it also prints the calling
thread's CPU time outside the operators (the Python work proper) against the
best C time: ``Python % = Python CPU / (Python CPU + best C)``.
``--profile`` adds cProfile's top entries by own time for one call::

    python tools/net_overhead.py --net resnet_v1_50 --batch 1 8 --repeat 20 --profile

``--hot`` adds the Python work with warm caches: the same calls with every
operator replaced by a stub that returns the output it gave before (in call
order), so nothing but Python runs. Between real operators the same Python
takes two to three times as long (the operators evict its code and data from
the caches; more so at larger batches), so 'Python CPU ms' is that inflated
figure; the hot one changes only when the Python work does, whatever the load.
"""

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.dirname(
    __import__("os").path.abspath(__file__))))

import pyconv  # noqa: E402
from pyconv import _conv  # noqa: E402
from pyconv.nets import nets_factory  # noqa: E402
from pyconv.nets._count import _OPERATORS, count_operators  # noqa: E402


def hot_python(fn, x, repeat):
    """Median thread CPU seconds of ``fn(x)`` with the operators replaced by
    stubs returning their recorded outputs (see the module docstring)."""
    real = {name: getattr(_conv, name) for name in _OPERATORS if hasattr(_conv, name)}
    outputs = []

    def recording(op):
        def record(*args, **kwargs):
            out = op(*args, **kwargs)
            outputs.append(out)
            return out
        return record

    def replay(*args, **kwargs):
        out = outputs[position[0]]
        position[0] += 1
        return out

    position = [0]
    try:
        for name, op in real.items():
            setattr(_conv, name, recording(op))
        fn(x)
        for name in real:
            setattr(_conv, name, replay)
        times = []
        for _ in range(repeat):
            position[0] = 0
            c0 = time.thread_time()
            fn(x)
            times.append(time.thread_time() - c0)
    finally:
        for name, op in real.items():
            setattr(_conv, name, op)
    return float(np.median(times))


def measure(net, batch, repeat, profile, hot=False):
    fn = nets_factory.get_network_fn(net, 1000)
    size = fn.default_image_size
    x = np.random.default_rng(0).standard_normal((batch, size, size, 3)).astype(np.float32)
    with pyconv.VariableStore(seed=0):
        fn(x)
        for _ in range(3):
            fn(x)
        totals, c_times, python_cpu = [], [], []
        with count_operators() as counts:
            for _ in range(repeat):
                counts.reset()
                t0, c0 = time.perf_counter(), time.thread_time()
                fn(x)
                totals.append(time.perf_counter() - t0)
                c_times.append(counts.seconds)
                # the calling thread's CPU time outside the operators: the Python
                # work, not inflated when a loaded machine deschedules the process
                python_cpu.append(time.thread_time() - c0 - counts.cpu_seconds)
        report = None
        if profile:
            prof = cProfile.Profile()
            prof.enable()
            fn(x)
            prof.disable()
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(12)
            report = out.getvalue()
        hot_ms = hot_python(fn, x, repeat) * 1e3 if hot else None
    i = int(np.argsort(totals)[len(totals) // 2])
    total, c = totals[i], c_times[i]
    py = float(np.median(python_cpu))
    c_best = min(c_times)
    return {"net": net, "batch": batch, "size": size, "total_ms": total * 1e3,
            "c_ms": c * 1e3, "rest_ms": (total - c) * 1e3, "rest_share": (total - c) / total,
            "python_cpu_ms": py * 1e3, "c_best_ms": c_best * 1e3,
            "python_share": py / (py + c_best),
            "c_calls": counts.calls, "min_total_ms": min(totals) * 1e3,
            "median_total_ms": statistics.median(totals) * 1e3, "profile": report,
            "hot_python_ms": hot_ms}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--net", default="resnet_v1_50", choices=sorted(nets_factory.networks_map))
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--hot", action="store_true",
                   help="also the Python work with warm caches (operators stubbed)")
    args = p.parse_args(argv)
    print(f"{args.net}, {pyconv.get_num_threads()} threads, {_conv.isa()} kernels; "
          f"median of {args.repeat} calls")
    print(f"{'batch':>5} {'whole ms':>9} {'C ms':>9} {'rest ms':>8} {'rest %':>7} {'C calls':>8}"
          f" {'Python CPU ms':>14} {'best C ms':>10} {'Python %':>9}"
          + (f" {'hot Python ms':>14}" if args.hot else ""))
    for batch in args.batch:
        r = measure(args.net, batch, args.repeat, args.profile, args.hot)
        print(f"{batch:>5} {r['total_ms']:9.2f} {r['c_ms']:9.2f} {r['rest_ms']:8.2f} "
              f"{100 * r['rest_share']:6.1f}% {r['c_calls']:>8} {r['python_cpu_ms']:14.2f} "
              f"{r['c_best_ms']:10.2f} {100 * r['python_share']:8.1f}%"
              + (f" {r['hot_python_ms']:14.2f}" if args.hot else ""))
        if r["profile"]:
            print(r["profile"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
