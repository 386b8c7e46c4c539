"""The repeated-call fast path of conv2d's batch-norm fold (pyconv/layers.py,
_fold_cached): a reused layer must see every change of its statistics and
give what the unfused separate passes give."""

import numpy as np

import pyconv as slim


def _net(x, reuse):
    with slim.arg_scope([slim.batch_norm], is_training=False, scale=True):
        return slim.conv2d(x, 4, [3, 3], normalizer_fn=slim.batch_norm, scope="c", reuse=reuse)


def _expected(x, store):
    """conv2d without normalizer, then inference batch norm in float64."""
    w = store["c/weights"].astype(np.float64)
    xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, wd = x.shape[1:3]
    out = np.zeros((x.shape[0], h, wd, 4))
    for i in range(3):
        for j in range(3):
            out += np.einsum("nhwc,co->nhwo", xp[:, i:i + h, j:j + wd], w[i, j])
    mean = store["c/BatchNorm/moving_mean"].astype(np.float64)
    var = store["c/BatchNorm/moving_variance"].astype(np.float64)
    gamma = store["c/BatchNorm/gamma"].astype(np.float64)
    beta = store["c/BatchNorm/beta"].astype(np.float64)
    return np.maximum((out - mean) / np.sqrt(var + 0.001) * gamma + beta, 0)


def test_repeated_fold_sees_assign_and_in_place_writes():
    x = np.random.default_rng(1).standard_normal((2, 6, 6, 3)).astype(np.float32)
    with slim.VariableStore(seed=0) as store:
        first = _net(x, None)
        second = _net(x, True)
        np.testing.assert_array_equal(first, second)
        np.testing.assert_allclose(second, _expected(x, store), rtol=1e-5, atol=1e-5)
        slim.get_variables("c/BatchNorm/moving_mean")[0].assign(np.full(4, 0.5, np.float32))
        third = _net(x, True)
        assert not np.array_equal(third, second)
        np.testing.assert_allclose(third, _expected(x, store), rtol=1e-5, atol=1e-5)
        store["c/BatchNorm/gamma"][...] = 3.0  # in place, behind the store's back
        fourth = _net(x, True)
        np.testing.assert_allclose(fourth, _expected(x, store), rtol=1e-5, atol=1e-5)
        assert not np.array_equal(fourth, third)


def test_repeated_fold_keeps_scope_bookkeeping():
    x = np.ones((1, 4, 4, 3), np.float32)
    with slim.VariableStore(seed=0) as store:
        _net(x, None)
        names = sorted(store.keys())
        with slim.arg_scope([slim.batch_norm], is_training=False, scale=True):
            with slim.variable_scope("c", reuse=True):
                pass
            for _ in range(3):
                _net(x, True)
        assert sorted(store.keys()) == names
        # reuse=True on a missing batch-norm variable still fails as before
        with slim.arg_scope([slim.batch_norm], is_training=False, scale=True):
            try:
                slim.conv2d(x, 4, [3, 3], normalizer_fn=slim.batch_norm, scope="d",
                            reuse=True)
            except ValueError as exc:
                assert "d/weights" in str(exc) or "does not exist" in str(exc)
            else:
                raise AssertionError("reuse of a missing layer must fail")
