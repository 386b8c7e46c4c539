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


# --------------------------------------------------------------------------- activations


def test_leaky_relu_alpha_is_float32_as_tf_repro_r4():
    # TF: leaky_relu(-1.0) on float64 = -0.20000000298023224 (alone and as activation_fn)
    assert slim.leaky_relu(np.array([-1.0, 2.0]))[0] == -0.20000000298023224
    assert slim.leaky_relu(np.array([-1.0], np.float32))[0] == np.float32(-0.2)
    with slim.VariableStore(seed=0):
        y = slim.conv2d(-np.ones((1, 1, 1, 1)), 1, 1, activation_fn=slim.leaky_relu,
                        weights_initializer=np.ones((1, 1, 1, 1)))
    assert y.ravel()[0] == -0.20000000298023224
    # float16: alpha is rounded to float16 (0.199951171875), then x * alpha rounded
    assert slim.leaky_relu(np.array([-1.0], np.float16))[0] == np.float16(-0.2)
    assert slim.leaky_relu(np.array([-1.0]), alpha=0.1)[0] == float(np.float32(-0.1))


# --------------------------------------------------------------------------- errors and acceptance


def test_float_num_outputs_is_truncated_and_zero_gives_empty_outputs():
    x = np.ones((1, 4, 4, 2), np.float32)
    with slim.VariableStore(seed=0) as store:
        assert slim.conv2d(x, 4.0, 3).shape == (1, 4, 4, 4)      # TF: int(4.0)
        assert slim.conv2d(x, np.float32(2.7), 3, scope="c").shape == (1, 4, 4, 2)
        y = slim.conv2d(x, 0, 3, scope="empty")                   # TF: (1, 4, 4, 0)
        assert y.shape == (1, 4, 4, 0) and y.dtype == np.float32
        assert store["empty/weights"].shape == (3, 3, 2, 0)
        assert store["empty/biases"].shape == (0,)


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_same_padding_on_empty_height_or_width_gives_empty_outputs(stride):
    # TF: conv2d(1x0x4x2, 3, SAME) -> (1, 0, 4, 3); stride 2 -> (1, 0, 2, 3);
    # max/avg_pool2d(3, SAME, stride 2) -> (1, 0, 2, 2); VALID raises
    x0 = np.ones((1, 0, 4, 2), np.float32)
    w = -(-4 // stride)
    with slim.VariableStore(seed=0):
        assert slim.conv2d(x0, 3, 3, stride=stride).shape == (1, 0, w, 3)
        assert slim.conv2d(x0.transpose(0, 3, 1, 2), 3, 3, stride=stride,
                           data_format="NCHW", scope="nchw").shape == (1, 3, 0, w)
        with pytest.raises(ValueError, match="output size"):
            slim.conv2d(x0, 3, 3, padding="VALID", scope="valid")
    assert slim.nn.conv2d(x0, np.ones((3, 3, 2, 3), np.float32), stride).shape == (1, 0, w, 3)
    assert slim.nn.conv2d(np.ones((2, 5, 0, 2)), np.ones((1, 2, 2, 1)), stride,
                          bias=np.ones(1)).shape == (2, -(-5 // stride), 0, 1)
    for pool in (slim.max_pool2d, slim.avg_pool2d):
        assert pool(x0, 3, stride=stride, padding="SAME").shape == (1, 0, w, 2)
        with pytest.raises(ValueError, match="output size"):
            pool(x0, 3, stride=stride)


@pytest.mark.parametrize("fmt, channels_first", [("NWC", False), ("NDHWC", False),
                                                 ("NCW", True), ("NCDHW", True)])
def test_conv2d_takes_slims_data_format_names_of_other_ranks(fmt, channels_first):
    # slim's convolution only asks whether data_format starts with 'NC'
    x = np.random.default_rng(0).standard_normal((1, 4, 5, 2)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((3, 3, 2, 3)).astype(np.float32)
    with slim.VariableStore(seed=0):
        ref = slim.conv2d(x, 3, 3, weights_initializer=w, scope="ref")
        xin = x.transpose(0, 3, 1, 2) if channels_first else x
        y = slim.conv2d(xin, 3, 3, data_format=fmt, weights_initializer=w)
    np.testing.assert_array_equal(y.transpose(0, 2, 3, 1) if channels_first else y, ref)


# --------------------------------------------------------------------------- integers (A8)


def _exact_conv_mod_2_32(x, w, stride, pads):
    """Python-int convolution (NHWC, explicit pads), reduced as int32 wraps."""
    (pt, pb), (pl, pr) = pads
    n, h, wd, _ = x.shape
    kh, kw, _, co = w.shape
    xp = np.pad(x.astype(object), ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh, ow = (h + pt + pb - kh) // stride + 1, (wd + pl + pr - kw) // stride + 1
    out = np.zeros((n, oh, ow, co), np.int64)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for o in range(co):
                    total = int((xp[b, i * stride:i * stride + kh, j * stride:j * stride + kw]
                                 * w[..., o].astype(object)).sum())
                    out[b, i, j, o] = (total + 2**31) % 2**32 - 2**31
    return out


def test_int32_conv2d_is_exact_with_tf_wraparound_repro_r8():
    # TF: [16777217, 3, 5, 7] int32 through a 1x1 conv of ones stays exact, int32
    xi = np.array([16777217, 3, 5, 7], np.int32).reshape(1, 2, 2, 1)
    out = slim.nn.conv2d(xi, np.ones((1, 1, 1, 1), np.int32), 1, "VALID")
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out.ravel(), [16777217, 3, 5, 7])
    # TF: 2**20 * 2**12 wraps to 0
    xi = np.array([2**20, 3, 5, 7], np.int32).reshape(1, 2, 2, 1)
    out = slim.nn.conv2d(xi, np.full((1, 1, 1, 1), 2**12, np.int32), 1, "VALID")
    np.testing.assert_array_equal(out.ravel(), [0, 12288, 20480, 28672])
    # TF: SAME 3x3 ones over [-5, -3, -7, -9] -> -24 everywhere; max_pool SAME -> -3
    xi = np.array([-5, -3, -7, -9], np.int32).reshape(1, 2, 2, 1)
    np.testing.assert_array_equal(slim.nn.conv2d(xi, np.ones((3, 3, 1, 1), np.int32)).ravel(),
                                  [-24] * 4)
    np.testing.assert_array_equal(slim.nn.max_pool2d(xi, 3, 1, "SAME").ravel(), [-3] * 4)
    assert slim.max_pool2d(np.array([16777217, 3, 5, 7], np.int32).reshape(1, 2, 2, 1),
                           2).ravel()[0] == 16777217


@pytest.mark.parametrize("big", [False, True])
def test_int32_conv2d_matches_python_integers(big):
    rng = np.random.default_rng(5 + big)
    hi = 2**31 if big else 100  # big: products overflow float64's mantissa
    x = rng.integers(-hi, hi, (2, 5, 4, 3)).astype(np.int32)
    w = rng.integers(-hi, hi, (3, 2, 3, 2)).astype(np.int32)
    pads = ((1, 1), (0, 1))
    expected = _exact_conv_mod_2_32(x, w, 2, pads)
    out = slim.nn.conv2d(x, w, 2, [(1, 1), (0, 1)])
    np.testing.assert_array_equal(out, expected)
    nchw = slim.nn.conv2d(x.transpose(0, 3, 1, 2), w, 2, [(1, 1), (0, 1)], "NCHW")
    np.testing.assert_array_equal(nchw, expected.transpose(0, 3, 1, 2))
    b = np.array([2**31 - 1, -5], np.int32)
    out = slim.nn.conv2d(x, w, 2, [(1, 1), (0, 1)], bias=b, activation="relu")
    wrapped = (expected + b.astype(np.int64) + 2**31) % 2**32 - 2**31
    np.testing.assert_array_equal(out, np.maximum(wrapped, 0))


def test_integer_dtypes_follow_tf_nn():
    # TF: conv2d takes int32 only; max_pool2d every integer dtype (not bool);
    # avg_pool2d no integers; slim.conv2d / batch_norm / avg_pool2d refuse them
    for dt in (np.int8, np.int16, np.int64, np.uint8, np.uint16, np.bool_):
        x = np.ones((1, 2, 2, 1), dt)
        with pytest.raises(TypeError, match=np.dtype(dt).name):
            slim.nn.conv2d(x, np.ones((1, 1, 1, 1), dt))
        with pytest.raises(TypeError, match=np.dtype(dt).name):
            slim.nn.avg_pool2d(x, 2, 2)
        with pytest.raises(TypeError, match=np.dtype(dt).name):
            slim.avg_pool2d(x, 2)
        if dt is np.bool_:
            with pytest.raises(TypeError, match="bool"):
                slim.max_pool2d(x, 2)
        else:
            y = slim.max_pool2d(x, 2)
            assert y.dtype == dt and y.ravel()[0] == 1
    with pytest.raises(TypeError, match="filters"):
        slim.nn.conv2d(np.ones((1, 2, 2, 1), np.int32), np.ones((1, 1, 1, 1), np.float32))
    big = np.array([2**62, -2**62, 3, 2**62 + 1], np.int64).reshape(1, 2, 2, 1)
    assert slim.nn.max_pool2d(big, 2, 2).ravel()[0] == 2**62 + 1   # exact, not via float


def test_nn_conv2d_none_means_tfs_defaults():
    x = np.random.default_rng(0).standard_normal((1, 4, 4, 2)).astype(np.float32)
    w = np.ones((3, 3, 2, 3), np.float32)
    np.testing.assert_array_equal(
        slim.nn.conv2d(x, w, strides=None, padding="SAME", data_format=None, dilations=None),
        slim.nn.conv2d(x, w, 1, "SAME", "NHWC", 1))


def test_collections_given_as_sets_or_dicts_or_strings_as_tf_slim_iterates_them():
    x = np.ones((1, 4, 4, 2), np.float32)
    with slim.VariableStore(seed=0):
        slim.conv2d(x, 3, 3, variables_collections={"a", "b"}, outputs_collections={"oa", "ob"})
        assert [v.name for v in slim.get_collection("a")] == ["Conv/weights", "Conv/biases"]
        assert [v.name for v in slim.get_collection("b")] == ["Conv/weights", "Conv/biases"]
        assert len(slim.get_collection("oa")) == len(slim.get_collection("ob")) == 1
        # TF: {'weights': {'a': 1}, 'biases': 'bc'} -> a: weights; b, c: biases (characters)
        slim.conv2d(x, 3, 3, variables_collections={"weights": {"d": 1}, "biases": "ef"},
                    outputs_collections={"od": 1}, scope="c2")
        assert [v.name for v in slim.get_collection("d")] == ["c2/weights"]
        assert [v.name for v in slim.get_collection("e")] == ["c2/biases"]
        assert [v.name for v in slim.get_collection("f")] == ["c2/biases"]
        assert slim.get_collection("ef") == [] and len(slim.get_collection("od")) == 1
        # B1 (repro B1): a string is iterated: 'ab' -> collections 'a' and 'b'
        slim.conv2d(x, 1, 1, variables_collections="gh", scope="c3")
        assert [v.name for v in slim.get_collection("g")] == ["c3/weights", "c3/biases"]
        assert [v.name for v in slim.get_collection("h")] == ["c3/weights", "c3/biases"]
        assert slim.get_collection("gh") == []


def test_negative_stddev_and_reversed_uniform_bounds_work_as_tf():
    rng = np.random.default_rng(0)
    v = slim.random_normal_initializer(mean=1.0, stddev=-2.0)((10000,), rng=rng)
    assert abs(v.mean() - 1.0) < 0.1 and abs(v.std() - 2.0) < 0.1
    v = slim.truncated_normal_initializer(stddev=-1.0)((10000,), rng=rng)
    assert np.abs(v).max() <= 2.0 and v.std() > 0.8
    v = slim.random_uniform_initializer(minval=1.0, maxval=0.0)((10000,), rng=rng)
    assert v.min() >= 0.0 and v.max() <= 1.0 and abs(v.mean() - 0.5) < 0.02


@pytest.mark.parametrize("call, tf_type", [
    (lambda: slim.conv2d(np.ones((1, 4, 4, 2)), 3, 3.0), ValueError),
    (lambda: slim.conv2d(np.ones((1, 4, 4, 2)), 3, None), ValueError),
    (lambda: slim.conv2d(np.ones((1, 4, 4, 2)), 3, 3, stride=2.0), ValueError),
    (lambda: slim.max_pool2d(np.ones((1, 4, 4, 2)), None), ValueError),
    (lambda: slim.subsample(np.ones((1, 4, 4, 2)), 2.0), ValueError),
    (lambda: slim.conv2d(np.ones((1, 4, 4, 2)), None, 3), ValueError),
    (lambda: slim.conv2d(np.ones((1, 4, 4, 2)), 3, 3, weights_regularizer=0.1), ValueError),
    (lambda: slim.conv2d(np.ones((1, 4, 4, 2)), 3, 3, biases_regularizer=0.1), ValueError),
    (lambda: slim.batch_norm(np.ones((2, 2)), param_regularizers={"beta": 0.1}), ValueError),
    (lambda: slim.batch_norm(np.ones((2, 2)), param_initializers=[1]), AttributeError),
    (lambda: slim.batch_norm(np.ones((2, 2)), param_regularizers=[1]), AttributeError),
    (lambda: slim.arg_scope(["conv2d"], rate=1).__enter__(), AttributeError),
    (lambda: slim.nn.conv2d(np.ones((1, 4, 4, 2)), np.ones((3, 3, 2, 3)), [2, 1, 1, 1]),
     NotImplementedError),
    (lambda: slim.nn.max_pool2d(np.ones((1, 4, 4, 2)), [2, 2, 2, 1], 1), NotImplementedError),
])
def test_refusals_have_tfs_exception_type_and_pyconvs_message(call, tf_type):
    # the types TF 2.21 / tf-slim 1.1 raise for these (UnimplementedError for the last two)
    with slim.VariableStore(seed=0), pytest.raises(tf_type) as info:
        call()
    assert isinstance(info.value, (TypeError, ValueError))  # pyconv's own type is kept too
    assert len(slim.current_arg_scope()) == 0


def test_failing_nested_arg_scope_keeps_the_outer_scope_deliberate_difference_a6():
    # TF-Slim pops the *outer* scope when a nested arg_scope raises (repro R6: TF gives
    # (1, 3, 3, 1)); pyconv keeps it, a documented deliberate difference
    def undecorated(a, b=1):
        return a

    x = np.ones((1, 5, 5, 1), np.float32)
    with slim.arg_scope([slim.max_pool2d], padding="SAME"):
        with pytest.raises(ValueError), slim.arg_scope([undecorated], b=2):
            pass
        assert slim.max_pool2d(x, 3, stride=1).shape == (1, 5, 5, 1)


# --------------------------------------------------------------------------- names and collections


def test_subsample_pair_one_still_pools_as_tf_b10():
    # TF: subsample(x, (1, 1)) then max_pool2d under arg_scope(outputs_collections='oc')
    # -> convert_collection_to_dict('oc') == ['MaxPool2D', 'MaxPool2D_1']
    x = np.ones((1, 4, 4, 1), np.float32)
    with slim.VariableStore(seed=0):
        with slim.arg_scope([slim.max_pool2d], outputs_collections="oc"):
            y = slim.subsample(x, (1, 1))
            slim.max_pool2d(x, 2)
            assert slim.subsample(x, 1) is x
        assert list(slim.convert_collection_to_dict("oc")) == ["MaxPool2D", "MaxPool2D_1"]
    assert y is not x
    np.testing.assert_array_equal(y, x)


def test_batch_norm_custom_collections_order_of_tfs_layer_b2():
    # TF (repro B2): ['BatchNorm/moving_mean', 'BatchNorm/moving_variance', 'BatchNorm/beta',
    # 'BatchNorm/gamma'] on the default (layer) path
    x = np.ones((2, 2, 2, 2), np.float32)
    with slim.VariableStore(seed=0):
        slim.batch_norm(x, scale=True, variables_collections=["c"])
        assert [v.name for v in slim.get_collection("c")] == [
            "BatchNorm/moving_mean", "BatchNorm/moving_variance", "BatchNorm/beta",
            "BatchNorm/gamma"]
        slim.batch_norm(x, scale=True, variables_collections=["d"], fused=False,
                        updates_collections=None, scope="legacy")
        assert [v.name for v in slim.get_collection("d")] == [
            "legacy/beta", "legacy/gamma", "legacy/moving_mean", "legacy/moving_variance"]


def test_legacy_batch_norm_ignores_param_regularizers_b3():
    # TF (repro R3b): REGULARIZATION_LOSSES == [] on the legacy path, even for a
    # non-callable regularizer
    x = np.random.default_rng(0).standard_normal((4, 3, 3, 2)).astype(np.float32)
    with slim.VariableStore(seed=0):
        slim.batch_norm(x, fused=False, updates_collections=None, scale=True,
                        param_regularizers={"beta": slim.l2_regularizer(0.1), "gamma": 0.5})
        assert slim.get_collection(slim.GraphKeys.REGULARIZATION_LOSSES) == []
        slim.batch_norm(x, scale=True, scope="layer",
                        param_regularizers={"beta": slim.l2_regularizer(0.1)})
        assert len(slim.get_collection(slim.GraphKeys.REGULARIZATION_LOSSES)) == 1


def test_loss_names_follow_name_scopes_b4_b5():
    # TF (repros B4, B5)
    x = np.ones((1, 3, 3, 1), np.float32)
    with slim.VariableStore(seed=0):
        with slim.name_scope("foo"):
            slim.conv2d(x, 1, 1, scope="c", weights_regularizer=slim.l2_regularizer(0.1))
        with slim.variable_scope("net"):
            slim.conv2d(x, 1, 1, scope="a")
        with slim.variable_scope("net", reuse=slim.AUTO_REUSE):
            slim.conv2d(x, 1, 1, scope="b", weights_regularizer=slim.l2_regularizer(0.1))
        with slim.variable_scope("s", regularizer=slim.l2_regularizer(0.1)):
            slim.conv2d(x, 1, 1, scope="c")
        names = [r.name for r in slim.get_collection(slim.GraphKeys.REGULARIZATION_LOSSES)]
        assert names == ["foo/c/kernel/Regularizer/l2_regularizer",
                         "net_1/b/kernel/Regularizer/l2_regularizer",
                         "s/c/weights/Regularizer/l2_regularizer",
                         "s/c/biases/Regularizer/l2_regularizer"]
        assert len(slim.get_regularization_losses("c")) == 0   # TF: n(scope="c") = 0


def test_variables_made_by_callables_inside_conv2d_are_model_variables_b8():
    # TF (repro B8): MODEL_VARIABLES ['c/weights', 'c/biases', 'c/alpha']; the layer's
    # getter also renames kernel -> weights, bias -> biases
    x = np.ones((1, 3, 3, 1), np.float32)

    def act(t):
        return t * slim.get_variable("alpha", shape=[1], initializer=slim.ones_initializer())

    def act_bias(t):
        return t + slim.get_variable("bias", shape=[1], initializer=slim.zeros_initializer())

    with slim.VariableStore(seed=0):
        slim.conv2d(x, 1, 1, scope="c", activation_fn=act)
        slim.conv2d(x, 1, 1, scope="d", activation_fn=act_bias, biases_initializer=None)
        slim.get_variable("outside", shape=[1])
        assert [v.name for v in slim.get_model_variables()] == [
            "c/weights", "c/biases", "c/alpha", "d/weights", "d/biases"]
        assert "outside" in [v.name for v in slim.get_variables()]


def test_output_collections_filter_on_tfs_tensor_names_b11():
    # TF: ['ns/c/Relu:0', 'ns/d/BiasAdd:0', 'ns/e/Relu6:0', 'ns/MaxPool2D/MaxPool:0',
    # 'ns/BatchNorm/FusedBatchNormV3:0', 'ns/bn2/batchnorm/add_1:0', 'c2/Conv2D:0'] and
    # get_collection('oc', scope) counts c 1, ns/c 1, ns 6, MaxPool2D 0, ns/MaxPool2D 1, c2 1
    x = np.ones((1, 4, 4, 2), np.float32)
    with slim.VariableStore(seed=0) as store:
        with slim.name_scope("ns"):
            slim.conv2d(x, 2, 1, scope="c", outputs_collections="oc")
            slim.conv2d(x, 2, 1, scope="d", activation_fn=None, outputs_collections="oc")
            slim.conv2d(x, 2, 1, scope="e", activation_fn=slim.relu6, biases_initializer=None,
                        outputs_collections="oc")
            slim.max_pool2d(x, 2, outputs_collections="oc")
            slim.batch_norm(x, outputs_collections="oc")
            slim.batch_norm(x, outputs_collections="oc", fused=False, scope="bn2")
        slim.conv2d(x, 2, 1, scope="c2", activation_fn=None, biases_initializer=None,
                    outputs_collections="oc")
        names = [store._match_name(t) for t in slim.get_collection("oc")]
        assert names == ["ns/c/Relu:0", "ns/d/BiasAdd:0", "ns/e/Relu6:0",
                         "ns/MaxPool2D/MaxPool:0", "ns/BatchNorm/FusedBatchNormV3:0",
                         "ns/bn2/batchnorm/add_1:0", "c2/Conv2D:0"]
        counts = {sc: len(slim.get_collection("oc", sc))
                  for sc in ["c", "ns/c", "ns", "MaxPool2D", "ns/MaxPool2D", "c2"]}
        assert counts == {"c": 1, "ns/c": 1, "ns": 6, "MaxPool2D": 0, "ns/MaxPool2D": 1, "c2": 1}
        # the aliases are slim's (variable scope names), as convert_collection_to_dict gives
        assert list(slim.convert_collection_to_dict("oc")) == [
            "c", "d", "e", "ns/MaxPool2D", "BatchNorm", "bn2", "c2"]


def test_variable_op_names_are_unique_case_insensitively_b7():
    # TF (repro B7): ['Conv/weights', 'Conv/biases', 'conv/weights_1', 'conv/biases_1'];
    # get_variable('W') then ('w') -> 'w_1'
    x = np.ones((1, 3, 3, 1), np.float32)
    with slim.VariableStore(seed=0) as store:
        slim.conv2d(x, 1, 1, scope="Conv")
        slim.conv2d(x, 1, 1, scope="conv")
        assert [v.name for v in slim.get_variables()] == [
            "Conv/weights", "Conv/biases", "conv/weights_1", "conv/biases_1"]
        assert store["conv/weights"].shape == (1, 1, 1, 1)   # keyed by the requested name
        assert slim.conv2d(x, 1, 1, scope="conv", reuse=True).shape == (1, 3, 3, 1)
        assert slim.get_variable("W", [1]).name == "W"
        assert slim.get_variable("w", [1]).name == "w_1"
        assert [v.name for v in slim.get_variables("conv/")] == ["conv/weights_1",
                                                                 "conv/biases_1"]


# --------------------------------------------------------------------------- grouped nn.conv2d


@pytest.mark.parametrize("groups, cg, og, dtype", [(2, 3, 4, np.float32), (3, 1, 5, np.float64),
                                                   (4, 2, 1, np.float32), (2, 17, 33, np.float32),
                                                   (8, 8, 16, np.float64)])
def test_grouped_nn_conv2d_matches_the_reference_per_group(groups, cg, og, dtype):
    # tf.nn.conv2d (TF 2.21): input channels a multiple of the filters' -> groups
    from reference import conv2d_reference

    from pyconv import _conv
    rng = np.random.default_rng(groups * 100 + cg)
    x = rng.standard_normal((2, 7, 6, groups * cg)).astype(dtype)
    w = rng.standard_normal((3, 2, cg, groups * og)).astype(dtype)
    b = rng.standard_normal(groups * og).astype(dtype)
    pads = ((1, 1), (0, 1))
    ref = np.concatenate([conv2d_reference(x[..., g * cg:(g + 1) * cg],
                                           w[..., g * og:(g + 1) * og], (2, 1), pads, (1, 2))
                          for g in range(groups)], axis=-1) + b
    ref = np.maximum(ref, 0)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    before_isa, before_threads = _conv.isa(), slim.get_num_threads()
    outs = []
    try:
        for isa in _conv.available_isas():
            _conv.set_isa(isa)
            for threads in (1, 2):
                slim.set_num_threads(threads)
                out = slim.nn.conv2d(x, w, (2, 1), [(1, 1), (0, 1)], dilations=(1, 2), bias=b,
                                     activation="relu")
                np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * np.abs(ref).max())
                outs.append(out)
    finally:
        _conv.set_isa(before_isa)
        slim.set_num_threads(before_threads)
    for out in outs[1:2]:
        np.testing.assert_array_equal(out, outs[0])  # same ISA, other thread count: same bits
    nchw = slim.nn.conv2d(x.transpose(0, 3, 1, 2), w, (2, 1), [(1, 1), (0, 1)], "NCHW", (1, 2),
                          bias=b, activation="relu")
    np.testing.assert_allclose(nchw.transpose(0, 2, 3, 1), ref, rtol=tol,
                               atol=tol * np.abs(ref).max())
    with pytest.raises(ValueError, match="groups"):
        slim.nn.conv2d(x, w[..., :groups * og - 1] if groups * og > 1 else w, 1)
