"""Model zoo for dataset distillation: the reference DC/DSA/DM architectures behind one registry.

    from ddcore.models import create_model, list_models
    net = create_model("convnet", in_channels=3, num_classes=10, image_size=32)

Importing this package registers every family (one module each).
"""
from __future__ import annotations

from ddcore.registry import UnknownNameError

# Importing the family modules (alexnet ... vgg) registers their models; the registry lists them sorted by name.
from .alexnet import AlexNet, AlexNetBN
from .convnet import ConvNet
from .lenet import LeNet
from .mlp import MLP
from .registry import MODELS, ModelFactory, create_model, list_models, model_descriptions, register_model
from .resnet import ResNet, ResNet18, ResNet18AP, ResNet18BN, ResNet18BNAP
from .vgg import VGG, VGG11, VGG11BN

__all__ = [
    "MODELS",
    "ModelFactory",
    "UnknownNameError",
    "create_model",
    "list_models",
    "model_descriptions",
    "register_model",
    "ConvNet",
    "MLP",
    "LeNet",
    "AlexNet",
    "AlexNetBN",
    "VGG",
    "VGG11",
    "VGG11BN",
    "ResNet",
    "ResNet18",
    "ResNet18BN",
    "ResNet18AP",
    "ResNet18BNAP",
]
