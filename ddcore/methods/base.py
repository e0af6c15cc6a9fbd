"""The method contract: a method owns the synthetic set and advances one outer iteration per step().

Every method (coreset selection, gradient matching, distribution matching, and later trajectory and
kernel methods) is one file with a config dataclass of the paper's defaults and named presets.
Randomness is derived from (seed, iteration), so a run resumed from a checkpoint continues exactly
as an uninterrupted one would.
"""
from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch

from ..data import LoadedDataset
from ..data.info import DatasetInfo
from ..synthetic import SetMeta, SyntheticSet

PRESETS = ("quick", "paper")


@dataclass
class MethodConfig:
    """Fields every method has; methods subclass this with their paper's defaults."""

    iterations: int = 1
    init: str = "real"  # "real" (random real images of the class) or "noise" (standard normal)


class DivergenceError(RuntimeError):
    """The loss became NaN/inf or exploded; the last good synthetic set is kept by the caller."""


class DistillMethod(ABC):
    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    family: ClassVar[str] = ""  # coreset | gradient matching | distribution matching | trajectory | kernel
    explanation: ClassVar[str] = ""  # one plain-language paragraph for the UI
    paper: ClassVar[str] = ""  # citation
    paper_url: ClassVar[str] = ""
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    presets: ClassVar[tuple[str, ...]] = PRESETS

    def __init__(self, data: LoadedDataset, ipc: int, config: MethodConfig | None = None, *,
                 architecture: str = "convnet", model_kwargs: dict[str, Any] | None = None,
                 seed: int = 0, device: str | torch.device = "cpu", artefacts: dict[str, Any] | None = None) -> None:
        if ipc < 1:
            raise ValueError(f"IPC must be at least 1, not {ipc}")
        smallest = min(data.train.class_counts())
        if smallest < ipc:
            raise ValueError(f"IPC {ipc} needs at least {ipc} training images per class; the smallest class has {smallest}")
        self.data = data
        self.info: DatasetInfo = data.info
        self.ipc = ipc
        self.config = config if config is not None else self.default_config(data.info, ipc, "paper")
        if not isinstance(self.config, self.Config):
            raise TypeError(f"{self.name} expects a {self.Config.__name__}, got {type(self.config).__name__}")
        self.artefacts = dict(artefacts or {})
        self.architecture = architecture
        self.model_kwargs = dict(model_kwargs or {})
        self.seed = int(seed)
        self.device = torch.device(device)
        self.iteration = 0
        self.elapsed_s = 0.0
        self.lr: float | None = None
        self.labels = torch.arange(self.info.num_classes).repeat_interleave(ipc).to(self.device)
        self.images = self.initial_images().to(self.device)

    # ------------------------------------------------------------------ presets
    @classmethod
    def default_config(cls, info: DatasetInfo, ipc: int, preset: str = "paper") -> MethodConfig:
        """The config for a preset; methods override to make values depend on dataset and IPC."""
        if preset not in cls.presets:
            raise ValueError(f"{cls.name} has presets {', '.join(cls.presets)}, not '{preset}'")
        return cls.Config()

    @classmethod
    def requires(cls, info: DatasetInfo, ipc: int, config: MethodConfig, architecture: str) -> tuple["Requirement", ...]:
        """Artefacts this method needs before its first step; none by default."""
        return ()

    @classmethod
    def config_fields(cls) -> list[dataclasses.Field]:
        return list(dataclasses.fields(cls.Config))

    # ------------------------------------------------------------------ randomness
    def rng(self, stream: int = 0) -> torch.Generator:
        """A CPU generator for this iteration and stream: resumable because it depends only on its inputs."""
        g = torch.Generator()
        g.manual_seed((self.seed * 1_000_003 + self.iteration * 7_919 + stream) % (2**63 - 1))
        return g

    def real_batch(self, cls: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """n normalised real images of one class, on the method's device."""
        idx = self.data.train.sample_class(cls, n, generator)
        return self.data.normalize(self.data.train.images[idx].to(self.device))

    def initial_images(self) -> torch.Tensor:
        g = self.rng(stream=999)
        c, s = self.info.channels, self.info.image_size
        if self.config.init == "noise":
            return torch.randn(self.info.num_classes * self.ipc, c, s, s, generator=g)
        if self.config.init != "real":
            raise ValueError(f"init must be 'real' or 'noise', not '{self.config.init}'")
        return torch.cat([self.data.normalize(self.data.train.images[self.data.train.sample_class(k, self.ipc, g)])
                          for k in range(self.info.num_classes)])

    # ------------------------------------------------------------------ the loop
    @property
    def total_iterations(self) -> int:
        return int(self.config.iterations)

    @property
    def done(self) -> bool:
        return self.iteration >= self.total_iterations

    def step(self) -> dict[str, float]:
        """Advance one outer iteration and return its metrics (always including 'loss')."""
        start = time.perf_counter()
        metrics = self._step()
        self.iteration += 1
        self.elapsed_s += time.perf_counter() - start
        loss = metrics.get("loss")
        if loss is not None and not (abs(loss) < 1e12):  # NaN fails every comparison
            raise DivergenceError(f"{self.name}: loss became {loss} at iteration {self.iteration}")
        if not torch.isfinite(self.images).all():
            raise DivergenceError(f"{self.name}: synthetic images became NaN/inf at iteration {self.iteration}")
        return metrics

    @abstractmethod
    def _step(self) -> dict[str, float]:
        """One outer iteration; update self.images (and self.labels / self.lr)."""

    # ------------------------------------------------------------------ outputs and checkpoints
    def synthetic(self) -> SyntheticSet:
        meta = SetMeta.for_dataset(self.info, self.name, self.ipc, config=asdict(self.config), seed=self.seed,
                                   iteration=self.iteration, elapsed_s=round(self.elapsed_s, 3),
                                   device=str(self.device), architecture=self.architecture)
        return SyntheticSet(self.images.detach().cpu().clone(), self.labels.detach().cpu().clone(), meta, self.lr)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly; subclasses add optimiser state."""
        return {"images": self.images.detach().cpu().clone(), "labels": self.labels.detach().cpu().clone(),
                "iteration": self.iteration, "elapsed_s": self.elapsed_s, "lr": self.lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["images"].shape) != tuple(self.images.shape):
            raise ValueError(f"checkpoint images have shape {tuple(state['images'].shape)}, "
                             f"this run expects {tuple(self.images.shape)}")
        with torch.no_grad():
            self.images = state["images"].to(self.device).clone().requires_grad_(self.images.requires_grad)
        self.labels = state["labels"].to(self.device).clone()
        self.iteration = int(state["iteration"])
        self.elapsed_s = float(state.get("elapsed_s", 0.0))
        self.lr = state.get("lr")


@dataclass(frozen=True)
class Requirement:
    """An artefact a method needs before its first step (expert trajectories, a trained network, ...).

    `params` identify it (sorted items); the platform produces it once, stores it, and hands the method
    the loaded object under `kind` in `self.artefacts`."""

    kind: str
    params: tuple[tuple[str, Any], ...] = ()
    label: str = ""

    @classmethod
    def from_dict(cls, kind: str, params: dict[str, Any], label: str = "") -> "Requirement":
        return cls(kind, tuple(sorted(params.items())), label)

    def key(self) -> str:
        import hashlib
        import json

        text = json.dumps({"kind": self.kind, "params": dict(self.params)}, sort_keys=True, default=str)
        return f"{self.kind}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
