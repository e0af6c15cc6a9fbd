"""VGG11 and VGG11BN as in refdc/networks.py `VGG` (CIFAR-style: one linear classifier).

Each conv is followed by instancenorm (GroupNorm, one group per channel) for VGG11 or batchnorm
for VGG11BN. A 1-channel input gets padding 3 in the first conv (28x28 behaves like 32x32).
After the five 2x2 max pools a 32x32 input is 512x1x1; other sizes give 512*h*w features.
The reference ends the feature stack with AvgPool2d(kernel_size=1, stride=1), an identity,
which we leave out.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn

from .layers import as_hw, conv_out, make_norm, require_positive
from .registry import register_model

Cfg = Sequence[Union[int, str]]
VGG_CONFIGS: dict[str, Cfg] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
}


class VGG(nn.Module):
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int | Sequence[int] = 32,
        config: str = "vgg11",
        norm: str = "instancenorm",
    ) -> None:
        super().__init__()
        if config not in VGG_CONFIGS:
            raise ValueError(f"Unknown VGG config '{config}'. Choose one of: {', '.join(VGG_CONFIGS)}.")
        if norm not in ("instancenorm", "batchnorm"):
            raise ValueError(f"VGG norm must be 'instancenorm' or 'batchnorm', got '{norm}'")
        hw = as_hw(image_size)
        layers: list[nn.Module] = []
        channels, (h, w), pools = in_channels, hw, 0
        for i, item in enumerate(VGG_CONFIGS[config]):
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                h, w, pools = h // 2, w // 2, pools + 1
                require_positive((h, w), config.upper(), hw, f"at max pool {pools}")
                continue
            out = int(item)
            pad = 3 if in_channels == 1 and i == 0 else 1
            layers.append(nn.Conv2d(channels, out, kernel_size=3, padding=pad))
            h, w = conv_out(h, 3, 1, pad), conv_out(w, 3, 1, pad)
            layers.append(make_norm(norm, out))  # type: ignore[arg-type]
            layers.append(nn.ReLU(inplace=True))
            channels = out
        self.in_channels, self.num_classes, self.image_size = in_channels, num_classes, hw
        self.feature_dim = channels * h * w
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.features(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


@register_model("vgg11", "VGG11 with instancenorm, one linear classifier", family="vgg")
class VGG11(VGG):
    def __init__(self, in_channels: int, num_classes: int, image_size: int | Sequence[int] = 32) -> None:
        super().__init__(in_channels, num_classes, image_size, config="vgg11", norm="instancenorm")


@register_model("vgg11bn", "VGG11 with batchnorm, one linear classifier", family="vgg")
class VGG11BN(VGG):
    def __init__(self, in_channels: int, num_classes: int, image_size: int | Sequence[int] = 32) -> None:
        super().__init__(in_channels, num_classes, image_size, config="vgg11", norm="batchnorm")
