"""slim layers: numbers against the float64 reference, names/collections/errors
against TF-Slim's layers_test and resnet_utils tests."""

import threading

import numpy as np
import pytest
from reference import conv2d_reference, error_scale, pads_for, pool_reference, slim_test_image

import pyconv as slim
from pyconv import GraphKeys


@pytest.fixture(autouse=True)
def fresh_store():
    with slim.VariableStore(seed=2024) as store:
        yield store


def rand(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def assert_close_to_reference(out, ref, scale, rtol=2e-6):
    """|out - ref| within rtol of sum|x||w| per element (float32 rounding)."""
    err = np.abs(out.astype(np.float64) - ref)
    bound = rtol * scale + 1e-6
    assert (err <= bound).all(), f"max error {err.max()} > bound {bound[err > bound].min()}"


def nhwc_pads(padding, x_nhwc, k, s, r):
    if not isinstance(padding, str):
        return tuple(tuple(p) for p in padding)
    return tuple(pads_for(padding, x_nhwc.shape[1 + d], k[d], s[d], r[d]) for d in range(2))


# --------------------------------------------------------------------------- numbers


CASES = [
    # (input NHWC shape, kernel, stride, rate, padding)
    ((2, 7, 9, 3), (3, 3), (1, 1), (1, 1), "SAME"),
    ((1, 8, 8, 4), (3, 3), (2, 2), (1, 1), "SAME"),
    ((1, 9, 6, 2), (5, 3), (2, 1), (1, 1), "same"),
    ((1, 10, 12, 3), (3, 3), (1, 1), (2, 2), "SAME"),
    ((1, 10, 12, 3), (3, 3), (1, 1), (2, 3), "VALID"),
    ((2, 7, 9, 3), (3, 1), (1, 1), (1, 1), "VALID"),
    ((1, 6, 5, 2), (2, 2), (3, 2), (1, 1), "VALID"),
    ((1, 4, 5, 2), (3, 3), (1, 1), (1, 1), "FULL"),
    ((1, 6, 7, 3), (3, 2), (2, 2), (1, 1), [(0, 2), (1, 0)]),
    ((1, 5, 5, 1), (1, 1), (1, 1), (1, 1), "SAME"),
]


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_conv2d_matches_float64_reference(case, data_format):
    shape, k, s, r, padding = case
    cin, cout = shape[3], 4
    x = rand(*shape, seed=1)
    w = rand(k[0], k[1], cin, cout, seed=2)
    b = rand(cout, seed=3)
    inp = x if data_format == "NHWC" else x.transpose(0, 3, 1, 2)
    out = slim.conv2d(inp, cout, list(k), stride=list(s), padding=padding,
                      data_format=data_format, rate=list(r), weights_initializer=w,
                      biases_initializer=b, activation_fn=None)
    if data_format == "NCHW":
        out = out.transpose(0, 2, 3, 1)
    pads = nhwc_pads(padding, x, k, s, r)
    ref = conv2d_reference(x, w, s, pads, r, bias=b)
    assert out.dtype == np.float32 and out.shape == ref.shape
    assert_close_to_reference(out, ref, error_scale(x, w, s, pads, r) + np.abs(b))


@pytest.mark.parametrize("activation", ["relu", "relu6"])
def test_fused_activation_equals_reference_and_unfused(activation):
    x = rand(2, 6, 6, 3, seed=4) * 4
    w = rand(3, 3, 3, 5, seed=5)
    fn = slim.relu if activation == "relu" else slim.relu6
    fused = slim.conv2d(x, 5, 3, activation_fn=fn, weights_initializer=w)
    nn_fn = slim.nn.relu if activation == "relu" else slim.nn.relu6
    fused_nn = slim.conv2d(x, 5, 3, activation_fn=nn_fn, weights_initializer=w)
    unfused = slim.conv2d(x, 5, 3, activation_fn=lambda y: fn(y), weights_initializer=w)
    ref = conv2d_reference(x, w, (1, 1), ((1, 1), (1, 1)), activation=activation)
    assert_close_to_reference(fused, ref, error_scale(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1)))
    np.testing.assert_array_equal(fused, fused_nn)
    np.testing.assert_allclose(fused, unfused, rtol=0, atol=1e-5)
    assert (fused >= 0).all()


def test_default_activation_is_relu_and_custom_callable_applied():
    x = rand(1, 4, 4, 2, seed=6)
    w = rand(3, 3, 2, 3, seed=7)
    default = slim.conv2d(x, 3, 3, weights_initializer=w)
    linear = slim.conv2d(x, 3, 3, weights_initializer=w, activation_fn=None)
    assert (linear < 0).any()
    np.testing.assert_allclose(default, np.maximum(linear, 0), atol=1e-6)
    doubled = slim.conv2d(x, 3, 3, weights_initializer=w, activation_fn=lambda y: 2 * y)
    np.testing.assert_allclose(doubled, 2 * linear, atol=1e-5)


def test_no_biases_when_initializer_none():
    x = rand(1, 4, 4, 2, seed=8)
    w = rand(1, 1, 2, 3, seed=9)
    out = slim.conv2d(x, 3, 1, weights_initializer=w, biases_initializer=None,
                      activation_fn=None, scope="nb")
    assert [v.name for v in slim.get_variables()] == ["nb/weights"]
    np.testing.assert_allclose(out, x @ w[0, 0], rtol=1e-5, atol=1e-6)


def test_any_input_layout_gives_the_same_result():
    x = rand(1, 8, 10, 3, seed=10)
    w = rand(3, 3, 3, 2, seed=11)
    base = slim.conv2d(x, 2, 3, weights_initializer=w)
    fortran = np.asfortranarray(x)
    strided = np.ascontiguousarray(np.repeat(x, 2, axis=2))[:, :, ::2, :]
    flipped = np.ascontiguousarray(x[:, ::-1])[:, ::-1]
    readonly = x.copy()
    readonly.flags.writeable = False
    for variant in (fortran, strided, flipped, readonly):
        np.testing.assert_array_equal(slim.conv2d(variant, 2, 3, weights_initializer=w), base)
    from_list = slim.conv2d(x.tolist(), 2, 3, weights_initializer=w)  # a list is float64
    assert from_list.dtype == np.float64
    np.testing.assert_allclose(from_list, base, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- conv2d_same


def _slim_resnet_setup(n):
    """resnet_utils_test: weights and zero biases created first, then reused."""
    x = slim_test_image(n).astype(np.float32)
    w = slim_test_image(3).astype(np.float32).reshape(3, 3, 1, 1)
    slim.get_variable("Conv/weights", initializer=w)
    slim.get_variable("Conv/biases", initializer=np.zeros(1, np.float32))
    slim.get_variable_scope().reuse_variables()
    return x


def test_conv2d_same_even_input_slim_values():
    x = _slim_resnet_setup(4)
    y1 = slim.conv2d(x, 1, [3, 3], stride=1, scope="Conv")
    y2 = slim.subsample(y1, 2)
    y3 = slim.conv2d_same(x, 1, 3, stride=2, scope="Conv")
    y4 = slim.conv2d(x, 1, [3, 3], stride=2, scope="Conv")
    np.testing.assert_array_equal(y1[0, :, :, 0], [[14, 28, 43, 26], [28, 48, 66, 37],
                                                   [43, 66, 84, 46], [26, 37, 46, 22]])
    np.testing.assert_array_equal(y2[0, :, :, 0], [[14, 43], [43, 84]])
    np.testing.assert_array_equal(y3[0, :, :, 0], [[14, 43], [43, 84]])
    # Plain SAME with stride 2 on an even input puts all the padding after:
    np.testing.assert_array_equal(y4[0, :, :, 0], [[48, 37], [37, 22]])


def test_conv2d_same_odd_input_slim_values():
    x = _slim_resnet_setup(5)
    y1 = slim.conv2d(x, 1, [3, 3], stride=1, scope="Conv")
    expected_y2 = [[14, 43, 34], [43, 84, 55], [34, 55, 30]]
    np.testing.assert_array_equal(y1[0, :, :, 0], [[14, 28, 43, 58, 34], [28, 48, 66, 84, 46],
                                                   [43, 66, 84, 102, 55], [58, 84, 102, 120, 64],
                                                   [34, 46, 55, 64, 30]])
    np.testing.assert_array_equal(slim.subsample(y1, 2)[0, :, :, 0], expected_y2)
    np.testing.assert_array_equal(slim.conv2d_same(x, 1, 3, stride=2, scope="Conv")[0, :, :, 0],
                                  expected_y2)
    np.testing.assert_array_equal(slim.conv2d(x, 1, [3, 3], stride=2, scope="Conv")[0, :, :, 0],
                                  expected_y2)


@pytest.mark.parametrize("n", [4, 5, 6, 7, 8, 9])
@pytest.mark.parametrize("k,stride", [(1, 2), (2, 2), (3, 2), (3, 3), (4, 2), (5, 2), (7, 2)])
def test_conv2d_same_equals_conv_then_subsample(n, k, stride):
    x = rand(2, n, n + 1, 3, seed=n)
    w = rand(k, k, 3, 2, seed=k)
    with slim.arg_scope([slim.conv2d], weights_initializer=w, activation_fn=None):
        same = slim.conv2d_same(x, 2, k, stride=stride)
        dense = slim.conv2d(x, 2, k, stride=1, padding="SAME")
    sub = slim.subsample(dense, stride)
    np.testing.assert_allclose(same, sub, rtol=1e-5, atol=1e-5)
    total = k - 1
    pads = ((total // 2, total - total // 2),) * 2
    ref = conv2d_reference(x, w, (stride, stride), pads, (1, 1))
    assert_close_to_reference(same, ref, error_scale(x, w, (stride, stride), pads, (1, 1)))


def test_conv2d_same_with_rate_and_stride_one():
    x = rand(1, 9, 9, 2, seed=12)
    w = rand(3, 3, 2, 2, seed=13)
    with slim.arg_scope([slim.conv2d], weights_initializer=w, activation_fn=None):
        out = slim.conv2d_same(x, 2, 3, stride=1, rate=2)
    ref = conv2d_reference(x, w, (1, 1), ((2, 2), (2, 2)), (2, 2))
    assert_close_to_reference(out, ref, error_scale(x, w, (1, 1), ((2, 2), (2, 2)), (2, 2)))
    with pytest.raises(ValueError, match="rate"):
        slim.conv2d_same(x, 2, 3, stride=2, rate=2)


def test_conv2d_same_nchw_through_arg_scope():
    x = rand(1, 6, 6, 2, seed=14)
    w = rand(3, 3, 2, 2, seed=15)
    with slim.arg_scope([slim.conv2d], weights_initializer=w, activation_fn=None):
        nhwc = slim.conv2d_same(x, 2, 3, stride=2)
        with slim.arg_scope([slim.conv2d], data_format="NCHW"):
            nchw = slim.conv2d_same(x.transpose(0, 3, 1, 2), 2, 3, stride=2)
    np.testing.assert_allclose(nchw.transpose(0, 2, 3, 1), nhwc, rtol=1e-6, atol=1e-6)


def test_subsample_factor_one_returns_same_object_and_values():
    x = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
    assert slim.subsample(x, 1) is x
    np.testing.assert_array_equal(slim.subsample(x, 2)[0, :, :, 0], [[0, 2], [6, 8]])
    x4 = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(slim.subsample(x4, 2)[0, :, :, 0], [[0, 2], [8, 10]])
    with pytest.raises(ValueError, match="factor"):
        slim.subsample(x, 0)


# --------------------------------------------------------------------------- names


def test_weights_and_biases_shapes_and_names():
    images = rand(5, 7, 9, 4)
    out = slim.conv2d(images, 32, [3, 3])
    assert out.shape == (5, 7, 9, 32)
    weights = slim.get_variables_by_name("weights")[0]
    biases = slim.get_variables_by_name("biases")[0]
    assert (weights.name, weights.shape) == ("Conv/weights", (3, 3, 4, 32))
    assert (biases.name, biases.shape) == ("Conv/biases", (32,))
    nchw = slim.conv2d(rand(5, 4, 7, 9), 32, [3, 1], data_format="NCHW")
    assert nchw.shape == (5, 32, 7, 9)
    assert slim.get_variables_by_name("weights")[1].shape == (3, 1, 4, 32)


def test_default_scope_names_unique_and_nested():
    x = rand(1, 5, 5, 2)
    slim.conv2d(x, 2, 3)
    slim.conv2d(x, 2, 3)
    with slim.variable_scope("block"):
        slim.conv2d(x, 2, 3)
        slim.conv2d(x, 2, 3, scope="conv")
        with slim.variable_scope("unit"):
            slim.conv2d(x, 2, 3)
    slim.conv2d(x, 2, 3)
    # 'block/conv' after 'block/Conv': TF makes op names unique case-insensitively
    assert [v.name for v in slim.get_variables(suffix="weights")] == [
        "Conv/weights", "Conv_1/weights", "block/Conv/weights",
        "block/unit/Conv/weights", "Conv_2/weights"]
    assert "block/conv/weights_1" in [v.name for v in slim.get_variables()]


def test_reuse_with_scope_and_inside_reusing_variable_scope():
    x = rand(1, 5, 5, 3)
    a = slim.conv2d(x, 4, 3, scope="conv1")
    assert len(slim.get_variables()) == 2
    b = slim.conv2d(x, 4, 3, scope="conv1", reuse=True)
    assert len(slim.get_variables()) == 2
    np.testing.assert_array_equal(a, b)
    with slim.variable_scope("net"):
        c = slim.conv2d(x, 4, 3)
    with slim.variable_scope("net", reuse=True):
        d = slim.conv2d(x, 4, 3)  # unnamed: 'net/Conv' again, reused
    np.testing.assert_array_equal(c, d)
    assert len(slim.get_variables()) == 4
    e = slim.conv2d(x, 4, 3, scope="auto", reuse=slim.AUTO_REUSE)
    f = slim.conv2d(x, 4, 3, scope="auto", reuse=slim.AUTO_REUSE)
    np.testing.assert_array_equal(e, f)


def test_non_reuse_creates_new_variables():
    x = rand(1, 5, 5, 3)
    slim.conv2d(x, 4, 3)
    slim.conv2d(x, 4, 3)
    assert len(slim.get_variables()) == 4


def test_reuse_errors():
    x = rand(1, 5, 5, 3)
    with pytest.raises(ValueError, match="reuse=True cannot be used without a name_or_scope"):
        slim.conv2d(x, 4, 3, reuse=True)
    with pytest.raises(ValueError, match="Variable conv9/weights does not exist"):
        slim.conv2d(x, 4, 3, scope="conv9", reuse=True)
    slim.conv2d(x, 4, 3, scope="conv1")
    with pytest.raises(ValueError, match="Variable conv1/weights already exists"):
        slim.conv2d(x, 4, 3, scope="conv1")
    with pytest.raises(ValueError, match="reuse"):
        slim.conv2d(x, 4, 3, scope="conv1", reuse="yes")


def test_in_channel_mismatch_shows_both_shapes(fresh_store):
    slim.conv2d(rand(1, 5, 5, 3), 4, 3, scope="conv1")
    with pytest.raises(ValueError, match=r"conv1/weights.*\(3, 3, 5, 4\).*\(3, 3, 3, 4\)"):
        slim.conv2d(rand(1, 5, 5, 5), 4, 3, scope="conv1", reuse=True)
    fresh_store.load({"conv2/weights:0": np.zeros((3, 3, 2, 4), np.float32)})
    with pytest.raises(ValueError, match=r"conv2/weights.*\(3, 3, 2, 4\).*\(3, 3, 3, 4\)"):
        slim.conv2d(rand(1, 5, 5, 3), 4, 3, scope="conv2")


def test_loaded_weights_are_used(fresh_store):
    w = rand(3, 3, 3, 4, seed=21)
    b = rand(4, seed=22)
    fresh_store.load({"conv1/weights:0": w, "conv1/biases:0": b})
    x = rand(1, 6, 6, 3, seed=23)
    out = slim.conv2d(x, 4, 3, scope="conv1", activation_fn=None)
    ref = conv2d_reference(x, w, (1, 1), ((1, 1), (1, 1)), bias=b)
    assert_close_to_reference(out, ref, error_scale(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1)) + 1)


# --------------------------------------------------------------------------- collections


def test_variable_collections_and_trainable():
    x = rand(1, 5, 5, 3)
    slim.conv2d(x, 4, 3, scope="a")
    slim.conv2d(x, 4, 3, scope="frozen", trainable=False)
    names = lambda key: [v.name for v in slim.get_collection(key)]
    assert names(GraphKeys.GLOBAL_VARIABLES) == ["a/weights", "a/biases", "frozen/weights",
                                                 "frozen/biases"]
    assert names(GraphKeys.MODEL_VARIABLES) == names(GraphKeys.GLOBAL_VARIABLES)
    assert names(GraphKeys.TRAINABLE_VARIABLES) == ["a/weights", "a/biases"]
    assert not slim.get_variables("frozen")[0].trainable


def test_variables_collections_list_and_dict():
    x = rand(1, 5, 5, 3)
    slim.conv2d(x, 4, 3, scope="a", variables_collections=["mine"])
    slim.conv2d(x, 4, 3, scope="b", variables_collections={"weights": ["w_only"]})
    slim.conv2d(x, 4, 3, scope="a", reuse=True, variables_collections=["mine"])
    assert [v.name for v in slim.get_collection("mine")] == ["a/weights", "a/biases"]
    assert [v.name for v in slim.get_collection("w_only")] == ["b/weights"]


def test_regularization_losses_once_with_tf_value_and_name():
    x = rand(5, 7, 9, 3)
    reg = slim.l2_regularizer(0.01)
    with slim.arg_scope([slim.conv2d], weights_regularizer=reg):
        slim.conv2d(x, 32, [3, 3], scope="conv1")
        slim.conv2d(x, 32, [3, 3], scope="conv1", reuse=True)
    items = slim.get_collection(GraphKeys.REGULARIZATION_LOSSES)
    assert len(items) == 1
    assert items[0].name == "conv1/kernel/Regularizer/l2_regularizer"
    w = slim.get_variables_by_name("weights")[0].value.astype(np.float64)
    assert float(slim.get_regularization_losses()[0]) == pytest.approx(
        0.01 * (w ** 2).sum() / 2, rel=1e-6)
    slim.conv2d(x, 2, 1, scope="b", biases_regularizer=slim.l1_regularizer(0.5))
    assert slim.get_collection(GraphKeys.REGULARIZATION_LOSSES)[1].name == \
        "b/bias/Regularizer/l1_regularizer"


def test_no_regularizers_no_losses():
    slim.conv2d(rand(1, 5, 5, 3), 4, 3)
    assert slim.get_regularization_losses() == []


def test_outputs_collections_aliases():
    x = rand(1, 6, 6, 3)
    with slim.name_scope("fe"):
        conv = slim.conv2d(x, 4, 3, outputs_collections="outputs", scope="Conv")
    with slim.variable_scope("net"):
        c2 = slim.conv2d(x, 4, 3, outputs_collections=["outputs"])
        p1 = slim.max_pool2d(c2, 2, outputs_collections="outputs")
        p2 = slim.avg_pool2d(c2, 2, outputs_collections="outputs", scope="pool")
        p3 = slim.max_pool2d(c2, 2, outputs_collections="outputs")
    assert slim.get_collection("outputs")[0] is conv
    d = slim.convert_collection_to_dict("outputs")
    assert list(d) == ["Conv", "net/Conv", "net/MaxPool2D", "net/pool", "net/MaxPool2D_1"]
    assert d["net/Conv"] is c2 and d["net/MaxPool2D"] is p1
    assert d["net/pool"] is p2 and d["net/MaxPool2D_1"] is p3
    assert slim.get_tensor_aliases(conv) == ["Conv"]


def test_batch_norm_outputs_alias():
    out = slim.batch_norm(rand(4, 3, 3, 2), outputs_collections="end_points")
    assert list(slim.convert_collection_to_dict("end_points")) == ["BatchNorm"]
    assert slim.get_collection("end_points")[0] is out


# --------------------------------------------------------------------------- dtypes


def test_dtypes_of_variables_and_outputs(fresh_store):
    # TF-Slim refuses integer and bool inputs (no initializers for them): TypeError
    for dtype in (np.int32, np.bool_, np.uint8):
        with pytest.raises(TypeError, match=np.dtype(dtype).name):
            slim.conv2d(np.ones((1, 4, 4, 2), dtype), 3, 3)
        with pytest.raises(TypeError, match=np.dtype(dtype).name):
            slim.batch_norm(np.ones((1, 4, 4, 2), dtype))
    assert len(fresh_store) == 0
    for dtype, var_dtype in ((np.float16, np.float16), (np.float32, np.float32),
                             (np.float64, np.float64)):
        name = np.dtype(dtype).name
        out = slim.conv2d(np.ones((1, 4, 4, 2), dtype), 3, 3, scope=name)
        assert fresh_store[name + "/weights"].dtype == var_dtype, name
        assert fresh_store[name + "/biases"].dtype == var_dtype, name
        assert out.dtype == var_dtype, name
    with pytest.raises(TypeError, match="complex128"):
        slim.conv2d(np.ones((1, 4, 4, 2), complex), 3, 3)


def test_float16_matches_reference_within_half_precision():
    x = rand(1, 6, 6, 3, seed=30, dtype=np.float16)
    w = rand(3, 3, 3, 2, seed=31, dtype=np.float16)
    out = slim.conv2d(x, 2, 3, weights_initializer=w, activation_fn=None)
    ref = conv2d_reference(x, w, (1, 1), ((1, 1), (1, 1)))
    scale = error_scale(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1))
    assert (np.abs(out.astype(np.float64) - ref) <= 2e-3 * scale + 1e-3).all()


def test_reuse_with_other_dtype_computes_in_the_variables_dtype():
    # TF raises; pyconv casts the input to the existing variables' dtype (README "Nets")
    x = rand(1, 4, 4, 2, dtype=np.float16)
    y32 = slim.conv2d(x.astype(np.float32), 3, 3, scope="c")
    y16 = slim.conv2d(x, 3, 3, scope="c", reuse=True)
    assert y16.dtype == np.float32
    np.testing.assert_array_equal(y16, y32)
    y64 = slim.conv2d(x.astype(np.float64), 3, 3, scope="c", reuse=True)
    assert y64.dtype == np.float32
    np.testing.assert_array_equal(y64, y32)


# --------------------------------------------------------------------------- errors


def test_rank_error_message():
    with pytest.raises(ValueError, match="Convolution expects input with rank 4, got 5"):
        slim.conv2d(np.zeros((5, 6, 7, 9, 3)), 32, 3)
    with pytest.raises(ValueError, match="Convolution expects input with rank 4, got 3"):
        slim.conv2d(np.zeros((6, 7, 3)), 32, 3)


@pytest.mark.parametrize("fmt", ["CHWN", "NHW", 3, ""])
def test_bad_data_format_mentions_data_format(fmt):
    with pytest.raises(ValueError, match="data_format"):
        slim.conv2d(rand(5, 7, 9, 3), 32, 3, data_format=fmt)
    with pytest.raises(ValueError, match="data_format"):
        slim.max_pool2d(rand(5, 7, 9, 3), 2, data_format=fmt)
    with pytest.raises(ValueError, match="data_format has to be either NCHW or NHWC"):
        slim.batch_norm(rand(5, 7, 9, 3), data_format=fmt)


def test_pools_and_batch_norm_refuse_other_ranks_data_format_names():
    # TF: slim.max_pool2d / batch_norm take only 'NHWC'/'NCHW' ("data_format has to be ...")
    with pytest.raises(ValueError, match="data_format"):
        slim.max_pool2d(rand(5, 7, 9, 3), 2, data_format="NWC")
    with pytest.raises(ValueError, match="data_format has to be either NCHW or NHWC"):
        slim.batch_norm(rand(5, 7, 9, 3), data_format="NWC")


def test_stride_with_rate_is_error():
    with pytest.raises(ValueError, match=r"stride.*rate") as exc:
        slim.conv2d(rand(1, 8, 8, 2), 2, 3, stride=2, rate=2)
    assert "dilation_rate" in str(exc.value)
    with pytest.raises(ValueError, match="rate"):
        slim.conv2d(rand(1, 8, 8, 2), 2, 3, stride=[1, 2], rate=[2, 1])
    assert slim.get_variables() == []  # nothing created by a refused call


@pytest.mark.parametrize("bad, exc", [(-3, ValueError), (-1.0, ValueError), (None, TypeError),
                                      (None, ValueError), (float("nan"), ValueError),
                                      ("8", TypeError), (True, TypeError)])
def test_num_outputs_must_be_an_int_at_least_0(bad, exc):
    with pytest.raises(exc, match="num_outputs"):
        slim.conv2d(rand(1, 4, 4, 2), bad, 3)


def test_argument_errors_name_the_argument():
    x = rand(1, 6, 6, 2)
    with pytest.raises(ValueError, match="kernel_size"):
        slim.conv2d(x, 2, [3, 3, 3])
    with pytest.raises(ValueError, match="kernel_size"):
        slim.conv2d(x, 2, 0)
    with pytest.raises(ValueError, match="stride"):
        slim.conv2d(x, 2, 3, stride=0)
    with pytest.raises(ValueError, match="rate"):
        slim.conv2d(x, 2, 3, rate=0)
    with pytest.raises(ValueError, match="(?i)did you mean 'VALID'"):
        slim.conv2d(x, 2, 3, padding="VAILD")
    with pytest.raises(ValueError, match="output size"):
        slim.conv2d(x, 2, 7, padding="VALID")
    np.testing.assert_array_equal(slim.nn.relu(np.array([-1.0])), [0.0])


def test_numpy_integer_num_outputs_and_kernel_accepted():
    out = slim.conv2d(rand(1, 4, 4, 2), np.int64(3), np.int32(3), stride=np.int64(1))
    assert out.shape == (1, 4, 4, 3)


# --------------------------------------------------------------------------- pools


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("padding", ["VALID", "SAME"])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_pools_match_reference(kind, padding, data_format):
    x = rand(2, 7, 6, 3, seed=40)
    k, s = (3, 2), (2, 2)
    pool = slim.max_pool2d if kind == "max" else slim.avg_pool2d
    inp = x if data_format == "NHWC" else x.transpose(0, 3, 1, 2)
    out = pool(inp, list(k), stride=list(s), padding=padding, data_format=data_format)
    if data_format == "NCHW":
        out = out.transpose(0, 2, 3, 1)
    pads = tuple(pads_for(padding, x.shape[1 + d], k[d], s[d]) for d in range(2))
    np.testing.assert_allclose(out, pool_reference(kind, x, k, s, pads), rtol=1e-6, atol=1e-6)


def test_pool_defaults_are_stride_2_valid():
    x = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
    np.testing.assert_array_equal(slim.max_pool2d(x, 2)[0, :, :, 0], [[6, 8], [16, 18]])
    np.testing.assert_array_equal(slim.avg_pool2d(x, 2)[0, :, :, 0], [[3, 5], [13, 15]])
    # SAME average pooling divides by the positions inside the image only.
    same = slim.avg_pool2d(x, 2, padding="SAME")[0, :, :, 0]
    np.testing.assert_array_equal(same[2], [20.5, 22.5, 24])  # last row: only row 4 inside


# --------------------------------------------------------------------------- batch norm


def bn_reference(x, axes, mean, var, eps, gamma=None, beta=None):
    shape = [1] * x.ndim
    c_axis = next(a for a in range(x.ndim) if a not in axes)
    shape[c_axis] = -1
    y = (x.astype(np.float64) - np.reshape(mean, shape)) / np.sqrt(np.reshape(var, shape) + eps)
    if gamma is not None:
        y = y * np.reshape(gamma, shape)
    if beta is not None:
        y = y + np.reshape(beta, shape)
    return y


def test_batch_norm_variables_names_trainable_and_collections():
    slim.batch_norm(rand(5, 3, 3, 4), scale=True)
    names = lambda key: [v.name for v in slim.get_collection(key)]
    expected = ["BatchNorm/gamma", "BatchNorm/beta", "BatchNorm/moving_mean",
                "BatchNorm/moving_variance"]
    assert names(GraphKeys.GLOBAL_VARIABLES) == expected
    assert names(GraphKeys.MODEL_VARIABLES) == expected
    assert names(GraphKeys.TRAINABLE_VARIABLES) == expected[:2]
    assert all(v.shape == (4,) for v in slim.get_variables())
    assert len(slim.get_model_variables()) == 4
    assert slim.get_regularization_losses() == []


def test_batch_norm_variables_collections_dict_and_reuse():
    colls = {"beta": ["beta"], "gamma": ["gamma"], "moving_mean": ["moving_mean"],
             "moving_variance": ["moving_variance"]}
    x = rand(5, 5, 5, 3)
    slim.batch_norm(x, scale=True, variables_collections=colls, scope="bn")
    slim.batch_norm(x, scale=True, variables_collections=colls, scope="bn", reuse=True)
    for name, coll in colls.items():
        assert [v.name for v in slim.get_collection(coll[0])] == ["bn/" + name]
    assert len(slim.get_variables()) == 4


def test_conv_with_batch_norm_naming_as_slim():
    images = rand(5, 7, 9, 32)
    with slim.arg_scope([slim.conv2d], normalizer_fn=slim.batch_norm,
                        normalizer_params={"decay": 0.9}):
        net = slim.conv2d(images, 32, [3, 3])
        slim.conv2d(net, 32, [3, 3])
    assert len(slim.get_variables()) == 8
    assert len(slim.get_variables("Conv/BatchNorm")) == 3
    assert len(slim.get_variables("Conv_1/BatchNorm")) == 3
    assert "Conv/biases" not in slim.get_default_store()
    bn_vars = [v for v in slim.get_variables("Conv/BatchNorm")]
    assert [v.trainable for v in bn_vars] == [True, False, False]


def test_reuse_conv_with_batch_norm():
    images = rand(5, 7, 9, 32)
    with slim.arg_scope([slim.conv2d], normalizer_fn=slim.batch_norm,
                        normalizer_params={"decay": 0.9}):
        net = slim.conv2d(images, 32, [3, 3], scope="Conv")
        slim.conv2d(net, 32, [3, 3], scope="Conv", reuse=True)
    assert len(slim.get_variables()) == 4
    assert len(slim.get_variables("Conv/BatchNorm")) == 3
    assert len(slim.get_variables("Conv_1/BatchNorm")) == 0


def test_conv_with_batch_norm_numbers_and_activation_after():
    x = rand(3, 5, 5, 2, seed=50)
    w = rand(3, 3, 2, 4, seed=51)
    out = slim.conv2d(x, 4, 3, weights_initializer=w, normalizer_fn=slim.batch_norm,
                      normalizer_params={"scale": True, "epsilon": 1e-3})
    z = conv2d_reference(x, w, (1, 1), ((1, 1), (1, 1)))
    ref = np.maximum(bn_reference(z, (0, 1, 2), z.mean((0, 1, 2)), z.var((0, 1, 2)), 1e-3), 0)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_batch_norm_training_math_and_moving_update_fused(data_format):
    # slim's default (fused) path for float32: moving_variance gets the
    # Bessel-corrected batch variance, the output the biased one.
    x = (rand(10, 2, 2, 3, seed=60) * 2 + 1).astype(np.float32)
    axes = (0, 1, 2)
    if data_format == "NCHW":
        x = x.transpose(0, 3, 1, 2).copy()
        axes = (0, 2, 3)
    gamma = np.array([0.5, 1.5, 2.0])
    beta = np.array([0.1, -0.2, 0.3])
    out = slim.batch_norm(x, decay=0.9, scale=True, epsilon=1e-3, data_format=data_format,
                          param_initializers={"gamma": gamma, "beta": beta}, scope="bn")
    assert slim.run_update_ops() == 2
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axes), x64.var(axes)
    ref = bn_reference(x64, axes, mean, var, 1e-3, gamma, beta)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    m = x.size // 3
    store = slim.get_default_store()
    np.testing.assert_allclose(store["bn/moving_mean"], 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(store["bn/moving_variance"],
                               0.9 * 1.0 + 0.1 * var * m / (m - 1), rtol=1e-5)


@pytest.mark.parametrize("dtype, fused", [(np.float32, False), (np.float64, None)])
def test_batch_norm_nonfused_moving_variance_is_biased(dtype, fused):
    x = rand(10, 2, 2, 3, seed=61, dtype=dtype)
    slim.batch_norm(x, decay=0.9, fused=fused, scope="bn")
    slim.run_update_ops()
    var = x.astype(np.float64).var((0, 1, 2))
    np.testing.assert_allclose(slim.get_default_store()["bn/moving_variance"],
                               0.9 + 0.1 * var, rtol=1e-5)


# slim 1.1's batch_norm paths: its own fused op (rank 2; rank 4 with non-default
# updates_collections), TF's layer (default updates_collections: fused for
# float16/32 of rank 4 or 5), else legacy ops (variables in the input dtype,
# biased variance). Checked against TF 2.12 by
# tools/tf_reference/probe_batch_norm_paths.py (TF 2.21 cannot run the
# non-default updates_collections and rank-2 paths of tf-slim 1.1).
@pytest.mark.parametrize("dtype, shape, updates, fused, bessel, var_dtype", [
    (np.float32, (6, 3), "default", None, True, np.float32),
    (np.float32, (6, 3), "default", False, False, np.float32),
    (np.float32, (4, 5, 3), "default", None, False, np.float32),
    (np.float32, (3, 2, 2, 3), "default", None, True, np.float32),
    (np.float32, (3, 2, 2, 3), None, None, True, np.float32),
    (np.float32, (3, 2, 2, 3), None, False, False, np.float32),
    (np.float32, (2, 3, 2, 2, 3), "default", True, True, np.float32),
    (np.float32, (2, 3, 2, 2, 3), None, None, False, np.float32),
    (np.float16, (3, 2, 2, 3), None, None, True, np.float32),
    (np.float16, (3, 2, 2, 3), "default", False, False, np.float32),
    (np.float16, (4, 5, 3), None, None, False, np.float16),
    (np.float64, (3, 2, 2, 3), "default", None, False, np.float64),
])
def test_batch_norm_slim_code_paths(dtype, shape, updates, fused, bessel, var_dtype):
    x = (rand(*shape, seed=67) * 2 + 1).astype(dtype)
    kwargs = {} if updates == "default" else {"updates_collections": updates}
    out = slim.batch_norm(x, decay=0.5, scale=True, fused=fused, scope="bn", **kwargs)
    assert slim.run_update_ops() == (2 if updates == "default" else 0)
    assert out.dtype == dtype
    store = slim.get_default_store()
    assert all(store[f"bn/{n}"].dtype == var_dtype
               for n in ("beta", "gamma", "moving_mean", "moving_variance"))
    # TF's layer (default updates_collections, not slim's own fused op) creates gamma first
    layer_path = updates == "default" and not (fused is not False and len(shape) == 2)
    first = ["bn/gamma", "bn/beta"] if layer_path else ["bn/beta", "bn/gamma"]
    assert [v.name for v in slim.get_variables()][:2] == first
    axes = tuple(range(x.ndim - 1))
    var = x.astype(np.float64).var(axes)
    m = x.size // shape[-1]
    expected = 0.5 + 0.5 * var * (m / (m - 1) if bessel else 1.0)
    tol = 2e-3 if var_dtype == np.float16 else 1e-6
    np.testing.assert_allclose(store["bn/moving_variance"], expected, rtol=tol)


def test_batch_norm_moving_stats_converge_like_slim_test():
    # slim's _testNoneUpdatesCollections: 10 updates with decay 0.1.
    np.random.seed(1)
    image_values = np.random.rand(10, 2, 2, 3)
    expected_mean = image_values.mean((0, 1, 2))
    expected_var = image_values.var((0, 1, 2)) * 40 / 39
    images = image_values.astype(np.float32)
    for _ in range(10):
        slim.batch_norm(images, decay=0.1, scope="BatchNorm", reuse=slim.AUTO_REUSE)
        slim.run_update_ops()
    store = slim.get_default_store()
    np.testing.assert_allclose(store["BatchNorm/moving_mean"], expected_mean, rtol=1e-5)
    np.testing.assert_allclose(store["BatchNorm/moving_variance"], expected_var, rtol=1e-5)


def test_batch_norm_inference_uses_moving_stats_and_does_not_update(fresh_store):
    x = rand(4, 3, 3, 2, seed=62)
    mm, mv = np.array([0.5, -1.0]), np.array([2.0, 0.25])
    out = slim.batch_norm(x, is_training=False, scope="bn", param_initializers={
        "moving_mean": mm, "moving_variance": mv})
    np.testing.assert_allclose(out, bn_reference(x, (0, 1, 2), mm, mv, 1e-3), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(fresh_store["bn/moving_mean"], mm.astype(np.float32))
    np.testing.assert_array_equal(fresh_store["bn/moving_variance"], mv.astype(np.float32))


def test_batch_norm_center_scale_flags_and_activation():
    x = rand(6, 2, 2, 3, seed=63)
    out = slim.batch_norm(x, center=False, activation_fn=slim.relu, scope="bn")
    assert [v.name for v in slim.get_variables()] == ["bn/moving_mean", "bn/moving_variance"]
    ref = np.maximum(bn_reference(x, (0, 1, 2), x.astype(np.float64).mean((0, 1, 2)),
                                  x.astype(np.float64).var((0, 1, 2)), 1e-3), 0)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_batch_norm_param_regularizers_and_trainable_false():
    x = rand(6, 2, 2, 3, seed=64)
    slim.batch_norm(x, scale=True, trainable=False,
                    param_regularizers={"gamma": slim.l2_regularizer(0.5)})
    assert slim.get_trainable_variables() == []
    assert float(slim.get_regularization_losses()[0]) == pytest.approx(0.5 * 3 / 2)


def test_batch_norm_float16_params_are_float32(fresh_store):
    x = rand(4, 2, 2, 3, seed=65, dtype=np.float16)
    out = slim.batch_norm(x, scale=True)
    assert out.dtype == np.float16
    assert all(fresh_store[n].dtype == np.float32 for n in fresh_store)
    x64 = x.astype(np.float64)
    ref = bn_reference(x64, (0, 1, 2), x64.mean((0, 1, 2)), x64.var((0, 1, 2)), 1e-3)
    np.testing.assert_allclose(out, ref, rtol=2e-3, atol=2e-3)


def test_batch_norm_rank2_and_errors():
    x = rand(8, 5, seed=66)
    out = slim.batch_norm(x)
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
    with pytest.raises(ValueError, match="rank"):
        slim.batch_norm(np.float32(3))
    with pytest.raises(ValueError, match="rank"):
        slim.batch_norm(np.ones(3), data_format="NCHW")
    with pytest.raises(ValueError, match="zero_debias_moving_mean"):
        slim.batch_norm(x, zero_debias_moving_mean=True)
    with pytest.raises(ValueError, match="reuse=True cannot be used without a name_or_scope"):
        slim.batch_norm(x, reuse=True)


# --------------------------------------------------------------------------- threads


def test_layers_with_shared_variables_from_many_threads():
    x = rand(2, 8, 8, 4, seed=70)
    expected = slim.conv2d(x, 8, 3, scope="shared")
    store = slim.get_default_store()
    results, errors = [], []

    def worker():
        try:
            with store:
                for _ in range(20):
                    with slim.variable_scope("outer", reuse=slim.AUTO_REUSE):
                        pass
                    results.append(slim.conv2d(x, 8, 3, scope="shared", reuse=True))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 80
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_layer_seed_reproducible_independent_of_order():
    x = rand(1, 5, 5, 3)
    with slim.VariableStore(seed=5) as s1:
        slim.conv2d(x, 4, 3, scope="a")
        slim.conv2d(x, 4, 3, scope="b")
    with slim.VariableStore(seed=5) as s2:
        slim.conv2d(x, 4, 3, scope="b")
        slim.conv2d(x, 4, 3, scope="a")
    for name in ("a/weights", "b/weights"):
        np.testing.assert_array_equal(s1[name], s2[name])


# --------------------------------------------------------------------------- more slim ports


def test_batch_norm_custom_initializer_slim_values():
    # slim testCustomInitializer: 2 * (9 - 5) / sqrt(4) + 5 == 9.
    x = np.full((5, 3, 3, 3), 9.0, np.float32)
    out = slim.batch_norm(x, is_training=False, scale=True, epsilon=0.0, param_initializers={
        "beta": slim.constant_initializer(5.0), "gamma": slim.constant_initializer(2.0),
        "moving_mean": slim.constant_initializer(5.0),
        "moving_variance": slim.constant_initializer(4.0)})
    np.testing.assert_allclose(out, x, rtol=1e-5)


def test_batch_norm_train_then_eval_agree_after_updates():
    # slim testReuseVarsFused: after 10 updates with decay 0.1 the eval output
    # equals the training output once the Bessel factor is taken out.
    x = np.random.default_rng(1).random((10, 3, 3, 3)).astype(np.float32)
    for _ in range(10):
        train = slim.batch_norm(x, decay=0.1, scope="BN", reuse=slim.AUTO_REUSE)
        slim.run_update_ops()
    store = slim.get_default_store()
    store.variable("BN/moving_variance").assign(store["BN/moving_variance"] * 89 / 90)
    evaluated = slim.batch_norm(x, decay=0.1, is_training=False, scope="BN", reuse=True)
    np.testing.assert_allclose(evaluated, train, rtol=1e-4, atol=1e-4)


def test_batch_norm_large_offset_output_moments():
    # slim testTrainMovingVarsNHWC: inputs around 256 still normalise to mean 0, var 1.
    values = np.random.default_rng(2).random((10, 7, 7, 32)) + 256
    x = values.astype(np.float32)
    for _ in range(10):
        out = slim.batch_norm(x, decay=0.2, scope="BatchNorm", reuse=slim.AUTO_REUSE)
        slim.run_update_ops()
        np.testing.assert_allclose(out.mean((0, 1, 2)), 0, rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(out.var((0, 1, 2)), 1, rtol=1e-2, atol=1e-2)
    store = slim.get_default_store()
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(store["BatchNorm/moving_mean"], x64.mean((0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(store["BatchNorm/moving_variance"],
                               x64.var((0, 1, 2)) * 490 / 489, rtol=1e-5)


@pytest.mark.parametrize("is_training", [True, False])
def test_batch_norm_nhwc_and_nchw_agree(is_training):
    x = np.arange(5 * 2 * 3 * 4, dtype=np.float32).reshape(5, 2, 3, 4)
    params = {"beta": np.arange(2, 6.0), "gamma": 2 * np.arange(10, 14.0),
              "moving_mean": 5 * np.arange(3, 7.0), "moving_variance": 4 * np.arange(1, 5.0)}
    nhwc = slim.batch_norm(x, scale=True, epsilon=0.5, is_training=is_training,
                           param_initializers=params, scope="a")
    nchw = slim.batch_norm(x.transpose(0, 3, 1, 2), scale=True, epsilon=0.5,
                           is_training=is_training, param_initializers=params,
                           data_format="NCHW", scope="b")
    np.testing.assert_allclose(nchw.transpose(0, 2, 3, 1), nhwc, rtol=1e-5, atol=1e-4)


def test_batch_norm_float16_close_to_float32():
    x = np.random.default_rng(3).standard_normal((5, 2, 3, 4))
    half = slim.batch_norm(x.astype(np.float16), scope="h")
    single = slim.batch_norm(x.astype(np.float32), scope="s")
    np.testing.assert_allclose(half, single, rtol=1e-3, atol=2e-3)


@pytest.mark.parametrize("pool", ["max_pool2d", "avg_pool2d"])
def test_pool_shapes_as_slim(pool):
    fn = getattr(slim, pool)
    x = rand(5, 3, 6, 3)
    assert fn(x, [3, 3]).shape == (5, 1, 2, 3)
    assert fn(x, 3).shape == (5, 1, 2, 3)
    assert fn(x, [3, 3], padding="SAME").shape == (5, 2, 3, 3)
    assert fn(x, [3, 3], stride=1, padding="SAME").shape == (5, 3, 6, 3)
    assert fn(x, x.shape[1:3], stride=1).shape == (5, 1, 1, 3)  # global pooling
    assert fn(rand(5, 3, 3, 6), [3, 3], data_format="NCHW").shape == (5, 3, 1, 2)
    out = fn(x, 3, outputs_collections="outputs", scope="pool1")
    assert slim.convert_collection_to_dict("outputs") == {"pool1": out}


def test_conv2d_shapes_as_slim():
    assert slim.conv2d(rand(5, 7, 9, 3), 32, rand(5, 7, 9, 3).shape[1:3]).shape == (5, 7, 9, 32)
    assert slim.conv2d(rand(5, 7, 9, 32), 64, (7, 9), padding="VALID").shape == (5, 1, 1, 64)
    assert slim.conv2d(rand(5, 6, 8, 3), 32, [3, 3], stride=2).shape == (5, 3, 4, 32)
    assert slim.conv2d(rand(5, 10, 12, 3), 32, [3, 3], rate=2).shape == (5, 10, 12, 32)
    assert slim.conv2d(rand(5, 10, 12, 3), 32, [3, 3], rate=2, padding="VALID").shape == \
        (5, 6, 8, 32)
    assert slim.conv2d(rand(5, 10, 12, 3), 32, [3, 3], rate=[2, 3], padding="VALID").shape == \
        (5, 6, 6, 32)
    assert slim.conv2d(rand(5, 3, 9, 11), 32, [3, 3], padding="VALID",
                       data_format="NCHW").shape == (5, 32, 7, 9)
    assert slim.conv2d(rand(5, 9, 11, 3), 32, [3, 3], rate=2, padding="VALID",
                       scope="conv7").shape == (5, 5, 7, 32)
    assert [v.name for v in slim.get_variables("conv7")] == ["conv7/weights", "conv7/biases"]


def test_conv2d_python_overhead_stays_small(monkeypatch):
    """The layer's own work (arg_scope, scopes, variable lookup) per call with existing
    variables, the C call stubbed out. The budget is 20 us over nn.conv2d; the bound here
    is loose (a guard against per-call introspection creeping in), not a benchmark."""
    import timeit
    import types

    from pyconv import layers

    x = rand(1, 8, 8, 8)
    slim.conv2d(x, 8, 3, scope="c")
    stub = types.SimpleNamespace(conv2d=lambda *a, **k: x, relu=slim.nn.relu,
                                 relu6=slim.nn.relu6)
    monkeypatch.setattr(layers, "_nn", stub)
    per_call = min(timeit.repeat(lambda: slim.conv2d(x, 8, 3, scope="c", reuse=True),
                                 number=2000, repeat=5)) / 2000
    assert per_call < 100e-6
