"""TF-Slim's model zoo on NumPy arrays: ``tf_slim.nets`` module for module
(``alexnet``, ``inception`` with ``inception_v1/_v2/_v3``, ``overfeat``,
``resnet_utils``, ``resnet_v1``, ``resnet_v2``, ``vgg``), plus ``mobilenet_v1``
and ``nets_factory`` from tensorflow/models (research/slim). See README "Nets".
"""

from . import (  # noqa: F401 - the modules tf_slim.nets imports
    alexnet,
    inception,
    inception_v1,
    inception_v2,
    inception_v3,
    mobilenet_v1,
    nets_factory,
    overfeat,
    resnet_utils,
    resnet_v1,
    resnet_v2,
    vgg,
)

__all__ = ["alexnet", "inception", "inception_v1", "inception_v2", "inception_v3",
           "mobilenet_v1", "nets_factory", "overfeat", "resnet_utils", "resnet_v1",
           "resnet_v2", "vgg"]
