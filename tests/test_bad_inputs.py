"""Bad inputs to every public function: the right exception, a message that
names the argument, and never a crash, a hang or a wrong answer.

Cases already in test_nn.py / test_layers.py (rank 3 and 5 inputs, channel
mismatch, 'VAILD', strides 0 and 1.5, complex and object inputs, ...) are not
repeated here. A known gap in a file owned by someone else is a case with
``xfail=reason`` (strict), so it turns red the day it is fixed.

Huge shapes use zero-stride ``np.broadcast_to`` views (no memory behind
them) and must fail with a ``MemoryError`` or ``ValueError`` before anything
big is allocated; ``tracemalloc`` (which sees NumPy's data allocations)
checks that. ``pyconv._memory._limit`` is lowered to simulate a small machine.
"""

import os
import subprocess
import sys
import tracemalloc
import warnings

import numpy as np
import pytest
from reference import conv2d_reference

import pyconv
import pyconv as slim
from pyconv import _conv
from pyconv import _conv, _memory

nn = pyconv.nn
MiB = 1 << 20


@pytest.fixture(autouse=True)
def fresh_store():
    with slim.VariableStore(seed=0) as store:
        yield store


def x4(shape=(1, 5, 5, 3), dtype=np.float32):
    return np.zeros(shape, dtype)


def w4(shape=(3, 3, 3, 2), dtype=np.float32):
    return np.zeros(shape, dtype)


def huge(shape, dtype=np.float32):
    """A read-only array of any shape with one element of memory behind it."""
    return np.broadcast_to(np.zeros((), dtype), shape)


def raises(call, exc, *words):
    """call() raises exc whose message contains every word (case-insensitive)."""
    with pytest.raises(exc) as info:
        call()
    message = str(info.value).lower()
    for word in words:
        assert word.lower() in message, f"{word!r} not in {str(info.value)!r}"
    return info.value


def case(id, call, exc, *words, xfail=None):
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(call, exc, words, id=id, marks=marks)


# --------------------------------------------------------------------------- pyconv.nn

NN_CASES = [
    # input
    case("input-object", lambda: nn.conv2d(object(), w4()), TypeError, "input", "object"),
    case("input-datetime", lambda: nn.conv2d(x4(dtype="M8[s]"), w4()), TypeError, "input",
         "datetime64"),
    case("input-timedelta", lambda: nn.conv2d(x4(dtype="m8[s]"), w4()), TypeError, "input"),
    case("input-structured", lambda: nn.conv2d(x4(dtype=[("a", "f4")]), w4()), TypeError,
         "input"),
    case("input-void", lambda: nn.conv2d(x4(dtype="V4"), w4()), TypeError, "input"),
    case("input-bytes", lambda: nn.conv2d(x4(dtype="S1"), w4()), TypeError, "input"),
    case("input-longdouble", lambda: nn.conv2d(x4(dtype=np.longdouble), w4()), TypeError,
         "input", str(np.dtype(np.longdouble))),
    case("input-complex64", lambda: nn.conv2d(x4(dtype=np.complex64), w4()), TypeError,
         "input", "complex64"),
    case("input-0d", lambda: nn.conv2d(np.float32(1), w4()), ValueError, "input", "rank 4",
         "got 0"),
    case("input-list-of-arrays-ragged", lambda: nn.conv2d([x4()[0], x4()[0, :3]], w4()),
         TypeError, "input"),
    case("input-list-of-arrays-rank5", lambda: nn.conv2d([x4(), x4()], w4()), ValueError,
         "input", "rank 4", "got 5"),
    case("input-zero-width", lambda: nn.conv2d(x4((1, 5, 0, 3)), w4(), padding="VALID"),
         ValueError, "input", "width"),
    case("input-nchw-zero-height", lambda: nn.conv2d(x4((1, 3, 0, 5)), w4(), padding="VALID",
                                                     data_format="NCHW"),
         ValueError, "input", "height"),
    case("input-nchw-channels", lambda: nn.conv2d(x4((1, 5, 5, 3)), w4(), data_format="NCHW"),
         ValueError, "input channels", "(1, 5, 5, 3)", "NCHW"),
    # filters
    case("filters-none", lambda: nn.conv2d(x4(), None), TypeError, "filters"),
    case("filters-string", lambda: nn.conv2d(x4(), "abc"), TypeError, "filters"),
    case("filters-object", lambda: nn.conv2d(x4(), w4(dtype=object)), TypeError, "filters"),
    case("filters-datetime", lambda: nn.conv2d(x4(), w4(dtype="M8[s]")), TypeError, "filters"),
    case("filters-ragged", lambda: nn.conv2d(x4(), [[1], [1, 2]]), TypeError, "filters"),
    case("filters-rank5", lambda: nn.conv2d(x4(), w4((1, 3, 3, 3, 2))), ValueError, "filters",
         "rank 4"),
    case("filters-zero-kernel", lambda: nn.conv2d(x4(), w4((0, 3, 3, 2))), ValueError,
         "filters", "(0, 3, 3, 2)"),
    case("filters-zero-in-channels", lambda: nn.conv2d(x4((1, 5, 5, 0)), w4((3, 3, 0, 2))),
         ValueError, "filters", "input channel"),
    case("filters-larger-than-valid-width", lambda: nn.conv2d(x4((1, 9, 3, 3)), w4((3, 5, 3, 2)),
                                                              padding="VALID"),
         ValueError, "VALID", "output size", "width"),
    case("filters-dilated-larger-than-valid", lambda: nn.conv2d(x4(), w4(), padding="VALID",
                                                                dilations=3),
         ValueError, "VALID", "k_eff = 7"),
    case("filters-larger-than-explicit", lambda: nn.conv2d(x4(), w4((9, 9, 3, 2)),
                                                           padding=[(1, 1), (1, 1)]),
         ValueError, "explicit", "output size"),
    # strides / dilations
    case("strides-str", lambda: nn.conv2d(x4(), w4(), strides="1"), TypeError, "strides"),
    case("strides-numpy-float", lambda: nn.conv2d(x4(), w4(), strides=np.float64(1)), TypeError,
         "strides"),
    case("strides-object", lambda: nn.conv2d(x4(), w4(), strides=object()), TypeError,
         "strides"),
    case("strides-bool", lambda: nn.conv2d(x4(), w4(), strides=True), TypeError, "strides"),
    case("strides-negative", lambda: nn.conv2d(x4(), w4(), strides=-1), ValueError, "strides"),
    case("strides-pair-zero", lambda: nn.conv2d(x4(), w4(), strides=[1, 0]), ValueError,
         "strides"),
    case("strides-three", lambda: nn.conv2d(x4(), w4(), strides=[1, 1, 1]), ValueError,
         "strides"),
    case("strides-4-channel-not-1", lambda: nn.conv2d(x4(), w4(), strides=[1, 2, 2, 2]),
         ValueError, "strides"),
    case("strides-4-nchw-order", lambda: nn.conv2d(x4((1, 3, 5, 5)), w4(), strides=[1, 2, 2, 1],
                                                   data_format="NCHW"),
         ValueError, "strides", "NCHW"),
    case("strides-2**70", lambda: nn.conv2d(x4(), w4(), strides=2**70), ValueError, "strides"),
    case("dilations-zero", lambda: nn.conv2d(x4(), w4(), dilations=0), ValueError, "dilations"),
    case("dilations-float", lambda: nn.conv2d(x4(), w4(), dilations=1.5), TypeError,
         "dilations"),
    case("dilations-str", lambda: nn.conv2d(x4(), w4(), dilations="2"), TypeError, "dilations"),
    case("dilations-pair-negative", lambda: nn.conv2d(x4(), w4(), dilations=(1, -1)), ValueError,
         "dilations"),
    case("dilations-2**70", lambda: nn.conv2d(x4(), w4(), dilations=2**70), ValueError,
         "dilations"),
    case("dilations-2**62-pads-overflow", lambda: nn.conv2d(x4(), w4((5, 5, 3, 2)),
                                                            dilations=2**62),
         ValueError, "padding", "dilations"),
    # padding
    case("padding-none", lambda: nn.conv2d(x4(), w4(), padding=None), TypeError, "padding"),
    case("padding-bytes", lambda: nn.conv2d(x4(), w4(), padding=b"SAME"), TypeError, "padding"),
    case("padding-object", lambda: nn.conv2d(x4(), w4(), padding=object()), TypeError,
         "padding"),
    case("padding-empty-string", lambda: nn.conv2d(x4(), w4(), padding=""), ValueError,
         "padding", "'SAME', 'VALID', 'FULL'"),
    case("padding-trailing-space", lambda: nn.conv2d(x4(), w4(), padding="SAME "), ValueError,
         "padding", "did you mean 'SAME'"),
    case("padding-negative", lambda: nn.conv2d(x4(), w4(), padding=[(-1, 0), (0, 0)]),
         ValueError, "padding", ">= 0"),
    case("padding-float", lambda: nn.conv2d(x4(), w4(), padding=[(1.0, 0), (0, 0)]), TypeError,
         "padding"),
    case("padding-triple", lambda: nn.conv2d(x4(), w4(), padding=[(1, 0, 0), (0, 0)]),
         ValueError, "padding"),
    case("padding-three-pairs", lambda: nn.conv2d(x4(), w4(), padding=[(0, 0)] * 3), ValueError,
         "padding"),
    case("padding-tf-batch-pad", lambda: nn.conv2d(x4(), w4(), padding=[[1, 0], [0, 0], [0, 0],
                                                                        [0, 0]]),
         ValueError, "padding", "batch and channel"),
    case("padding-dict", lambda: nn.conv2d(x4(), w4(), padding={"a": 1}), ValueError, "padding"),
    case("padding-2**70", lambda: nn.conv2d(x4(), w4(), padding=[(2**70, 0), (0, 0)]),
         ValueError, "padding"),
    # data_format / activation / bias
    case("data_format-none", lambda: nn.max_pool2d(x4(), 2, 1, data_format=None), ValueError,
         "data_format"),
    case("data_format-int", lambda: nn.conv2d(x4(), w4(), data_format=1), ValueError,
         "data_format"),
    case("data_format-bytes", lambda: nn.conv2d(x4(), w4(), data_format=b"NHWC"), ValueError,
         "data_format"),
    case("activation-list", lambda: nn.conv2d(x4(), w4(), activation=[]), ValueError,
         "activation"),
    case("activation-int", lambda: nn.conv2d(x4(), w4(), activation=1), ValueError,
         "activation"),
    case("activation-callable", lambda: nn.conv2d(x4(), w4(), activation=nn.relu), ValueError,
         "activation"),
    case("bias-string", lambda: nn.conv2d(x4(), w4(), bias="ab"), ValueError, "bias"),
    case("bias-object", lambda: nn.conv2d(x4(), w4(), bias=object()), ValueError, "bias"),
    case("bias-2d", lambda: nn.conv2d(x4(), w4(), bias=np.zeros((1, 2))), ValueError, "bias",
         "(1, 2)"),
    case("bias-scalar", lambda: nn.conv2d(x4(), w4(), bias=1.0), ValueError, "bias"),
    case("bias-object-dtype", lambda: nn.conv2d(x4(), w4(), bias=np.zeros(2, object)), TypeError,
         "bias"),
    case("bias-datetime", lambda: nn.conv2d(x4(), w4(), bias=np.zeros(2, "M8[s]")), TypeError,
         "bias"),
    case("bias-ragged", lambda: nn.conv2d(x4(), w4(), bias=[[1], [1, 2]]), TypeError, "bias"),
    case("extra-positional", lambda: nn.conv2d(x4(), w4(), 1, "SAME", "NHWC", 1, None),
         TypeError, "positional"),
    # bias_add, relu, relu6
    case("bias_add-value-none", lambda: nn.bias_add(None, np.zeros(3)), TypeError, "value"),
    case("bias_add-value-rank1", lambda: nn.bias_add(np.zeros(3), np.zeros(3)), ValueError,
         "value", "rank"),
    case("bias_add-value-complex", lambda: nn.bias_add(x4(dtype=complex), np.zeros(3)),
         TypeError, "value"),
    case("bias_add-bias-length", lambda: nn.bias_add(x4(), np.zeros(4)), ValueError, "bias",
         "(3,)"),
    case("bias_add-bias-nchw-length", lambda: nn.bias_add(x4(), np.zeros(3), "NCHW"), ValueError,
         "bias", "(5,)"),
    case("bias_add-bias-object", lambda: nn.bias_add(x4(), np.zeros(3, object)), TypeError,
         "bias"),
    case("bias_add-data_format", lambda: nn.bias_add(x4(), np.zeros(3), "NWC"), ValueError,
         "data_format"),
    case("relu-none", lambda: nn.relu(None), TypeError, "features"),
    case("relu-string", lambda: nn.relu("abc"), TypeError, "features"),
    case("relu6-complex", lambda: nn.relu6(np.zeros(2, complex)), TypeError, "features"),
    # pools
    case("pool-ksize-zero", lambda: nn.avg_pool2d(x4(), 0, 1), ValueError, "ksize"),
    case("pool-ksize-none", lambda: nn.max_pool2d(x4(), None, 1), TypeError, "ksize"),
    case("pool-ksize-4-form", lambda: nn.max_pool2d(x4(), [2, 2, 2, 2], 1), ValueError,
         "ksize"),
    case("pool-strides-zero", lambda: nn.max_pool2d(x4(), 2, 0), ValueError, "strides"),
    case("pool-strides-str", lambda: nn.avg_pool2d(x4(), 2, "2"), TypeError, "strides"),
    case("pool-padding", lambda: nn.avg_pool2d(x4(), 2, 1, "foo"), ValueError, "padding"),
    case("pool-padding-not-smaller-than-window", lambda: nn.max_pool2d(x4(), 2, 1,
                                                                       [(0, 0), (2, 0)]),
         ValueError, "padding", "smaller than the window"),
    case("pool-data_format", lambda: nn.max_pool2d(x4(), 2, 1, "VALID", "NWHC"), ValueError,
         "data_format"),
    case("pool-input-complex", lambda: nn.max_pool2d(x4(dtype=complex), 2, 1), TypeError,
         "input", "complex"),
    case("pool-input-none", lambda: nn.avg_pool2d(None, 2, 1), TypeError, "input"),
    case("pool-input-zero-height", lambda: nn.avg_pool2d(x4((1, 0, 5, 3)), 2, 1), ValueError,
         "input", "height"),
    case("pool-larger-than-valid", lambda: nn.max_pool2d(x4(), 6, 1), ValueError, "VALID",
         "output size"),
]


@pytest.mark.parametrize("call, exc, words", NN_CASES)
def test_nn_bad_arguments(call, exc, words):
    raises(call, exc, *words)


def test_strides_larger_than_the_input_are_fine():
    x = np.arange(25.0).reshape(1, 5, 5, 1)
    out = nn.conv2d(x, np.ones((1, 1, 1, 1)), strides=2**62, padding="VALID")
    np.testing.assert_array_equal(out, x[:, :1, :1])
    out = nn.max_pool2d(x, 1, 2**62)
    np.testing.assert_array_equal(out, x[:, :1, :1])


def test_huge_dilation_sees_only_the_centre_tap():
    """k_eff = 2**63 + 1: every tap but the centre falls in the SAME padding."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 5, 5, 3))
    w = rng.standard_normal((3, 3, 3, 2))
    out = nn.conv2d(x, w, dilations=2**62)
    np.testing.assert_allclose(out, x @ w[1, 1], rtol=1e-12)


# --------------------------------------------------------------------------- layers

LAYER_CASES = [
    # conv2d / convolution2d
    case("conv2d-inputs-none", lambda: slim.conv2d(None, 2, 3), ValueError, "input", "rank 4"),
    case("conv2d-inputs-string", lambda: slim.conv2d("abc", 2, 3), ValueError, "input",
         "rank 4"),
    case("conv2d-inputs-object-dtype", lambda: slim.conv2d(x4(dtype=object), 2, 3), TypeError,
         "inputs", "object"),
    case("conv2d-inputs-datetime", lambda: slim.conv2d(x4(dtype="M8[s]"), 2, 3), TypeError,
         "inputs", "datetime64"),
    case("conv2d-inputs-zero-height", lambda: slim.conv2d(x4((1, 0, 5, 3)), 2, 3,
                                                          padding="VALID"), ValueError,
         "height"),
    case("conv2d-inputs-zero-channels", lambda: slim.conv2d(x4((1, 5, 5, 0)), 2, 3), ValueError,
         "channel"),
    case("convolution2d-inputs-rank2", lambda: slim.convolution2d(np.zeros((5, 5)), 2, 3),
         ValueError, "rank 4", "got 2"),
    case("conv2d-num_outputs-str", lambda: slim.conv2d(x4(), "2", 3), TypeError, "num_outputs"),
    case("conv2d-num_outputs-bool", lambda: slim.conv2d(x4(), True, 3), TypeError,
         "num_outputs"),
    case("conv2d-kernel_size-none", lambda: slim.conv2d(x4(), 2, None), TypeError,
         "kernel_size"),
    case("conv2d-kernel_size-float", lambda: slim.conv2d(x4(), 2, 1.5), TypeError,
         "kernel_size"),
    case("conv2d-kernel_size-one-item", lambda: slim.conv2d(x4(), 2, [3]), ValueError,
         "kernel_size"),
    case("conv2d-kernel_size-three", lambda: slim.conv2d(x4(), 2, [3, 3, 3]), ValueError,
         "kernel_size"),
    case("conv2d-kernel_size-str", lambda: slim.conv2d(x4(), 2, "3"), TypeError, "kernel_size"),
    case("conv2d-kernel-larger-than-valid", lambda: slim.conv2d(x4(), 2, 7, padding="VALID"),
         ValueError, "VALID", "output size"),
    case("conv2d-stride-none", lambda: slim.conv2d(x4(), 2, 3, stride=None), TypeError,
         "stride"),
    case("conv2d-stride-negative", lambda: slim.conv2d(x4(), 2, 3, stride=-2), ValueError,
         "stride"),
    case("conv2d-stride-str", lambda: slim.conv2d(x4(), 2, 3, stride="2"), TypeError, "stride"),
    case("conv2d-rate-float", lambda: slim.conv2d(x4(), 2, 3, rate=1.0), TypeError, "rate"),
    case("conv2d-rate-zero", lambda: slim.conv2d(x4(), 2, 3, rate=0), ValueError, "rate"),
    case("conv2d-padding-none", lambda: slim.conv2d(x4(), 2, 3, padding=None), TypeError,
         "padding"),
    case("conv2d-padding-negative", lambda: slim.conv2d(x4(), 2, 3, padding=[(-1, 0), (0, 0)]),
         ValueError, "padding"),
    case("conv2d-data_format-int", lambda: slim.conv2d(x4(), 2, 3, data_format=0), ValueError,
         "data_format"),
    case("conv2d-reuse-str", lambda: slim.conv2d(x4(), 2, 3, reuse="yes", scope="a"), ValueError,
         "reuse"),
    case("conv2d-scope-int", lambda: slim.conv2d(x4(), 2, 3, scope=1), TypeError, "scope"),
    case("conv2d-weights_initializer-string", lambda: slim.conv2d(
        x4(), 2, 3, weights_initializer="zeros"), ValueError, "Conv/weights"),
    case("conv2d-weights_initializer-wrong-shape", lambda: slim.conv2d(
        x4(), 2, 3, weights_initializer=np.zeros((3, 3, 2, 2))), ValueError, "Conv/weights",
        "(3, 3, 2, 2)", "(3, 3, 3, 2)"),
    case("conv2d-biases_initializer-wrong-shape", lambda: slim.conv2d(
        x4(), 2, 3, biases_initializer=np.zeros(3)), ValueError, "Conv/biases", "(3,)"),
    case("conv2d-activation_fn-string", lambda: slim.conv2d(x4(), 2, 3, activation_fn="relu"),
         TypeError, "activation_fn"),
    case("conv2d-normalizer_fn-string", lambda: slim.conv2d(x4(), 2, 3, normalizer_fn="bn"),
         TypeError, "normalizer_fn"),
    case("conv2d-normalizer_params-list", lambda: slim.conv2d(
        x4(), 2, 3, normalizer_fn=slim.batch_norm, normalizer_params=[1]), TypeError,
        "normalizer_params"),
    case("conv2d-weights_regularizer-string", lambda: slim.conv2d(
        x4(), 2, 3, weights_regularizer="l2"), TypeError, "weights_regularizer"),
    case("conv2d-variables_collections-int", lambda: slim.conv2d(
        x4(), 2, 3, variables_collections=1), TypeError, "variables_collections"),
    case("conv2d-outputs_collections-int", lambda: slim.conv2d(
        x4(), 2, 3, outputs_collections=1), TypeError, "outputs_collections"),
    case("conv2d-weights_initializer-complex-array", lambda: _no_complex_warning(
        lambda: slim.conv2d(x4(), 2, 3, weights_initializer=np.ones((3, 3, 3, 2), complex))),
        TypeError, "Conv/weights"),
    case("conv2d-num_outputs-2**62", lambda: slim.conv2d(x4(), 2**62, 3), (ValueError,
                                                                           MemoryError),
         "num_outputs"),
    # conv2d_same
    case("conv2d_same-stride-none", lambda: slim.conv2d_same(x4(), 2, 3, None), TypeError,
         "stride"),
    case("conv2d_same-stride-zero", lambda: slim.conv2d_same(x4(), 2, 3, 0), ValueError,
         "stride"),
    case("conv2d_same-kernel-zero", lambda: slim.conv2d_same(x4(), 2, 0, 2), ValueError,
         "kernel_size"),
    case("conv2d_same-kernel-none-stride-1", lambda: slim.conv2d_same(x4(), 2, None, 1),
         TypeError, "kernel_size"),
    case("conv2d_same-rate-zero", lambda: slim.conv2d_same(x4(), 2, 3, 2, rate=0), ValueError,
         "rate"),
    case("conv2d_same-num_outputs-negative", lambda: slim.conv2d_same(x4(), -1, 3, 2),
         ValueError, "num_outputs"),
    case("conv2d_same-inputs-rank3", lambda: slim.conv2d_same(x4()[0], 2, 3, 2), ValueError,
         "rank 4"),
    case("conv2d_same-inputs-complex", lambda: slim.conv2d_same(x4(dtype=complex), 2, 3, 2),
         TypeError, "inputs", "complex"),
    # subsample
    case("subsample-factor-none", lambda: slim.subsample(x4(), None), TypeError, "factor"),
    case("subsample-factor-zero", lambda: slim.subsample(x4(), 0), ValueError, "factor"),
    case("subsample-factor-float", lambda: slim.subsample(x4(), 2.0), TypeError, "factor"),
    case("subsample-factor-three", lambda: slim.subsample(x4(), [2, 2, 2]), ValueError,
         "factor"),
    case("subsample-inputs-rank3", lambda: slim.subsample(x4()[0], 2), ValueError, "input",
         "rank 4"),
    case("subsample-inputs-string", lambda: slim.subsample("abc", 2), TypeError, "input"),
    # pools
    case("max_pool2d-kernel_size-none", lambda: slim.max_pool2d(x4(), None), TypeError,
         "kernel_size"),
    case("avg_pool2d-kernel_size-zero", lambda: slim.avg_pool2d(x4(), 0), ValueError,
         "kernel_size"),
    case("max_pool2d-stride-zero", lambda: slim.max_pool2d(x4(), 2, stride=0), ValueError,
         "stride"),
    case("avg_pool2d-stride-float", lambda: slim.avg_pool2d(x4(), 2, stride=1.5), TypeError,
         "stride"),
    case("max_pool2d-padding", lambda: slim.max_pool2d(x4(), 2, padding="VAILD"), ValueError,
         "padding", "did you mean 'VALID'"),
    case("avg_pool2d-data_format-none", lambda: slim.avg_pool2d(x4(), 2, data_format=None),
         ValueError, "data_format"),
    case("max_pool2d-inputs-object", lambda: slim.max_pool2d(x4(dtype=object), 2), TypeError,
         "input", "object"),
    case("avg_pool2d-inputs-rank5", lambda: slim.avg_pool2d(x4((1, 1, 5, 5, 3)), 2),
         ValueError, "rank 4"),
    case("max_pool2d-larger-than-valid", lambda: slim.max_pool2d(x4(), 6), ValueError, "VALID",
         "output size"),
    case("max_pool2d-scope-int", lambda: slim.max_pool2d(x4(), 2, scope=1), TypeError, "scope"),
    case("avg_pool2d-outputs_collections-int", lambda: slim.avg_pool2d(
        x4(), 2, outputs_collections=1), TypeError, "outputs_collections"),
    # batch_norm
    case("batch_norm-inputs-none", lambda: slim.batch_norm(None), ValueError, "inputs", "rank"),
    case("batch_norm-inputs-rank0", lambda: slim.batch_norm(np.zeros(())), ValueError, "inputs",
         "rank"),
    case("batch_norm-inputs-complex", lambda: slim.batch_norm(x4(dtype=complex)), TypeError,
         "inputs", "complex"),
    case("batch_norm-inputs-string", lambda: slim.batch_norm(np.full((2, 3), "a")), TypeError,
         "inputs"),
    case("batch_norm-data_format", lambda: slim.batch_norm(x4(), data_format="NCWH"),
         ValueError, "data_format"),
    case("batch_norm-scope-int", lambda: slim.batch_norm(x4(), scope=1), TypeError, "scope"),
    case("batch_norm-reuse-int", lambda: slim.batch_norm(x4(), reuse=1, scope="b"), ValueError,
         "reuse"),
    case("batch_norm-param_initializers-wrong-shape", lambda: slim.batch_norm(
        x4(), param_initializers={"beta": np.zeros(4)}), ValueError, "BatchNorm/beta", "(4,)"),
    case("batch_norm-param_initializers-list", lambda: slim.batch_norm(
        x4(), param_initializers=[1]), TypeError, "param_initializers"),
    case("batch_norm-decay-str", lambda: slim.batch_norm(x4(), decay="a"), TypeError, "decay"),
    case("batch_norm-epsilon-none", lambda: slim.batch_norm(x4(), epsilon=None), TypeError,
         "epsilon"),
    case("batch_norm-activation_fn-int", lambda: slim.batch_norm(x4(), activation_fn=1),
         TypeError, "activation_fn"),
]


def _no_complex_warning(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        return call()


@pytest.mark.parametrize("call, exc, words", LAYER_CASES)
def test_layer_bad_arguments(call, exc, words):
    raises(call, exc, *words)


def test_a_refused_layer_call_leaves_no_variables(fresh_store):
    """Argument errors raise before any variable exists (a retry does not collide)."""
    for call in (lambda: slim.conv2d(x4(), 2, 9, padding="VALID", scope="c"),
                 lambda: slim.conv2d(x4(), 2, 3, padding="VAILD", scope="c"),
                 lambda: slim.conv2d(x4(), 2, 3, stride=0, scope="c")):
        with pytest.raises(ValueError):
            call()
    assert "c/weights" not in fresh_store
    slim.conv2d(x4(), 2, 3, scope="c")


def test_channel_mismatch_with_loaded_variables(fresh_store):
    fresh_store.load({"conv1/weights": np.zeros((3, 3, 4, 2), np.float32)})
    raises(lambda: slim.conv2d(x4(), 2, 3, scope="conv1"), ValueError, "conv1/weights",
           "(3, 3, 4, 2)", "(3, 3, 3, 2)")
    slim.conv2d(x4(), 2, 3, scope="conv2")
    fresh_store.load({"conv2/weights": np.zeros((3, 3, 3, 2))})  # existing: shape fits
    raises(lambda: fresh_store.load({"conv2/weights": np.zeros((3, 3, 4, 2))}), ValueError,
           "conv2/weights", "(3, 3, 4, 2)")
    raises(lambda: slim.conv2d(x4((1, 5, 5, 4)), 2, 3, scope="conv2", reuse=True), ValueError,
           "conv2/weights", "(3, 3, 4, 2)", "(3, 3, 3, 2)")


# --------------------------------------------------------------------------- geometry

GEOMETRY_CASES = [
    case("conv_output_size-input-zero", lambda: slim.conv_output_size(0, 3), ValueError,
         "input_size"),
    case("conv_output_size-input-none", lambda: slim.conv_output_size(None, 3), TypeError,
         "input_size"),
    case("conv_output_size-input-float", lambda: slim.conv_output_size(5.0, 3), TypeError,
         "input_size"),
    case("conv_output_size-input-bool", lambda: slim.conv_output_size(True, 1), TypeError,
         "input_size"),
    case("conv_output_size-input-triple", lambda: slim.conv_output_size((2, 3, 4), 3),
         ValueError, "input_size"),
    case("conv_output_size-kernel-zero", lambda: slim.conv_output_size(5, 0), ValueError,
         "kernel_size"),
    case("conv_output_size-kernel-str", lambda: slim.conv_output_size(5, "3"), TypeError,
         "kernel_size"),
    case("conv_output_size-stride-negative", lambda: slim.conv_output_size(5, 3, stride=-1),
         ValueError, "stride"),
    case("conv_output_size-rate-zero", lambda: slim.conv_output_size(5, 3, rate=0), ValueError,
         "rate"),
    case("conv_output_size-rate-pair-float", lambda: slim.conv_output_size(5, 3, rate=(1, 1.0)),
         TypeError, "rate"),
    case("conv_output_size-padding", lambda: slim.conv_output_size(5, 3, padding="SAEM"),
         ValueError, "padding", "did you mean 'SAME'"),
    case("conv_output_size-padding-none", lambda: slim.conv_output_size(5, 3, padding=None),
         TypeError, "padding"),
    case("conv_output_size-valid-too-small", lambda: slim.conv_output_size(2, 5,
                                                                           padding="VALID"),
         ValueError, "VALID", "output size", "(2 - 5 + 1)"),
    case("conv_output_size-explicit-too-small", lambda: slim.conv_output_size(
        2, 5, padding=[(1, 0), (0, 0)]), ValueError, "explicit", "output size"),
    case("conv_padding-input-str", lambda: slim.conv_padding("5", 3), TypeError, "input_size"),
    case("conv_padding-explicit-negative", lambda: slim.conv_padding(
        5, 3, padding=[(-1, 0), (0, 0)]), ValueError, "padding"),
    case("conv_padding-explicit-flat", lambda: slim.conv_padding(5, 3, padding=[1, 1]),
         TypeError, "padding"),
    case("explain_padding-input-none", lambda: slim.explain_padding(None, 3), TypeError,
         "input_size"),
    case("explain_padding-stride-zero", lambda: slim.explain_padding(5, 3, stride=0),
         ValueError, "stride"),
    case("explain_padding-valid-too-small", lambda: slim.explain_padding(5, 9, padding="VALID"),
         ValueError, "VALID", "output size"),
]


@pytest.mark.parametrize("call, exc, words", GEOMETRY_CASES)
def test_geometry_bad_arguments(call, exc, words):
    raises(call, exc, *words)


def test_geometry_of_huge_sizes_is_exact():
    """Pure functions: Python ints, no overflow whatever the size."""
    assert slim.conv_output_size(2**100, 3, stride=2) == 2**99
    assert slim.conv_padding(2**100 + 1, 3, stride=2) == (1, 1)
    assert "output 100000;" in slim.explain_padding(10**5, 10**5, rate=10**5)


# --------------------------------------------------------------------------- variables

def _outside_any_store(call):
    """call() on a fresh thread, where no ``with VariableStore()`` is active
    (the store stack is per thread); re-raises its exception here."""
    import threading

    result = {}

    def run():
        try:
            result["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            result["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


VARIABLE_CASES = [
    case("VariableStore-seed-str", lambda: slim.VariableStore(seed="a"), TypeError, "seed"),
    case("VariableStore-seed-float", lambda: slim.VariableStore(seed=1.5), TypeError, "seed"),
    case("VariableStore-seed-bool", lambda: slim.VariableStore(seed=True), TypeError, "seed"),
    case("reset_default_store-seed", lambda: _outside_any_store(
        lambda: slim.reset_default_store(seed="a")), TypeError, "seed"),
    case("variable_scope-none", lambda: slim.variable_scope(None), TypeError, "default_name"),
    case("variable_scope-int", lambda: slim.variable_scope(1).__enter__(), TypeError,
         "name_or_scope"),
    case("variable_scope-reuse", lambda: slim.variable_scope("a", reuse="x"), ValueError,
         "reuse"),
    case("variable_scope-default_name-int", lambda: slim.variable_scope(
        None, default_name=1).__enter__(), TypeError, "default_name"),
    case("get_variable-shape-none", lambda: slim.get_variable("a"), ValueError, "shape"),
    case("get_variable-shape-negative", lambda: slim.get_variable("a", [-1]), ValueError,
         "shape"),
    case("get_variable-dtype-unknown", lambda: slim.get_variable("a", [2], dtype="foo"),
         TypeError, "data type"),
    case("get_variable-exists", lambda: [slim.get_variable("a", [2]), slim.get_variable("a", [2])],
         ValueError, "Variable a already exists"),
    case("get_variable-initializer-wrong-shape", lambda: slim.get_variable(
        "a", [2], initializer=np.zeros(3)), ValueError, "variable a", "(3,)"),
    case("get_variable-initializer-returns-string", lambda: slim.get_variable(
        "a", [2], initializer=lambda shape, dtype=None: "x"), ValueError, "variable a"),
    case("get_variable-name-none", lambda: slim.get_variable(None, [2]), TypeError, "name"),
    case("get_variable-shape-str", lambda: slim.get_variable("a", "ab"), (TypeError, ValueError),
         "shape"),
    case("get_variable-shape-float", lambda: slim.get_variable("a", [1.5]), TypeError, "shape"),
    case("get_variable-regularizer-str", lambda: slim.get_variable("a", [2], regularizer="l2"),
         TypeError, "regularizer"),
    case("get_variable-collections-int", lambda: slim.get_variable("a", [2], collections=1),
         TypeError, "collections"),
    # Variable.assign
    case("assign-shape", lambda: slim.get_variable("a", [2]).assign(np.zeros((1, 2))),
         ValueError, "'a'", "(1, 2)", "(2,)"),
    case("assign-none", lambda: slim.get_variable("a", [2]).assign(None), ValueError, "'a'"),
    case("assign-string", lambda: slim.get_variable("a", [2]).assign(np.array(["1", "2"])),
         TypeError, "'a'"),
    case("assign-complex", lambda: slim.get_variable("a", [2]).assign(np.ones(2, complex)),
         TypeError, "'a'", "complex128"),
    case("assign-object", lambda: slim.get_variable("a", [2]).assign(np.ones(2, object)),
         TypeError, "'a'", "object"),
    case("assign-ragged", lambda: slim.get_variable("a", [2]).assign([[1], [1, 2]]),
         (TypeError, ValueError), "'a'"),
    case("value-setter", lambda: setattr(slim.get_variable("a", [2]), "value", np.zeros(3)),
         ValueError, "'a'"),
    # VariableStore.load / save / lookup
    case("load-name-int", lambda: slim.get_default_store().load({1: np.zeros(2)}), TypeError,
         "name"),
    case("load-missing-file", lambda: slim.get_default_store().load("/nonexistent/x.npz"),
         FileNotFoundError, "/nonexistent/x.npz"),
    case("load-none", lambda: slim.get_default_store().load(None), TypeError, "values"),
    case("load-list", lambda: slim.get_default_store().load([1, 2]), TypeError, "values"),
    case("load-pending-none-then-conv2d", lambda: [
        slim.get_default_store().load({"Conv/weights": None}), slim.conv2d(x4(), 2, 3)],
        ValueError, "Conv/weights", "()"),
    case("load-existing-complex", lambda: [slim.conv2d(x4(), 2, 3), slim.get_default_store().load(
        {"Conv/weights": np.ones((3, 3, 3, 2), complex)})], TypeError, "Conv/weights"),
    case("load-pending-complex-then-conv2d", lambda: _no_complex_warning(lambda: [
        slim.get_default_store().load({"Conv/weights": np.ones((3, 3, 3, 2), complex)}),
        slim.conv2d(x4(), 2, 3)]), TypeError, "Conv/weights"),
    case("load-pending-strings-then-conv2d", lambda: [
        slim.get_default_store().load({"Conv/weights": np.full((3, 3, 3, 2), "a")}),
        slim.conv2d(x4(), 2, 3)], TypeError, "Conv/weights"),
    case("load-pending-objects-then-conv2d", lambda: [
        slim.get_default_store().load({"Conv/weights": np.full((3, 3, 3, 2), None)}),
        slim.conv2d(x4(), 2, 3)], TypeError, "Conv/weights"),
    case("save-int", lambda: slim.get_default_store().save(1), TypeError, "path"),
    case("store-getitem-missing", lambda: slim.get_default_store()["nope"], KeyError, "nope"),
    case("store-getitem-int", lambda: slim.get_default_store()[1], TypeError, "name"),
]


@pytest.mark.parametrize("call, exc, words", VARIABLE_CASES)
def test_variable_bad_arguments(call, exc, words):
    raises(call, exc, *words)


# --------------------------------------------------------------------------- arg_scope,
# initializers, regularizers, threads

def _call_with_unknown_scoped_argument():
    with slim.arg_scope([slim.conv2d], not_an_argument=1):
        slim.conv2d(x4(), 2, 3)


def _reenter_with_kwargs():
    with slim.arg_scope([slim.conv2d]) as sc:
        pass
    with slim.arg_scope(sc, padding="VALID"):
        pass


MISC_CASES = [
    case("arg_scope-not-a-list", lambda: slim.arg_scope(slim.conv2d).__enter__(), TypeError,
         "list_ops_or_scope"),
    case("arg_scope-none", lambda: slim.arg_scope(None).__enter__(), TypeError,
         "list_ops_or_scope"),
    case("arg_scope-undecorated", lambda: slim.arg_scope([len]).__enter__(), ValueError, "len",
         "add_arg_scope"),
    case("arg_scope-dict-with-kwargs", _reenter_with_kwargs, ValueError, "kwargs"),
    case("arg_scope-unknown-argument", _call_with_unknown_scoped_argument, TypeError,
         "not_an_argument"),
    case("arg_scoped_arguments-undecorated", lambda: slim.arg_scoped_arguments(len), ValueError,
         "len"),
    case("xavier-seed", lambda: slim.xavier_initializer(seed="x"), TypeError, "seed"),
    case("xavier-shape-none", lambda: slim.xavier_initializer()(None), ValueError, "shape"),
    case("xavier-shape-negative", lambda: slim.xavier_initializer()([-1, 2]), ValueError,
         "shape"),
    case("xavier-dtype-int", lambda: slim.xavier_initializer()([2, 2], np.int32), TypeError,
         "dtype", "int32"),
    case("variance_scaling-mode", lambda: slim.variance_scaling_initializer(mode="FOO")([2, 2]),
         (TypeError, ValueError), "mode", "FOO"),
    case("constant-value-str", lambda: slim.constant_initializer("a")([2]), TypeError, "value"),
    case("constant-too-many", lambda: slim.constant_initializer([1, 2, 3])([2]), ValueError,
         "too many"),
    case("zeros-shape-str", lambda: slim.zeros_initializer()("ab"), (TypeError, ValueError),
         "shape"),
    case("variance_scaling-factor-negative", lambda: slim.variance_scaling_initializer(
        factor=-1.0)([2, 2]), ValueError, "factor"),
    case("variance_scaling-factor-str", lambda: slim.variance_scaling_initializer(
        factor="a")([2, 2]), TypeError, "factor"),
    case("truncated_normal-stddev-str", lambda: slim.truncated_normal_initializer(
        stddev="a")([2]), TypeError, "stddev"),
    case("random_uniform-minval-str", lambda: slim.random_uniform_initializer(
        minval="a")([2]), (TypeError, ValueError), "minval"),
    case("l1-scale-negative", lambda: slim.l1_regularizer(-1.0), ValueError, "scale"),
    case("l1-scale-str", lambda: slim.l1_regularizer("a"), TypeError, "scale"),
    case("l2-scale-int", lambda: slim.l2_regularizer(1), ValueError, "scale"),
    case("l2-scale-none", lambda: slim.l2_regularizer(None), TypeError, "scale"),
    case("l1_l2-scale_l2-str", lambda: slim.l1_l2_regularizer(0.1, "a"), TypeError, "scale_l2"),
    case("l2-weights-str", lambda: slim.l2_regularizer(0.1)("a"), TypeError, "weights"),
    case("set_num_threads-2**70", lambda: slim.set_num_threads(2**70), ValueError, "n",
         "between 1 and 256"),
    case("set_num_threads-negative-huge", lambda: slim.set_num_threads(-2**70), ValueError,
         "between 1 and 256"),
    # limits beyond size_t: a ValueError naming the argument, not an OverflowError
    # (the raw C functions too: the Python layer is not trusted)
    case("set_output_cache_limit-2**63", lambda: slim.set_output_cache_limit(2**63),
         ValueError, "set_output_cache_limit", "nbytes", "2**63 - 1", str(2**63)),
    case("set_weight_cache_limit-2**63", lambda: slim.set_weight_cache_limit(2**63),
         ValueError, "set_weight_cache_limit", "nbytes", "2**63 - 1", str(2**63)),
    case("set_weight_cache_limit-2**100", lambda: slim.set_weight_cache_limit(2**100),
         ValueError, "nbytes", "2**63 - 1"),
    case("_conv.set_output_cache_limit-2**64", lambda: _conv.set_output_cache_limit(2**64),
         ValueError, "nbytes", "2**63 - 1", str(2**64)),
    case("_conv.set_weight_cache_limit--2**64", lambda: _conv.set_weight_cache_limit(-2**64),
         ValueError, "nbytes", "2**63 - 1"),
]


@pytest.mark.parametrize("call, exc, words", MISC_CASES)
def test_misc_bad_arguments(call, exc, words):
    before = pyconv.get_num_threads()
    try:
        raises(call, exc, *words)
    finally:
        pyconv.set_num_threads(before)


@pytest.mark.parametrize("env, words", [
    ({"PYCONV_NUM_THREADS": "abc"}, ["PYCONV_NUM_THREADS", "'abc'"]),
    ({"PYCONV_NUM_THREADS": "0"}, ["PYCONV_NUM_THREADS", "between 1 and 256"]),
    ({"PYCONV_ISA": "bogus"}, ["PYCONV_ISA", "bogus"]),
    # sizes whose bytes overflow size_t: a ValueError naming the variable and the
    # range, not an OverflowError from the C setter
    ({"PYCONV_WEIGHT_CACHE_MB": "8796093022208"},
     ["PYCONV_WEIGHT_CACHE_MB", "8796093022208", "between 0 and 8796093022207"]),
    ({"PYCONV_OUTPUT_CACHE_MB": str(2**70)}, ["PYCONV_OUTPUT_CACHE_MB", str(2**70)]),
    ({"PYCONV_NUM_THREADS": str(2**70)}, ["PYCONV_NUM_THREADS", "between 1 and 256"]),
])
def test_bad_environment_is_a_value_error_at_import(env, words):
    code = "import pyconv\n"
    full_env = {**os.environ, **env}
    proc = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                          check=False,
                          text=True, timeout=60, cwd=os.path.dirname(os.path.dirname(
                              pyconv.__file__)))
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError:"), proc.stderr
    for word in words:
        assert word in last


# --------------------------------------------------------------------------- huge shapes

def _assert_no_big_allocation(call, exc, *words, limit=8 * MiB):
    """call() raises exc naming words, and allocates less than `limit` bytes on the way."""
    tracemalloc.start()
    try:
        error = raises(call, exc, *words)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < limit, f"{peak} bytes allocated before the {exc.__name__}"
    return error


@pytest.mark.parametrize("call, words", [
    # outputs larger than any machine (> 2**50 bytes); inputs cost nothing
    (lambda: nn.conv2d(huge((2**40, 5, 5, 3)), w4()), ["(1099511627776, 5, 5, 3)", "output"]),
    (lambda: nn.conv2d(huge((1, 2**20, 2**20, 1)), np.ones((1, 1, 1, 2**10), np.float32)),
     ["(1, 1048576, 1048576, 1024)", "output"]),
    (lambda: nn.conv2d(huge((1, 1, 2**28, 2**28)), np.ones((1, 1, 1, 1), np.float32),
                       data_format="NCHW"), ["NCHW"]),
    (lambda: nn.conv2d(x4(), w4(), padding=[(2**40, 0), (0, 0)]), ["output"]),
    (lambda: nn.conv2d(x4(), w4(), padding=[(2**62, 2**62), (0, 0)]), ["output"]),
    # output elements beyond 2**63: overflows npy_intp and size_t in C
    (lambda: nn.conv2d(x4(), w4(), padding=[(2**33, 0), (2**33, 0)]), ["output"]),
    # a small output with an indirection buffer of 2**45 pointers
    (lambda: nn.conv2d(huge((1, 2**16, 2**16, 1)), huge((2**7, 2**6, 1, 1)), padding="SAME"),
     ["indirection"]),
    # filters of 2**44 elements (packed copy too)
    (lambda: nn.conv2d(huge((1, 2**20, 2**20, 2**4)), huge((2**20, 2**20, 2**4, 1))),
     ["filters"]),
    (lambda: nn.avg_pool2d(huge((2**30, 2**10, 2**10, 1)), 2, 2), ["(1073741824, 1024, 1024, 1)"]),
    (lambda: slim.max_pool2d(huge((1, 2**28, 2**28, 8)), 2, stride=1, padding="FULL"),
     ["output"]),
])
def test_huge_shapes_fail_before_allocating(call, words):
    _assert_no_big_allocation(call, MemoryError, *words)


def test_huge_batch_of_nothing_is_an_empty_output():
    out = nn.conv2d(np.empty((0, 2**20, 2**20, 3), np.float32), w4())
    assert out.shape == (0, 2**20, 2**20, 2)
    out = nn.max_pool2d(np.empty((0, 3, 2**20, 2**20), np.float32), 2, 2,
                        data_format="NCHW")
    assert out.shape == (0, 3, 2**19, 2**19)


@pytest.fixture
def small_machine(monkeypatch):
    """Pretend the machine has 64 MiB of memory."""
    monkeypatch.setattr(_memory, "_limit", 64 * MiB)
    return 64 * MiB


def test_memory_limit_is_physical_memory_or_less():
    limit = _memory.memory_limit()
    assert 0 < limit <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def test_outputs_that_do_not_fit_are_a_memory_error_before_allocation(small_machine):
    # 32 MiB of input copy + 32 MiB of output: each fits, together they do not
    x = huge((1, 2048, 4096, 1))
    w = np.ones((1, 1, 1, 1), np.float32)
    err = _assert_no_big_allocation(lambda: nn.conv2d(x, w), MemoryError, "output",
                                    "input copy", "GiB")
    assert "(1, 2048, 4096, 1)" in str(err)
    # half of it fits, and computes
    assert nn.conv2d(x[:, :512], w).shape == (1, 512, 4096, 1)
    # pools: the contiguous input copy and the output (no padded copy any more)
    _assert_no_big_allocation(lambda: nn.avg_pool2d(huge((1, 4096, 4096, 1)), 3, 1, "SAME"),
                              MemoryError, "avg_pool2d", "input copy")
    _assert_no_big_allocation(lambda: slim.max_pool2d(huge((1, 4096, 4096, 1)), 3), MemoryError,
                              "max_pool2d")


def test_layer_weights_that_do_not_fit_are_refused_before_creation(small_machine, fresh_store):
    """conv2d's own checks run before the variables are created (nothing to clean up)."""
    _assert_no_big_allocation(lambda: slim.conv2d(huge((1, 2048, 4096, 1)), 2, 1, scope="big"),
                              MemoryError, "output")


def test_layer_weights_too_large_for_memory_are_a_memory_error(monkeypatch, fresh_store):
    monkeypatch.setattr(_memory, "_limit", 4 * MiB)  # the weights need 7 MiB
    _assert_no_big_allocation(lambda: slim.conv2d(x4((1, 1, 1, 3)), 2**16, 3, scope="wide"),
                              MemoryError, "num_outputs", limit=MiB)


def test_batch_norm_too_large_for_memory_is_a_memory_error(monkeypatch, fresh_store):
    monkeypatch.setattr(_memory, "_limit", 4 * MiB)  # float64 copies of 4 MiB each
    _assert_no_big_allocation(lambda: slim.batch_norm(huge((1, 512, 1024, 1))), MemoryError,
                              "inputs", limit=MiB)


def test_the_c_operator_refuses_overflowing_sizes_itself():
    """The raw operator trusts nothing (pyconv.nn stops these earlier)."""
    x = x4((1, 5, 5, 1))
    w = w4((1, 1, 1, 1))
    for pads in [(2**63 - 1, 0, 0, 0), (2**62, 2**62, 0, 0), (2**32, 0, 2**32, 0)]:
        raises(lambda pads=pads: _conv.conv2d(x, w, None, *pads, 1, 1, 1, 1, 0), ValueError,
               "larger than memory can address")
    raises(lambda: _conv.conv2d(x, w, None, 2**64, 0, 0, 0, 1, 1, 1, 1, 0), ValueError,
           "pad_top", "2**63")
    raises(lambda: _conv.conv2d(x, w, None, 0, 0, 0, 0, 1, 1, 2**63, 1, 0), ValueError,
           "dilation_h")
    raises(lambda: _conv.conv2d(x, w4((5, 1, 1, 1)), None, 0, 0, 0, 0, 1, 1, 2**62, 1, 0),
           ValueError, "overflows")
    raises(lambda: _conv.conv2d(x, w4((3, 1, 1, 1)), None, 0, 0, 0, 0, 1, 1, 2**62, 1, 0),
           ValueError, "effective kernel (9223372036854775809)")
    raises(lambda: _conv.conv2d(x, w, None, 0, 0, 0, 0, 1, 1, 1, 1, 1.0), TypeError,
           "activation")
    raises(lambda: _conv.conv2d(x.tolist(), w, None, 0, 0, 0, 0, 1, 1, 1, 1, 0), TypeError,
           "input")
    raises(lambda: _conv.conv2d(x, w.tolist(), None, 0, 0, 0, 0, 1, 1, 1, 1, 0), TypeError,
           "filters")
    raises(lambda: _conv.conv2d(x, w, [0.0], 0, 0, 0, 0, 1, 1, 1, 1, 0), TypeError, "bias")
    raises(lambda: _conv.conv2d(x, w, np.zeros((1, 1), np.float32), 0, 0, 0, 0, 1, 1, 1, 1, 0),
           ValueError, "bias", "rank 1")
    raises(lambda: _conv.conv2d(x, w, np.zeros(1), 0, 0, 0, 0, 1, 1, 1, 1, 0), TypeError, "bias",
           "float32")
    raises(lambda: _conv.conv2d(x4((1, 0, 5, 1)), w, None, 0, 0, 0, 0, 1, 1, 1, 1, 0),
           ValueError, "height and width")
    raises(lambda: _conv.conv2d(x4((1, 5, 5, 0)), w4((1, 1, 0, 1)), None, 0, 0, 0, 0, 1, 1, 1,
                                1, 0), ValueError, "channels")
    raises(lambda: _conv.conv2d(x, w4((0, 1, 1, 1)), None, 0, 0, 0, 0, 1, 1, 1, 1, 0),
           ValueError, "kernel size")
    assert _conv.conv2d(x4((0, 5, 5, 1)), w, None, 0, 0, 0, 0, 1, 1, 1, 1, 0).shape == (0, 5, 5,
                                                                                         1)
    assert _conv.conv2d(x, w4((1, 1, 1, 0)), None, 0, 0, 0, 0, 1, 1, 1, 1, 0).shape == (1, 5, 5,
                                                                                         0)


# --------------------------------------------------------------------------- batch 0 and
# empty channel counts: an empty output of the right shape, as TensorFlow

def test_batch_zero_through_every_layer():
    x = np.zeros((0, 6, 5, 3), np.float32)
    assert slim.conv2d(x, 2, 3).shape == (0, 6, 5, 2)
    assert slim.convolution2d(x, 2, 3, stride=2, padding="VALID").shape == (0, 2, 2, 2)
    assert slim.conv2d(x.transpose(0, 3, 1, 2), 2, 3, data_format="NCHW").shape == (0, 2, 6, 5)
    assert slim.conv2d(x, 2, 3, normalizer_fn=slim.batch_norm,
                       normalizer_params={"is_training": False}).shape == (0, 6, 5, 2)
    assert slim.conv2d_same(x, 2, 3, 2).shape == (0, 3, 3, 2)
    assert slim.subsample(x, 2).shape == (0, 3, 3, 3)
    assert slim.max_pool2d(x, 2).shape == (0, 3, 2, 3)
    assert slim.avg_pool2d(x, 3, stride=1, padding="SAME").shape == (0, 6, 5, 3)
    assert slim.avg_pool2d(x.transpose(0, 3, 1, 2), 2, data_format="NCHW").shape == (0, 3, 3, 2)
    assert slim.batch_norm(x, is_training=False).shape == (0, 6, 5, 3)
    assert nn.bias_add(x, np.zeros(3)).shape == (0, 6, 5, 3)
    assert nn.relu6(x).shape == (0, 6, 5, 3)


def test_batch_norm_training_on_an_empty_batch():
    """TF's fused batch norm gives NaN batch moments for an empty input (so the
    moving statistics become NaN); the output is empty. No crash, no hang."""
    x = np.zeros((0, 4, 4, 3), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = slim.batch_norm(x, scope="bn")
    assert out.shape == x.shape and out.dtype == np.float32


def test_zero_output_or_pool_channels_give_empty_outputs():
    assert nn.conv2d(x4(), w4((3, 3, 3, 0))).shape == (1, 5, 5, 0)
    assert nn.conv2d(x4(), w4((3, 3, 3, 0)), bias=np.zeros(0)).shape == (1, 5, 5, 0)
    assert slim.max_pool2d(x4((1, 5, 5, 0)), 2).shape == (1, 2, 2, 0)
    assert slim.avg_pool2d(x4((2, 0, 5, 5)), 2, data_format="NCHW").shape == (2, 0, 2, 2)
    assert slim.batch_norm(x4((2, 5, 5, 0))).shape == (2, 5, 5, 0)


# --------------------------------------------------------------------------- NaN and Inf

def _x_with_nan_and_inf():
    x = np.ones((1, 7, 7, 2), np.float32)
    x[0, 1, 1, 0] = np.nan
    x[0, 5, 5, 1] = np.inf
    return x


def test_nan_and_inf_propagate_through_layers():
    x = _x_with_nan_and_inf()
    ones = np.ones((3, 3, 2, 2), np.float32)
    ref = conv2d_reference(x, ones, (1, 1), ((1, 1), (1, 1)))
    for fn in (slim.relu, slim.relu6, None, np.tanh):
        y = slim.conv2d(x, 2, 3, weights_initializer=ones, activation_fn=fn)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
        if fn is None:
            np.testing.assert_array_equal(np.isposinf(y), np.isposinf(ref))
    # conv2d_same with stride 2: the explicit pads of its VALID conv
    y = slim.conv2d_same(x, 2, 3, 2, scope="same")
    assert np.isnan(y[0, 0, 0]).all() and np.isnan(y[0, 1, 1]).all()
    # a NaN weight reaches every output, padding taps included (0 * NaN is NaN, as on TF's
    # zero-padded input)
    w = np.ones((3, 3, 2, 2), np.float32)
    w[0, 0, 0, 0] = np.nan
    y = slim.conv2d(np.ones((1, 4, 4, 2), np.float32), 2, 3, weights_initializer=w,
                    scope="nanw")
    assert np.isnan(y[..., 0]).all() and not np.isnan(y[..., 1]).any()
    # an Inf weight: Inf where it meets a non-zero value, NaN where it meets padding
    w[0, 0, 0, 0] = np.inf
    y = slim.conv2d(np.ones((1, 4, 4, 2), np.float32), 2, 3, weights_initializer=w,
                    activation_fn=None, scope="infw")
    assert np.isnan(y[0, 0, :, 0]).all() and np.isnan(y[0, :, 0, 0]).all()
    assert np.isposinf(y[0, 1:, 1:, 0]).all()


def test_nan_and_inf_in_pools():
    """avg: NaN and Inf propagate through the sums. max: as TF 2.21's CPU kernel
    (issue 14 A5, checked live for 1..33 channels): NaN never wins, the maximum
    starts from the lowest finite value, so a window of only -inf gives it."""
    x = _x_with_nan_and_inf()
    for channels in (1, 3, 4, 5, 8, 9, 16, 17, 33):
        xc = np.repeat(x[..., :1], channels, axis=-1)
        y = slim.max_pool2d(xc, 3, stride=1, padding="SAME")
        assert not np.isnan(y).any()
        np.testing.assert_array_equal(y, np.ones_like(xc))
    y = slim.avg_pool2d(x, 3, stride=1, padding="SAME")
    assert np.isnan(y[0, :3, :3, 0]).all() and np.isposinf(y[0, 4:, 4:, 1]).all()
    neg = np.full((1, 4, 4, 1), -np.inf, np.float32)
    lowest = np.full((1, 2, 2, 1), np.finfo(np.float32).min, np.float32)
    np.testing.assert_array_equal(slim.max_pool2d(neg, 2, padding="SAME"), lowest)
    np.testing.assert_array_equal(slim.max_pool2d(neg.astype(np.float64), 2, padding="SAME"),
                                  lowest.astype(np.float64) * 0 + np.finfo(np.float64).min)
    np.testing.assert_array_equal(slim.avg_pool2d(neg, 2, padding="SAME"), neg[:, ::2, ::2])


def test_nan_and_inf_in_batch_norm():
    x = np.ones((2, 3, 3, 2), np.float32)
    x[0, 0, 0, 0] = np.nan
    x[1, 1, 1, 1] = np.inf
    y = slim.batch_norm(x, scope="bn")
    slim.run_update_ops()
    assert np.isnan(y[..., 0]).all()   # the channel's mean is NaN
    assert np.isnan(y[..., 1]).all()   # Inf - Inf
    store = slim.get_default_store()
    assert np.isnan(store["bn/moving_mean"][0]) and np.isposinf(store["bn/moving_mean"][1])
    y = slim.batch_norm(np.ones((1, 2, 2, 2), np.float32), is_training=False, scope="bn",
                        reuse=True)
    assert np.isnan(y).all()  # NaN moving statistics, as TF after such a step


def test_nan_bias_reaches_its_channel_only():
    y = nn.conv2d(np.ones((1, 3, 3, 2)), np.ones((1, 1, 2, 3)), bias=[0.0, np.nan, np.inf],
                  activation="relu6")
    assert not np.isnan(y[..., 0]).any() and np.isnan(y[..., 1]).all()
    assert (y[..., 2] == 6).all()
