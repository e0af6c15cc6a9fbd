"""The method registry: `list_methods`, `create_method`; one file per method.

Adding a method is one new file: a `DistillMethod` subclass (see methods/base.py for the contract:
family, explanation, paper, eval_augmentation, colour, Config, presets and preset_rules, requires())
decorated with `@register_method`. The registry imports every module of this package, then every
module named in the environment variable DDCORE_PLUGINS:

    DDCORE_PLUGINS=mylab.methods.fancy,other_plugin python -m ddcore methods

(comma-separated module names, imported with importlib in that order, so they must be importable:
on PYTHONPATH or installed). A plugin that fails to import stops the import of ddcore.methods with a
`PluginError` naming it; nothing is skipped silently. A plugin registers exactly like a built-in
method (`from ddcore.methods import DistillMethod, register_method`), and then appears everywhere:
the CLI's `methods` and `distill`, the Distill page, evaluation ('auto' augmentation from its
eval_augmentation), result families and plot colours.

Methods that have no implementation here but appear in the published numbers (MTT, TESLA, KIP, ...)
keep their family and evaluation augmentation in ddcore/resources/published_methods.csv;
`describe_method` answers for both.
"""
from __future__ import annotations

import importlib
import math
import os
import pkgutil
from dataclasses import dataclass
from typing import Any, Mapping

from ..data import LoadedDataset
from ..models.registry import MAX_WIDTH
from ..registry import PluginError, Registry, drop_none
from .base import (
    EVAL_AUGMENTATIONS,
    PRESETS,
    DistillMethod,
    DivergenceError,
    MethodConfig,
    MissingArtefactsError,
    PresetRule,
    Requirement,
)

METHODS: Registry[type[DistillMethod]] = Registry("method")
PLUGINS_ENV = "DDCORE_PLUGINS"


def register_method(cls: type[DistillMethod]) -> type[DistillMethod]:
    """Class decorator: registers under cls.name with its title as the description."""
    if not cls.name:
        raise ValueError(f"{cls.__module__}.{cls.__qualname__} has no name")
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
    fields = {f.name: f for f in cls.config_fields()}
    for key, value in overrides.items():
        setattr(config, key, checked_setting(cls.name, key, str(fields[key].type), value))
    return config


MAX_ITERATIONS = 1_000_000
MAX_INTEGER = 10_000_000
MAX_LEARNING_RATE = 1e6


_AT_LEAST_ONE = {"chunk", "models", "net_num", "train_net_num", "fetch_net_num", "num_experts", "syn_steps"}


def _counts_things(key: str) -> bool:
    """Integer settings that count images or networks, where 0 would fail inside torch ('Expected non-zero,
    positive output size') instead of here."""
    return "batch" in key or key.endswith("_bs") or key in _AT_LEAST_ONE


def checked_setting(method: str, key: str, annotation: str, value: Any) -> Any:
    """One override, of the field's type and in a sane range, or ValueError saying what is expected. Settings
    come from widgets, the CLI (JSON) and URLs: 1.5 or true for an iteration count, -5, 999999999999 or an lr
    of 1e9 must be refused before a run starts, not discovered hours later."""
    kinds = [k.strip() for k in annotation.split("|")]
    if value is None and "None" in kinds:
        return None
    base = next((k for k in kinds if k != "None"), "str")
    where = f"{method} setting {key}"
    if base == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{where} is true or false, not {value!r}")
        return value
    if base == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or float(value) != int(value):
            raise ValueError(f"{where} is a whole number, not {value!r}")
        value = int(value)
        low, high = (1, MAX_ITERATIONS) if key == "iterations" else (0, MAX_WIDTH) if key == "net_width" \
            else (1, MAX_WIDTH) if key.endswith("width") \
            else (1, MAX_INTEGER) if _counts_things(key) else (0, MAX_INTEGER)
        if not low <= value <= high:
            raise ValueError(f"{where} must be between {low:,} and {high:,}, not {value:,}")
        return value
    if base == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{where} is a finite number, not {value!r}")
        value = float(value)
        if key.startswith("lr") and not 0 < value <= MAX_LEARNING_RATE:
            raise ValueError(f"{where} is a learning rate: above 0 and at most {MAX_LEARNING_RATE:g}, not {value:g}")
        if value < 0:
            raise ValueError(f"{where} cannot be negative ({value:g})")
        return value
    if base == "str":
        if not isinstance(value, str) or len(value) > 200:
            raise ValueError(f"{where} is a short text, not {value!r:.60}")
        return value
    return value


def create_method(name: str, data: LoadedDataset, ipc: int, config: MethodConfig | None = None, *,
                  preset: str = "quick", seed: int = 0, device: str = "cpu", architecture: str = "convnet",
                  model_kwargs: dict | None = None, artefacts: Mapping[str, Any] | None = None,
                  **overrides: Any) -> DistillMethod:
    """The method, ready to step. `artefacts` maps each of its requirements' kinds (cls.requires(...))
    to the loaded artefact; the caller resolves them first (a missing one: MissingArtefactsError)."""
    cls = method_class(name)
    if config is None:
        config = make_config(name, data.info, ipc, preset, **overrides)
    return cls(data, ipc, config, architecture=architecture, model_kwargs=model_kwargs, seed=seed, device=device,
               artefacts=artefacts)


# ---------------------------------------------------------------------- metadata of any method id
@dataclass(frozen=True)
class MethodInfo:
    """What the platform knows about a method id: a registered class, or a row of the published table."""

    name: str
    title: str
    family: str
    eval_augmentation: str  # dsa | dc | none | auto
    colour: str | None
    registered: bool
    source: str = ""  # for published-only ids: where family and augmentation come from


def describe_method(name: str) -> MethodInfo | None:
    """A registered method's class attributes, else the published-methods table's row, else None."""
    key = (name or "").strip().lower()
    if key in METHODS:
        cls = METHODS.get(key)
        return MethodInfo(cls.name, cls.title, cls.family, cls.eval_augmentation, cls.colour, True,
                          f"{cls.__module__}.{cls.__qualname__}")
    from ..published import published_method

    row = published_method(key)
    if row is None:
        return None
    return MethodInfo(row.method, row.title, row.family, row.eval_augmentation, row.colour, False, row.source)


def known_methods() -> list[str]:
    """Every method id: the registered ones in registration order (built-ins, then plugins), then the
    published-only ones in the table's order. The stable order behind the plots' colours."""
    from ..published import published_methods

    ids = METHODS.registered()
    return ids + [m for m in published_methods() if m not in METHODS]


# ---------------------------------------------------------------------- built-ins and plugins
def plugin_names(value: str | None = None) -> list[str]:
    raw = os.environ.get(PLUGINS_ENV, "") if value is None else value
    return [part.strip() for part in raw.split(",") if part.strip()]


def load_plugins(value: str | None = None) -> list[str]:
    """Import the modules named in DDCORE_PLUGINS (or `value`); already imported ones are not re-run."""
    names = plugin_names(value)
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 (any failure of a plugin is reported as that plugin's)
            raise PluginError(f"{PLUGINS_ENV} names the method plugin '{name}', which failed to import: "
                              f"{type(e).__name__}: {e}") from e
    return names


def _register_builtin() -> None:
    """Import the method modules so their @register_method decorators run, then the plugins."""
    for mod in pkgutil.iter_modules(__path__):
        if mod.name not in ("base",) and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


_register_builtin()
load_plugins()

__all__ = ["EVAL_AUGMENTATIONS", "METHODS", "PLUGINS_ENV", "PRESETS", "DistillMethod", "DivergenceError", "MethodConfig",
           "MethodInfo", "MissingArtefactsError", "PluginError", "PresetRule", "Requirement", "create_method", "describe_method", "known_methods",
           "list_methods", "load_plugins", "make_config", "method_class", "register_method"]
