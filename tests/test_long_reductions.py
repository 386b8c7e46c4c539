"""Long reductions: the memory estimate of the packed filters, and blockwise sums.

Each output is a sum of taps x input channels terms. The kernels pack the
filters for their tile width (4 to 32 columns), so the estimate that refuses
calls before allocating must follow that packing (not count out_c + 64
columns: a 1x1 convolution with 150,000,000 input channels and one output
was refused as needing 37.4 GiB while it runs in 6.2 GiB). And a single
float32 accumulator stops growing once the terms fall below half its ulp (a
sum of 2**24 + 2**22 ones gave 2**24): the kernels sum more than
PYCONV_SUM_BLOCK (4096) terms in blocks, in one fixed order
(csrc/ukernels/igemm_blocked.inc).
"""

import tracemalloc

import numpy as np
import pytest
from reference import conv2d_reference

import pyconv
from pyconv import _conv, _memory

nn = pyconv.nn
ISAS = _conv.available_isas()
SUM_BLOCK = 4096


@pytest.fixture
def restore():
    isa, threads = _conv.isa(), pyconv.get_num_threads()
    out_limit = pyconv.set_output_cache_limit(0)  # every block is allocated afresh
    w_limit = pyconv.set_weight_cache_limit(0)
    yield
    _conv.set_isa(isa)
    pyconv.set_num_threads(threads)
    pyconv.set_output_cache_limit(out_limit)
    pyconv.set_weight_cache_limit(w_limit)


def test_packed_filter_estimate_follows_the_tile_width(restore, monkeypatch):
    """(1, 1, 1, N) by (1, 1, N, 1), N = 2**23: the kernels pack one block of
    NR (<= 8 here) columns, 268 MB, where the estimate counted 65 columns
    (2.2 GB). With the machine's memory set to 1 GiB the call must run, and
    the estimate must cover what is allocated (tracemalloc sees pyconv's
    blocks) without exceeding it by more than the copies that may be made."""
    n = 2**23
    x = np.ones((1, 1, 1, n), np.float32)
    w = np.ones((1, 1, n, 1), np.float32)
    seen = {}
    real_check = _memory.check

    def spy(what, parts):
        seen.update(parts)
        real_check(what, parts)

    monkeypatch.setattr(_memory, "check", spy)
    monkeypatch.setattr(_memory, "_limit", 1 << 30)
    nn._conv_plans.clear()
    for isa in ISAS:
        _conv.set_isa(isa)
        nn._conv_plans.clear()
        seen.clear()
        tracemalloc.start()
        try:
            out = nn.conv2d(x, w, padding="VALID")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert out.shape == (1, 1, 1, 1)
        estimate = sum(seen.values())
        # may be copied but are not here: the input and the filters, 32 MiB each
        copies = seen["input copy"] + x.nbytes
        assert peak <= estimate <= peak + copies + (1 << 20), (isa, peak, seen)
        # NR <= 8 columns of n + 1 rows, rounded to 64 bytes, then the 64-byte
        # word saying whether the weights are finite (csrc/conv.c)
        assert seen["packed filters"] - w.nbytes <= 8 * (n + 1) * 4 + 128, (isa, seen)


@pytest.mark.parametrize("isa", ISAS)
def test_sum_of_more_than_2_to_the_24_ones_is_exact(isa, restore):
    """2**24 + 2**22 ones (a 1x1 convolution with that many input channels, 0.9
    GB of buffers): exactly 20971520 (a single accumulator stalled at
    16777216). Blocks of 4096 ones are exact, and so are their running sums."""
    n = 2**24 + 2**22
    _conv.set_isa(isa)
    x = np.ones((1, 1, 1, n), np.float32)
    w = np.ones((1, 1, n, 1), np.float32)
    out = nn.conv2d(x, w, padding="VALID")
    assert out[0, 0, 0, 0] == n


def test_blocked_sums_are_the_same_on_every_isa_and_thread_count(restore):
    """Sums longer than a block (3x3 taps x 600 channels = 5400 terms, plus
    1x9 windows whose tap rows are merged into one reduction of 5400): the
    same bits on every instruction set and thread count, merged or not, and
    within float32 rounding of the float64 reference."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 14, 13, 600)).astype(np.float32)
    cases = [((3, 3, 600, 20), "SAME", 1), ((1, 9, 600, 9), "VALID", 1),
             ((1, 9, 600, 9), "VALID", (1, 1))]
    for shape, padding, rate in cases:
        w = rng.standard_normal(shape).astype(np.float32)
        b = rng.standard_normal(shape[-1]).astype(np.float32)
        outs = []
        for isa in ISAS:
            _conv.set_isa(isa)
            for threads in (1, 2, 3):
                pyconv.set_num_threads(threads)
                outs.append(nn.conv2d(x, w, padding=padding, dilations=rate, bias=b))
        for out in outs[1:]:
            assert out.tobytes() == outs[0].tobytes(), shape
        kh, kw = shape[:2]
        pads = ((kh // 2, kh // 2), (kw // 2, kw // 2)) if padding == "SAME" else ((0, 0), (0, 0))
        ref = conv2d_reference(x, w, pads=pads, bias=b)
        scale = conv2d_reference(np.abs(x), np.abs(w), pads=pads, bias=np.abs(b))
        assert np.all(np.abs(outs[0] - ref) <= 2e-6 * scale + 1e-30), shape
    assert kh * kw * 600 > SUM_BLOCK


def test_long_random_reduction_is_close_to_float64(restore):
    """A 1x1 convolution over 2**21 channels of positive values: the blocked sum
    is within a few ulp of the float64 one; a single running float32 sum
    (computed here, in order, as the unblocked kernels did) is far off."""
    rng = np.random.default_rng(21)
    n = 2**21
    xs = rng.uniform(0.5, 1.5, n).astype(np.float32)
    ws = rng.uniform(0.5, 1.5, n).astype(np.float32)
    exact = float(np.dot(xs.astype(np.float64), ws.astype(np.float64)))
    out = float(nn.conv2d(xs.reshape(1, 1, 1, n), ws.reshape(1, 1, n, 1), padding="VALID")[0, 0, 0, 0])
    blocked_err = abs(out - exact) / exact
    # the running sum of float32 products, one by one (np.cumsum sums in order)
    running = float(np.cumsum((xs * ws).astype(np.float32), dtype=np.float32)[-1])
    running_err = abs(running - exact) / exact
    assert blocked_err < 1e-6, blocked_err
    assert running_err > 10 * blocked_err, (running_err, blocked_err)
