"""ResNet v2 (He et al., "Identity Mappings in Deep Residual Networks", 2016),
as ``tf_slim.nets.resnet_v2``: full pre-activation units (batch norm and ReLU
before every convolution), a ``postnorm`` batch norm after the last block.

The 2017 model-zoo checkpoints have 1001 classes and were trained on
299x299 inputs, although ``default_image_size`` is 224.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names in the type hints only
    from .._typing import Any, ArrayLike, Collections, IntOrPair, NetOutput, Optional, np

import pyconv as slim
from pyconv.arg_scope import add_arg_scope

from pyconv.layers import _conv2d_then_add

from . import resnet_utils
from ._common import check_images, end_points_from, global_mean
from .resnet_v1 import _UNITS, _last_dimension

__all__ = ["bottleneck", "resnet_arg_scope", "resnet_v2", "resnet_v2_101", "resnet_v2_152",
           "resnet_v2_200", "resnet_v2_50", "resnet_v2_block"]

resnet_arg_scope = resnet_utils.resnet_arg_scope


@add_arg_scope
def bottleneck(inputs: ArrayLike, depth: Any, depth_bottleneck: int, stride: IntOrPair,
               rate: IntOrPair = 1, outputs_collections: Collections = None,
               scope: Optional[str] = None) -> np.ndarray:
    """The pre-activation bottleneck unit (scope ``bottleneck_v2``).

    ``preact = relu(batch_norm(inputs))``; output ``shortcut + conv3(conv2(
    conv1(preact)))`` with no activation after the sum. The shortcut is
    ``subsample(inputs, stride)`` when the depth is unchanged, else a 1x1
    projection of ``preact`` with biases and no normalizer; ``conv3`` has
    biases too.

    Returns
    -------
    ndarray
    """
    with slim.variable_scope(scope, "bottleneck_v2", [inputs]) as sc:
        depth_in = _last_dimension(inputs)
        preact = slim.batch_norm(inputs, activation_fn=slim.relu, scope="preact")
        if depth == depth_in:
            shortcut = resnet_utils.subsample(inputs, stride, "shortcut")
        else:
            shortcut = slim.conv2d(preact, depth, [1, 1], stride=stride, normalizer_fn=None,
                                   activation_fn=None, scope="shortcut")
        residual = slim.conv2d(preact, depth_bottleneck, [1, 1], stride=1, scope="conv1")
        residual = resnet_utils.conv2d_same(residual, depth_bottleneck, 3, stride, rate=rate,
                                            scope="conv2")
        # conv3, and shortcut + conv3 written by conv3's own pass
        residual, output = _conv2d_then_add(shortcut, None, residual, depth, [1, 1], stride=1,
                                            normalizer_fn=None, activation_fn=None,
                                            scope="conv3")
        return slim.collect_named_outputs(outputs_collections, sc.name, output)


def resnet_v2(inputs: ArrayLike, blocks: Any, num_classes: Optional[int] = None,
              is_training: bool = True, global_pool: bool = True,
              output_stride: Optional[int] = None, include_root_block: bool = True,
              reuse: Optional[bool] = None, scope: Optional[str] = None) -> NetOutput:
    """A v2 (pre-activation) ResNet made of ``blocks``.

    Arguments, return values and errors as :func:`pyconv.nets.resnet_v1.resnet_v1`.
    The root ``conv1`` has biases and neither batch norm nor activation
    (without the root block, ``inputs`` should be such a convolution's
    output); ``postnorm`` (batch norm + ReLU) follows the last block.
    """
    inputs = check_images(inputs, scope if isinstance(scope, str) else "resnet_v2")
    with slim.variable_scope(scope, "resnet_v2", [inputs], reuse=reuse) as sc:
        end_points_collection = sc.original_name_scope + "_end_points"
        with slim.arg_scope([slim.conv2d, bottleneck, resnet_utils.stack_blocks_dense],
                            outputs_collections=end_points_collection):
            with slim.arg_scope([slim.batch_norm], is_training=is_training):
                net = inputs
                if include_root_block:
                    if output_stride is not None:
                        if output_stride % 4 != 0:
                            raise ValueError("The output_stride needs to be a multiple of 4.")
                        output_stride /= 4
                    # no batch norm nor ReLU: the first unit's preact does both
                    with slim.arg_scope([slim.conv2d], activation_fn=None, normalizer_fn=None):
                        net = resnet_utils.conv2d_same(net, 64, 7, stride=2, scope="conv1")
                    net = slim.max_pool2d(net, [3, 3], stride=2, scope="pool1")
                net = resnet_utils.stack_blocks_dense(net, blocks, output_stride)
                net = slim.batch_norm(net, activation_fn=slim.relu, scope="postnorm")
                if global_pool:
                    net = global_mean(net)  # pool5
                if num_classes is not None:
                    net = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                                      normalizer_fn=None, scope="logits")
                end_points = end_points_from(end_points_collection, sc)
                if num_classes is not None:
                    end_points["predictions"] = slim.softmax(net, scope="predictions")
                return net, end_points


resnet_v2.default_image_size = 224


def resnet_v2_block(scope: str, base_depth: int, num_units: int, stride: IntOrPair):
    """A block of ``num_units`` pre-activation bottleneck units
    (``depth = 4 * base_depth``), ``stride`` on the last unit."""
    unit = {"depth": base_depth * 4, "depth_bottleneck": base_depth, "stride": 1}
    return resnet_utils.Block(scope, bottleneck,
                              [unit] * (num_units - 1) + [dict(unit, stride=stride)])


def _blocks(layers):
    return [resnet_v2_block(f"block{i + 1}", base_depth=64 << i, num_units=n,
                            stride=2 if i < 3 else 1)
            for i, n in enumerate(_UNITS[layers])]


def resnet_v2_50(inputs: ArrayLike, num_classes: Optional[int] = None, is_training: bool = True,
                 global_pool: bool = True, output_stride: Optional[int] = None,
                 reuse: Optional[bool] = None, scope: Optional[str] = "resnet_v2_50") -> NetOutput:
    """ResNet-50 v2 (units 3, 4, 6, 3). See :func:`resnet_v2`."""
    return resnet_v2(inputs, _blocks(50), num_classes, is_training, global_pool,
                     output_stride, include_root_block=True, reuse=reuse, scope=scope)


def resnet_v2_101(inputs: ArrayLike, num_classes: Optional[int] = None, is_training: bool = True,
                  global_pool: bool = True, output_stride: Optional[int] = None,
                  reuse: Optional[bool] = None,
                  scope: Optional[str] = "resnet_v2_101") -> NetOutput:
    """ResNet-101 v2 (units 3, 4, 23, 3). See :func:`resnet_v2`."""
    return resnet_v2(inputs, _blocks(101), num_classes, is_training, global_pool,
                     output_stride, include_root_block=True, reuse=reuse, scope=scope)


def resnet_v2_152(inputs: ArrayLike, num_classes: Optional[int] = None, is_training: bool = True,
                  global_pool: bool = True, output_stride: Optional[int] = None,
                  reuse: Optional[bool] = None,
                  scope: Optional[str] = "resnet_v2_152") -> NetOutput:
    """ResNet-152 v2 (units 3, 8, 36, 3). See :func:`resnet_v2`."""
    return resnet_v2(inputs, _blocks(152), num_classes, is_training, global_pool,
                     output_stride, include_root_block=True, reuse=reuse, scope=scope)


def resnet_v2_200(inputs: ArrayLike, num_classes: Optional[int] = None, is_training: bool = True,
                  global_pool: bool = True, output_stride: Optional[int] = None,
                  reuse: Optional[bool] = None,
                  scope: Optional[str] = "resnet_v2_200") -> NetOutput:
    """ResNet-200 v2 (units 3, 24, 36, 3). See :func:`resnet_v2`."""
    return resnet_v2(inputs, _blocks(200), num_classes, is_training, global_pool,
                     output_stride, include_root_block=True, reuse=reuse, scope=scope)


for _fn in (resnet_v2_50, resnet_v2_101, resnet_v2_152, resnet_v2_200):
    _fn.default_image_size = resnet_v2.default_image_size
del _fn
