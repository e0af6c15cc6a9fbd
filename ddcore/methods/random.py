"""Random real subset: IPC training images per class drawn uniformly (the baseline every method must beat).

Also home of `CoresetMethod`, the shared shape of the coreset baselines (random, herding, k-center):
they finish in one step, keep real images unchanged, and record the chosen training indices in the
set's metadata (config['indices']) so anyone can check the images are real.

`random_real_set(data, ipc, seed)` is THE random-real baseline set: the same images (same indices) as
the 'random' method run with that seed, without constructing a method.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ..data import LoadedDataset
from ..synthetic import SetMeta, SyntheticSet
from . import register_method
from .base import DistillMethod, MethodConfig, step_generator


@dataclass
class CoresetConfig(MethodConfig):
    """Ours: a coreset is chosen in one step from real images (DC paper §4 baselines)."""

    iterations: int = 1
    init: str = "real"


class CoresetMethod(DistillMethod):
    """One step: pick `ipc` training indices per class, then images = those real images (normalised)."""

    family = "coreset"
    eval_augmentation = "dc"  # the DC paper evaluates its coreset baselines like DC sets (get_daparam)
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
    objective = r"\mathcal{S}_c \subset \mathcal{T}_c \ \text{drawn uniformly},\quad |\mathcal{S}_c| = \mathrm{IPC}"
    symbols = r"$\mathcal{T}_c$: the real training images of class $c$; $\mathcal{S}_c$: the images kept for it."
    loss_meaning = "Random selection learns nothing; its 'loss' is a constant placeholder."
    paper = "Baseline in Zhao, Mopuri & Bilen, Dataset Condensation with Gradient Matching, ICLR 2021"
    paper_url = "https://arxiv.org/abs/2006.05929"
    colour = "#616161"  # grey: the baseline, not a method

    def select(self, cls: int, generator: torch.Generator) -> tuple[torch.Tensor, float]:
        idx = self.data.train.sample_class(cls, self.ipc, generator)
        return idx, self.mean_gap(cls, idx)


def random_indices(data: LoadedDataset, ipc: int, seed: int = 0) -> torch.Tensor:
    """The training indices the 'random' method picks with this seed: its one step draws them class by
    class from the generator of iteration 0, stream 0 (`CoresetMethod._step` + `RandomSubset.select`)."""
    g = step_generator(seed, 0, 0)
    return torch.cat([data.train.sample_class(c, ipc, g).cpu() for c in range(data.info.num_classes)])


def random_real_set(data: LoadedDataset, ipc: int, seed: int = 0) -> SyntheticSet:
    """IPC random real training images per class (the baseline every method must beat), as a SyntheticSet
    with metadata method='random': the same images as `create_method('random', data, ipc, seed=seed)`
    after its one step, and the same config (with 'indices'), without building a method."""
    if ipc < 1:
        raise ValueError(f"IPC must be at least 1, not {ipc}")
    idx = random_indices(data, ipc, seed)
    config = {**asdict(CoresetConfig()), "indices": idx.tolist()}
    meta = SetMeta.for_dataset(data.info, RandomSubset.name, ipc, config=config, seed=int(seed), iteration=1,
                               notes="random real images (baseline)")
    return SyntheticSet(data.normalize(data.train.images[idx]), data.train.labels[idx].clone(), meta)
