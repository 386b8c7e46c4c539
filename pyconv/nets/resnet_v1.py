"""ResNet v1 (He et al., 2015), as ``tf_slim.nets.resnet_v1``: batch norm after
every convolution, projection shortcuts only where the depth changes, the
stride in the last unit of each block.

Typical use::

    with slim.arg_scope(resnet_v1.resnet_arg_scope()):
        net, end_points = resnet_v1.resnet_v1_101(inputs, 1000, is_training=False)

As in tf_slim 1.1 the logits keep their spatial axes (``[batch, 1, 1,
classes]`` with ``global_pool``).
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

__all__ = ["bottleneck", "resnet_arg_scope", "resnet_v1", "resnet_v1_101", "resnet_v1_152",
           "resnet_v1_200", "resnet_v1_50", "resnet_v1_block"]

resnet_arg_scope = resnet_utils.resnet_arg_scope


@add_arg_scope
def bottleneck(inputs: ArrayLike, depth: Any, depth_bottleneck: int, stride: IntOrPair,
               rate: IntOrPair = 1, outputs_collections: Collections = None,
               scope: Optional[str] = None) -> np.ndarray:
    """The bottleneck unit with batch norm after the convolutions (scope ``bottleneck_v1``).

    ``relu(shortcut + conv3(conv2(conv1(inputs))))``: 1x1 ``depth_bottleneck``,
    3x3 ``depth_bottleneck`` (``conv2d_same``, ``stride``, ``rate``), 1x1
    ``depth`` without activation; the shortcut is ``subsample(inputs,
    stride)`` when the depth is unchanged, else a 1x1 ``stride`` projection.

    Returns
    -------
    ndarray
    """
    with slim.variable_scope(scope, "bottleneck_v1", [inputs]) as sc:
        depth_in = _last_dimension(inputs)
        if depth == depth_in:
            shortcut = resnet_utils.subsample(inputs, stride, "shortcut")
        else:
            shortcut = slim.conv2d(inputs, depth, [1, 1], stride=stride, activation_fn=None,
                                      scope="shortcut")
        residual = slim.conv2d(inputs, depth_bottleneck, [1, 1], stride=1, scope="conv1")
        residual = resnet_utils.conv2d_same(residual, depth_bottleneck, 3, stride, rate=rate,
                                            scope="conv2")
        # conv3, and relu(shortcut + conv3) written by conv3's own pass
        residual, output = _conv2d_then_add(shortcut, "relu", residual, depth, [1, 1], stride=1,
                                            activation_fn=None, scope="conv3")
        return slim.collect_named_outputs(outputs_collections, sc.name, output)


def _last_dimension(inputs):
    shape = getattr(inputs, "shape", None)
    if shape is None or len(shape) < 4:
        raise ValueError(f"A residual unit expects inputs of rank 4, got shape {shape}")
    return shape[-1]


def resnet_v1(inputs: ArrayLike, blocks: Any, num_classes: Optional[int] = None,
              is_training: bool = True, global_pool: bool = True,
              output_stride: Optional[int] = None, include_root_block: bool = True,
              reuse: Optional[bool] = None, scope: Optional[str] = None) -> NetOutput:
    """A v1 ResNet made of ``blocks``.

    Parameters
    ----------
    inputs : array_like, ``[batch, height, width, channels]``
    blocks : list of resnet_utils.Block
    num_classes : int, optional
        None: return the features before the logits layer.
    is_training : bool, default True
        Batch norm in training mode (batch statistics; updates queued as slim).
    global_pool : bool, default True
        Average over height and width before the logits (scope ``pool5``).
    output_stride : int, optional
        Ratio of input to output resolution (a multiple of 4 with the root
        block); atrous convolution keeps the resolution beyond it.
    include_root_block : bool, default True
        The 7x7/2 ``conv1`` and 3x3/2 ``pool1``.
    reuse : bool or AUTO_REUSE, optional
        Reuse the variables (requires ``scope``).
    scope : str, optional
        Default 'resnet_v1'.

    Returns
    -------
    net : ndarray
        ``[batch, h, w, num_classes]`` logits (``h = w = 1`` with
        ``global_pool``), or the features when ``num_classes`` is None.
    end_points : OrderedDict
        ``<scope>/conv1``, ``<scope>/blockN/unit_i/bottleneck_v1[/...]``,
        ``<scope>/blockN``, ``<scope>/logits``, ``predictions``.

    Raises
    ------
    ValueError
        ``output_stride`` not a multiple of 4 or not reachable; images not of rank 4.
    """
    inputs = check_images(inputs, scope if isinstance(scope, str) else "resnet_v1")
    with slim.variable_scope(scope, "resnet_v1", [inputs], reuse=reuse) as sc:
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
                    net = resnet_utils.conv2d_same(net, 64, 7, stride=2, scope="conv1")
                    net = slim.max_pool2d(net, [3, 3], stride=2, scope="pool1")
                net = resnet_utils.stack_blocks_dense(net, blocks, output_stride)
                if global_pool:
                    net = global_mean(net)  # pool5
                if num_classes is not None:
                    net = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                                         normalizer_fn=None, scope="logits")
                end_points = end_points_from(end_points_collection, sc)
                if num_classes is not None:
                    end_points["predictions"] = slim.softmax(net, scope="predictions")
                return net, end_points


resnet_v1.default_image_size = 224


def resnet_v1_block(scope: str, base_depth: int, num_units: int, stride: IntOrPair):
    """A block of ``num_units`` bottleneck units (``depth = 4 * base_depth``),
    ``stride`` on the last unit."""
    unit = {"depth": base_depth * 4, "depth_bottleneck": base_depth, "stride": 1}
    return resnet_utils.Block(scope, bottleneck,
                              [unit] * (num_units - 1) + [dict(unit, stride=stride)])


# units per block of the four depths
_UNITS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3), 200: (3, 24, 36, 3)}


def _blocks(layers, block_fn):
    """The four blocks of a ResNet of ``layers`` layers (strides 2, 2, 2, 1)."""
    return [block_fn(f"block{i + 1}", base_depth=64 << i, num_units=n,
                     stride=2 if i < 3 else 1)
            for i, n in enumerate(_UNITS[layers])]


def resnet_v1_50(inputs: ArrayLike, num_classes: Optional[int] = None, is_training: bool = True,
                 global_pool: bool = True, output_stride: Optional[int] = None,
                 reuse: Optional[bool] = None, scope: Optional[str] = "resnet_v1_50") -> NetOutput:
    """ResNet-50 v1 (units 3, 4, 6, 3). See :func:`resnet_v1`."""
    return resnet_v1(inputs, _blocks(50, resnet_v1_block), num_classes, is_training,
                     global_pool, output_stride, include_root_block=True, reuse=reuse,
                     scope=scope)


def resnet_v1_101(inputs: ArrayLike, num_classes: Optional[int] = None, is_training: bool = True,
                  global_pool: bool = True, output_stride: Optional[int] = None,
                  reuse: Optional[bool] = None,
                  scope: Optional[str] = "resnet_v1_101") -> NetOutput:
    """ResNet-101 v1 (units 3, 4, 23, 3). See :func:`resnet_v1`."""
    return resnet_v1(inputs, _blocks(101, resnet_v1_block), num_classes, is_training,
                     global_pool, output_stride, include_root_block=True, reuse=reuse,
                     scope=scope)


def resnet_v1_152(inputs: ArrayLike, num_classes: Optional[int] = None, is_training: bool = True,
                  global_pool: bool = True, output_stride: Optional[int] = None,
                  reuse: Optional[bool] = None,
                  scope: Optional[str] = "resnet_v1_152") -> NetOutput:
    """ResNet-152 v1 (units 3, 8, 36, 3). See :func:`resnet_v1`."""
    return resnet_v1(inputs, _blocks(152, resnet_v1_block), num_classes, is_training,
                     global_pool, output_stride, include_root_block=True, reuse=reuse,
                     scope=scope)


def resnet_v1_200(inputs: ArrayLike, num_classes: Optional[int] = None, is_training: bool = True,
                  global_pool: bool = True, output_stride: Optional[int] = None,
                  reuse: Optional[bool] = None,
                  scope: Optional[str] = "resnet_v1_200") -> NetOutput:
    """ResNet-200 v1 (units 3, 24, 36, 3). See :func:`resnet_v1`."""
    return resnet_v1(inputs, _blocks(200, resnet_v1_block), num_classes, is_training,
                     global_pool, output_stride, include_root_block=True, reuse=reuse,
                     scope=scope)


for _fn in (resnet_v1_50, resnet_v1_101, resnet_v1_152, resnet_v1_200):
    _fn.default_image_size = resnet_v1.default_image_size
del _fn
