"""Random real subset: IPC training images per class drawn uniformly (the baseline every method must beat).

Also home of `CoresetMethod`, the shared shape of the coreset baselines (random, herding, k-center):
they finish in one step, keep real images unchanged, and record the chosen training indices in the
set's metadata (config['indices']) so anyone can check the images are real.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ..data.info import DatasetInfo
from ..synthetic import SetMeta, SyntheticSet
from . import register_method
from .base import DistillMethod, MethodConfig


@dataclass
class CoresetConfig(MethodConfig):
    iterations: int = 1
    init: str = "real"


class CoresetMethod(DistillMethod):
    """One step: pick `ipc` training indices per class, then images = those real images (normalised)."""

    family = "coreset"
    Config = CoresetConfig

    def initial_images(self) -> torch.Tensor:
        # The set is chosen in _step; until then it is the random subset (cheap, always valid).
        self.indices: list[int] = []
        return super().initial_images()

    def select(self, cls: int, generator: torch.Generator) -> tuple[torch.Tensor, float]:
        """Training indices of the chosen images of class cls, and a per-class objective value."""
        raise NotImplementedError

    def _step(self) -> dict[str, float]:
        g = self.rng(stream=0)
        chosen, objective = [], []
        for c in range(self.info.num_classes):
            idx, value = self.select(c, g)
            if len(idx) != self.ipc:
                raise RuntimeError(f"{self.name} picked {len(idx)} images of class {c}, not {self.ipc}")
            chosen.append(idx.cpu())
            objective.append(value)
        idx = torch.cat(chosen)
        self.indices = idx.tolist()
        self.images = self.data.normalize(self.data.train.images[idx].to(self.device))
        self.labels = self.data.train.labels[idx].to(self.device)
        return {"loss": float(sum(objective) / len(objective)), "selected": float(len(idx))}

    def mean_gap(self, cls: int, idx: torch.Tensor) -> float:
        """Squared distance between the chosen images' pixel mean and the class's pixel mean (normalised
        pixels): a method-independent 'loss' so the coresets can be compared on one scale."""
        pool = self.data.train.class_indices[cls]
        full = self.data.normalize(self.data.train.images[pool[:2000]]).mean(0)
        part = self.data.normalize(self.data.train.images[idx]).mean(0)
        return float(((full - part) ** 2).mean())

    def synthetic(self) -> SyntheticSet:
        s = super().synthetic()
        config = dict(s.meta.config)
        config["indices"] = list(self.indices)
        meta = SetMeta(**{**asdict(s.meta), "config": config})
        return SyntheticSet(s.images, s.labels, meta, s.lr)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "indices": list(self.indices)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.indices = list(state.get("indices", []))


@register_method
class RandomSubset(CoresetMethod):
    name = "random"
    title = "Random real subset"
    explanation = ("Pick IPC real training images of each class at random. No learning at all: this is the "
                   "baseline that shows how much a distillation method really adds.")
    paper = "Baseline in Zhao, Mopuri & Bilen, Dataset Condensation with Gradient Matching, ICLR 2021"
    paper_url = "https://arxiv.org/abs/2006.05929"

    @classmethod
    def default_config(cls, info: DatasetInfo, ipc: int, preset: str = "paper") -> CoresetConfig:
        super().default_config(info, ipc, preset)
        return CoresetConfig()

    def select(self, cls: int, generator: torch.Generator) -> tuple[torch.Tensor, float]:
        idx = self.data.train.sample_class(cls, self.ipc, generator)
        return idx, self.mean_gap(cls, idx)


def random_real_set(data, ipc: int, seed: int = 0) -> SyntheticSet:
    """IPC random real training images per class (the baseline every method must beat)."""
    g = torch.Generator().manual_seed(int(seed) + 12345)
    idx = torch.cat([data.train.sample_class(c, ipc, g) for c in range(data.info.num_classes)])
    meta = SetMeta.for_dataset(data.info, "random", ipc, seed=int(seed), notes="random real images (baseline)")
    return SyntheticSet(data.normalize(data.train.images[idx]), torch.arange(data.info.num_classes).repeat_interleave(ipc), meta)
