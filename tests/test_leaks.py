"""No memory grows over many calls, including calls that raise.

Three meters, read after a warm-up and again after N more calls of a mix of
successful and failing calls (C operator, pyconv.nn, the layers with variable
reuse, pools, batch norm; errors raised in Python, in the C glue after it has
copied its arrays, and MemoryError from the memory check):
- ``malloc``: bytes in use by the C allocator (glibc ``mallinfo2``; every
  NumPy buffer, Python object and buffer of the operator comes from here) —
  exact, so the bound is tight;
- RSS (``/proc/self/statm``), the number the issue is about;
- ``tracemalloc``: Python-level allocations (NumPy reports its buffers too).
A leak of 100 bytes per call is 2 MB over 20,000 calls, above each bound
(50, 25 and 75 bytes per call). ``tools/leak_check.py`` runs the same mix 100,000 times and prints the
numbers.
"""

import ctypes
import gc
import os
import sys
import tracemalloc

import numpy as np
import pytest

import pyconv
import pyconv as slim
from pyconv import _conv

nn = pyconv.nn
PAGE = os.sysconf("SC_PAGE_SIZE")
UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")  # tools/sanitize.sh


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _mallinfo2():
    try:
        libc = ctypes.CDLL(None)
        fn = libc.mallinfo2
    except (OSError, AttributeError):  # not glibc >= 2.33
        return None
    fn.restype = _Mallinfo2
    return fn


_MALLINFO2 = _mallinfo2()


def malloc_in_use():
    """Bytes allocated through malloc and not freed (None where unknown)."""
    if _MALLINFO2 is None:
        return None
    info = _MALLINFO2()
    total = info.uordblks + info.hblkhd
    return total or None  # 0: an interposed allocator (ASan) that does not report


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


RNG = np.random.default_rng(7)
X = RNG.standard_normal((1, 8, 8, 4)).astype(np.float32)
X_NCHW = np.ascontiguousarray(X.transpose(0, 3, 1, 2))
X_F = np.asfortranarray(X)
X_BIG = RNG.standard_normal((1, 16, 16, 16)).astype(np.float32)  # uses the thread pool
W = RNG.standard_normal((3, 3, 4, 8)).astype(np.float32)
W_BIG = RNG.standard_normal((3, 3, 16, 8)).astype(np.float32)
B = RNG.standard_normal(8).astype(np.float32)
HUGE = np.broadcast_to(np.float32(0), (1, 2**20, 2**20, 4))


def _raises(call, exc):
    try:
        call()
    except exc:
        return
    raise AssertionError(f"{call} did not raise {exc.__name__}")


_round = [0]


def workload():
    """One round of calls, about half of which raise; returns how many."""
    _round[0] += 1
    nn.conv2d(X, W, bias=B, activation="relu")
    nn.conv2d(X_F, W.astype(np.float64), strides=2, padding="VALID")
    nn.conv2d(X_NCHW, W, data_format="NCHW", dilations=2)
    # raising: Python checks, the C glue after it copied its (non-contiguous)
    # arrays, the memory check
    _raises(lambda: nn.conv2d(X, W, padding="VAILD"), ValueError)
    _raises(lambda: nn.conv2d(X, W[:, :, :3]), ValueError)
    _raises(lambda: _conv.conv2d(X_F, W, np.zeros(5, np.float32), 0, 0, 0, 0, 1, 1, 1, 1, 0),
            ValueError)
    _raises(lambda: _conv.conv2d(X_F, W.astype(np.float64), None, 0, 0, 0, 0, 1, 1, 1, 1, 0),
            TypeError)
    _raises(lambda: nn.conv2d(HUGE, W), MemoryError)
    if _round[0] % 8:
        return 8
    # the slower ones: the thread pool, the pools
    nn.conv2d(X_BIG, W_BIG, padding="SAME")
    nn.max_pool2d(X, 3, 1, padding="SAME")
    nn.avg_pool2d(X_NCHW, 2, 2, data_format="NCHW")
    _raises(lambda: nn.avg_pool2d(X, 0, 1), ValueError)
    return 12


def layer_workload():
    """One round of layer calls reusing their variables, 2 of which raise."""
    _round[0] += 1
    with slim.variable_scope("net", reuse=slim.AUTO_REUSE):
        slim.conv2d(X, 8, 3, scope="c")
        slim.conv2d_same(X, 8, 3, 2, scope="s")
        _raises(lambda: slim.conv2d(X[:, :, :, :3], 8, 3, scope="c"), ValueError)
        _raises(lambda: slim.conv2d(X, 8, 3, padding="VAILD", scope="c"), ValueError)
        if _round[0] % 8:
            return 4
        slim.max_pool2d(X, 3, stride=1, padding="SAME")
        slim.batch_norm(X, scope="bn")
        slim.run_update_ops()
    return 6


def measure(calls, work=workload, warmup_calls=2400):
    """Runs ``work`` until ``calls`` calls are done after a warm-up; returns
    (calls, before, after) readings of each meter."""
    with slim.VariableStore(seed=0):
        done = 0
        while done < warmup_calls:
            done += work()
        gc.collect()
        tracemalloc.start()
        try:
            before = {"malloc": malloc_in_use(), "rss": rss(),
                      "tracemalloc": tracemalloc.get_traced_memory()[0]}
            done = 0
            while done < calls:
                done += work()
            gc.collect()
            after = {"malloc": malloc_in_use(), "rss": rss(),
                     "tracemalloc": tracemalloc.get_traced_memory()[0]}
        finally:
            tracemalloc.stop()
    return done, before, after


def check_flat(calls, before, after):
    growth = {k: (after[k] - before[k]) if before[k] is not None and after[k] is not None
              else None for k in before}
    report = ", ".join(f"{k} {v:+,} bytes ({v / calls:+.1f}/call)" for k, v in growth.items()
                       if v is not None)
    # A leak of 100 bytes per call exceeds every bound; the noise of the
    # allocator and the interpreter is under 100 kB over 20,000 calls (measured:
    # malloc +75..95 kB, RSS +0..100 kB, tracemalloc +22..25 kB), 10x below.
    if growth["malloc"] is not None:
        assert growth["malloc"] < 50 * calls, report
    assert growth["tracemalloc"] < 25 * calls, report
    if not UNDER_ASAN:  # ASan's quarantine keeps freed memory resident on purpose
        assert growth["rss"] < 75 * calls, report


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc/self/statm")


@linux_only
def test_memory_is_flat_over_20000_calls_including_raising_ones():
    threads = pyconv.get_num_threads()
    pyconv.set_num_threads(2)
    try:
        check_flat(*measure(20_000))
    finally:
        pyconv.set_num_threads(threads)


@linux_only
def test_layer_calls_with_reuse_keep_memory_flat():
    check_flat(*measure(10_000, layer_workload, warmup_calls=1200))
