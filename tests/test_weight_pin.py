"""A slim layer's weights keep their packing while their Variable holds the
array (pyconv.variables.Variable._pinned): outside the weight cache's byte
limit, so a filter bigger than the limit (VGG's fc6) is not repacked at each
call. When nothing else holds the array (or a view of it) the pin is
trusted: the array becomes read-only and its packing is checked once, then
reused unchecked until ``assign`` (or a load) lets go of the pin. Otherwise
every reuse is checked byte for byte. ``assign``, loads, a replaced value,
in-place writes where they are allowed, and a writeable flag flipped back
give the new weights' results on every ISA (checked against the float64
reference)."""

import gc

import numpy as np
import pytest

import pyconv
from pyconv import _conv
from reference import conv2d_reference, error_scale

LIMIT = 1 << 16  # 64 KiB: the layer's packed weights (~150 KiB) do not fit


@pytest.fixture
def small_cache():
    before = pyconv.set_weight_cache_limit(LIMIT)
    pyconv.clear_weight_cache()
    yield
    pyconv.set_weight_cache_limit(before)
    pyconv.clear_weight_cache()


def check(out, x, w, b):
    ref = conv2d_reference(x, w, (1, 1), ((1, 1), (1, 1))) + b
    scale = error_scale(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1)) + 1.0
    err = np.max(np.abs(out.astype(np.float64) - ref) / scale)
    assert err < 1e-5, err


@pytest.mark.parametrize("isa", _conv.available_isas())
def test_pinned_weights_stay_packed_and_follow_every_change(small_cache, isa):
    old = _conv.isa()
    _conv.set_isa(isa)
    try:
        rng = np.random.default_rng(1)
        x = rng.standard_normal((1, 6, 6, 96)).astype(np.float32)
        with pyconv.VariableStore(seed=3) as store:
            calls = []

            def layer():
                calls.append(1)
                return pyconv.conv2d(x, 48, [3, 3], activation_fn=None, scope="c",
                                     reuse=len(calls) > 1)
            out = layer()
            var = pyconv.get_variables_by_name("c/weights")[0]
            bvar = pyconv.get_variables_by_name("c/biases")[0]
            # nothing else held the arrays: trusted pins, read-only values
            assert var._pin[2] and bvar._pin[2]
            assert not var.value.flags.writeable and not bvar.value.flags.writeable
            w = var.value
            b = bvar.value
            check(out, x, w, b)
            # kept although larger than the limit (an LRU entry would be dropped)
            assert _conv.weight_cache_bytes() > LIMIT
            check(layer(), x, w, b)
            check(layer(), x, w, b)  # reused unchecked
            with pytest.raises(ValueError, match="read-only"):
                var.value[2, 1, 50, 7] += 3.0
            with pytest.raises(ValueError, match="read-only"):
                bvar.value[5] = 2.5
            # assign lets go of the pin, then writes in place: the next call
            # checks the packing again (the test holds `w`: now untrusted)
            new = rng.standard_normal(w.shape).astype(np.float32) * 0.1
            var.assign(new)
            assert var.value is w
            check(layer(), x, new, b)
            assert not var._pin[2] and var.value.flags.writeable
            # held elsewhere, so writeable: in-place writes are seen
            var.value[2, 1, 50, 7] += 3.0
            check(layer(), x, var.value, b)
            view = var.value[2]  # a view keeps it untrusted too
            del w
            check(layer(), x, var.value, b)
            assert not var._pin[2]
            view[1, 50, 8] -= 2.0
            check(layer(), x, var.value, b)
            del view
            # the last outside reference gone: trusted again at the next call
            out = layer()
            assert var._pin[2] and not var.value.flags.writeable
            check(out, x, var.value, b)
            # the bias assigned (the trusted pin of the weights stays)
            del b
            bvar.assign(np.full(48, 0.5, np.float32))
            check(layer(), x, var.value, bvar.value)
            assert bvar._pin[2] and var._pin[2]
            check(layer(), x, var.value, bvar.value)
            # a user who flips the flag back and writes: that call checks bytes
            var.value.flags.writeable = True
            var.value[0, 0, 0, 0] = 7.0
            check(layer(), x, var.value, bvar.value)
            b = bvar.value
            # a value replaced by another array (as a checkpoint restore may do)
            var._value = np.array(var.value * -1.0, order="C")
            check(layer(), x, var.value, b)
            assert var._pin[0] is var._value
            # clearing the cache drops pinned blocks too; the next call repacks
            pyconv.clear_weight_cache()
            assert _conv.weight_cache_bytes() == 0
            check(layer(), x, var.value, b)
            assert _conv.weight_cache_bytes() > LIMIT
            del var
        del store
        gc.collect()
        # the variable is gone: its block is an ordinary entry, over the limit, dropped
        assert _conv.weight_cache_bytes() <= LIMIT
    finally:
        _conv.set_isa(old)


def test_cache_off_keeps_nothing_pinned(small_cache):
    x = np.ones((1, 5, 5, 64), np.float32)
    with pyconv.VariableStore(seed=0):
        pyconv.conv2d(x, 64, [3, 3], scope="c")
        assert _conv.weight_cache_bytes() > LIMIT
        pyconv.set_weight_cache_limit(0)
        assert _conv.weight_cache_bytes() == 0
        y = pyconv.conv2d(x, 64, [3, 3], scope="c", reuse=True)
        assert _conv.weight_cache_bytes() == 0
        assert np.isfinite(y).all()


def test_pin_weights_arguments():
    with pytest.raises(TypeError, match="numpy.ndarray"):
        _conv.pin_weights([1.0])
    assert _conv.pin_weights(np.zeros(0, np.float32)) is None
    a = np.ones(4, np.float32)
    p1, p2 = _conv.pin_weights(a), _conv.pin_weights(a)  # counted pins
    del p1, p2
    with pytest.raises(ValueError, match="read-only"):
        _conv.pin_weights(a, True)
    a.flags.writeable = False
    p3 = _conv.pin_weights(a, True)
    del p3


def test_a_trusted_pin_is_checked_once_and_again_after_it_is_let_go():
    """At the C level: a trusted pin of a read-only array; a call with a writeable
    array (the same memory) is checked; letting go of the pin checks again."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 5, 5, 8)).astype(np.float32)
    w = rng.standard_normal((3, 3, 8, 16)).astype(np.float32)

    def run(weights):
        return _conv.conv2d(x, weights, None, 1, 1, 1, 1, 1, 1, 1, 1, 0)

    def ref(weights):
        return conv2d_reference(x, weights, (1, 1), ((1, 1), (1, 1)))

    def close(out, weights):
        scale = error_scale(x, weights, (1, 1), ((1, 1), (1, 1)), (1, 1)) + 1.0
        assert np.max(np.abs(out - ref(weights)) / scale) < 1e-5

    w.flags.writeable = False
    pin = _conv.pin_weights(w, True)
    close(run(w), w)
    close(run(w), w)
    w.flags.writeable = True  # a writeable array: checked byte for byte
    w[1, 1, 3, 4] += 5.0
    close(run(w), w)
    del pin  # let go: the block is checked again even if read-only now
    w[0, 2, 1, 1] -= 4.0
    w.flags.writeable = False
    close(run(w), w)
    pin = _conv.pin_weights(w, True)
    close(run(w), w)
    close(run(w), w)
    # two trusted pins (two Variables sharing an array): letting go of one
    # means the array may be written, so the packing is checked again
    pin2 = _conv.pin_weights(w, True)
    close(run(w), w)
    close(run(w), w)
    del pin
    w.flags.writeable = True
    w[2, 0, 7, 15] += 3.0
    w.flags.writeable = False
    close(run(w), w)
    del pin2


def test_a_pinned_variable_copies_and_pickles():
    import copy
    import pickle

    with pyconv.VariableStore(seed=0):
        pyconv.conv2d(np.ones((1, 4, 4, 3), np.float32), 4, [3, 3], scope="c")
        var = pyconv.get_variables_by_name("c/weights")[0]
        assert var._pin is not None
        for other in (copy.deepcopy(var), pickle.loads(pickle.dumps(var))):
            assert other._pin is None and other.name == var.name
            np.testing.assert_array_equal(other.value, var.value)
            assert other.value is not var.value
