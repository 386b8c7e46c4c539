"""VGG (Simonyan & Zisserman, 2014), as ``tf_slim.nets.vgg``: configurations
A (11 layers), D (16) and E (19), with the fully connected layers as
convolutions (fc6 7x7 VALID, fc7 and fc8 1x1).

The model-zoo checkpoints (vgg_16, vgg_19) have 1000 classes. At sizes other
than 224 the logits keep a spatial extent; pass ``spatial_squeeze=False``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names in the type hints only
    from .._typing import ArgScope, ArrayLike, NetOutput, Optional

import pyconv as slim

from ._common import check_images, end_points_from, spatial_squeeze as _squeeze

__all__ = ["vgg_16", "vgg_19", "vgg_a", "vgg_arg_scope", "vgg_d", "vgg_e"]


def vgg_arg_scope(weight_decay: float = 0.0005) -> ArgScope:
    """conv2d and fully_connected with ReLU, l2 weight decay and zero biases;
    conv2d with 'SAME' padding."""
    with slim.arg_scope([slim.conv2d, slim.fully_connected], activation_fn=slim.relu,
                        weights_regularizer=slim.l2_regularizer(weight_decay),
                        biases_initializer=slim.zeros_initializer()):
        with slim.arg_scope([slim.conv2d], padding="SAME") as arg_sc:
            return arg_sc


# convolutions per block (64, 128, 256, 512, 512 channels), by configuration
_CONVS = {"vgg_a": (1, 1, 2, 2, 2), "vgg_16": (2, 2, 3, 3, 3), "vgg_19": (2, 2, 4, 4, 4)}
_DEPTHS = (64, 128, 256, 512, 512)


def _vgg(name, inputs, num_classes, is_training, dropout_keep_prob, spatial_squeeze, scope,
         collected, collection_key):
    inputs = check_images(inputs, name)
    with slim.variable_scope(scope, name, [inputs]) as sc:
        # tf_slim keys vgg_19's collection by sc.name, the others by the name scope
        end_points_collection = (sc.name if collection_key == "name"
                                 else sc.original_name_scope) + "_end_points"
        with slim.arg_scope(collected, outputs_collections=end_points_collection):
            net = inputs
            for i, (convs, depth) in enumerate(zip(_CONVS[name], _DEPTHS)):
                net = slim.repeat(net, convs, slim.conv2d, depth, [3, 3], scope=f"conv{i + 1}")
                net = slim.max_pool2d(net, [2, 2], scope=f"pool{i + 1}")
            net = slim.conv2d(net, 4096, [7, 7], padding="VALID", scope="fc6")
            net = slim.dropout(net, dropout_keep_prob, is_training=is_training,
                               scope="dropout6")
            net = slim.conv2d(net, 4096, [1, 1], scope="fc7")
            net = slim.dropout(net, dropout_keep_prob, is_training=is_training,
                               scope="dropout7")
            net = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None,
                              scope="fc8")
            end_points = end_points_from(end_points_collection, sc)
            if spatial_squeeze:
                net = _squeeze(net, sc.name + "/fc8")
                end_points[sc.name + "/fc8"] = net
            return net, end_points


def vgg_a(inputs: ArrayLike, num_classes: Optional[int] = 1000, is_training: bool = True,
          dropout_keep_prob: float = 0.5, spatial_squeeze: bool = True,
          scope: Optional[str] = "vgg_a") -> NetOutput:
    """VGG configuration A (11 layers).

    Parameters
    ----------
    inputs : array_like, ``[batch, height, width, channels]``
    num_classes : int, default 1000
    is_training : bool, default True
        Dropout active (slim's default); pass False for inference.
    dropout_keep_prob : float, default 0.5
    spatial_squeeze : bool, default True
        Squeeze the logits to ``[batch, num_classes]`` (needs 1x1 logits).
    scope : str, default 'vgg_a'

    Returns
    -------
    net : ndarray
        The logits.
    end_points : OrderedDict
        ``<scope>/conv1/conv1_1``, ..., ``<scope>/pool5``, ``<scope>/fc6``,
        ``<scope>/fc7``, ``<scope>/fc8``.
    """
    return _vgg("vgg_a", inputs, num_classes, is_training, dropout_keep_prob, spatial_squeeze,
                scope, [slim.conv2d, slim.max_pool2d], "original_name_scope")


vgg_a.default_image_size = 224


def vgg_16(inputs: ArrayLike, num_classes: Optional[int] = 1000, is_training: bool = True,
           dropout_keep_prob: float = 0.5, spatial_squeeze: bool = True,
           scope: Optional[str] = "vgg_16") -> NetOutput:
    """VGG configuration D (16 layers). Arguments and returns as :func:`vgg_a`."""
    return _vgg("vgg_16", inputs, num_classes, is_training, dropout_keep_prob,
                spatial_squeeze, scope, [slim.conv2d, slim.fully_connected, slim.max_pool2d],
                "original_name_scope")


vgg_16.default_image_size = 224


def vgg_19(inputs: ArrayLike, num_classes: Optional[int] = 1000, is_training: bool = True,
           dropout_keep_prob: float = 0.5, spatial_squeeze: bool = True,
           scope: Optional[str] = "vgg_19") -> NetOutput:
    """VGG configuration E (19 layers). Arguments and returns as :func:`vgg_a`."""
    return _vgg("vgg_19", inputs, num_classes, is_training, dropout_keep_prob,
                spatial_squeeze, scope, [slim.conv2d, slim.fully_connected, slim.max_pool2d],
                "name")


vgg_19.default_image_size = 224

vgg_d = vgg_16
vgg_e = vgg_19
