"""Refuse an operation whose buffers cannot fit in memory, before allocating any.

Linux overcommits memory: ``malloc`` of 20 GiB succeeds on a 24 GiB machine
even when another 20 GiB was promised a moment ago, and the kernel's OOM
killer ends the process once both are touched. NumPy's own ``MemoryError``
only fires for a single allocation larger than RAM plus swap. So the
operations that allocate several large buffers (``pyconv.nn.conv2d``'s
output, input copy, indirection buffer and packed weights; the pools' padded
copy and output) add up what they will need first and raise a
``MemoryError`` when the sum exceeds the memory this process may use: the
physical RAM, or the cgroup (container) limit when that is lower. Swap is
not counted: a convolution that only fits in swap would not finish anyway.
"""

import os

__all__ = ["check", "memory_limit"]

_limit = None  # bytes; computed once (tests may set it to simulate a small machine)


def _cgroup_limit():
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            return int(text)
    return None


def memory_limit():
    """Bytes this process may use: physical memory, or the cgroup limit if lower."""
    global _limit
    if _limit is None:
        limits = []
        try:
            limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
            pass
        cgroup = _cgroup_limit()
        if cgroup:
            limits.append(cgroup)
        _limit = min(limits) if limits else 1 << 62
    return _limit


def _gib(nbytes):
    return f"{nbytes / 2**30:.3g} GiB"


def check(what, parts):
    """Raise ``MemoryError`` if the buffers in ``parts`` (name -> bytes) exceed
    :func:`memory_limit`; ``what`` says which call and which arguments."""
    total = sum(parts.values())
    limit = memory_limit()
    if total > limit:
        detail = ", ".join(f"{name} {_gib(n)}" for name, n in parts.items() if n)
        raise MemoryError(
            f"{what} needs about {_gib(total)} of memory ({detail}), more than the "
            f"{_gib(limit)} this machine has: use a smaller input, batch, kernel or padding"
        )
