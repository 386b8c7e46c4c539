"""Inception v1 / GoogLeNet (Szegedy et al., 2014), as ``tf_slim.nets.inception_v1``.

The model-zoo checkpoint has 1001 classes (0 = background). Batch norm
without ``gamma`` (``scale=False``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names in the type hints only
    from .._typing import ArgScope, ArrayLike, Callable, NetOutput, Optional

import pyconv as slim

from . import _layer_table as T
from ._common import check_images, spatial_squeeze as _squeeze

__all__ = ["inception_v1", "inception_v1_arg_scope", "inception_v1_base"]


def trunc_normal(stddev):
    return slim.truncated_normal_initializer(0.0, stddev)


def _module(b0, b1a, b1b, b2a, b2b, b3, b2b_scope="Conv2d_0b_3x3"):
    return [
        [T.conv(b0, [1, 1], "Conv2d_0a_1x1")],
        [T.conv(b1a, [1, 1], "Conv2d_0a_1x1"), T.conv(b1b, [3, 3], "Conv2d_0b_3x3")],
        [T.conv(b2a, [1, 1], "Conv2d_0a_1x1"), T.conv(b2b, [3, 3], b2b_scope)],
        [T.max_pool([3, 3], "MaxPool_0a_3x3"), T.conv(b3, [1, 1], "Conv2d_0b_1x1")],
    ]


# (end point, layer or mixed module); every layer stride 1 'SAME' unless given
_BASE = [
    ("Conv2d_1a_7x7", T.conv(64, [7, 7], "Conv2d_1a_7x7", stride=2)),
    ("MaxPool_2a_3x3", T.max_pool([3, 3], "MaxPool_2a_3x3", stride=2)),
    ("Conv2d_2b_1x1", T.conv(64, [1, 1], "Conv2d_2b_1x1")),
    ("Conv2d_2c_3x3", T.conv(192, [3, 3], "Conv2d_2c_3x3")),
    ("MaxPool_3a_3x3", T.max_pool([3, 3], "MaxPool_3a_3x3", stride=2)),
    ("Mixed_3b", _module(64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", _module(128, 128, 192, 32, 96, 64)),
    ("MaxPool_4a_3x3", T.max_pool([3, 3], "MaxPool_4a_3x3", stride=2)),
    ("Mixed_4b", _module(192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", _module(160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", _module(128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", _module(112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", _module(256, 160, 320, 32, 128, 128)),
    ("MaxPool_5a_2x2", T.max_pool([2, 2], "MaxPool_5a_2x2", stride=2)),
    # tf_slim names this module's second 3x3 'Conv2d_0a_3x3' (so do the checkpoints)
    ("Mixed_5b", _module(256, 160, 320, 32, 128, 128, b2b_scope="Conv2d_0a_3x3")),
    ("Mixed_5c", _module(384, 192, 384, 48, 128, 128)),
]

END_POINTS = T.end_point_names(_BASE)


def _identity(d):
    return d


def inception_v1_base(inputs: ArrayLike, final_endpoint: str = "Mixed_5c",
                      scope: Optional[str] = "InceptionV1") -> NetOutput:
    """Inception v1 from ``inputs`` up to ``final_endpoint``.

    Parameters
    ----------
    inputs : array_like, ``[batch, height, width, channels]``
    final_endpoint : str, default 'Mixed_5c'
        One of ``inception_v1.END_POINTS`` ('Conv2d_1a_7x7', 'MaxPool_2a_3x3',
        ..., 'Mixed_5c').
    scope : str or VariableScope, default 'InceptionV1'

    Returns
    -------
    net : ndarray
        The output of ``final_endpoint``.
    end_points : dict
        Every end point up to it.

    Raises
    ------
    ValueError
        'Unknown final endpoint ...' (before anything is built).
    """
    if final_endpoint not in END_POINTS:
        raise ValueError(f"Unknown final endpoint {final_endpoint}; choose one of "
                         f"{', '.join(END_POINTS)}")
    inputs = check_images(inputs, "inception_v1")
    with slim.variable_scope(scope, "InceptionV1", [inputs]):
        with slim.arg_scope([slim.conv2d, slim.fully_connected],
                            weights_initializer=trunc_normal(0.01)):
            with slim.arg_scope([slim.conv2d, slim.max_pool2d], stride=1, padding="SAME"):
                net, end_points, _ = T.build_base(inputs, _BASE, final_endpoint, _identity, {})
                return net, end_points


def inception_v1(inputs: ArrayLike, num_classes: Optional[int] = 1000, is_training: bool = True,
                 dropout_keep_prob: float = 0.8, prediction_fn: Callable = slim.softmax,
                 spatial_squeeze: bool = True, reuse: Optional[bool] = None,
                 scope: Optional[str] = "InceptionV1") -> NetOutput:
    """Inception v1 for classification (default image size 224).

    Parameters
    ----------
    inputs : array_like, ``[batch, height, width, channels]``
    num_classes : int, default 1000
    is_training : bool, default True
        Batch norm and dropout in training mode; pass False for inference.
    dropout_keep_prob : float, default 0.8
    prediction_fn : callable, default slim.softmax
    spatial_squeeze : bool, default True
        Needs 1x1 logits: the head is a fixed 7x7 average pool (scoped
        ``Logits/MaxPool_0a_7x7``), so inputs of 224 (up to 255).
    reuse : bool or AUTO_REUSE, optional
    scope : str, default 'InceptionV1'

    Returns
    -------
    logits : ndarray
    end_points : dict
        The base's end points, 'Logits' and 'Predictions'.
    """
    with slim.variable_scope(scope, "InceptionV1", [inputs, num_classes], reuse=reuse) as sc:
        with slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training):
            net, end_points = inception_v1_base(inputs, scope=sc)
            with slim.variable_scope("Logits"):
                net = slim.avg_pool2d(net, [7, 7], stride=1, scope="MaxPool_0a_7x7")
                net = slim.dropout(net, dropout_keep_prob, scope="Dropout_0b")
                logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                                     normalizer_fn=None, scope="Conv2d_0c_1x1")
                if spatial_squeeze:
                    logits = _squeeze(logits, "InceptionV1/Logits")
                end_points["Logits"] = logits
                end_points["Predictions"] = prediction_fn(logits, scope="Predictions")
    return logits, end_points


inception_v1.default_image_size = 224


def inception_v1_arg_scope(weight_decay: float = 0.00004, use_batch_norm: bool = True,
                           batch_norm_var_collection="moving_vars") -> ArgScope:
    """conv2d with He-initialised weights, l2 weight decay, ReLU and (with
    ``use_batch_norm``) batch norm: decay 0.9997, epsilon 0.001, no gamma,
    moving statistics also in ``batch_norm_var_collection``."""
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
    if use_batch_norm:
        normalizer_fn, normalizer_params = slim.batch_norm, batch_norm_params
    else:
        normalizer_fn, normalizer_params = None, {}
    with slim.arg_scope([slim.conv2d, slim.fully_connected],
                        weights_regularizer=slim.l2_regularizer(weight_decay)):
        with slim.arg_scope([slim.conv2d],
                            weights_initializer=slim.variance_scaling_initializer(),
                            activation_fn=slim.relu, normalizer_fn=normalizer_fn,
                            normalizer_params=normalizer_params) as sc:
            return sc
