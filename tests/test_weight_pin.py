"""A slim layer's weights keep their packing while their Variable holds the
array (pyconv.variables.Variable._pinned): outside the weight cache's byte
limit, so a filter bigger than the limit (VGG's fc6) is not repacked at each
call. Every reuse is still checked byte for byte: ``assign``, in-place
writes to ``value`` and a replaced value give the new weights' results on
every ISA (checked against the float64 reference)."""

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
            w = var.value
            b = pyconv.get_variables_by_name("c/biases")[0].value
            check(out, x, w, b)
            # kept although larger than the limit (an LRU entry would be dropped)
            assert _conv.weight_cache_bytes() > LIMIT
            check(layer(), x, w, b)
            # assign writes in place: the byte check sees it
            new = rng.standard_normal(w.shape).astype(np.float32) * 0.1
            var.assign(new)
            check(layer(), x, new, b)
            # one element changed in place through value
            var.value[2, 1, 50, 7] += 3.0
            check(layer(), x, var.value, b)
            # the bias changed in place
            pyconv.get_variables_by_name("c/biases")[0].value[5] = 2.5
            check(layer(), x, var.value, b)
            # a value replaced by another array (as a checkpoint restore may do)
            var._value = np.array(var.value * -1.0, order="C")
            check(layer(), x, var.value, b)
            assert var._pin[0] is var._value
            # clearing the cache drops pinned blocks too; the next call repacks
            pyconv.clear_weight_cache()
            assert _conv.weight_cache_bytes() == 0
            check(layer(), x, var.value, b)
            assert _conv.weight_cache_bytes() > LIMIT
            del var, w
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
