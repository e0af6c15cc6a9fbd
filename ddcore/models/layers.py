"""Building blocks shared by the model families: norms, activations and size arithmetic.

Norm and activation names follow the DC/DSA/DM reference (refdc/networks.py): 'instancenorm'
there is a GroupNorm with one group per channel, which is what we build too so that parameter
counts and numerics match.
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

NORMS = ("none", "batchnorm", "layernorm", "instancenorm", "groupnorm")
ACTIVATIONS = ("relu", "sigmoid", "leakyrelu", "swish")
POOLINGS = ("none", "avgpooling", "maxpooling")

GROUPNORM_GROUPS = 4  # reference 'groupnorm': GroupNorm(4, C)


def as_hw(image_size: int | Sequence[int]) -> tuple[int, int]:
    """An int or (H, W) as a checked (H, W) pair."""
    if isinstance(image_size, int):
        hw = (image_size, image_size)
    else:
        hw = tuple(int(s) for s in image_size)
        if len(hw) != 2:
            raise ValueError(f"image_size must be an int or (height, width), got {image_size!r}")
    if min(hw) < 1:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    return hw  # type: ignore[return-value]


def check_choice(kind: str, value: str, choices: Sequence[str]) -> str:
    key = str(value).strip().lower()
    if key not in choices:
        raise ValueError(f"Unknown {kind} '{value}'. Choose one of: {', '.join(choices)}.")
    return key


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution or pooling window along one axis (floor mode)."""
    return (size + 2 * padding - kernel) // stride + 1


def require_positive(hw: tuple[int, int], model: str, image_size: tuple[int, int], stage: str) -> None:
    """Fail with a readable message when the feature map has shrunk to nothing."""
    if min(hw) < 1:
        raise ValueError(
            f"{model}: input size {image_size[0]}x{image_size[1]} is too small; the feature map "
            f"vanishes {stage}. Use a larger image_size or a shallower model."
        )


def make_norm(kind: str, channels: int, spatial: tuple[int, int] | None = None) -> nn.Module | None:
    """The reference's norm layers; `spatial` (H, W) is needed by layernorm only."""
    kind = check_choice("norm", kind, NORMS)
    if kind == "none":
        return None
    if kind == "batchnorm":
        return nn.BatchNorm2d(channels)
    if kind == "instancenorm":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "groupnorm":
        if channels % GROUPNORM_GROUPS:
            raise ValueError(f"groupnorm needs a width divisible by {GROUPNORM_GROUPS}, got {channels}")
        return nn.GroupNorm(GROUPNORM_GROUPS, channels, affine=True)
    if spatial is None:  # layernorm normalises over (C, H, W) of that layer's output
        raise ValueError("layernorm needs the feature map's spatial size")
    return nn.LayerNorm([channels, spatial[0], spatial[1]], elementwise_affine=True)


def make_activation(kind: str) -> nn.Module:
    kind = check_choice("activation", kind, ACTIVATIONS)
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "sigmoid":
        return nn.Sigmoid()
    if kind == "leakyrelu":
        return nn.LeakyReLU(negative_slope=0.01)
    return nn.SiLU()  # swish: x * sigmoid(x)


def make_pool(kind: str) -> nn.Module | None:
    kind = check_choice("pooling", kind, POOLINGS)
    if kind == "none":
        return None
    if kind == "maxpooling":
        return nn.MaxPool2d(kernel_size=2, stride=2)
    return nn.AvgPool2d(kernel_size=2, stride=2)
