"""arg_scope: TF-Slim's arg_scope_test behaviours, plus the layers' use of it."""

import inspect

import numpy as np
import pytest

import pyconv as slim
from pyconv import add_arg_scope, arg_scope, arg_scoped_arguments


@add_arg_scope
def func1(*args, **kwargs):
    return (args, kwargs)


@add_arg_scope
def func2(*args, **kwargs):
    return (args, kwargs)


@add_arg_scope
def func3(args, a=None, b=1, c=2):
    """Some cool doc string."""
    return (args, a, b, c)


def key(op):
    return slim.arg_scope_func_key(op)


def test_empty_arg_scope():
    with arg_scope([]) as sc:
        assert sc == {}


def test_clear_arg_scope():
    func1_scope = {key(func1): {"a": 1, "b": None, "c": [1]}}
    with arg_scope([func1], a=1, b=None, c=[1]) as sc1:
        assert sc1 == func1_scope
        with arg_scope({}) as sc2:
            assert sc2 == {}
        with arg_scope([]) as current:
            assert current == func1_scope


def test_non_decorated_function_is_value_error_naming_it():
    def my_func(t, a=None):
        return (t, a)

    with pytest.raises(ValueError, match=r"my_func.*is not decorated with @add_arg_scope"), (
        arg_scope([my_func], a=1)
    ):
        pass
    with pytest.raises(ValueError, match="not decorated"), arg_scope([np.maximum], a=1):
        pass


def test_list_ops_must_be_list_tuple_or_dict():
    with pytest.raises(TypeError, match="list/tuple"), arg_scope(func1, a=1):
        pass


def test_reused_dict_with_kwargs_is_error():
    with pytest.raises(ValueError, match="kwargs must be empty"), arg_scope({}, a=1):
        pass


def test_unexpected_arg_surfaces_at_call():
    with arg_scope([func3], d=1), pytest.raises(TypeError):
        func3(1)


def test_current_arg_scope_nested():
    with arg_scope([func1], a=1, b=None, c=[1]), arg_scope([func2], b=2, d=[2]) as scope:
        assert scope == {key(func1): {"a": 1, "b": None, "c": [1]},
                         key(func2): {"b": 2, "d": [2]}}
        assert slim.current_arg_scope() is scope
    assert slim.current_arg_scope() == {}


def test_arg_scoped_arguments_and_has_arg_scope():
    assert arg_scoped_arguments(func3) == ("a", "b", "c")
    assert slim.has_arg_scope(func3)
    assert not slim.has_arg_scope(lambda x: x)
    with pytest.raises(ValueError, match="not decorated"):
        arg_scoped_arguments(lambda x=1: x)


def test_reuse_arg_scope_nested():
    with arg_scope([func1], a=1, b=None, c=[1]) as scope1, arg_scope([func2], b=2, d=[2]) as scope2:
        pass
    with arg_scope(scope1), arg_scope([]) as current:
        assert current == {key(func1): {"a": 1, "b": None, "c": [1]}}
    with arg_scope(scope2):
        assert func2(0) == ((0,), {"b": 2, "d": [2]})
        assert func1(0) == ((0,), {"a": 1, "b": None, "c": [1]})


def test_simple_overwrite_and_nesting():
    with arg_scope((func1,), a=1, b=None, c=[1]):
        assert func1(0) == ((0,), {"a": 1, "b": None, "c": [1]})
        assert func1(0, b=2) == ((0,), {"a": 1, "b": 2, "c": [1]})
        with arg_scope([func1], b=2):
            assert func1(0) == ((0,), {"a": 1, "b": 2, "c": [1]})
        assert func1(0) == ((0,), {"a": 1, "b": None, "c": [1]})


def test_scope_object_created_outside_overrides():
    def get_scope_object():
        with arg_scope([func1], a=1, b=None, c=[1]) as sc:
            return sc

    scope_object = get_scope_object()
    with arg_scope([func1], b=2, d=10), arg_scope(scope_object):
        assert func1(0) == ((0,), {"a": 1, "b": None, "c": [1]})


def test_scope_object_created_within_inherits():
    def get_scope_object():
        with arg_scope([func1], a=1, b=None, c=[1]) as sc:
            return sc

    with arg_scope([func1], b=2, d=10), arg_scope(get_scope_object()):
        assert func1(0) == ((0,), {"a": 1, "b": None, "c": [1], "d": 10})


def test_partially_shared_arg_scope():
    with arg_scope([func1, func2], a=1, b=None), arg_scope([func1], c=[1]), (
        arg_scope([func2], d=[2])
    ):
        assert func1(0) == ((0,), {"a": 1, "b": None, "c": [1]})
        assert func2(1) == ((1,), {"a": 1, "b": None, "d": [2]})


def test_redefining_a_function_gets_its_own_key():
    for _ in range(4):
        @add_arg_scope
        def func4(a=1, b=2, c=3, d=4, e=5, f=6, g=7, h=8):
            pass

        assert arg_scoped_arguments(func4) == ("a", "b", "c", "d", "e", "f", "g", "h")


def test_decorator_keeps_docstring_name_and_signature():
    assert func3.__doc__ == "Some cool doc string."
    assert func3.__name__ == "func3"
    assert list(inspect.signature(func3).parameters) == ["args", "a", "b", "c"]
    params = inspect.signature(slim.conv2d).parameters
    assert list(params)[:4] == ["inputs", "num_outputs", "kernel_size", "stride"]
    assert params["padding"].default == "SAME"
    assert "Parameters" in slim.conv2d.__doc__


def test_scope_is_popped_after_exception():
    with pytest.raises(KeyError), arg_scope([func1], a=1):
        raise KeyError
    assert slim.current_arg_scope() == {}


# --------------------------------------------------------------------------- with layers


def test_every_layer_is_arg_scoped():
    for layer in (slim.conv2d, slim.convolution2d, slim.conv2d_same, slim.subsample,
                  slim.max_pool2d, slim.avg_pool2d, slim.batch_norm):
        assert slim.has_arg_scope(layer), layer.__name__
    assert slim.conv2d is slim.convolution2d
    assert arg_scoped_arguments(slim.conv2d)[:3] == ("stride", "padding", "data_format")


def test_layer_defaults_from_arg_scope_and_explicit_wins():
    x = np.ones((1, 5, 5, 2), np.float32)
    ones = slim.ones_initializer()
    with slim.VariableStore(seed=0), arg_scope([slim.conv2d], padding="VALID",
                                               activation_fn=None, weights_initializer=ones):
        y = slim.conv2d(x, 3, [3, 3])
        z = slim.conv2d(x, 3, [3, 3], padding="SAME")
        with arg_scope([slim.conv2d], stride=2):
            w = slim.conv2d(x, 3, [3, 3])
    assert y.shape == (1, 3, 3, 3)
    np.testing.assert_array_equal(y, 18.0)  # 3*3 taps * 2 channels of ones
    assert z.shape == (1, 5, 5, 3)
    assert w.shape == (1, 2, 2, 3)


def test_arg_scope_reaches_conv_inside_conv2d_same_and_pool_inside_subsample():
    x = np.ones((1, 4, 4, 1), np.float32)
    with slim.VariableStore(seed=0) as store:
        with arg_scope([slim.conv2d], weights_initializer=slim.ones_initializer(),
                       activation_fn=None, scope="ignored"):
            out = slim.conv2d_same(x, 1, 3, stride=2)
        # conv2d_same passes scope=None explicitly, and explicit arguments win (as slim).
        assert "Conv/weights" in store and "ignored/weights" not in store
        np.testing.assert_array_equal(out[0, :, :, 0], [[4, 6], [6, 9]])
        with arg_scope([slim.max_pool2d], data_format="NCHW"):
            y = slim.subsample(np.ones((1, 1, 4, 6), np.float32), 2)
    assert y.shape == (1, 1, 2, 3)


def test_normalizer_params_via_arg_scope():
    x = np.random.default_rng(0).standard_normal((2, 4, 4, 3)).astype(np.float32)
    with slim.VariableStore(seed=0) as store:
        with arg_scope([slim.conv2d], normalizer_fn=slim.batch_norm,
                       normalizer_params={"scale": True}):
            slim.conv2d(x, 4, 3)
        with arg_scope([slim.batch_norm], center=False):
            slim.conv2d(x, 4, 3, normalizer_fn=slim.batch_norm)
    assert "Conv/BatchNorm/gamma" in store and "Conv/biases" not in store
    assert "Conv_1/BatchNorm/beta" not in store and "Conv_1/BatchNorm/moving_mean" in store
