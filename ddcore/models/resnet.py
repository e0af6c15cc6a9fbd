"""ResNet-18 variants of refdc/networks.py: ResNet18, ResNet18BN, ResNet18_AP, ResNet18BN_AP.

CIFAR-style stem (one 3x3 conv, no max pool), four stages of two BasicBlocks (64-128-256-512).
'instancenorm' is GroupNorm with one group per channel (the default), 'BN' is batchnorm.
The '_AP' variants replace every stride-2 conv by a stride-1 conv plus 2x2 average pooling,
and classify the whole final map (512*4*4 for 32x32, 512*3*3 for 28x28) instead of pooling it.
The plain variants end with a 4x4 average pool, as in the reference, so 28x28 and 32x32 both
give 512 features and larger inputs give 512*(h//4)*(w//4). No special case for 1-channel
input exists in the reference and none is added here. Parameter names follow the reference,
so its state_dicts load unchanged.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .layers import as_hw, conv_out, make_norm, require_positive
from .registry import register_model

STAGES: tuple[tuple[int, int], ...] = ((64, 1), (128, 2), (256, 2), (512, 2))  # (planes, stride)
BLOCKS_PER_STAGE = 2  # ResNet-18


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual; `avgpool_downsample` gives the reference's '_AP' block."""

    def __init__(self, in_planes: int, planes: int, stride: int, norm: str, avgpool_downsample: bool) -> None:
        super().__init__()
        self.pool = stride if avgpool_downsample and stride != 1 else 0
        conv_stride = 1 if avgpool_downsample else stride
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=conv_stride, padding=1, bias=False)
        self.bn1 = make_norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = make_norm(norm, planes)
        shortcut: list[nn.Module] = []
        if stride != 1 or in_planes != planes:
            shortcut.append(nn.Conv2d(in_planes, planes, kernel_size=1, stride=conv_stride, bias=False))
            if avgpool_downsample:
                shortcut.append(nn.AvgPool2d(kernel_size=2, stride=2))
            shortcut.append(make_norm(norm, planes))  # type: ignore[arg-type]
        self.shortcut = nn.Sequential(*shortcut)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        if self.pool:
            out = F.avg_pool2d(out, kernel_size=2, stride=2)
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)  # in place, as in the reference (the norm backward keeps its input)
        return F.relu(out)


class ResNet(nn.Module):
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int | Sequence[int] = 32,
        norm: str = "instancenorm",
        avgpool_downsample: bool = False,
    ) -> None:
        super().__init__()
        if norm not in ("instancenorm", "batchnorm"):
            raise ValueError(f"ResNet norm must be 'instancenorm' or 'batchnorm', got '{norm}'")
        hw = as_hw(image_size)
        name = "ResNet18" + ("BN" if norm == "batchnorm" else "") + ("_AP" if avgpool_downsample else "")
        self.avgpool_downsample = avgpool_downsample
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = make_norm(norm, 64)
        in_planes, (h, w) = 64, hw
        for index, (planes, stride) in enumerate(STAGES, start=1):
            blocks = []
            for b in range(BLOCKS_PER_STAGE):
                s = stride if b == 0 else 1
                blocks.append(BasicBlock(in_planes, planes, s, norm, avgpool_downsample))
                in_planes = planes
            if stride != 1:  # strided 3x3 conv (pad 1) or 2x2 average pool, both per axis
                h, w = ((x // 2) if avgpool_downsample else conv_out(x, 3, stride, 1) for x in (h, w))
            setattr(self, f"layer{index}", nn.Sequential(*blocks))
        if not avgpool_downsample:  # the reference's final F.avg_pool2d(out, 4)
            h, w = h // 4, w // 4
        require_positive((h, w), name, hw, "before the classifier")
        self.in_channels, self.num_classes, self.image_size = in_channels, num_classes, hw
        self.feature_dim = in_planes * h * w
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        if not self.avgpool_downsample:
            out = F.avg_pool2d(out, 4)
        return torch.flatten(out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


@register_model("resnet18", "ResNet-18 (CIFAR stem) with instancenorm", family="resnet")
class ResNet18(ResNet):
    def __init__(self, in_channels: int, num_classes: int, image_size: int | Sequence[int] = 32) -> None:
        super().__init__(in_channels, num_classes, image_size, norm="instancenorm")


@register_model("resnet18bn", "ResNet-18 (CIFAR stem) with batchnorm", family="resnet")
class ResNet18BN(ResNet):
    def __init__(self, in_channels: int, num_classes: int, image_size: int | Sequence[int] = 32) -> None:
        super().__init__(in_channels, num_classes, image_size, norm="batchnorm")


@register_model("resnet18_ap", "ResNet-18 with instancenorm, average-pool downsampling", family="resnet")
class ResNet18AP(ResNet):
    def __init__(self, in_channels: int, num_classes: int, image_size: int | Sequence[int] = 32) -> None:
        super().__init__(in_channels, num_classes, image_size, norm="instancenorm", avgpool_downsample=True)


@register_model("resnet18bn_ap", "ResNet-18 with batchnorm, average-pool downsampling", family="resnet")
class ResNet18BNAP(ResNet):
    def __init__(self, in_channels: int, num_classes: int, image_size: int | Sequence[int] = 32) -> None:
        super().__init__(in_channels, num_classes, image_size, norm="batchnorm", avgpool_downsample=True)
