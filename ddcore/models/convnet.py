"""ConvNet: the depth-D, width-W conv/norm/act/pool stack used throughout dataset distillation.

Architecture and defaults from refdc/networks.py (`ConvNet`) and refdc/utils.py
(`get_default_convnet_setting`: width 128, depth 3, relu, instancenorm, avgpooling); the
variant names are those of `get_network`. As in the reference, a 1-channel input gets padding
3 in the first conv (28x28 MNIST becomes 32x32 features); all later sizes are computed from
the real input size, so any image_size that survives the pooling works.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from .layers import (
    ACTIVATIONS,
    NORMS,
    POOLINGS,
    as_hw,
    check_choice,
    conv_out,
    make_activation,
    make_norm,
    make_pool,
    require_positive,
)
from .registry import ModelFactory, register_model


class ConvNet(nn.Module):
    """[conv3x3 -> norm -> activation -> pool] x depth, then one linear classifier."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int | Sequence[int] = 32,
        width: int = 128,
        depth: int = 3,
        norm: str = "instancenorm",
        activation: str = "relu",
        pooling: str = "avgpooling",
    ) -> None:
        super().__init__()
        hw = as_hw(image_size)
        if depth < 1:
            raise ValueError(f"ConvNet depth must be at least 1, got {depth}")
        if width < 1:
            raise ValueError(f"ConvNet width must be at least 1, got {width}")
        norm = check_choice("norm", norm, NORMS)
        activation = check_choice("activation", activation, ACTIVATIONS)
        pooling = check_choice("pooling", pooling, POOLINGS)

        layers: list[nn.Module] = []
        channels, (h, w) = in_channels, hw
        for d in range(depth):
            pad = 3 if in_channels == 1 and d == 0 else 1
            layers.append(nn.Conv2d(channels, width, kernel_size=3, padding=pad))
            h, w = conv_out(h, 3, 1, pad), conv_out(w, 3, 1, pad)
            norm_layer = make_norm(norm, width, (h, w))
            if norm_layer is not None:
                layers.append(norm_layer)
            layers.append(make_activation(activation))
            pool = make_pool(pooling)
            if pool is not None:
                layers.append(pool)
                h, w = h // 2, w // 2
                require_positive((h, w), "ConvNet", hw, f"after pooling in block {d + 1} of {depth}")
            channels = width

        self.in_channels, self.num_classes, self.image_size = in_channels, num_classes, hw
        self.feature_dim = width * h * w
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Flattened features before the classifier (used by distribution matching)."""
        return torch.flatten(self.features(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


register_model("convnet", "ConvNet-3, width 128, instancenorm, ReLU, avg pooling (the DD default)",
               family="convnet")(ConvNet)


CONVNET_OPTIONS: tuple[str, ...] = ("width", "depth", "norm", "activation", "pooling")


def _variant(**preset: Any) -> ModelFactory:
    """A ConvNet factory with some options fixed; a conflicting explicit option is an error."""

    def factory(in_channels: int, num_classes: int, image_size: int | Sequence[int], **options: Any) -> ConvNet:
        unknown = sorted(set(options) - set(CONVNET_OPTIONS))
        if unknown:
            raise ValueError(f"Unknown ConvNet options {unknown}; choose from {', '.join(CONVNET_OPTIONS)}")
        for key, value in preset.items():
            if key in options and options[key] != value:
                raise ValueError(f"This ConvNet variant fixes {key}={value!r}; got {key}={options[key]!r}")
        return ConvNet(in_channels, num_classes, image_size, **{**options, **preset})

    return factory


_VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    **{f"convnetd{d}": ({"depth": d}, f"ConvNet with depth {d}") for d in (1, 2, 3, 4)},
    **{f"convnetw{w}": ({"width": w}, f"ConvNet with width {w}") for w in (32, 64, 128, 256)},
    "convnetas": ({"activation": "sigmoid"}, "ConvNet with sigmoid activations"),
    "convnetar": ({"activation": "relu"}, "ConvNet with ReLU activations"),
    "convnetal": ({"activation": "leakyrelu"}, "ConvNet with LeakyReLU(0.01) activations"),
    "convnetaswish": ({"activation": "swish"}, "ConvNet with swish (SiLU) activations"),
    "convnetaswishbn": ({"activation": "swish", "norm": "batchnorm"}, "ConvNet with swish and batchnorm"),
    "convnetnn": ({"norm": "none"}, "ConvNet without normalisation"),
    "convnetbn": ({"norm": "batchnorm"}, "ConvNet with batchnorm"),
    "convnetln": ({"norm": "layernorm"}, "ConvNet with layernorm over (C, H, W)"),
    "convnetin": ({"norm": "instancenorm"}, "ConvNet with instancenorm (GroupNorm, one group per channel)"),
    "convnetgn": ({"norm": "groupnorm"}, "ConvNet with groupnorm (4 groups)"),
    "convnetnp": ({"pooling": "none"}, "ConvNet without pooling"),
    "convnetmp": ({"pooling": "maxpooling"}, "ConvNet with max pooling"),
    "convnetap": ({"pooling": "avgpooling"}, "ConvNet with average pooling"),
}

for _name, (_preset, _description) in _VARIANTS.items():
    register_model(_name, _description, family="convnet", **_preset)(_variant(**_preset))
