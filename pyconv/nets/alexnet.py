"""AlexNet version 2 ("One weird trick for parallelizing convolutional neural
networks", Krizhevsky 2014), as ``tf_slim.nets.alexnet``; the fully connected
layers are convolutions. No model-zoo checkpoint exists for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names in the type hints only
    from .._typing import ArgScope, ArrayLike, NetOutput, Optional

import pyconv as slim

from ._common import check_images, end_points_from, spatial_squeeze as _squeeze

__all__ = ["alexnet_v2", "alexnet_v2_arg_scope"]


def trunc_normal(stddev):
    return slim.truncated_normal_initializer(0.0, stddev)


def alexnet_v2_arg_scope(weight_decay: float = 0.0005) -> ArgScope:
    """conv2d and fully_connected with ReLU, biases 0.1 and l2 weight decay;
    conv2d 'SAME', max_pool2d 'VALID'."""
    with slim.arg_scope([slim.conv2d, slim.fully_connected], activation_fn=slim.relu,
                        biases_initializer=slim.constant_initializer(0.1),
                        weights_regularizer=slim.l2_regularizer(weight_decay)):
        with slim.arg_scope([slim.conv2d], padding="SAME"):
            with slim.arg_scope([slim.max_pool2d], padding="VALID") as arg_sc:
                return arg_sc


# (scope, kind, outputs, kernel, stride, padding); None: the arg scope's
_FEATURES = (
    ("conv1", "conv", 64, [11, 11], 4, "VALID"),
    ("pool1", "pool", None, [3, 3], 2, None),
    ("conv2", "conv", 192, [5, 5], 1, None),
    ("pool2", "pool", None, [3, 3], 2, None),
    ("conv3", "conv", 384, [3, 3], 1, None),
    ("conv4", "conv", 384, [3, 3], 1, None),
    ("conv5", "conv", 256, [3, 3], 1, None),
    ("pool5", "pool", None, [3, 3], 2, None),
)


def run_layers(net, table):
    """Applies a table of convolutions and max pools (alexnet, overfeat)."""
    for scope, kind, outputs, kernel, stride, padding in table:
        extra = {} if padding is None else {"padding": padding}
        if kind == "conv":
            net = slim.conv2d(net, outputs, kernel, stride, scope=scope, **extra)
        else:
            net = slim.max_pool2d(net, kernel, stride, scope=scope, **extra)
    return net


def classifier(net, sc, end_points_collection, fc6, fc7, num_classes, is_training,
               dropout_keep_prob, spatial_squeeze):
    """fc6 (``fc6 = (outputs, kernel)``, VALID), fc7 1x1, fc8 1x1 linear, as
    convolutions initialised from trunc_normal(0.005) with biases 0.1 (fc8: 0)."""
    with slim.arg_scope([slim.conv2d], weights_initializer=trunc_normal(0.005),
                        biases_initializer=slim.constant_initializer(0.1)):
        net = slim.conv2d(net, fc6[0], fc6[1], padding="VALID", scope="fc6")
        net = slim.dropout(net, dropout_keep_prob, is_training=is_training, scope="dropout6")
        net = slim.conv2d(net, fc7, [1, 1], scope="fc7")
        net = slim.dropout(net, dropout_keep_prob, is_training=is_training, scope="dropout7")
        net = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None,
                          biases_initializer=slim.zeros_initializer(), scope="fc8")
    end_points = end_points_from(end_points_collection, sc)
    if spatial_squeeze:
        net = _squeeze(net, sc.name + "/fc8")
        end_points[sc.name + "/fc8"] = net
    return net, end_points


def alexnet_v2(inputs: ArrayLike, num_classes: Optional[int] = 1000, is_training: bool = True,
               dropout_keep_prob: float = 0.5, spatial_squeeze: bool = True,
               scope: Optional[str] = "alexnet_v2") -> NetOutput:
    """AlexNet v2 (default image size 224).

    Parameters
    ----------
    inputs : array_like, ``[batch, height, width, channels]``
    num_classes : int, default 1000
    is_training : bool, default True
        Dropout active; pass False for inference.
    dropout_keep_prob : float, default 0.5
    spatial_squeeze : bool, default True
        Squeeze the logits to ``[batch, num_classes]``; inputs larger than
        224 give larger logits and need False.
    scope : str, default 'alexnet_v2'

    Returns
    -------
    net : ndarray
    end_points : OrderedDict
        ``<scope>/conv1``, ``/pool1``, ..., ``/pool5``, ``/fc6``, ``/fc7``, ``/fc8``.
    """
    inputs = check_images(inputs, "alexnet_v2")
    with slim.variable_scope(scope, "alexnet_v2", [inputs]) as sc:
        end_points_collection = sc.original_name_scope + "_end_points"
        with slim.arg_scope([slim.conv2d, slim.fully_connected, slim.max_pool2d],
                            outputs_collections=[end_points_collection]):
            net = run_layers(inputs, _FEATURES)
            return classifier(net, sc, end_points_collection, (4096, [5, 5]), 4096,
                              num_classes, is_training, dropout_keep_prob, spatial_squeeze)


alexnet_v2.default_image_size = 224
