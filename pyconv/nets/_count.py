"""Counting what a net's forward pass spends in pyconv's C operators.

:func:`count_operators` wraps every function of ``pyconv._conv`` that runs
an operator with a timer and a multiply-add counter for as long as the
``with`` lasts (used by ``python -m pyconv nets`` and
``tools/net_overhead.py``). Not thread-safe: count one net at a time.
"""

import contextlib
import functools
import time

from .. import _conv

# the operators (arrays in, a new array out), with the multiply-adds per output
# element of the convolutions (taps of the filter); the others count no MACs
_OPERATORS = {
    "conv2d": lambda w: w.shape[0] * w.shape[1] * w.shape[2],
    "depthwise_conv2d": lambda w: w.shape[0] * w.shape[1],
    "pool2d": None,
    "eltwise": None,
}


class OperatorCounts:
    """Totals while counting: ``seconds`` (wall) in C operators, ``cpu_seconds``
    (the calling thread's CPU time in them), ``calls``, ``macs``."""

    __slots__ = ("calls", "cpu_seconds", "macs", "seconds")

    def __init__(self):
        self.reset()

    def reset(self):
        self.seconds, self.cpu_seconds, self.calls, self.macs = 0.0, 0.0, 0, 0


@contextlib.contextmanager
def count_operators():
    """Yields an :class:`OperatorCounts` that the wrapped operators update."""
    counts = OperatorCounts()
    saved = {}
    for name in dir(_conv):
        fn = getattr(_conv, name)
        if name not in _OPERATORS or not callable(fn):
            continue
        saved[name] = fn
        setattr(_conv, name, _wrap(fn, counts, _OPERATORS.get(name)))
    try:
        yield counts
    finally:
        for name, fn in saved.items():
            setattr(_conv, name, fn)


def _wrap(fn, counts, taps):
    @functools.wraps(fn)
    def counted(*args, **kwargs):
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            out = fn(*args, **kwargs)
        finally:
            counts.seconds += time.perf_counter() - t0
            counts.cpu_seconds += time.thread_time() - c0
            counts.calls += 1
        if taps is not None:  # (conv2d with a fused second output returns a pair)
            first = out[0] if type(out) is tuple else out
            counts.macs += int(getattr(first, "size", 0)) * taps(args[1])
        return out
    return counted
