"""OverFeat (Sermanet et al., 2013), the accurate model without the
spatial-context part, as ``tf_slim.nets.overfeat``. tf_slim sets no
``default_image_size``; this module sets tensorflow/models' 231. No model-zoo
checkpoint exists for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names in the type hints only
    from .._typing import ArgScope, ArrayLike, NetOutput, Optional

import pyconv as slim

from ._common import check_images
from .alexnet import classifier, run_layers, trunc_normal  # noqa: F401 - as tf_slim

__all__ = ["overfeat", "overfeat_arg_scope"]


def overfeat_arg_scope(weight_decay: float = 0.0005) -> ArgScope:
    """conv2d and fully_connected with ReLU, l2 weight decay and zero biases;
    conv2d 'SAME', max_pool2d 'VALID'."""
    with slim.arg_scope([slim.conv2d, slim.fully_connected], activation_fn=slim.relu,
                        weights_regularizer=slim.l2_regularizer(weight_decay),
                        biases_initializer=slim.zeros_initializer()):
        with slim.arg_scope([slim.conv2d], padding="SAME"):
            with slim.arg_scope([slim.max_pool2d], padding="VALID") as arg_sc:
                return arg_sc


_FEATURES = (
    ("conv1", "conv", 64, [11, 11], 4, "VALID"),
    ("pool1", "pool", None, [2, 2], 2, None),
    ("conv2", "conv", 256, [5, 5], 1, "VALID"),
    ("pool2", "pool", None, [2, 2], 2, None),
    ("conv3", "conv", 512, [3, 3], 1, None),
    ("conv4", "conv", 1024, [3, 3], 1, None),
    ("conv5", "conv", 1024, [3, 3], 1, None),
    ("pool5", "pool", None, [2, 2], 2, None),
)


def overfeat(inputs: ArrayLike, num_classes: Optional[int] = 1000, is_training: bool = True,
             dropout_keep_prob: float = 0.5, spatial_squeeze: bool = True,
             scope: Optional[str] = "overfeat") -> NetOutput:
    """OverFeat. Arguments and returns as :func:`pyconv.nets.alexnet.alexnet_v2`
    (fc6 is 3072 6x6, fc7 4096)."""
    inputs = check_images(inputs, "overfeat")
    with slim.variable_scope(scope, "overfeat", [inputs]) as sc:
        end_points_collection = sc.name + "_end_points"
        with slim.arg_scope([slim.conv2d, slim.fully_connected, slim.max_pool2d],
                            outputs_collections=end_points_collection):
            net = run_layers(inputs, _FEATURES)
            return classifier(net, sc, end_points_collection, (3072, [6, 6]), 4096,
                              num_classes, is_training, dropout_keep_prob, spatial_squeeze)


overfeat.default_image_size = 231
