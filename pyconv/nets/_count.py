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

# operators: arrays in, output array out; taps per output element from the filter
_OPERATORS = {
    "conv2d": lambda w: w.shape[0] * w.shape[1] * w.shape[2],
    "depthwise_conv2d": lambda w: w.shape[0] * w.shape[1],
}


class OperatorCounts:
    """Totals while counting: ``seconds`` in C operators, ``calls``, ``macs``."""

    __slots__ = ("calls", "macs", "seconds")

    def __init__(self):
        self.seconds = 0.0
        self.calls = 0
        self.macs = 0

    def reset(self):
        self.seconds, self.calls, self.macs = 0.0, 0, 0


@contextlib.contextmanager
def count_operators():
    """Yields an :class:`OperatorCounts` that the wrapped operators update."""
    counts = OperatorCounts()
    saved = {}
    for name in dir(_conv):
        fn = getattr(_conv, name)
        if name.startswith("_") or not callable(fn) or name not in _OPERATORS and not (
                name.endswith("conv2d") or name.endswith("pool2d")
                or name.startswith("batch_norm")):
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
        t0 = time.perf_counter()
        try:
            out = fn(*args, **kwargs)
        finally:
            counts.seconds += time.perf_counter() - t0
            counts.calls += 1
        if taps is not None:
            counts.macs += int(getattr(out, "size", 0)) * taps(args[1])
        return out
    return counted
