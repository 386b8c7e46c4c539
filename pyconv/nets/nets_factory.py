"""A factory of the nets by name, as tensorflow/models ``research/slim/nets/nets_factory.py``.

Only the nets that exist here are listed (not cifarnet, lenet, inception_v4,
inception_resnet_v2, mobilenet_v2, nasnet, pnasnet, i3d, s3dg). As in
tensorflow/models, inception_v1 and inception_v2 run under
``inception_v3_arg_scope``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names in the type hints only
    from .._typing import Callable, NetOutput, Optional

import functools
import weakref

import pyconv as slim

from . import alexnet, inception, mobilenet_v1, overfeat, resnet_v1, resnet_v2, vgg

__all__ = ["arg_scopes_map", "get_network_fn", "networks_map"]

networks_map = {
    "alexnet_v2": alexnet.alexnet_v2,
    "overfeat": overfeat.overfeat,
    "vgg_a": vgg.vgg_a,
    "vgg_16": vgg.vgg_16,
    "vgg_19": vgg.vgg_19,
    "inception_v1": inception.inception_v1,
    "inception_v2": inception.inception_v2,
    "inception_v3": inception.inception_v3,
    "resnet_v1_50": resnet_v1.resnet_v1_50,
    "resnet_v1_101": resnet_v1.resnet_v1_101,
    "resnet_v1_152": resnet_v1.resnet_v1_152,
    "resnet_v1_200": resnet_v1.resnet_v1_200,
    "resnet_v2_50": resnet_v2.resnet_v2_50,
    "resnet_v2_101": resnet_v2.resnet_v2_101,
    "resnet_v2_152": resnet_v2.resnet_v2_152,
    "resnet_v2_200": resnet_v2.resnet_v2_200,
    "mobilenet_v1": mobilenet_v1.mobilenet_v1,
    "mobilenet_v1_075": mobilenet_v1.mobilenet_v1_075,
    "mobilenet_v1_050": mobilenet_v1.mobilenet_v1_050,
    "mobilenet_v1_025": mobilenet_v1.mobilenet_v1_025,
}

arg_scopes_map = {
    "alexnet_v2": alexnet.alexnet_v2_arg_scope,
    "overfeat": overfeat.overfeat_arg_scope,
    "vgg_a": vgg.vgg_arg_scope,
    "vgg_16": vgg.vgg_arg_scope,
    "vgg_19": vgg.vgg_arg_scope,
    "inception_v1": inception.inception_v3_arg_scope,
    "inception_v2": inception.inception_v3_arg_scope,
    "inception_v3": inception.inception_v3_arg_scope,
    "resnet_v1_50": resnet_v1.resnet_arg_scope,
    "resnet_v1_101": resnet_v1.resnet_arg_scope,
    "resnet_v1_152": resnet_v1.resnet_arg_scope,
    "resnet_v1_200": resnet_v1.resnet_arg_scope,
    "resnet_v2_50": resnet_v2.resnet_arg_scope,
    "resnet_v2_101": resnet_v2.resnet_arg_scope,
    "resnet_v2_152": resnet_v2.resnet_arg_scope,
    "resnet_v2_200": resnet_v2.resnet_arg_scope,
    "mobilenet_v1": mobilenet_v1.mobilenet_v1_arg_scope,
    "mobilenet_v1_075": mobilenet_v1.mobilenet_v1_arg_scope,
    "mobilenet_v1_050": mobilenet_v1.mobilenet_v1_arg_scope,
    "mobilenet_v1_025": mobilenet_v1.mobilenet_v1_arg_scope,
}


def get_network_fn(name: str, num_classes: Optional[int], weight_decay: float = 0.0,
                   is_training: bool = False) -> Callable[..., NetOutput]:
    """A function ``net, end_points = network_fn(images, **kwargs)`` for the net ``name``.

    The function builds the net under its arg scope with ``num_classes`` and
    ``is_training``. Unlike TF's, it may be called any number of times: the
    first call in a store creates the variables (or takes values loaded
    with ``store.load`` beforehand), later calls in the same store reuse
    them, so it can be applied to one batch after another.

    Parameters
    ----------
    name : str
        A key of ``networks_map``.
    num_classes : int
        0 or None: the nets that allow it return their features.
    weight_decay : float, default 0.0
        The l2 coefficient of the arg scope.
    is_training : bool, default False

    Returns
    -------
    callable
        With the net's ``default_image_size`` when it has one.

    Raises
    ------
    ValueError
        'Name of network unknown ...', listing the known names.
    """
    if name not in networks_map:
        raise ValueError(f"Name of network unknown {name}; known: {', '.join(networks_map)}")
    func = networks_map[name]
    built_in = weakref.WeakKeyDictionary()  # stores in which the variables exist

    @functools.wraps(func)
    def network_fn(images, **kwargs):
        arg_scope = arg_scopes_map[name](weight_decay=weight_decay)
        store = slim.get_default_store()
        reuse = True if built_in.get(store) else None
        with slim.arg_scope(arg_scope):
            with slim.variable_scope(slim.get_variable_scope(), reuse=reuse):
                result = func(images, num_classes=num_classes, is_training=is_training,
                              **kwargs)
        built_in[store] = True
        return result

    if hasattr(func, "default_image_size"):
        network_fn.default_image_size = func.default_image_size
    return network_fn
