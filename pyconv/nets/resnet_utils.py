"""Building blocks of the residual networks, as ``tf_slim.nets.resnet_utils``.

A ResNet is data: a list of :class:`Block` (scope, unit function, one
keyword-argument dict per unit) walked by :func:`stack_blocks_dense`, which
also holds the one rule for atrous ``output_stride``. ``conv2d_same`` and
``subsample`` are :func:`pyconv.conv2d_same` and :func:`pyconv.subsample`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names in the type hints only
    from .._typing import Any, ArgScope, ArrayLike, Collections, Optional, np

import collections

from .. import layers as _layers
from ..arg_scope import add_arg_scope, arg_scope
from ..initializers import variance_scaling_initializer
from ..regularizers import l2_regularizer
from ..activations import relu
from ..variables import GraphKeys, collect_named_outputs, variable_scope

__all__ = ["Block", "conv2d_same", "resnet_arg_scope", "stack_blocks_dense", "subsample"]

conv2d_same = _layers.conv2d_same
subsample = _layers.subsample


class Block(collections.namedtuple("Block", ["scope", "unit_fn", "args"])):
    """A ResNet block: ``scope`` (e.g. 'block1'), ``unit_fn`` (a unit such as
    ``resnet_v1.bottleneck``) and ``args``, one dict of keyword arguments per
    unit (``depth``, ``depth_bottleneck``, ``stride``)."""


@add_arg_scope
def stack_blocks_dense(net: ArrayLike, blocks: Any, output_stride: Optional[int] = None,
                       outputs_collections: Collections = None) -> np.ndarray:
    """Runs ``blocks`` in scopes ``<block.scope>/unit_<i>``, controlling the output stride.

    Parameters
    ----------
    net : ndarray, ``[batch, height, width, channels]``
    blocks : list of Block
    output_stride : int, optional
        The wanted ratio of input to output resolution; it must be a product
        of the units' strides from the start. Once it is reached, the
        remaining units run with stride 1 and an atrous rate multiplied by
        each skipped stride. None: the nominal stride.
    outputs_collections : str or list of str, optional
        Collections each block's output is added to (alias: its scope name).

    Returns
    -------
    ndarray

    Raises
    ------
    ValueError
        'The target output_stride cannot be reached.'
    """
    current_stride = 1
    rate = 1
    for block in blocks:
        with variable_scope(block.scope, "block", [net]) as sc:
            for i, unit in enumerate(block.args):
                if output_stride is not None and current_stride > output_stride:
                    raise ValueError("The target output_stride cannot be reached.")
                with variable_scope("unit_%d" % (i + 1), values=[net]):
                    if output_stride is not None and current_stride == output_stride:
                        net = block.unit_fn(net, rate=rate, **dict(unit, stride=1))
                        rate *= unit.get("stride", 1)
                    else:
                        net = block.unit_fn(net, rate=1, **unit)
                        current_stride *= unit.get("stride", 1)
            net = collect_named_outputs(outputs_collections, sc.name, net)
    if output_stride is not None and current_stride != output_stride:
        raise ValueError("The target output_stride cannot be reached.")
    return net


def resnet_arg_scope(weight_decay: float = 0.0001, batch_norm_decay: float = 0.997,
                     batch_norm_epsilon: float = 1e-5, batch_norm_scale: bool = True) -> ArgScope:
    """The default ResNet arg scope: conv2d with ReLU, l2 weight decay,
    He-initialised weights and batch norm (``decay``, ``epsilon``,
    ``scale`` as given); max_pool2d with 'SAME' padding (pool1).

    Returns
    -------
    dict
        A scope to pass to :func:`pyconv.arg_scope`.
    """
    batch_norm_params = {
        "decay": batch_norm_decay,
        "epsilon": batch_norm_epsilon,
        "scale": batch_norm_scale,
        "updates_collections": GraphKeys.UPDATE_OPS,
    }
    with arg_scope([_layers.conv2d],
                   weights_regularizer=l2_regularizer(weight_decay),
                   weights_initializer=variance_scaling_initializer(),
                   activation_fn=relu,
                   normalizer_fn=_layers.batch_norm,
                   normalizer_params=batch_norm_params):
        with arg_scope([_layers.batch_norm], **batch_norm_params):
            # padding='SAME' for pool1, as slim (fb.resnet.torch's choice)
            with arg_scope([_layers.max_pool2d], padding="SAME") as arg_sc:
                return arg_sc
