"""What every net shares: the input check, end points, the reduced pooling kernel."""

from collections import OrderedDict

import numpy as np

from ..variables import convert_collection_to_dict

_FLOAT_KINDS = "fiub"


def check_images(inputs, net, channels_hint=None):
    """``inputs`` as an ndarray of rank 4, or a ValueError naming the net and the shape."""
    x = inputs if type(inputs) is np.ndarray else np.asarray(inputs)
    if x.ndim != 4:
        raise ValueError(f"{net} expects images of shape [batch, height, width, channels] "
                         f"(rank 4), got an array of shape {x.shape} (rank {x.ndim})")
    if x.dtype.kind not in _FLOAT_KINDS:
        raise TypeError(f"{net} expects numeric images, got dtype {x.dtype}")
    if 0 in x.shape:
        raise ValueError(f"{net} expects non-empty images, got shape {x.shape}")
    return x


def end_points_from(collection, sc):
    """slim's ``convert_collection_to_dict``, emptying the collection, with
    the same keys on every call of a net.

    TF keeps a graph's collections forever because they hold symbolic
    tensors; here they hold real arrays, and a model called in a loop must
    not keep every call's activations alive. Pools name their outputs after
    their name scope, which TF makes unique when a net is built again in the
    same graph (``vgg_16_1/pool1``); here every call is a build, so those keys
    are given the variable scope's name (``vgg_16/pool1``), as the first call
    has them.
    """
    end_points = convert_collection_to_dict(collection, clear_collection=True)
    name_scope, stable = sc.original_name_scope, sc.name + "/"
    if not name_scope or name_scope == stable:
        return end_points
    return OrderedDict((stable + k[len(name_scope):] if k.startswith(name_scope) else k, v)
                       for k, v in end_points.items())


def reduced_kernel_size_for_small_input(input_tensor, kernel_size):
    """``[min(H, kh), min(W, kw)]``: a pooling window no larger than the input."""
    shape = np.shape(input_tensor)
    return [min(shape[1], kernel_size[0]), min(shape[2], kernel_size[1])]


def spatial_squeeze(net, name):
    """``tf.squeeze(net, [1, 2])``, with TF's error when those sizes are not 1."""
    if net.shape[1] != 1 or net.shape[2] != 1:
        raise ValueError(f"Can not squeeze dim[1] and dim[2] of {name}, expected sizes 1, got "
                         f"shape {net.shape}; pass spatial_squeeze=False for inputs larger "
                         "than the net's default image size")
    return net.reshape(net.shape[0], net.shape[3])


def concat(values):
    """``tf.concat(values, 3)``."""
    return np.concatenate(values, axis=3)


def global_mean(net):
    """``tf.reduce_mean(net, [1, 2], keepdims=True)``, in the input's dtype."""
    return net.mean(axis=(1, 2), keepdims=True, dtype=net.dtype)
