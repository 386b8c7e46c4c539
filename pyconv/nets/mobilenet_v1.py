"""MobileNet v1 (Howard et al., 2017), as tensorflow/models
``research/slim/nets/mobilenet_v1.py`` (not part of tf_slim): a 3x3
convolution, then 13 depthwise-separable layers, each a depthwise 3x3
(``Conv2d_<i>_depthwise``) and a pointwise 1x1 (``Conv2d_<i>_pointwise``),
all with batch norm and ReLU6 under :func:`mobilenet_v1_arg_scope`.

The zoo checkpoints (``mobilenet_v1_{1.0,0.75,0.5,0.25}_{224,192,160,128}``)
have 1001 classes and are V2 checkpoints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names in the type hints only
    from .._typing import Any, ArgScope, ArrayLike, Callable, NetOutput, Optional

import functools
from collections import namedtuple

import numpy as np

import pyconv as slim

from ._common import check_images, global_mean, reduced_kernel_size_for_small_input
from ._common import spatial_squeeze as _squeeze

__all__ = ["Conv", "DepthSepConv", "MOBILENETV1_CONV_DEFS", "mobilenet_v1",
           "mobilenet_v1_025", "mobilenet_v1_050", "mobilenet_v1_075",
           "mobilenet_v1_arg_scope", "mobilenet_v1_base"]

Conv = namedtuple("Conv", ["kernel", "stride", "depth"])
DepthSepConv = namedtuple("DepthSepConv", ["kernel", "stride", "depth"])

# The body: (stride, depth) of the first conv and of the 13 separable layers.
MOBILENETV1_CONV_DEFS = [Conv(kernel=[3, 3], stride=2, depth=32)] + [
    DepthSepConv(kernel=[3, 3], stride=s, depth=d)
    for s, d in ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), (1, 512),
                 (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024))]
_CONV_DEFS = MOBILENETV1_CONV_DEFS


def _fixed_padding(inputs, kernel_size, rate=1):
    """Explicit padding for a 'VALID' layer that then outputs what 'SAME' would
    at stride 1: ``k_eff - 1`` in total, ``// 2`` before.

    Like tensorflow/models, the height's kernel size is used for both axes
    (MobileNet's kernels are square). Returns the pads for the layer, not a
    padded copy of the input.
    """
    k_eff = kernel_size[0] + (kernel_size[0] - 1) * (rate - 1)
    before = (k_eff - 1) // 2
    after = k_eff - 1 - before
    return [(before, after), (before, after)]


def _end_point_names(conv_defs):
    names = []
    for i, conv_def in enumerate(conv_defs):
        if isinstance(conv_def, Conv):
            names.append(f"Conv2d_{i}")
        else:
            names += [f"Conv2d_{i}_depthwise", f"Conv2d_{i}_pointwise"]
    return names


def mobilenet_v1_base(inputs: ArrayLike, final_endpoint: str = "Conv2d_13_pointwise",
                      min_depth: int = 8, depth_multiplier: float = 1.0, conv_defs: Any = None,
                      output_stride: Optional[int] = None, use_explicit_padding: bool = False,
                      scope: Optional[str] = None) -> NetOutput:
    """MobileNet v1 from ``inputs`` up to ``final_endpoint``.

    Parameters
    ----------
    inputs : array_like, ``[batch, height, width, channels]``
    final_endpoint : str, default 'Conv2d_13_pointwise'
        'Conv2d_0', 'Conv2d_<i>_depthwise' or 'Conv2d_<i>_pointwise'.
    min_depth : int, default 8
    depth_multiplier : float, default 1.0
        Scales the channels of every convolution; must be > 0.
    conv_defs : list of Conv / DepthSepConv, optional
        Default ``MOBILENETV1_CONV_DEFS``.
    output_stride : {None, 8, 16, 32}
        Atrous convolution beyond this ratio of input to output resolution.
    use_explicit_padding : bool, default False
        'VALID' layers on explicitly padded inputs, giving 'SAME''s sizes.
    scope : str or VariableScope, optional
        Default 'MobilenetV1'.

    Returns
    -------
    net, end_points

    Raises
    ------
    ValueError
        ``depth_multiplier <= 0``, ``output_stride`` not 8/16/32, an unknown
        ``final_endpoint``, a conv def of another type.
    """
    depth = lambda d: max(int(d * depth_multiplier), min_depth)  # noqa: E731
    end_points = {}
    if depth_multiplier <= 0:
        raise ValueError("depth_multiplier is not greater than zero.")
    if conv_defs is None:
        conv_defs = MOBILENETV1_CONV_DEFS
    if output_stride is not None and output_stride not in [8, 16, 32]:
        raise ValueError("Only allowed output_stride values are 8, 16, 32.")
    for i, conv_def in enumerate(conv_defs):
        if not isinstance(conv_def, (Conv, DepthSepConv)):
            raise ValueError(f"Unknown convolution type {type(conv_def).__name__} for layer {i}")
    names = _end_point_names(conv_defs)
    if final_endpoint not in names:
        raise ValueError(f"Unknown final endpoint {final_endpoint}; choose one of "
                         f"{', '.join(names)}")
    inputs = check_images(inputs, "mobilenet_v1")
    padding = "VALID" if use_explicit_padding else "SAME"
    with slim.variable_scope(scope, "MobilenetV1", [inputs]):
        with slim.arg_scope([slim.conv2d, slim.separable_conv2d], padding=padding):
            # the running product of strides, and the atrous rate once it
            # reaches output_stride
            current_stride = 1
            rate = 1
            net = inputs
            for i, conv_def in enumerate(conv_defs):
                end_point_base = "Conv2d_%d" % i
                if output_stride is not None and current_stride == output_stride:
                    layer_stride = 1
                    layer_rate = rate
                    rate *= conv_def.stride
                else:
                    layer_stride = conv_def.stride
                    layer_rate = 1
                    current_stride *= conv_def.stride
                if isinstance(conv_def, Conv):
                    end_point = end_point_base
                    extra = ({"padding": _fixed_padding(net, conv_def.kernel)}
                             if use_explicit_padding else {})
                    # as tensorflow/models: the conv keeps its stride even when atrous
                    net = slim.conv2d(net, depth(conv_def.depth), conv_def.kernel,
                                      stride=conv_def.stride, scope=end_point, **extra)
                    end_points[end_point] = net
                    if end_point == final_endpoint:
                        return net, end_points
                else:
                    end_point = end_point_base + "_depthwise"
                    extra = ({"padding": _fixed_padding(net, conv_def.kernel, layer_rate)}
                             if use_explicit_padding else {})
                    net = slim.separable_conv2d(net, None, conv_def.kernel, depth_multiplier=1,
                                                stride=layer_stride, rate=layer_rate,
                                                scope=end_point, **extra)
                    end_points[end_point] = net
                    if end_point == final_endpoint:
                        return net, end_points
                    end_point = end_point_base + "_pointwise"
                    net = slim.conv2d(net, depth(conv_def.depth), [1, 1], stride=1,
                                      scope=end_point)
                    end_points[end_point] = net
                    if end_point == final_endpoint:
                        return net, end_points
    raise ValueError(f"Unknown final endpoint {final_endpoint}")  # pragma: no cover


def mobilenet_v1(inputs: ArrayLike, num_classes: Optional[int] = 1000,
                 dropout_keep_prob: float = 0.999, is_training: bool = True, min_depth: int = 8,
                 depth_multiplier: float = 1.0, conv_defs: Any = None,
                 prediction_fn: Callable = slim.softmax, spatial_squeeze: bool = True,
                 reuse: Optional[bool] = None, scope: Optional[str] = "MobilenetV1",
                 global_pool: bool = False) -> NetOutput:
    """MobileNet v1 for classification (default image size 224).

    Parameters
    ----------
    inputs : array_like, ``[batch, height, width, channels]``
    num_classes : int, default 1000
        0 or None: return the pooled features (before dropout).
    dropout_keep_prob : float, default 0.999
    is_training : bool, default True
        Batch norm and dropout in training mode; pass False for inference.
    min_depth, depth_multiplier, conv_defs
        As :func:`mobilenet_v1_base`.
    prediction_fn : callable or None, default slim.softmax
    spatial_squeeze : bool, default True
    reuse : bool or AUTO_REUSE, optional
    scope : str, default 'MobilenetV1'
    global_pool : bool, default False
        Average over the whole feature map (``Logits/global_pool``) instead
        of a 7x7 window (``Logits/AvgPool_1a``, shrunk for small inputs).

    Returns
    -------
    logits : ndarray
    end_points : dict
        The base's end points, 'AvgPool_1a' or 'global_pool', 'Logits', 'Predictions'.

    Raises
    ------
    ValueError
        'Invalid input tensor rank, expected 4, was: N'.
    """
    rank = len(np.shape(inputs))
    if rank != 4:
        raise ValueError("Invalid input tensor rank, expected 4, was: %d" % rank)
    with slim.variable_scope(scope, "MobilenetV1", [inputs], reuse=reuse) as sc:
        with slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training):
            net, end_points = mobilenet_v1_base(inputs, scope=sc, min_depth=min_depth,
                                                depth_multiplier=depth_multiplier,
                                                conv_defs=conv_defs)
            with slim.variable_scope("Logits"):
                if global_pool:
                    net = global_mean(net)
                    end_points["global_pool"] = net
                else:
                    kernel_size = reduced_kernel_size_for_small_input(net, [7, 7])
                    net = slim.avg_pool2d(net, kernel_size, padding="VALID", scope="AvgPool_1a")
                    end_points["AvgPool_1a"] = net
                if not num_classes:
                    return net, end_points
                net = slim.dropout(net, keep_prob=dropout_keep_prob, scope="Dropout_1b")
                logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                                     normalizer_fn=None, scope="Conv2d_1c_1x1")
                if spatial_squeeze:
                    logits = _squeeze(logits, "MobilenetV1/Logits")
            end_points["Logits"] = logits
            if prediction_fn:
                end_points["Predictions"] = prediction_fn(logits, scope="Predictions")
    return logits, end_points


mobilenet_v1.default_image_size = 224


def wrapped_partial(func, *args, **kwargs):
    """``functools.partial`` that keeps ``func``'s name, docstring and attributes."""
    partial_func = functools.partial(func, *args, **kwargs)
    functools.update_wrapper(partial_func, func)
    return partial_func


mobilenet_v1_075 = wrapped_partial(mobilenet_v1, depth_multiplier=0.75)
mobilenet_v1_050 = wrapped_partial(mobilenet_v1, depth_multiplier=0.50)
mobilenet_v1_025 = wrapped_partial(mobilenet_v1, depth_multiplier=0.25)

_reduced_kernel_size_for_small_input = reduced_kernel_size_for_small_input


def mobilenet_v1_arg_scope(is_training: bool = True, weight_decay: float = 0.00004,
                           stddev: float = 0.09, regularize_depthwise: bool = False,
                           batch_norm_decay: float = 0.9997, batch_norm_epsilon: float = 0.001,
                           batch_norm_updates_collections: Any = slim.GraphKeys.UPDATE_OPS,
                           normalizer_fn: Optional[Callable] = slim.batch_norm) -> ArgScope:
    """conv2d and separable_conv2d with trunc_normal(``stddev``) weights, ReLU6
    and ``normalizer_fn`` (batch norm with gamma and beta, ``batch_norm_decay``,
    ``batch_norm_epsilon``, ``is_training`` unless None); l2 weight decay on
    conv2d (and on the depthwise weights with ``regularize_depthwise``)."""
    batch_norm_params = {
        "center": True,
        "scale": True,
        "decay": batch_norm_decay,
        "epsilon": batch_norm_epsilon,
        "updates_collections": batch_norm_updates_collections,
    }
    if is_training is not None:
        batch_norm_params["is_training"] = is_training
    weights_init = slim.truncated_normal_initializer(stddev=stddev)
    regularizer = slim.l2_regularizer(weight_decay)
    depthwise_regularizer = regularizer if regularize_depthwise else None
    with slim.arg_scope([slim.conv2d, slim.separable_conv2d], weights_initializer=weights_init,
                        activation_fn=slim.relu6, normalizer_fn=normalizer_fn):
        with slim.arg_scope([slim.batch_norm], **batch_norm_params):
            with slim.arg_scope([slim.conv2d], weights_regularizer=regularizer):
                with slim.arg_scope([slim.separable_conv2d],
                                    weights_regularizer=depthwise_regularizer) as sc:
                    return sc
