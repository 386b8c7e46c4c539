"""pyconv: TF-Slim's conv2d family for NumPy arrays, computed by a C extension.

``import pyconv as slim`` gives slim's layers (``conv2d``, ``conv2d_same``,
``subsample``, pools, ``batch_norm``), variables, scopes and ``arg_scope``;
``pyconv.nn`` mirrors ``tf.nn``; ``pyconv.conv_output_size`` and friends
explain padding. See README.md.
"""

import os as _os

from . import _conv, nn
from .geometry import *  # noqa: F401,F403
from .geometry import __all__ as _geometry_all

__version__ = "0.1.0"

_layer_modules = ("activations", "initializers", "regularizers", "arg_scope", "variables",
                  "updates", "layers", "core_layers")
__all__ = list(_geometry_all) + ["nn", "set_num_threads", "get_num_threads",
                                 "set_output_cache_limit", "clear_output_cache",
                                 "set_weight_cache_limit", "clear_weight_cache"]


def _import_layer_modules():
    import importlib

    for name in _layer_modules:
        try:
            mod = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:  # pragma: no cover - during development only
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        for public in mod.__all__:
            globals()[public] = getattr(mod, public)
        __all__.extend(mod.__all__)


def set_num_threads(n):
    """Use ``n`` threads (1..256) for every following convolution.

    The output is bit-identical for every thread count.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, got {n!r}")
    _conv.set_num_threads(n)


def get_num_threads():
    """The number of threads convolutions use."""
    return _conv.get_num_threads()


# The largest cache limit: the C side keeps byte counts in size_t, and no
# machine has 2**63 bytes. A larger value is an error (naming the argument or
# the environment variable), never an OverflowError.
_MAX_CACHE_BYTES = 2**63 - 1


def _cache_limit(name, nbytes):
    if isinstance(nbytes, bool) or not isinstance(nbytes, int):
        raise TypeError(f"{name}: nbytes must be an int, got {nbytes!r}")
    if not 0 <= nbytes <= _MAX_CACHE_BYTES:
        raise ValueError(f"{name}: nbytes must be between 0 and 2**63 - 1 "
                         f"({_MAX_CACHE_BYTES}), got {nbytes}")
    return getattr(_conv, name)(nbytes)


def set_output_cache_limit(nbytes):
    """Keep up to ``nbytes`` of freed output memory (blocks of 1 MiB and more,
    outputs and the convolutions' indirection buffers) for reuse; returns the
    previous limit. 0 turns the cache off.

    A model called in a loop then reuses its outputs' memory instead of having
    the system map and zero fresh pages for every large output, which can cost
    as much as the convolution. Default 512 MiB, or ``PYCONV_OUTPUT_CACHE_MB``.
    ``nbytes`` must be between 0 and ``2**63 - 1`` (a ``ValueError`` otherwise;
    any limit above the memory of the machine means "no limit").
    """
    return _cache_limit("set_output_cache_limit", nbytes)


def clear_output_cache():
    """Return the freed output memory pyconv keeps for reuse to the system."""
    _conv.clear_output_cache()


def set_weight_cache_limit(nbytes):
    """Keep up to ``nbytes`` of packed weights between calls; returns the previous
    limit. 0 turns the cache off.

    Every convolution first copies its filters into the layout its kernels
    read ("packing"). With the cache, a later call with the same filter and
    bias arrays checks them, read-only, against the kept packing and packs
    again only if a byte changed: results never depend on the cache, and
    filters may be changed in place between calls. The least recently used
    packings are freed first. The filters of slim layers (``conv2d``,
    ``separable_conv2d`` and those built on them) are kept outside this
    limit for as long as their variable holds its array, so a filter larger
    than the limit (VGG-16's fc6, 411 MB) is not packed again at every call;
    still checked byte for byte at each reuse (``assign`` and in-place
    writes repack at the next call). Default 128 MiB (a whole ResNet-50), or
    ``PYCONV_WEIGHT_CACHE_MB``. ``nbytes`` must be between 0 and ``2**63 - 1``
    (a ``ValueError`` otherwise).
    """
    return _cache_limit("set_weight_cache_limit", nbytes)


def clear_weight_cache():
    """Free the packed weights pyconv keeps between calls (those of slim layers'
    variables too: they are packed again at their next call)."""
    _conv.clear_weight_cache()


def _default_cache_limits():
    """The cache limits from the environment. A value that is not an integer
    between 0 and ``(2**63 - 1) >> 20`` MiB is a ``ValueError`` naming the
    variable when pyconv is imported, like a bad ``PYCONV_NUM_THREADS`` or
    ``PYCONV_ISA``: a setting that is silently ignored is worse than one that
    stops the program before it runs with the wrong memory budget."""
    for env_name, setter in (("PYCONV_OUTPUT_CACHE_MB", _conv.set_output_cache_limit),
                             ("PYCONV_WEIGHT_CACHE_MB", _conv.set_weight_cache_limit)):
        env = _os.environ.get(env_name, "").strip()
        if not env:
            continue
        try:
            mb = int(env)
        except ValueError:
            raise ValueError(f"{env_name} must be a non-negative integer, got {env!r}") from None
        if not 0 <= mb <= _MAX_CACHE_BYTES >> 20:
            raise ValueError(f"{env_name} must be between 0 and {_MAX_CACHE_BYTES >> 20} "
                             f"(MiB), got {mb}")
        setter(mb << 20)


def _default_threads():
    env = _os.environ.get("PYCONV_NUM_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(
                f"PYCONV_NUM_THREADS must be a positive integer, got {env!r}"
            ) from None
        if not 1 <= n <= 256:
            raise ValueError(f"PYCONV_NUM_THREADS must be between 1 and 256, got {n}")
        return n
    try:
        return max(1, min(256, len(_os.sched_getaffinity(0))))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return max(1, min(256, _os.cpu_count() or 1))


def _default_isa():
    env = _os.environ.get("PYCONV_ISA", "").strip().lower()
    if env:
        try:
            _conv.set_isa(env)
        except ValueError:
            raise ValueError(
                f"PYCONV_ISA={env!r} is not an instruction set this CPU runs; choose one of "
                f"{', '.join(_conv.available_isas())}"
            ) from None


# ---- convolution algorithm (Winograd F(4x4, 3x3) / F(2x2, 3x3) for float32 3x3 stride-1)
_ALGORITHMS = ("direct", "auto", "winograd", "winograd_f2x2")


def set_algorithm(algorithm):
    """Choose how float32 3x3 stride-1 convolutions are computed.

    Parameters
    ----------
    algorithm : {'direct', 'auto', 'winograd', 'winograd_f2x2'}
        ``'direct'``: always the direct (igemm) convolution. ``'auto'`` (the
        default): Winograd F(2x2, 3x3) where it was measured faster: at
        least 64 input and 64 output channels and 49 output tiles of 2 x 2
        whose padding wastes at most 15% (the rule and its measurements are
        in csrc/module.c's ``wino_auto``). Its error is no larger than the
        direct path's (max|d| / max(1, max|y|) measured 0.3e-6..0.4e-6
        against 0.9e-6..1.8e-6 for 64-2048 input channels), but its bits
        are not the direct path's. F(4x4, 3x3) (1.5e-6..2.2e-6) is never
        chosen by 'auto': within each layer's tolerance, it breaks the
        training-mode net fixtures. ``'winograd'`` / ``'winograd_f2x2'``:
        F(4x4, 3x3) / F(2x2, 3x3) wherever it applies (float32, 3x3 kernel,
        strides and dilations 1, no groups), for tests and measurements.
        Inputs or weights holding NaN or Inf always use the direct path;
        float64 always does. Every choice gives the same bits for every
        thread count and instruction set.

    Returns
    -------
    str
        The previous algorithm.
    """
    if not isinstance(algorithm, str) or algorithm not in _ALGORITHMS:
        raise ValueError(f"algorithm must be one of {', '.join(map(repr, _ALGORITHMS))}, "
                         f"got {algorithm!r}")
    return _conv.set_algorithm(algorithm)


def get_algorithm():
    """The algorithm set by `set_algorithm` (or ``PYCONV_ALGORITHM``)."""
    return _conv.get_algorithm()


def _default_algorithm():
    env = _os.environ.get("PYCONV_ALGORITHM", "").strip().lower()
    if env:
        if env not in _ALGORITHMS:
            raise ValueError(f"PYCONV_ALGORITHM must be one of {', '.join(_ALGORITHMS)}, "
                             f"got {env!r}")
        _conv.set_algorithm(env)


__all__ += ["set_algorithm", "get_algorithm"]


_conv.set_num_threads(_default_threads())
_default_cache_limits()
_default_isa()
_default_algorithm()
_import_layer_modules()

# slim's tf_slim.layers.utils (collect_named_outputs, last_dimension, ...)
from . import utils  # noqa: E402

__all__.append("utils")

# TensorFlow checkpoints: pyconv.train mirrors tf.train (read V1/V2, write V2);
# slim's assign_from_checkpoint and assign_from_checkpoint_fn at the top level.
from . import _restore, train  # noqa: E402

for _name in _restore.__all__:
    globals()[_name] = getattr(_restore, _name)
__all__ += ["train", *_restore.__all__]

# Notebooks: summary tables of nets and stores; slim's model_analyzer.
from . import model_analyzer  # noqa: E402
from ._summary import Summary, summary  # noqa: E402

__all__ += ["Summary", "model_analyzer", "summary"]
