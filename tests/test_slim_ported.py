"""TF-Slim's own behaviour tests, ported to pyconv where no equivalent test existed.

Source: tf-slim 1.1.0 ``layers/layers_test.py`` (AvgPool2DTest, MaxPool2DTest,
ConvolutionTest, BatchNormTest) and ``nets/resnet_v1_test.py`` /
``nets/resnet_v2_test.py`` (ResnetUtilsTest), ``ops/arg_scope_test.py``
(ArgScopeTest). Each test is named
``test_<slim class>_<slim method>`` and checks what slim's test checks, minus
the TF-only parts (graph op names, placeholders, update ops, GPUs); see
``tools/tf_reference/SLIM_TESTS.md`` for every slim test, where its pyconv
equivalent lives (this file, tests/test_layers.py, tests/test_arg_scope.py,
tests/test_variables.py) and why the rest do not apply.

Slim's inputs are ``random_uniform`` / ``np.random.rand``; any array of that
shape does. The ResNet blocks (bottleneck v1/v2, stack_blocks_dense,
resnet_arg_scope) are small local NumPy ports built from pyconv's layers: pyconv
ships no networks.
"""

import collections

import numpy as np
import pytest

import pyconv as slim
from pyconv import GraphKeys


@pytest.fixture(autouse=True)
def fresh_store():
    with slim.VariableStore(seed=1) as store:
        yield store


def uniform(*shape, seed=1, dtype=np.float32):
    return np.random.default_rng(seed).random(shape).astype(dtype)


def names(variables):
    return [v.name for v in variables]


# =========================================================================== AvgPool2DTest


def test_AvgPool2DTest_testInvalidDataFormat():
    with pytest.raises(ValueError, match="data_format has to be either NCHW or NHWC"):
        slim.avg_pool2d(uniform(5, 3, 6, 3), [3, 3], data_format="CHWN")


def test_AvgPool2DTest_testCreateAvgPool():
    images = np.random.default_rng(0).uniform(size=(5, 3, 6, 3))  # float64, as slim's
    output = slim.avg_pool2d(images, [3, 3], outputs_collections="outputs")
    assert output.shape == (5, 1, 2, 3) and output.dtype == np.float64
    assert list(slim.convert_collection_to_dict("outputs")) == ["AvgPool2D"]  # op AvgPool2D/...


def test_AvgPool2DTest_testCreateAvgPoolNCHW():
    images = np.random.default_rng(0).uniform(size=(5, 2, 3, 6))
    assert slim.avg_pool2d(images, [3, 3], data_format="NCHW").shape == (5, 2, 1, 2)


def test_AvgPool2DTest_testCollectOutputs():
    output = slim.avg_pool2d(uniform(5, 3, 6, 3), [3, 3], outputs_collections="outputs")
    assert slim.get_collection("outputs")[0] is output
    assert slim.get_tensor_aliases(output) == ["AvgPool2D"]


def test_AvgPool2DTest_testCreateAvgPoolWithSamePaddingNCHW():
    output = slim.avg_pool2d(uniform(5, 3, 3, 6), [3, 3], padding="SAME", data_format="NCHW")
    assert output.shape == (5, 3, 2, 3)


# =========================================================================== MaxPool2DTest


def test_MaxPool2DTest_testInvalidDataFormat():
    with pytest.raises(ValueError, match="data_format has to be either NCHW or NHWC"):
        slim.max_pool2d(uniform(5, 3, 6, 3), [3, 3], data_format="CHWN")


def test_MaxPool2DTest_testCollectOutputs():
    output = slim.max_pool2d(uniform(5, 3, 6, 3), [3, 3], outputs_collections="outputs")
    assert slim.get_collection("outputs")[0] is output
    assert slim.get_tensor_aliases(output) == ["MaxPool2D"]


def test_MaxPool2DTest_testCreateMaxPoolWithSamePaddingNCHW():
    output = slim.max_pool2d(uniform(5, 3, 3, 6), [3, 3], padding="SAME", data_format="NCHW")
    assert output.shape == (5, 3, 2, 3)


# =========================================================================== ConvolutionTest


def test_ConvolutionTest_testCreateConvNCHW():
    output = slim.convolution2d(uniform(5, 4, 7, 9), 32, [3, 3], data_format="NCHW")
    assert output.shape == (5, 32, 7, 9)
    assert slim.get_variables_by_name("weights")[0].shape == (3, 3, 4, 32)  # HWIO in NCHW too
    assert slim.get_variables_by_name("biases")[0].shape == (32,)


def test_ConvolutionTest_testCreateSquareConv():
    assert slim.convolution2d(uniform(5, 7, 9, 3), 32, 3).shape == (5, 7, 9, 32)


def test_ConvolutionTest_testCreateFullyConv():
    output = slim.convolution2d(uniform(5, 7, 9, 32), 64, (7, 9), padding="VALID")
    assert output.shape == (5, 1, 1, 64)
    assert slim.get_variables_by_name("biases")[0].shape == (64,)


def test_ConvolutionTest_testCreateVerticalConv():
    output = slim.convolution2d(uniform(5, 7, 9, 4), 32, [3, 1])
    assert output.shape == (5, 7, 9, 32)
    assert slim.get_variables_by_name("weights")[0].shape == (3, 1, 4, 32)
    assert slim.get_variables_by_name("biases")[0].shape == (32,)


def test_ConvolutionTest_testCreateHorizontalConv():
    output = slim.convolution2d(uniform(5, 7, 9, 4), 32, [1, 3])
    assert output.shape == (5, 7, 9, 32)
    assert slim.get_variables_by_name("weights")[0].shape == (1, 3, 4, 32)


@pytest.mark.parametrize("rate", [1, 2], ids=["RateOne", "WithRateTwo"])
def test_ConvolutionTest_testCreateConvCreatesWeightsAndBiasesVars(rate):
    # rate 2: slim's testCreateConvCreatesWeightsAndBiasesVarsWithRateTwo
    assert not slim.get_variables("conv1/weights")
    assert not slim.get_variables("conv1/biases")
    slim.convolution2d(uniform(5, 7, 9, 3), 32, [3, 3], rate=rate, scope="conv1")
    assert slim.get_variables("conv1/weights")
    assert slim.get_variables("conv1/biases")


def test_ConvolutionTest_testCreateConvWithScope():
    output = slim.convolution2d(uniform(5, 7, 9, 3), 32, [3, 3], scope="conv1",
                                outputs_collections="outputs")
    assert names(slim.get_variables()) == ["conv1/weights", "conv1/biases"]
    assert slim.get_tensor_aliases(output) == ["conv1"]  # op conv1/Relu in TF
    assert (output >= 0).all()


def test_ConvolutionTest_testCreateConvValid():
    output = slim.convolution2d(uniform(5, 7, 9, 3), 32, [3, 3], padding="VALID")
    assert output.shape == (5, 5, 7, 32)


def test_ConvolutionTest_testReuseConvWithWD():
    images = uniform(5, 7, 9, 3)
    with slim.arg_scope([slim.convolution2d], weights_regularizer=slim.l2_regularizer(0.01)):
        slim.convolution2d(images, 32, [3, 3], scope="conv1")
        assert len(slim.get_variables()) == 2
        assert len(slim.get_collection(GraphKeys.REGULARIZATION_LOSSES)) == 1
        slim.convolution2d(images, 32, [3, 3], scope="conv1", reuse=True)
        assert len(slim.get_variables()) == 2
        assert len(slim.get_collection(GraphKeys.REGULARIZATION_LOSSES)) == 1


def test_ConvolutionTest_testDynamicOutputSizeWithRateOneValidPadding():
    # slim feeds zeros through a placeholder; NumPy shapes are always known
    output = slim.convolution2d(np.zeros((5, 9, 11, 3), np.float32), 32, [3, 3], rate=1,
                                padding="VALID")
    assert output.shape == (5, 7, 9, 32)


def test_ConvolutionTest_testWithScopeWithoutActivation():
    output = slim.convolution2d(uniform(5, 9, 11, 3), 32, [3, 3], rate=2, padding="VALID",
                                activation_fn=None, scope="conv7")
    assert output.shape == (5, 5, 7, 32)
    assert (output < 0).any()  # conv + bias, no relu (op conv7/BiasAdd in TF)
    assert names(slim.get_variables()) == ["conv7/weights", "conv7/biases"]


# =========================================================================== BatchNormTest


@pytest.mark.parametrize("fused", [False, True], ids=["Default", "Fused"])
def test_BatchNormTest_testCreateOp(fused):
    # testCreateOpDefault (fused=False); the fused op's name is TF's (No)
    images = np.random.default_rng(0).uniform(size=(5, 3, 3, 3)).astype("f")
    output = slim.batch_norm(images, fused=fused)
    assert output.shape == (5, 3, 3, 3)
    assert slim.get_collection(GraphKeys.REGULARIZATION_LOSSES) == []


@pytest.mark.parametrize("fused", [True, False], ids=["Fused", "NonFused"])
@pytest.mark.parametrize("param", ["beta", "gamma"])
def test_BatchNormTest_testCreateOpRegularizer(param, fused):
    # testCreateOp{Beta,Gamma}Regularizer{Fused,NonFused}: one loss, 0.1 * sum(param)
    images = np.random.default_rng(0).uniform(size=(5, 3, 3, 3)).astype("f")
    init = {param: np.array([0.5, -1.0, 2.0])}
    slim.batch_norm(images, param_regularizers={param: lambda x: 0.1 * np.sum(x)}, scale=True,
                    fused=fused, param_initializers=init)
    losses = slim.get_collection(GraphKeys.REGULARIZATION_LOSSES)
    assert len(losses) == 1
    assert float(losses[0]) == pytest.approx(0.15)
    assert losses[0].name.startswith(f"BatchNorm/{param}/Regularizer/")  # TF: .../mul


def test_BatchNormTest_testCreateMovingVars():
    slim.batch_norm(uniform(5, 3, 3, 3))
    moving_mean = slim.get_variables("BatchNorm/moving_mean")
    assert names(moving_mean) == ["BatchNorm/moving_mean"]
    moving_variance = slim.get_variables("BatchNorm/moving_variance")
    assert names(moving_variance) == ["BatchNorm/moving_variance"]


def _ten_batch_norm_updates(fused, data_format):
    """slim's in-place update loop: 10 training runs, decay 0.1, on the same images."""
    np.random.seed(1)
    image_values = np.random.rand(10, 2, 2, 3)
    if data_format == "NCHW":
        image_values = image_values.transpose(0, 3, 1, 2)
    axis = (0, 1, 2) if data_format == "NHWC" else (0, 2, 3)
    images = image_values.astype(np.float32)
    for step in range(10):
        slim.batch_norm(images, decay=0.1, updates_collections=None, fused=fused,
                        data_format=data_format, scope="BatchNorm", reuse=True if step else None)
    expected_var = image_values.var(axis)
    if fused:
        expected_var = expected_var * 40 / 39  # Bessel's correction, 40 values per channel
    return image_values.mean(axis), expected_var


@pytest.mark.parametrize("fused, data_format", [
    (False, "NHWC"), (False, "NCHW"), (True, "NCHW")],
    ids=["NHWC", "NCHW", "FusedNCHW"])
def test_BatchNormTest_testNoneUpdatesCollections(fused, data_format):
    # testNoneUpdatesCollections{NHWC,NCHW,FusedNCHW} (FusedNHWC: tests/test_layers.py).
    # The moving statistics start at 0 / 1 and converge to the batch moments; the
    # non-fused path (fused=False) keeps the biased variance, the fused one
    # (slim's default for float32) the unbiased one.
    assert slim.get_variables() == []
    mean, var = _ten_batch_norm_updates(fused, data_format)
    store = slim.get_default_store()
    np.testing.assert_allclose(store["BatchNorm/moving_mean"], mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(store["BatchNorm/moving_variance"], var, rtol=1e-6, atol=1e-6)


def test_BatchNormTest_testEvalMovingVars():
    # also testEvalMovingVarsZeroDebias (its helper ignores zero_debias)
    image_values = np.random.default_rng(2).random((10, 3, 3, 3))
    expected_mean = image_values.mean((0, 1, 2))
    expected_var = image_values.var((0, 1, 2))
    slim.batch_norm(image_values.astype(np.float32), decay=0.1, is_training=False)
    store = slim.get_default_store()
    np.testing.assert_array_equal(store["BatchNorm/moving_mean"], [0, 0, 0])
    np.testing.assert_array_equal(store["BatchNorm/moving_variance"], [1, 1, 1])
    store.variable("BatchNorm/moving_mean").assign(expected_mean)  # as a saver restore
    store.variable("BatchNorm/moving_variance").assign(expected_var)
    rng = np.random.default_rng(3)
    for _ in range(10):  # different images each time, statistics unchanged
        slim.batch_norm(rng.random((10, 3, 3, 3)).astype(np.float32), decay=0.1,
                        is_training=False, scope="BatchNorm", reuse=True)
    np.testing.assert_allclose(store["BatchNorm/moving_mean"], expected_mean, rtol=1e-6)
    np.testing.assert_allclose(store["BatchNorm/moving_variance"], expected_var, rtol=1e-6)


def test_BatchNormTest_testReuseVarsDefault():
    # fused=False: the biased variance goes into moving_variance, so train and
    # eval agree after convergence without any correction (the fused variant,
    # testReuseVarsFused, is tests/test_layers.py)
    image_values = np.random.default_rng(4).random((10, 3, 3, 3))
    images = image_values.astype(np.float32)
    # as slim: the updates are queued, so the eval before they run sees the initial stats
    train = slim.batch_norm(images, decay=0.1, is_training=True, scope="BN", fused=False)
    before = slim.batch_norm(images, decay=0.1, is_training=False, scope="BN", reuse=True,
                             fused=False)
    np.testing.assert_allclose(before, images / np.sqrt(1.001), rtol=1e-6)
    assert not np.allclose(train, before)
    assert slim.run_update_ops() == 2
    for _ in range(9):
        train = slim.batch_norm(images, decay=0.1, is_training=True, scope="BN", reuse=True,
                                fused=False)
        assert slim.run_update_ops() == 2
    store = slim.get_default_store()
    np.testing.assert_allclose(store["BN/moving_mean"], image_values.mean((0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(store["BN/moving_variance"], image_values.var((0, 1, 2)),
                               rtol=1e-5)
    evaluated = slim.batch_norm(images, decay=0.1, is_training=False, scope="BN", reuse=True,
                                fused=False)
    np.testing.assert_allclose(train, evaluated, rtol=1e-5, atol=1e-5)
    assert len(slim.get_variables()) == 3  # beta, moving_mean, moving_variance, shared


def test_BatchNormTest_testNoUpdatesWhenIsTrainingFalse():
    # also testNoneUpdatesCollectionNoTraining (same expectation)
    images = np.random.default_rng(5).random((10, 3, 3, 3)).astype(np.float32)
    for step in range(10):
        slim.batch_norm(images, decay=0.1, is_training=False, updates_collections=None,
                        scope="BatchNorm", reuse=True if step else None)
    store = slim.get_default_store()
    np.testing.assert_array_equal(store["BatchNorm/moving_mean"], [0, 0, 0])
    np.testing.assert_array_equal(store["BatchNorm/moving_variance"], [1, 1, 1])


@pytest.mark.parametrize("fused, data_format", [
    (False, "NHWC"), (False, "NCHW"), (True, "NCHW")],
    ids=["NHWC", "NCHW", "FusedNCHW"])
def test_BatchNormTest_testTrainMovingVars(fused, data_format):
    # testTrainMovingVars{NHWC,NCHW,FusedNCHW} (FusedNHWC: tests/test_layers.py):
    # inputs around 256 (float32 cancellation risk), decay 0.2; every training
    # output has per-channel mean ~0 and variance ~1; after 10 steps the moving
    # statistics are the batch moments. The gradient part has no NumPy analogue.
    np.random.seed(1)
    image_values = np.random.rand(10, 7, 7, 32) + 256
    if data_format == "NCHW":
        image_values = image_values.transpose(0, 3, 1, 2)
    axis = (0, 1, 2) if data_format == "NHWC" else (0, 2, 3)
    images = image_values.astype(np.float32)
    for step in range(10):
        output = slim.batch_norm(images, decay=0.2, updates_collections=None, is_training=True,
                                 fused=fused, data_format=data_format, scope="BatchNorm",
                                 reuse=True if step else None)
        np.testing.assert_allclose(output.mean(axis), 0, rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(output.var(axis), 1, rtol=1e-2, atol=1e-2)
    store = slim.get_default_store()
    x64 = images.astype(np.float64)
    expected_var = x64.var(axis) * (490 / 489 if fused else 1.0)
    np.testing.assert_allclose(store["BatchNorm/moving_mean"], x64.mean(axis), rtol=1e-6)
    np.testing.assert_allclose(store["BatchNorm/moving_variance"], expected_var, rtol=1e-5)


# =========================================================================== ArgScopeTest


@slim.add_arg_scope
def func1(*args, **kwargs):
    return (args, kwargs)


@slim.add_arg_scope
def func2(*args, **kwargs):
    return (args, kwargs)


def test_ArgScopeTest_testSharedArgScopeTuple():
    with slim.arg_scope((func1, func2), a=1, b=None, c=[1]):
        assert func1(0) == ((0,), {"a": 1, "b": None, "c": [1]})
        assert func2(0) == ((0,), {"a": 1, "b": None, "c": [1]})


# =========================================================================== ResnetUtilsTest
# Local NumPy ports of tf-slim's ResNet building blocks, written from their
# documented behaviour on top of pyconv's layers.

Block = collections.namedtuple("Block", ["scope", "unit_fn", "args"])


def resnet_arg_scope():
    bn = {"decay": 0.997, "epsilon": 1e-5, "scale": True,
          "updates_collections": GraphKeys.UPDATE_OPS}
    with slim.arg_scope([slim.conv2d], weights_regularizer=slim.l2_regularizer(0.0001),
                        weights_initializer=slim.variance_scaling_initializer(),
                        activation_fn=slim.relu, normalizer_fn=slim.batch_norm,
                        normalizer_params=bn), slim.arg_scope([slim.batch_norm], **bn), \
            slim.arg_scope([slim.max_pool2d], padding="SAME") as sc:
        return sc


@slim.add_arg_scope
def bottleneck_v1(inputs, depth, depth_bottleneck, stride, rate=1, outputs_collections=None,
                  scope=None):
    """Original residual unit: conv-BN after each conv, relu after the sum."""
    with slim.variable_scope(scope, "bottleneck_v1") as sc:
        if depth == inputs.shape[-1]:
            shortcut = slim.subsample(inputs, stride, "shortcut")
        else:
            shortcut = slim.conv2d(inputs, depth, [1, 1], stride=stride, activation_fn=None,
                                   scope="shortcut")
        residual = slim.conv2d(inputs, depth_bottleneck, [1, 1], stride=1, scope="conv1")
        residual = slim.conv2d_same(residual, depth_bottleneck, 3, stride, rate=rate,
                                    scope="conv2")
        residual = slim.conv2d(residual, depth, [1, 1], stride=1, activation_fn=None,
                               scope="conv3")
        return slim.collect_named_outputs(outputs_collections, sc.name,
                                          slim.relu(shortcut + residual))


@slim.add_arg_scope
def bottleneck_v2(inputs, depth, depth_bottleneck, stride, rate=1, outputs_collections=None,
                  scope=None):
    """Pre-activation unit: BN + relu first, no normalizer/activation on the last conv."""
    with slim.variable_scope(scope, "bottleneck_v2") as sc:
        preact = slim.batch_norm(inputs, activation_fn=slim.relu, scope="preact")
        if depth == inputs.shape[-1]:
            shortcut = slim.subsample(inputs, stride, "shortcut")
        else:
            shortcut = slim.conv2d(preact, depth, [1, 1], stride=stride, normalizer_fn=None,
                                   activation_fn=None, scope="shortcut")
        residual = slim.conv2d(preact, depth_bottleneck, [1, 1], stride=1, scope="conv1")
        residual = slim.conv2d_same(residual, depth_bottleneck, 3, stride, rate=rate,
                                    scope="conv2")
        residual = slim.conv2d(residual, depth, [1, 1], stride=1, normalizer_fn=None,
                               activation_fn=None, scope="conv3")
        return slim.collect_named_outputs(outputs_collections, sc.name, shortcut + residual)


def resnet_block(unit_fn, scope, base_depth, num_units, stride):
    """num_units bottlenecks of depth 4 * base_depth; the block's stride is on its last unit."""
    unit = {"depth": base_depth * 4, "depth_bottleneck": base_depth}
    return Block(scope, unit_fn, [dict(unit, stride=1)] * (num_units - 1) +
                 [dict(unit, stride=stride)])


def stack_blocks_dense(net, blocks, output_stride=None):
    """Once the product of the strides reaches output_stride, the remaining units
    run with stride 1 and an atrous rate that grows by each skipped stride."""
    current_stride, rate = 1, 1
    for block in blocks:
        with slim.variable_scope(block.scope, "block"):
            for i, unit in enumerate(block.args):
                if output_stride is not None and current_stride > output_stride:
                    raise ValueError("The target output_stride cannot be reached.")
                with slim.variable_scope(f"unit_{i + 1}"):
                    if output_stride is not None and current_stride == output_stride:
                        net = block.unit_fn(net, rate=rate, **dict(unit, stride=1))
                        rate *= unit["stride"]
                    else:
                        net = block.unit_fn(net, rate=1, **unit)
                        current_stride *= unit["stride"]
    if output_stride is not None and current_stride != output_stride:
        raise ValueError("The target output_stride cannot be reached.")
    return net


def stack_blocks_nondense(net, blocks):
    for block in blocks:
        with slim.variable_scope(block.scope, "block"):
            for i, unit in enumerate(block.args):
                with slim.variable_scope(f"unit_{i + 1}"):
                    net = block.unit_fn(net, rate=1, **unit)
    return net


def create_input(batch, height, width, channels):
    """resnet tests' input: value = row + column, float32."""
    grid = np.add.outer(np.arange(height), np.arange(width)).astype(np.float32)
    return np.tile(grid.reshape(1, height, width, 1), (batch, 1, 1, channels))


@pytest.mark.parametrize("version", ["V1", "V2"])
def test_ResnetUtilsTest_testEndPoints(version):
    # testEndPointsV1 (resnet_v1_test) / testEndPointsV2 (resnet_v2_test)
    unit_fn = bottleneck_v1 if version == "V1" else bottleneck_v2
    blocks = [resnet_block(unit_fn, "block1", base_depth=1, num_units=2, stride=2),
              resnet_block(unit_fn, "block2", base_depth=2, num_units=2, stride=1)]
    with slim.arg_scope(resnet_arg_scope()), slim.variable_scope("tiny"), \
            slim.arg_scope([slim.conv2d], outputs_collections="end_points"):
        net = stack_blocks_dense(create_input(2, 32, 16, 3), blocks)
    end_points = slim.convert_collection_to_dict("end_points")
    unit = "bottleneck_" + version.lower()
    expected = []
    for block in ("block1", "block2"):
        expected += [f"tiny/{block}/unit_1/{unit}/{n}" for n in ("shortcut", "conv1", "conv2",
                                                                   "conv3")]
        expected += [f"tiny/{block}/unit_2/{unit}/{n}" for n in ("conv1", "conv2", "conv3")]
    assert sorted(end_points) == sorted(expected)
    assert net.shape == (2, 16, 8, 8)


@pytest.mark.parametrize("version", ["V1", "V2"])
@pytest.mark.parametrize("output_stride", [1, 2, 4, 8, None])
def test_ResnetUtilsTest_testAtrousValuesBottleneck(version, output_stride):
    # Dense feature extraction (stride replaced by atrous rate from output_stride
    # on) followed by subsample equals the nominal network with the same weights,
    # on an odd and an even input size (30 x 31): conv2d_same's padding makes it so.
    unit_fn = bottleneck_v1 if version == "V1" else bottleneck_v2
    blocks = [resnet_block(unit_fn, "block1", base_depth=1, num_units=2, stride=2),
              resnet_block(unit_fn, "block2", base_depth=2, num_units=2, stride=2),
              resnet_block(unit_fn, "block3", base_depth=4, num_units=2, stride=2),
              resnet_block(unit_fn, "block4", base_depth=8, num_units=2, stride=1)]
    nominal_stride = 8
    inputs = create_input(1, 30, 31, 3)
    with slim.arg_scope(resnet_arg_scope()), slim.arg_scope([slim.batch_norm],
                                                            is_training=False):
        output = stack_blocks_dense(inputs, blocks, output_stride)
        factor = 1 if output_stride is None else nominal_stride // output_stride
        output = slim.subsample(output, factor)
        slim.get_variable_scope().reuse_variables()
        expected = stack_blocks_nondense(inputs, blocks)
    assert output.shape == expected.shape == (1, 4, 4, 32)
    np.testing.assert_allclose(output, expected, atol=1e-4, rtol=1e-4)
