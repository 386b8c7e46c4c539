"""Inception v2 / BN-Inception (Ioffe & Szegedy, 2015), as ``tf_slim.nets.inception_v2``.

The first layer is a separable 7x7 convolution (depthwise multiplier 8,
biases, no batch norm). The model-zoo checkpoint has 1001 classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names in the type hints only
    from .._typing import ArgScope, ArrayLike, Callable, NetOutput, Optional

import pyconv as slim

from . import _layer_table as T
from ._common import check_images, reduced_kernel_size_for_small_input
from ._common import spatial_squeeze as _squeeze

__all__ = ["inception_v2", "inception_v2_arg_scope", "inception_v2_base"]


def trunc_normal(stddev):
    return slim.truncated_normal_initializer(0.0, stddev)


def _module(b0, b1a, b1b, b2a, b2b, b3, pool="avg"):
    pool_layer = (T.avg_pool([3, 3], "AvgPool_0a_3x3") if pool == "avg"
                  else T.max_pool([3, 3], "MaxPool_0a_3x3"))
    return [
        [T.conv(b0, [1, 1], "Conv2d_0a_1x1")],
        [T.conv(b1a, [1, 1], "Conv2d_0a_1x1", weights_initializer=trunc_normal(0.09)),
         T.conv(b1b, [3, 3], "Conv2d_0b_3x3")],
        [T.conv(b2a, [1, 1], "Conv2d_0a_1x1", weights_initializer=trunc_normal(0.09)),
         T.conv(b2b, [3, 3], "Conv2d_0b_3x3"), T.conv(b2b, [3, 3], "Conv2d_0c_3x3")],
        [pool_layer,
         T.conv(b3, [1, 1], "Conv2d_0b_1x1", weights_initializer=trunc_normal(0.1))],
    ]


def _reduction(b0a, b0b, b1a, b1b):
    return [
        [T.conv(b0a, [1, 1], "Conv2d_0a_1x1", weights_initializer=trunc_normal(0.09)),
         T.conv(b0b, [3, 3], "Conv2d_1a_3x3", stride=2)],
        [T.conv(b1a, [1, 1], "Conv2d_0a_1x1", weights_initializer=trunc_normal(0.09)),
         T.conv(b1b, [3, 3], "Conv2d_0b_3x3"), T.conv(b1b, [3, 3], "Conv2d_1a_3x3", stride=2)],
        [T.max_pool([3, 3], "MaxPool_1a_3x3", stride=2)],
    ]


def _first_depthwise_multiplier(depth):
    return min(int(depth(64) / 3), 8)


_BASE = [
    ("Conv2d_1a_7x7", T.sep(64, [7, 7], "Conv2d_1a_7x7", stride=2,
                            depth_multiplier=_first_depthwise_multiplier,
                            weights_initializer=trunc_normal(1.0))),
    ("MaxPool_2a_3x3", T.max_pool([3, 3], "MaxPool_2a_3x3", stride=2)),
    ("Conv2d_2b_1x1", T.conv(64, [1, 1], "Conv2d_2b_1x1", weights_initializer=trunc_normal(0.1))),
    ("Conv2d_2c_3x3", T.conv(192, [3, 3], "Conv2d_2c_3x3")),
    ("MaxPool_3a_3x3", T.max_pool([3, 3], "MaxPool_3a_3x3", stride=2)),
    ("Mixed_3b", _module(64, 64, 64, 64, 96, 32)),
    ("Mixed_3c", _module(64, 64, 96, 64, 96, 64)),
    ("Mixed_4a", _reduction(128, 160, 64, 96)),
    ("Mixed_4b", _module(224, 64, 96, 96, 128, 128)),
    ("Mixed_4c", _module(192, 96, 128, 96, 128, 128)),
    ("Mixed_4d", _module(160, 128, 160, 128, 160, 96)),
    ("Mixed_4e", _module(96, 128, 192, 160, 192, 96)),
    ("Mixed_5a", _reduction(128, 192, 192, 256)),
    ("Mixed_5b", _module(352, 192, 320, 160, 224, 128)),
    ("Mixed_5c", _module(352, 192, 320, 192, 224, 128, pool="max")),
]

END_POINTS = T.end_point_names(_BASE)


def depth_fn(depth_multiplier, min_depth):
    """``depth(d) = max(int(d * depth_multiplier), min_depth)``."""
    if depth_multiplier <= 0:
        raise ValueError("depth_multiplier is not greater than zero.")
    return lambda d: max(int(d * depth_multiplier), min_depth)


def inception_v2_base(inputs: ArrayLike, final_endpoint: str = "Mixed_5c", min_depth: int = 16,
                      depth_multiplier: float = 1.0, scope: Optional[str] = None) -> NetOutput:
    """Inception v2 from ``inputs`` up to ``final_endpoint``.

    Parameters
    ----------
    inputs : array_like, ``[batch, height, width, channels]``
    final_endpoint : str, default 'Mixed_5c'
        One of ``inception_v2.END_POINTS``.
    min_depth : int, default 16
        No layer gets fewer channels (when ``depth_multiplier < 1``).
    depth_multiplier : float, default 1.0
        Scales every layer's channels; must be > 0.
    scope : str or VariableScope, optional
        Default 'InceptionV2'.

    Returns
    -------
    net, end_points

    Raises
    ------
    ValueError
        An unknown ``final_endpoint`` or ``depth_multiplier <= 0``.
    """
    depth = depth_fn(depth_multiplier, min_depth)
    if final_endpoint not in END_POINTS:
        raise ValueError(f"Unknown final endpoint {final_endpoint}; choose one of "
                         f"{', '.join(END_POINTS)}")
    inputs = check_images(inputs, "inception_v2")
    with slim.variable_scope(scope, "InceptionV2", [inputs]):
        with slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d,
                             slim.separable_conv2d], stride=1, padding="SAME"):
            net, end_points, _ = T.build_base(inputs, _BASE, final_endpoint, depth, {})
            return net, end_points


def inception_v2(inputs: ArrayLike, num_classes: Optional[int] = 1000, is_training: bool = True,
                 dropout_keep_prob: float = 0.8, min_depth: int = 16, depth_multiplier: float = 1.0,
                 prediction_fn: Callable = slim.softmax, spatial_squeeze: bool = True,
                 reuse: Optional[bool] = None, scope: Optional[str] = "InceptionV2") -> NetOutput:
    """Inception v2 for classification (default image size 224).

    The head averages over ``min(7, size)`` (``Logits/AvgPool_1a_{k}x{k}``),
    so smaller inputs still give 1x1 logits. Other arguments as
    :func:`pyconv.nets.inception_v1.inception_v1`, plus ``min_depth`` and
    ``depth_multiplier`` as :func:`inception_v2_base`.
    """
    depth_fn(depth_multiplier, min_depth)
    with slim.variable_scope(scope, "InceptionV2", [inputs, num_classes], reuse=reuse) as sc:
        with slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training):
            net, end_points = inception_v2_base(inputs, scope=sc, min_depth=min_depth,
                                                 depth_multiplier=depth_multiplier)
            with slim.variable_scope("Logits"):
                kernel_size = reduced_kernel_size_for_small_input(net, [7, 7])
                net = slim.avg_pool2d(net, kernel_size, padding="VALID",
                                      scope="AvgPool_1a_{}x{}".format(*kernel_size))
                net = slim.dropout(net, keep_prob=dropout_keep_prob, scope="Dropout_1b")
                logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                                     normalizer_fn=None, scope="Conv2d_1c_1x1")
                if spatial_squeeze:
                    logits = _squeeze(logits, "InceptionV2/Logits")
            end_points["Logits"] = logits
            end_points["Predictions"] = prediction_fn(logits, scope="Predictions")
    return logits, end_points


inception_v2.default_image_size = 224

_reduced_kernel_size_for_small_input = reduced_kernel_size_for_small_input


def inception_v2_arg_scope(weight_decay: float = 0.00004,
                           batch_norm_var_collection="moving_vars") -> ArgScope:
    """conv2d with He-initialised weights, l2 weight decay, ReLU and batch norm
    (decay 0.9997, epsilon 0.001, no gamma); separable_conv2d keeps its
    biases."""
    batch_norm_params = {
        "decay": 0.9997,
        "epsilon": 0.001,
        "updates_collections": slim.GraphKeys.UPDATE_OPS,
        "variables_collections": {
            "beta": None,
            "gamma": None,
            "moving_mean": [batch_norm_var_collection],
            "moving_variance": [batch_norm_var_collection],
        },
    }
    with slim.arg_scope([slim.conv2d, slim.fully_connected],
                        weights_regularizer=slim.l2_regularizer(weight_decay)):
        with slim.arg_scope([slim.conv2d],
                            weights_initializer=slim.variance_scaling_initializer(),
                            activation_fn=slim.relu, normalizer_fn=slim.batch_norm,
                            normalizer_params=batch_norm_params) as sc:
            return sc
