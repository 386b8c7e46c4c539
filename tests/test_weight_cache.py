"""The packed-weight cache: a later call with the same filter and bias arrays
reuses their packing only if every byte still matches, so changing filters in
place between calls, reusing their memory for other shapes, or turning the
cache off never changes a result (checked against the float64 reference)."""

import os
import threading

import numpy as np
import pytest

import pyconv
from pyconv import _conv
from reference import conv2d_reference, error_scale

SAME_3x3 = ((1, 1), (1, 1))


def check(out, x, w, bias=None, pads=SAME_3x3):
    ref = conv2d_reference(x, w, (1, 1), pads)
    if bias is not None:
        ref = ref + bias
    with np.errstate(invalid="ignore"):
        scale = error_scale(x, w, (1, 1), pads, (1, 1)) + 1.0
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    finite = ~np.isnan(ref)
    err = np.max(np.abs(out.astype(np.float64) - ref)[finite] / scale[finite])
    assert err < 1e-5, err


@pytest.fixture
def cache_on():
    before = pyconv.set_weight_cache_limit(64 << 20)
    pyconv.clear_weight_cache()
    yield
    pyconv.set_weight_cache_limit(before)


@pytest.mark.parametrize("isa", _conv.available_isas())
@pytest.mark.parametrize("cout", [40, 64])  # a partial last channel block, and none
def test_in_place_changes_are_seen(cache_on, isa, cout):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 9, 9, 5)).astype(np.float32)
    w = rng.standard_normal((3, 3, 5, cout)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    old = _conv.isa()
    _conv.set_isa(isa)
    try:
        for threads in (1, 2):
            pyconv.set_num_threads(threads)
            check(pyconv.nn.conv2d(x, w, padding="SAME") + 0, x, w)
            assert _conv.weight_cache_bytes() > 0
            # each kind of change, each seen by the next call
            for change in ("first", "last", "middle", "all", "bias", "bias_last", "nan"):
                if change == "first":
                    w[0, 0, 0, 0] += 1
                elif change == "last":
                    w[-1, -1, -1, -1] -= 2
                elif change == "middle":
                    w[1, 2, 3, cout // 2] = 7.5
                elif change == "all":
                    w *= 0.5
                elif change == "bias":
                    b[0] += 3
                elif change == "bias_last":
                    b[-1] = -4
                else:
                    w[2, 0, 1, 3] = np.nan
                y = pyconv.nn.bias_add(pyconv.nn.conv2d(x, w, padding="SAME"), b)
                fused = _conv.conv2d(x, w, b, 1, 1, 1, 1, 1, 1, 1, 1, 0)
                check(fused, x, w, b)
                check(y, x, w, b)
                np.testing.assert_array_equal(fused, _conv.conv2d(x, w, b, 1, 1, 1, 1, 1, 1,
                                                                  1, 1, 0))
            w[2, 0, 1, 3] = 0.25
    finally:
        _conv.set_isa(old)
        pyconv.set_num_threads(os.cpu_count() or 1)


def test_same_memory_other_shapes(cache_on):
    """One buffer seen as filters of different shapes gets a packing per shape."""
    rng = np.random.default_rng(2)
    buf = rng.standard_normal(3 * 3 * 8 * 16).astype(np.float32)
    x8 = rng.standard_normal((1, 6, 6, 8)).astype(np.float32)
    x16 = rng.standard_normal((1, 6, 6, 16)).astype(np.float32)
    for _ in range(2):
        w_a = buf.reshape(3, 3, 8, 16)
        w_b = buf.reshape(3, 3, 16, 8)
        w_c = buf.reshape(1, 1, 8, 144)
        check(pyconv.nn.conv2d(x8, w_a, padding="SAME"), x8, w_a)
        check(pyconv.nn.conv2d(x16, w_b, padding="SAME"), x16, w_b)
        check(pyconv.nn.conv2d(x8, w_c, padding="SAME"), x8, w_c, pads=((0, 0), (0, 0)))
        buf[::7] += 1.0


def test_off_and_bounded(cache_on):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 5, 5, 32)).astype(np.float32)
    ws = [rng.standard_normal((3, 3, 32, 64)).astype(np.float32) for _ in range(12)]  # 72 KiB each
    pyconv.set_weight_cache_limit(256 << 10)
    for w in ws * 2:
        check(pyconv.nn.conv2d(x, w, padding="SAME"), x, w)
        assert 0 < _conv.weight_cache_bytes() <= 256 << 10
    assert pyconv.set_weight_cache_limit(0) == 256 << 10
    assert _conv.weight_cache_bytes() == 0
    for w in ws[:3]:
        check(pyconv.nn.conv2d(x, w, padding="SAME"), x, w)
        assert _conv.weight_cache_bytes() == 0
    pyconv.set_weight_cache_limit(1 << 20)
    pyconv.nn.conv2d(x, ws[0], padding="SAME")
    assert _conv.weight_cache_bytes() > 0
    pyconv.clear_weight_cache()
    assert _conv.weight_cache_bytes() == 0
    with pytest.raises(ValueError, match="nbytes"):
        pyconv.set_weight_cache_limit(-1)
    with pytest.raises(TypeError, match="nbytes"):
        pyconv.set_weight_cache_limit("1")


def test_threads_sharing_filters(cache_on):
    """Python threads running the same filters at once (one uses the cached
    packing, the others private ones) all get the serial result."""
    rng = np.random.default_rng(4)
    w = rng.standard_normal((3, 3, 16, 48)).astype(np.float32)
    xs = [rng.standard_normal((2, 12, 12, 16)).astype(np.float32) for _ in range(6)]
    pyconv.set_num_threads(1)
    expected = [pyconv.nn.conv2d(x, w, padding="SAME") for x in xs]
    errors = []

    def work(i):
        try:
            for _ in range(30):
                np.testing.assert_array_equal(pyconv.nn.conv2d(xs[i], w, padding="SAME"),
                                              expected[i])
        except AssertionError as exc:  # pragma: no cover - reported below
            errors.append(exc)

    pyconv.set_num_threads(2)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pyconv.set_num_threads(os.cpu_count() or 1)
    assert not errors


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_child_repacks_changed_filters(cache_on):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 7, 7, 4)).astype(np.float32)
    w = rng.standard_normal((3, 3, 4, 24)).astype(np.float32)
    pyconv.nn.conv2d(x, w, padding="SAME")
    r, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        ok = b"0"
        try:
            w[0, 0, 0, :] = 3.0
            check(pyconv.nn.conv2d(x, w, padding="SAME"), x, w)
            ok = b"1"
        finally:
            os.write(wfd, ok)
            os._exit(0)
    os.close(wfd)
    got = os.read(r, 1)
    os.close(r)
    os.waitpid(pid, 0)
    assert got == b"1"
    check(pyconv.nn.conv2d(x, w, padding="SAME"), x, w)  # the parent's w is unchanged
