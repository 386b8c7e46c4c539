"""Inception v3 (Szegedy et al., "Rethinking the Inception Architecture", 2015),
as ``tf_slim.nets.inception_v3``, with the auxiliary head on Mixed_6e.

The model-zoo checkpoint has 1001 classes; batch norm has no ``gamma``.
Name quirks kept from tf_slim (and its checkpoints): ``Mixed_5c/Branch_1``'s
``Conv2d_0b_1x1`` then ``Conv_1_0c_5x5``; the 3x3 stride-2 convolutions of
``Mixed_6a`` are scoped ``Conv2d_1a_1x1``; ``Mixed_7b/Branch_1`` has
``Conv2d_0b_3x1`` where ``Mixed_7c`` has ``Conv2d_0c_3x1``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names in the type hints only
    from .._typing import Any, ArgScope, ArrayLike, Callable, NetOutput, Optional

import pyconv as slim

from . import _layer_table as T
from ._common import check_images, reduced_kernel_size_for_small_input
from ._common import spatial_squeeze as _squeeze
from .inception_v2 import depth_fn

__all__ = ["inception_v3", "inception_v3_arg_scope", "inception_v3_base"]


def trunc_normal(stddev):
    return slim.truncated_normal_initializer(0.0, stddev)


# stride 1, 'VALID' unless given
_STEM = [
    ("Conv2d_1a_3x3", T.conv(32, [3, 3], "Conv2d_1a_3x3", stride=2)),
    ("Conv2d_2a_3x3", T.conv(32, [3, 3], "Conv2d_2a_3x3")),
    ("Conv2d_2b_3x3", T.conv(64, [3, 3], "Conv2d_2b_3x3", padding="SAME")),
    ("MaxPool_3a_3x3", T.max_pool([3, 3], "MaxPool_3a_3x3", stride=2)),
    ("Conv2d_3b_1x1", T.conv(80, [1, 1], "Conv2d_3b_1x1")),
    ("Conv2d_4a_3x3", T.conv(192, [3, 3], "Conv2d_4a_3x3")),
    ("MaxPool_5a_3x3", T.max_pool([3, 3], "MaxPool_5a_3x3", stride=2)),
]


def _module_35(b3, b1_scopes=("Conv2d_0a_1x1", "Conv2d_0b_5x5")):
    return [
        [T.conv(64, [1, 1], "Conv2d_0a_1x1")],
        [T.conv(48, [1, 1], b1_scopes[0]), T.conv(64, [5, 5], b1_scopes[1])],
        [T.conv(64, [1, 1], "Conv2d_0a_1x1"), T.conv(96, [3, 3], "Conv2d_0b_3x3"),
         T.conv(96, [3, 3], "Conv2d_0c_3x3")],
        [T.avg_pool([3, 3], "AvgPool_0a_3x3"), T.conv(b3, [1, 1], "Conv2d_0b_1x1")],
    ]


def _module_17(d):
    return [
        [T.conv(192, [1, 1], "Conv2d_0a_1x1")],
        [T.conv(d, [1, 1], "Conv2d_0a_1x1"), T.conv(d, [1, 7], "Conv2d_0b_1x7"),
         T.conv(192, [7, 1], "Conv2d_0c_7x1")],
        [T.conv(d, [1, 1], "Conv2d_0a_1x1"), T.conv(d, [7, 1], "Conv2d_0b_7x1"),
         T.conv(d, [1, 7], "Conv2d_0c_1x7"), T.conv(d, [7, 1], "Conv2d_0d_7x1"),
         T.conv(192, [1, 7], "Conv2d_0e_1x7")],
        [T.avg_pool([3, 3], "AvgPool_0a_3x3"), T.conv(192, [1, 1], "Conv2d_0b_1x1")],
    ]


def _module_8(b1_second):
    return [
        [T.conv(320, [1, 1], "Conv2d_0a_1x1")],
        [T.conv(384, [1, 1], "Conv2d_0a_1x1"),
         T.split(T.conv(384, [1, 3], "Conv2d_0b_1x3"), T.conv(384, [3, 1], b1_second))],
        [T.conv(448, [1, 1], "Conv2d_0a_1x1"), T.conv(384, [3, 3], "Conv2d_0b_3x3"),
         T.split(T.conv(384, [1, 3], "Conv2d_0c_1x3"), T.conv(384, [3, 1], "Conv2d_0d_3x1"))],
        [T.avg_pool([3, 3], "AvgPool_0a_3x3"), T.conv(192, [1, 1], "Conv2d_0b_1x1")],
    ]


_VALID_S2 = {"stride": 2, "padding": "VALID"}

# stride 1, 'SAME' unless given
_MIXED = [
    ("Mixed_5b", _module_35(32)),
    ("Mixed_5c", _module_35(64, ("Conv2d_0b_1x1", "Conv_1_0c_5x5"))),
    ("Mixed_5d", _module_35(64)),
    ("Mixed_6a", [
        [T.conv(384, [3, 3], "Conv2d_1a_1x1", **_VALID_S2)],
        [T.conv(64, [1, 1], "Conv2d_0a_1x1"), T.conv(96, [3, 3], "Conv2d_0b_3x3"),
         T.conv(96, [3, 3], "Conv2d_1a_1x1", **_VALID_S2)],
        [T.max_pool([3, 3], "MaxPool_1a_3x3", **_VALID_S2)],
    ]),
    ("Mixed_6b", _module_17(128)),
    ("Mixed_6c", _module_17(160)),
    ("Mixed_6d", _module_17(160)),
    ("Mixed_6e", _module_17(192)),
    ("Mixed_7a", [
        [T.conv(192, [1, 1], "Conv2d_0a_1x1"), T.conv(320, [3, 3], "Conv2d_1a_3x3", **_VALID_S2)],
        [T.conv(192, [1, 1], "Conv2d_0a_1x1"), T.conv(192, [1, 7], "Conv2d_0b_1x7"),
         T.conv(192, [7, 1], "Conv2d_0c_7x1"), T.conv(192, [3, 3], "Conv2d_1a_3x3", **_VALID_S2)],
        [T.max_pool([3, 3], "MaxPool_1a_3x3", **_VALID_S2)],
    ]),
    ("Mixed_7b", _module_8("Conv2d_0b_3x1")),
    ("Mixed_7c", _module_8("Conv2d_0c_3x1")),
]

END_POINTS = T.end_point_names(_STEM, _MIXED)



def inception_v3_base(inputs: ArrayLike, final_endpoint: str = "Mixed_7c", min_depth: int = 16,
                      depth_multiplier: float = 1.0, scope: Optional[str] = None) -> NetOutput:
    """Inception v3 from ``inputs`` up to ``final_endpoint``.

    Parameters
    ----------
    inputs : array_like, ``[batch, height, width, channels]``
    final_endpoint : str, default 'Mixed_7c'
        One of ``inception_v3.END_POINTS`` ('Conv2d_1a_3x3', ..., 'Mixed_7c').
    min_depth : int, default 16
    depth_multiplier : float, default 1.0
    scope : str or VariableScope, optional
        Default 'InceptionV3'.

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
    inputs = check_images(inputs, "inception_v3")
    layers = [slim.conv2d, slim.max_pool2d, slim.avg_pool2d]
    end_points = {}
    with slim.variable_scope(scope, "InceptionV3", [inputs]):
        with slim.arg_scope(layers, stride=1, padding="VALID"):
            net, end_points, done = T.build_base(inputs, _STEM, final_endpoint, depth,
                                                 end_points)
        if not done:
            with slim.arg_scope(layers, stride=1, padding="SAME"):
                net, end_points, done = T.build_base(net, _MIXED, final_endpoint, depth,
                                                     end_points)
        return net, end_points


def inception_v3(inputs: ArrayLike, num_classes: Optional[int] = 1000, is_training: bool = True,
                 dropout_keep_prob: float = 0.8, min_depth: int = 16, depth_multiplier: float = 1.0,
                 prediction_fn: Callable = slim.softmax, spatial_squeeze: bool = True,
                 reuse: Optional[bool] = None, create_aux_logits: bool = True,
                 scope: Optional[str] = "InceptionV3") -> NetOutput:
    """Inception v3 for classification (default image size 299).

    Parameters
    ----------
    inputs : array_like, ``[batch, height, width, channels]``
    num_classes : int, default 1000
        0 or None: no logits layer and no auxiliary head.
    is_training : bool, default True
        Batch norm and dropout in training mode; pass False for inference.
    dropout_keep_prob : float, default 0.8
    min_depth, depth_multiplier
        As :func:`inception_v3_base`.
    prediction_fn : callable, default slim.softmax
    spatial_squeeze : bool, default True
    reuse : bool or AUTO_REUSE, optional
    create_aux_logits : bool, default True
        The auxiliary head on Mixed_6e (``AuxLogits/...``).
    scope : str, default 'InceptionV3'

    Returns
    -------
    logits : ndarray
    end_points : dict
        The base's end points, 'AuxLogits', 'PreLogits', 'Logits', 'Predictions'.

    The average pools of both heads shrink to the feature map
    (``_reduced_kernel_size_for_small_input``), so inputs down to 75 pixels
    give 1x1 logits.
    """
    depth = depth_fn(depth_multiplier, min_depth)
    with slim.variable_scope(scope, "InceptionV3", [inputs, num_classes], reuse=reuse) as sc:
        with slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training):
            net, end_points = inception_v3_base(inputs, scope=sc, min_depth=min_depth,
                                                 depth_multiplier=depth_multiplier)
            if create_aux_logits and num_classes:
                with slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d], stride=1,
                                    padding="SAME"):
                    aux_logits = end_points["Mixed_6e"]
                    with slim.variable_scope("AuxLogits"):
                        aux_logits = slim.avg_pool2d(aux_logits, [5, 5], stride=3,
                                                     padding="VALID", scope="AvgPool_1a_5x5")
                        aux_logits = slim.conv2d(aux_logits, depth(128), [1, 1],
                                                 scope="Conv2d_1b_1x1")
                        kernel_size = reduced_kernel_size_for_small_input(aux_logits, [5, 5])
                        aux_logits = slim.conv2d(
                            aux_logits, depth(768), kernel_size,
                            weights_initializer=trunc_normal(0.01), padding="VALID",
                            scope="Conv2d_2a_{}x{}".format(*kernel_size))
                        aux_logits = slim.conv2d(
                            aux_logits, num_classes, [1, 1], activation_fn=None,
                            normalizer_fn=None, weights_initializer=trunc_normal(0.001),
                            scope="Conv2d_2b_1x1")
                        if spatial_squeeze:
                            aux_logits = _squeeze(aux_logits, "InceptionV3/AuxLogits")
                        end_points["AuxLogits"] = aux_logits
            with slim.variable_scope("Logits"):
                kernel_size = reduced_kernel_size_for_small_input(net, [8, 8])
                net = slim.avg_pool2d(net, kernel_size, padding="VALID",
                                      scope="AvgPool_1a_{}x{}".format(*kernel_size))
                net = slim.dropout(net, keep_prob=dropout_keep_prob, scope="Dropout_1b")
                end_points["PreLogits"] = net
                logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                                     normalizer_fn=None, scope="Conv2d_1c_1x1")
                if spatial_squeeze:
                    logits = _squeeze(logits, "InceptionV3/Logits")
            end_points["Logits"] = logits
            end_points["Predictions"] = prediction_fn(logits, scope="Predictions")
    return logits, end_points


inception_v3.default_image_size = 299

_reduced_kernel_size_for_small_input = reduced_kernel_size_for_small_input


def inception_v3_arg_scope(weight_decay: float = 0.00004, batch_norm_var_collection="moving_vars",
                           batch_norm_decay: float = 0.9997, batch_norm_epsilon: float = 0.001,
                           updates_collections: Any = slim.GraphKeys.UPDATE_OPS,
                           use_fused_batchnorm=True) -> ArgScope:
    """conv2d with He-initialised weights, l2 weight decay, ReLU and batch
    norm (``batch_norm_decay``, ``batch_norm_epsilon``, no gamma,
    ``updates_collections``, ``fused``)."""
    batch_norm_params = {
        "decay": batch_norm_decay,
        "epsilon": batch_norm_epsilon,
        "updates_collections": updates_collections,
        "fused": use_fused_batchnorm,
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
