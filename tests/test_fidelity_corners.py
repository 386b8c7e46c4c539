"""The corners of issue 14 (and batch norm's deferred updates, issue 11 item 4),
each with the value TensorFlow 2.21 + tf-slim 1.1 gave.

Expected numbers were printed by TF (``/work/shared/tf-corners/repros.py`` and
the probes quoted with each test); the TF-computed fixtures
(``tests/fixtures/tf``) draw every class again with random values.
"""

import numpy as np
import pytest

import pyconv as slim

UPDATE_OPS = slim.GraphKeys.UPDATE_OPS


# --------------------------------------------------------------------------- batch norm updates


def test_training_batch_norm_queues_its_updates_until_they_are_run():
    # slim: the default updates_collections=UPDATE_OPS only queues the update
    x = np.array([[[[1.0]]], [[[3.0]]]], np.float32)
    with slim.VariableStore(seed=0) as store:
        y = slim.batch_norm(x, decay=0.5)
        np.testing.assert_allclose(y.ravel(), [-0.9995004, 0.9995004], rtol=1e-6)
        assert store["BatchNorm/moving_mean"][0] == 0.0
        assert store["BatchNorm/moving_variance"][0] == 1.0
        ops = slim.get_collection(UPDATE_OPS)
        assert [op.name for op in ops] == ["BatchNorm/AssignMovingAvg/AssignSubVariableOp",
                                           "BatchNorm/AssignMovingAvg_1/AssignSubVariableOp"]
        assert [op.variable.name for op in ops] == ["BatchNorm/moving_mean",
                                                    "BatchNorm/moving_variance"]
        # an inference call before the updates run still sees the old statistics
        z = slim.batch_norm(x, is_training=False, scope="BatchNorm", reuse=True)
        np.testing.assert_allclose(z.ravel(), x.ravel() / np.sqrt(1.001), rtol=1e-6)
        assert slim.run_update_ops() == 2
        assert slim.get_collection(UPDATE_OPS) == []
        assert store["BatchNorm/moving_mean"][0] == 1.0          # 0 - (0 - 2) * 0.5
        # fused path: Bessel-corrected variance 2; 1 - (1 - 2) * 0.5
        assert store["BatchNorm/moving_variance"][0] == 1.5
        assert slim.run_update_ops() == 0


def test_updates_run_again_apply_again_and_scope_filters():
    x = np.array([[1.0], [3.0]], np.float32)
    with slim.VariableStore(seed=0) as store:
        with slim.variable_scope("net"):
            slim.batch_norm(x, decay=0.5, scope="a")
            slim.batch_norm(x, decay=0.5, scope="b")
        assert slim.run_update_ops(scope="net/b", clear=False) == 2
        assert store["net/b/moving_mean"][0] == 1.0 and store["net/a/moving_mean"][0] == 0.0
        assert slim.run_update_ops(scope="net/b") == 2       # again: 1 - (1 - 2) * 0.5
        assert store["net/b/moving_mean"][0] == 1.5
        assert len(slim.get_collection(UPDATE_OPS)) == 2      # net/a's are still queued
        update = slim.get_collection(UPDATE_OPS)[0]
        update()
        assert store["net/a/moving_mean"][0] == 1.0


def test_updates_collections_none_updates_in_place_and_custom_collections_queue():
    x = np.array([[[[1.0]]], [[[3.0]]]], np.float32)
    with slim.VariableStore(seed=0) as store:
        slim.batch_norm(x, decay=0.5, updates_collections=None, scope="now")
        assert store["now/moving_mean"][0] == 1.0
        slim.batch_norm(x, decay=0.5, updates_collections="mine", scope="later")
        slim.batch_norm(x, decay=0.5, updates_collections=["u1", "u2"], scope="two")
        assert slim.get_collection(UPDATE_OPS) == []
        assert len(slim.get_collection("mine")) == 2
        assert len(slim.get_collection("u1")) == len(slim.get_collection("u2")) == 2
        assert store["later/moving_mean"][0] == 0.0
        assert slim.run_update_ops(collection="mine") == 2
        assert store["later/moving_mean"][0] == 1.0


def test_non_trainable_batch_norm_on_tf_layer_path_never_updates():
    # A3 (repro R3): TF: len(UPDATE_OPS) = 0, moving_mean stays [0.]
    x = np.array([[[[1.0]]], [[[3.0]]]], np.float32)
    with slim.VariableStore(seed=0) as store:
        y = slim.batch_norm(x, decay=0.5, trainable=False)
        np.testing.assert_allclose(y.ravel(), [-0.9995004, 0.9995004], rtol=1e-6)
        assert slim.get_collection(UPDATE_OPS) == []
        assert slim.run_update_ops() == 0
        assert store["BatchNorm/moving_mean"][0] == 0.0
        # slim's own fused op (rank 2) and legacy ops still queue/apply them
        slim.batch_norm(x.reshape(2, 1), decay=0.5, trainable=False, scope="own")
        assert len(slim.get_collection(UPDATE_OPS)) == 2
        slim.batch_norm(x, decay=0.5, trainable=False, fused=False, updates_collections=None,
                        scope="legacy")
        assert store["legacy/moving_mean"][0] == 1.0


# moving_mean / 1024 after one update from 0 with batch mean 1024, printed by
# TF 2.21 (tf-slim 1.1) for (path, decay, input dtype):
# "keras_fused" = default updates_collections, rank 4, float16/32
@pytest.mark.parametrize("kwargs, decay, dtype, expected", [
    ({}, 0.999, np.float32, 0.0009999871253967285),                     # A1, repro R1
    ({}, 0.9999, np.float32, 0.00010001659393310547),
    ({}, 0.9999, np.float16, 0.00010001659393310547),
    ({}, np.float64(0.9), np.float32, 0.10000000149011612),
    ({}, np.float16(0.9), np.float32, 0.10009765625),
    ({}, 0.999, np.float64, 0.0010000000474974513),                     # not fused
    ({}, np.float64(0.9), np.float64, 0.09999999999999998),             # A2, repro R2
    ({"fused": False}, 0.9999, np.float32, 9.999999747378752e-05),
    ({"fused": False}, np.float32(0.9999), np.float32, 0.00010001659393310547),
    ({"fused": False}, np.float64(0.9), np.float64, 0.09999999999999998),
    ({"fused": False}, 1, np.float32, 0.0),
    ({"updates_collections": None}, 0.9999, np.float32, 9.999999747378752e-05),
    ({"fused": False, "updates_collections": None}, 0.999, np.float16, 0.0010004043579101562),
    ({"fused": False, "updates_collections": None}, np.float64(0.9), np.float16,
     0.0999755859375),
    ({"fused": False, "updates_collections": None}, np.float64(0.9), np.float64,
     0.09999999999999998),
])
def test_moving_average_factor_is_rounded_as_tf_rounds_it(kwargs, decay, dtype, expected):
    x = np.full((2, 1, 1, 1), 1024.0, dtype)
    with slim.VariableStore(seed=0) as store:
        slim.batch_norm(x, decay=decay, **kwargs)
        slim.run_update_ops()
        assert float(store["BatchNorm/moving_mean"][0]) / 1024 == expected


def test_float64_decay_keeps_float64_precision_repro_r2():
    x = np.array([[[[10.0]]], [[[12.0]]]])
    with slim.VariableStore(seed=0) as store:
        slim.batch_norm(x, decay=np.float64(0.9))
        slim.run_update_ops()
        assert store["BatchNorm/moving_mean"][0] == 1.0999999999999996   # TF's value


def test_batch_norm_rank1_normalises_each_element_as_its_own_channel():
    # TF: rank-1 input (3,) has 3 channels and no reduction axes: output = beta
    x = np.array([1.0, 3.0, 4.0], np.float32)
    with slim.VariableStore(seed=0) as store:
        y = slim.batch_norm(x, decay=0.5)
        np.testing.assert_array_equal(y, np.zeros(3, np.float32))
        assert [v.name for v in slim.get_variables()] == [
            "BatchNorm/beta", "BatchNorm/moving_mean", "BatchNorm/moving_variance"]
        assert slim.run_update_ops() == 2
        np.testing.assert_allclose(store["BatchNorm/moving_mean"], x * 0.5)
        np.testing.assert_allclose(store["BatchNorm/moving_variance"], [0.5] * 3)
