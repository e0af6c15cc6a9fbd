"""AlexNet and AlexNetBN, the small CIFAR-sized variants of refdc/networks.py.

Five convs (128-192-256-192-192) with three 2x2 max pools and one linear classifier on the
192*4*4 features (for 32x32 inputs; 1-channel inputs get padding 4 so 28x28 also ends at 4x4).
For other sizes the classifier's input is computed from image_size.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .layers import as_hw, conv_out, require_positive
from .registry import register_model

# (out_channels, kernel, padding, max-pool after)
_CONVS: tuple[tuple[int, int, int, bool], ...] = (
    (128, 5, 2, True),
    (192, 5, 2, True),
    (256, 3, 1, False),
    (192, 3, 1, False),
    (192, 3, 1, True),
)


class _AlexNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, image_size: int | Sequence[int], batchnorm: bool) -> None:
        super().__init__()
        hw = as_hw(image_size)
        name = "AlexNetBN" if batchnorm else "AlexNet"
        layers: list[nn.Module] = []
        channels, (h, w) = in_channels, hw
        for i, (out, kernel, pad, pool) in enumerate(_CONVS):
            if i == 0 and in_channels == 1:
                pad = 4  # reference: 28x28 grey images become 32x32
            layers.append(nn.Conv2d(channels, out, kernel_size=kernel, stride=1, padding=pad))
            h, w = conv_out(h, kernel, 1, pad), conv_out(w, kernel, 1, pad)
            if batchnorm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            if pool:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                h, w = h // 2, w // 2
                require_positive((h, w), name, hw, f"after conv {i + 1}")
            channels = out
        self.in_channels, self.num_classes, self.image_size = in_channels, num_classes, hw
        self.feature_dim = channels * h * w
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.features(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(x))


@register_model("alexnet", "AlexNet (CIFAR-sized): five convs, three max pools, linear classifier", family="alexnet")
class AlexNet(_AlexNet):
    def __init__(self, in_channels: int, num_classes: int, image_size: int | Sequence[int] = 32) -> None:
        super().__init__(in_channels, num_classes, image_size, batchnorm=False)


@register_model("alexnetbn", "AlexNet with batchnorm after every conv", family="alexnet")
class AlexNetBN(_AlexNet):
    def __init__(self, in_channels: int, num_classes: int, image_size: int | Sequence[int] = 32) -> None:
        super().__init__(in_channels, num_classes, image_size, batchnorm=True)
