"""MLP: the reference's three-layer perceptron (refdc/networks.py `MLP`), 128 hidden units.

The reference hard-codes 28*28*1 or 32*32*3 inputs; we use C*H*W of the given image_size,
which equals those two for MNIST-like and CIFAR-like data.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .layers import as_hw
from .registry import register_model

HIDDEN = 128


@register_model("mlp", "Three-layer perceptron, 128 hidden units, ReLU", family="mlp")
class MLP(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, image_size: int | Sequence[int] = 32) -> None:
        super().__init__()
        hw = as_hw(image_size)
        self.in_channels, self.num_classes, self.image_size = in_channels, num_classes, hw
        self.feature_dim = HIDDEN
        self.fc_1 = nn.Linear(in_channels * hw[0] * hw[1], HIDDEN)
        self.fc_2 = nn.Linear(HIDDEN, HIDDEN)
        self.fc_3 = nn.Linear(HIDDEN, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer (the reference has no MLP embed; added so DM can use any model)."""
        out = F.relu(self.fc_1(torch.flatten(x, 1)))
        return F.relu(self.fc_2(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_3(self.embed(x))
