"""Vision models by name (MXNet's ``gluon.model_zoo.vision``).

``get_model(name, classes=..., pretrained=False, ctx=None, root=None, **kwargs)``
builds AlexNet, VGG 11-19 (``_bn``), ResNet V1/V2 18-152, DenseNet 121-201,
SqueezeNet 1.0/1.1, Inception V3, MobileNet and MobileNetV2 at four widths, and
LeNet-5.  Their structure is MXNet 1.9.1's, so the structural parameter names that
``save_parameters`` writes (``features.0.weight``) and their shapes are those of
MXNet's model zoo files, and ``collect_params()`` names (``resnetv10_conv0_weight``)
follow the same prefixes.

Pretrained weights are never downloaded: ``pretrained=True`` loads ``root``, a
parameter file or a folder holding ``{name}.safetensors``, ``{name}.params`` or
MXNet's ``{name}-{hash}.params`` (see ``model_store``); without ``root`` it is an
error naming the model.

A model is a function ``fn(pretrained=False, ctx=None, root=None, **kwargs)``
returning a Block; adding one means writing its module and listing it in ``_models``.
"""
from __future__ import annotations

from typing import Callable, Dict

from mxcore.base import MXCoreError
from mxcore.gluon.block import Block
from mxcore.gluon.model_zoo.vision.alexnet import AlexNet, alexnet
from mxcore.gluon.model_zoo.vision.densenet import (DenseNet, densenet121, densenet161,
                                                    densenet169, densenet201, get_densenet)
from mxcore.gluon.model_zoo.vision.inception import Inception3, inception_v3
from mxcore.gluon.model_zoo.vision.lenet import LeNet, lenet
from mxcore.gluon.model_zoo.vision.mobilenet import (MobileNet, MobileNetV2, get_mobilenet,
                                                     get_mobilenet_v2, mobilenet0_5,
                                                     mobilenet0_25, mobilenet0_75,
                                                     mobilenet1_0, mobilenet_v2_0_5,
                                                     mobilenet_v2_0_25, mobilenet_v2_0_75,
                                                     mobilenet_v2_1_0)
from mxcore.gluon.model_zoo.vision.resnet import (BasicBlockV1, BasicBlockV2, BottleneckV1,
                                                  BottleneckV2, ResNetV1, ResNetV2, get_resnet,
                                                  resnet18_v1, resnet18_v2, resnet34_v1,
                                                  resnet34_v2, resnet50_v1, resnet50_v2,
                                                  resnet101_v1, resnet101_v2, resnet152_v1,
                                                  resnet152_v2)
from mxcore.gluon.model_zoo.vision.squeezenet import (SqueezeNet, get_squeezenet,
                                                      squeezenet1_0, squeezenet1_1)
from mxcore.gluon.model_zoo.vision.vgg import (VGG, get_vgg, vgg11, vgg11_bn, vgg13, vgg13_bn,
                                               vgg16, vgg16_bn, vgg19, vgg19_bn)

__all__ = ["get_model", "UnknownModelError",
           "AlexNet", "VGG", "ResNetV1", "ResNetV2", "BasicBlockV1", "BasicBlockV2",
           "BottleneckV1", "BottleneckV2", "DenseNet", "SqueezeNet", "Inception3",
           "MobileNet", "MobileNetV2", "LeNet",
           "alexnet", "get_vgg", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn",
           "vgg16_bn", "vgg19_bn", "get_resnet", "resnet18_v1", "resnet34_v1", "resnet50_v1",
           "resnet101_v1", "resnet152_v1", "resnet18_v2", "resnet34_v2", "resnet50_v2",
           "resnet101_v2", "resnet152_v2", "get_densenet", "densenet121", "densenet161",
           "densenet169", "densenet201", "get_squeezenet", "squeezenet1_0", "squeezenet1_1",
           "inception_v3", "get_mobilenet", "get_mobilenet_v2", "mobilenet1_0",
           "mobilenet0_75", "mobilenet0_5", "mobilenet0_25", "mobilenet_v2_1_0",
           "mobilenet_v2_0_75", "mobilenet_v2_0_5", "mobilenet_v2_0_25", "lenet"]


class UnknownModelError(MXCoreError, ValueError):
    """``get_model`` was given a name the zoo does not have (a ValueError, as in MXNet)."""


# MXNet's names (its pretrained files are named after them), plus LeNet
_models: Dict[str, Callable[..., Block]] = {
    "resnet18_v1": resnet18_v1, "resnet34_v1": resnet34_v1, "resnet50_v1": resnet50_v1,
    "resnet101_v1": resnet101_v1, "resnet152_v1": resnet152_v1,
    "resnet18_v2": resnet18_v2, "resnet34_v2": resnet34_v2, "resnet50_v2": resnet50_v2,
    "resnet101_v2": resnet101_v2, "resnet152_v2": resnet152_v2,
    "vgg11": vgg11, "vgg13": vgg13, "vgg16": vgg16, "vgg19": vgg19,
    "vgg11_bn": vgg11_bn, "vgg13_bn": vgg13_bn, "vgg16_bn": vgg16_bn, "vgg19_bn": vgg19_bn,
    "alexnet": alexnet,
    "densenet121": densenet121, "densenet161": densenet161, "densenet169": densenet169,
    "densenet201": densenet201,
    "squeezenet1.0": squeezenet1_0, "squeezenet1.1": squeezenet1_1,
    "inceptionv3": inception_v3,
    "mobilenet1.0": mobilenet1_0, "mobilenet0.75": mobilenet0_75,
    "mobilenet0.5": mobilenet0_5, "mobilenet0.25": mobilenet0_25,
    "mobilenetv2_1.0": mobilenet_v2_1_0, "mobilenetv2_0.75": mobilenet_v2_0_75,
    "mobilenetv2_0.5": mobilenet_v2_0_5, "mobilenetv2_0.25": mobilenet_v2_0_25,
    "lenet": lenet,
}


def get_model(name: str, **kwargs) -> Block:
    """The model ``name`` (case-insensitive), built with ``kwargs`` (``classes``,
    ``pretrained``, ``ctx``, ``root``...)."""
    key = str(name).lower()
    if key not in _models:
        raise UnknownModelError(f"model {name!r} is not in the model zoo; available: "
                                f"{', '.join(sorted(_models))}")
    return _models[key](**kwargs)
