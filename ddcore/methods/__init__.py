"""The method registry: `list_methods`, `create_method`, one file per method."""
from __future__ import annotations

from typing import Any

from ..data import LoadedDataset
from ..registry import Registry, drop_none
from .base import PRESETS, DistillMethod, DivergenceError, MethodConfig, Requirement

METHODS: Registry[type[DistillMethod]] = Registry("method")


def register_method(cls: type[DistillMethod]) -> type[DistillMethod]:
    """Class decorator: registers under cls.name with its title as the description."""
    METHODS.add(cls.name, cls, cls.title, family=cls.family)
    return cls


def list_methods() -> list[str]:
    return METHODS.names()


def method_class(name: str) -> type[DistillMethod]:
    return METHODS.get(name)


def make_config(name: str, data_info, ipc: int, preset: str = "quick", **overrides: Any) -> MethodConfig:
    """A preset's config with overrides applied (None values ignored; unknown fields refused)."""
    cls = method_class(name)
    config = cls.default_config(data_info, ipc, preset)
    overrides = drop_none(overrides)
    known = {f.name for f in cls.config_fields()}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"{cls.name} has no setting(s) {', '.join(unknown)}; it has: {', '.join(sorted(known))}")
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def create_method(name: str, data: LoadedDataset, ipc: int, config: MethodConfig | None = None, *,
                  preset: str = "quick", seed: int = 0, device: str = "cpu", architecture: str = "convnet",
                  model_kwargs: dict | None = None, artefacts: dict[str, Any] | None = None,
                  **overrides: Any) -> DistillMethod:
    cls = method_class(name)
    if config is None:
        config = make_config(name, data.info, ipc, preset, **overrides)
    return cls(data, ipc, config, architecture=architecture, model_kwargs=model_kwargs, seed=seed, device=device,
               artefacts=artefacts)


def _register_builtin() -> None:
    """Import the method modules so their @register_method decorators run."""
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        if mod.name not in ("base",) and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


_register_builtin()

__all__ = ["METHODS", "PRESETS", "DistillMethod", "DivergenceError", "MethodConfig", "Requirement", "create_method",
           "list_methods", "make_config", "method_class", "register_method"]
