"""Model zoo for dataset distillation: the reference DC/DSA/DM architectures behind one registry.

    from ddcore.models import create_model, list_models
    net = create_model("convnet", in_channels=3, num_classes=10, image_size=32)

Importing this package registers every family (one module each).
"""
from __future__ import annotations

from ddcore.registry import UnknownNameError

from .registry import MODELS, ModelFactory, create_model, list_models, model_descriptions, register_model

# Importing the family modules registers their models.
from .convnet import ConvNet  # noqa: E402
from .mlp import MLP  # noqa: E402
from .lenet import LeNet  # noqa: E402
from .alexnet import AlexNet, AlexNetBN  # noqa: E402
from .vgg import VGG, VGG11, VGG11BN  # noqa: E402
from .resnet import ResNet, ResNet18, ResNet18AP, ResNet18BN, ResNet18BNAP  # noqa: E402

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
