"""Receptive fields by counting, for the summary tests.

Independent of ``pyconv._summary``'s recurrence: one spatial dimension, the
exact interval of input indices that can reach each output index, found by
walking the index maps of the layers backwards (output index interval ->
the input indices its taps read), then the widest over many output indices.
Indices are unbounded integers, so padding counts as input positions, the
convention of TF-Slim's ``receptive_field`` tables (315 for MobileNet v1 at
224 although the input has 224 pixels).

A layer is a tuple:

- ``("conv", k, s, d, pad_before)``: output o reads o*s - pad + t*d, t in [0, k)
  (convolutions, depthwise convolutions and pools alike);
- ``("deconv", k, s, pad_before)``: a transposed convolution whose forward
  convolution has those pads; output o receives input i when
  i*s + t - pad == o for a tap t in [0, k);
- ``("global", n)``: one value from all n positions of its input map.
"""

import math


def _back(layer, lo, hi):
    kind = layer[0]
    if kind == "conv":
        _, k, s, d, p = layer
        return lo * s - p, hi * s - p + (k - 1) * d
    if kind == "deconv":
        _, k, s, p = layer
        return math.ceil((lo + p - (k - 1)) / s), (hi + p) // s
    if kind == "global":
        return 0, layer[1] - 1
    raise ValueError(layer)


def support(layers, o):
    """(first, last) input index that output index ``o`` of ``layers`` depends on."""
    lo = hi = o
    for layer in reversed(layers):
        lo, hi = _back(layer, lo, hi)
    return lo, hi


def receptive_field(layers, outputs=range(64)):
    """The widest support over the output indices ``outputs``."""
    return max(hi - lo + 1 for lo, hi in (support(layers, o) for o in outputs))


def stride(layers, o=64, step=1):
    """Input pixels between the supports of outputs o and o + step, over step."""
    a, b = support(layers, o)[0], support(layers, o + step)[0]
    return (b - a) / step
