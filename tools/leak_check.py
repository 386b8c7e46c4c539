"""Memory over many calls: the long run of tests/test_leaks.py.

    python tools/leak_check.py [CALLS] [--layers]

Runs the same mix of successful and raising calls as the test (the C
operator, pyconv.nn, pools, the memory check; with --layers the slim layers
with variable reuse) CALLS times (default 100,000) after a warm-up, with 2
threads, and prints malloc-in-use, RSS and tracemalloc before and after.
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import test_leaks

import pyconv


def main(argv):
    layers = "--layers" in argv
    args = [a for a in argv if not a.startswith("--")]
    calls = int(args[0]) if args else 100_000
    pyconv.set_num_threads(2)
    work = test_leaks.layer_workload if layers else test_leaks.workload
    start = time.perf_counter()
    done, before, after = test_leaks.measure(calls, work)
    seconds = time.perf_counter() - start
    print(f"{done:,} calls ({'layers' if layers else 'C operator, nn, pools'}; about half "
          f"raise) in {seconds:.1f} s, after a warm-up")
    print(f"{'meter':12s} {'before':>14s} {'after':>14s} {'growth':>12s} {'per call':>9s}")
    for meter in ("malloc", "rss", "tracemalloc"):
        b, a = before[meter], after[meter]
        if b is None or a is None:
            print(f"{meter:12s} {'n/a':>14s}")
            continue
        print(f"{meter:12s} {b:14,d} {a:14,d} {a - b:+12,d} {(a - b) / done:+9.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
