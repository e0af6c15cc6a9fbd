"""LeNet-5 as in refdc/networks.py `LeNet`: two 5x5 convs with max pooling, then 120-84-classes.

A 1-channel input gets padding 2 in the first conv (28x28 behaves like 32x32), as in the
reference; the flattened size is computed from image_size (16*5*5 for 28x28 and 32x32).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .layers import as_hw, conv_out, require_positive
from .registry import register_model


@register_model("lenet", "LeNet-5: two 5x5 convs with max pooling, then 120-84 fully connected", family="lenet")
class LeNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, image_size: int | Sequence[int] = 32) -> None:
        super().__init__()
        hw = as_hw(image_size)
        pad = 2 if in_channels == 1 else 0
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=pad),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        h, w = ((conv_out(s, 5, 1, pad) // 2 - 4) // 2 for s in hw)
        require_positive((h, w), "LeNet", hw, "after the second conv and pooling")
        self.in_channels, self.num_classes, self.image_size = in_channels, num_classes, hw
        self.feature_dim = 84
        self.fc_1 = nn.Linear(16 * h * w, 120)
        self.fc_2 = nn.Linear(120, 84)
        self.fc_3 = nn.Linear(84, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the 84-unit layer (the reference has no LeNet embed; added for DM)."""
        out = torch.flatten(self.features(x), 1)
        return F.relu(self.fc_2(F.relu(self.fc_1(out))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_3(self.embed(x))
