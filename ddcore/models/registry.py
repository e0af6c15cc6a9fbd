"""The model registry: names (as in the reference's `get_network`, lower-cased) to factories.

Every factory is called as `factory(in_channels, num_classes, image_size, **options)` and
returns an `nn.Module` whose `forward` gives logits and whose `embed` gives the flattened
features before the classifier (DM matches those).
"""
from __future__ import annotations

import inspect
import numbers
from typing import Any, Callable, Sequence

from torch import nn

from ddcore.registry import Registry, drop_none

from .layers import as_hw

ModelFactory = Callable[..., nn.Module]

MODELS: Registry[ModelFactory] = Registry("model")
MAX_WIDTH = 2048  # network widths: a ConvNet of width 10,000,000 would exhaust memory before its first step
MAX_DEPTH = 200  # layers; a ResNet-152 factory registered as a plugin still fits


def register_model(name: str, description: str = "", **tags: Any) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: add a model class or factory under `name` with a one-line description."""
    return MODELS.register(name, description, **tags)


def create_model(
    name: str,
    in_channels: int,
    num_classes: int,
    image_size: int | Sequence[int],
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model; None options are dropped so each model keeps its own defaults."""
    factory = MODELS.get(name)  # UnknownNameError with close matches
    options = drop_none(kwargs)
    for key, value in options.items():  # options also come from set files and links, not only from code
        limit = MAX_WIDTH if key.endswith("width") else MAX_DEPTH if key.endswith("depth") else None
        if limit is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= limit:
            raise ValueError(f"Model '{name}' option {key} must be a whole number from 1 to {limit}, not {value!r}")
        options[key] = int(value)
    hw = as_hw(image_size)
    try:
        inspect.signature(factory).bind(in_channels, num_classes, hw, **options)
    except TypeError as err:
        raise ValueError(f"Model '{name}' does not accept options {sorted(options)}: {err}") from None
    return factory(in_channels, num_classes, hw, **options)


def accepts_option(name: str, option: str) -> bool:
    """Whether a registered model takes `option` (e.g. 'width': ConvNets do, ResNets and the MLP do not)."""
    factory = MODELS.get(name)
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return option in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def list_models() -> list[str]:
    return MODELS.names()


def model_descriptions() -> dict[str, str]:
    return {e.name: e.description for e in MODELS.entries()}
