"""Parts of a training set that a run may see: the members of a membership-inference split.

A privacy study splits a seeded pool of training images into members and non-members; a distillation
for it must see the members only (a set distilled from non-members too would leak them by construction).
The part a run saw is kept in its spec (`DistillSpec.subset`, plain data), so a study can check it.

    split = MembershipSplit("mnist", pool_per_class=100, seed=0)
    members, non_members = split.indices(data)             # training indices, disjoint, class-balanced
    restrict(data, split.subset())                         # the dataset a distillation of the members sees
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

import torch

from .split import ImageSplit, LoadedDataset


@dataclass(frozen=True)
class MembershipSplit:
    """`pool_per_class` seeded training images per class, half of them members and half non-members."""

    dataset: str
    pool_per_class: int
    seed: int = 0

    def check(self, data: LoadedDataset | None = None) -> None:
        if int(self.pool_per_class) < 2:
            raise ValueError(f"a membership split needs at least 2 images per class (one member, one non-member), "
                             f"not {self.pool_per_class}")
        if data is not None:
            smallest = min(data.train.class_counts())
            if self.pool_per_class > smallest:
                raise ValueError(f"a pool of {self.pool_per_class} images per class is more than {data.info.display_name} "
                                 f"has in its smallest class ({smallest})")

    def indices(self, data: LoadedDataset) -> tuple[torch.Tensor, torch.Tensor]:
        """(members, non-members): training-set indices, sorted, disjoint, pool_per_class // 2 members per class."""
        self.check(data)
        gen = torch.Generator().manual_seed(1_000_003 * int(self.seed) + 12_345)
        members, others = [], []
        half = int(self.pool_per_class) // 2
        for pool in data.train.class_indices:
            pick = pool[torch.randperm(len(pool), generator=gen)[: int(self.pool_per_class)]]
            members.append(pick[:half])
            others.append(pick[half:])
        return torch.cat(members).sort().values, torch.cat(others).sort().values

    def subset(self) -> dict[str, Any]:
        """The plain-data form a run's spec keeps (DistillSpec.subset)."""
        return {"membership": {"pool_per_class": int(self.pool_per_class), "seed": int(self.seed), "part": "members"}}

    @property
    def label(self) -> str:
        return f"members of split {self.seed} ({self.pool_per_class // 2} of {self.pool_per_class} images per class)"


def membership_of(dataset: str, subset: Mapping[str, Any] | None) -> MembershipSplit | None:
    """The split whose members a run saw (None: the whole training set)."""
    part = (subset or {}).get("membership")
    if not part:
        return None
    return MembershipSplit(dataset, int(part["pool_per_class"]), int(part.get("seed", 0)))


def check_subset(dataset: str, subset: Mapping[str, Any] | None) -> None:
    """Refuse what `restrict` cannot apply, before anything is stored."""
    unknown = sorted(set(subset or {}) - {"membership"})
    if unknown:
        raise ValueError(f"unknown training subset {', '.join(unknown)}; known: membership")
    part = (subset or {}).get("membership")
    if part is not None:
        if not isinstance(part, Mapping) or "pool_per_class" not in part:
            raise ValueError("a membership subset needs pool_per_class (and a seed)")
        if part.get("part", "members") != "members":
            raise ValueError("a run may see the members of a split only")
        membership_of(dataset, subset).check()  # type: ignore[union-attr]


def restrict(data: LoadedDataset, subset: Mapping[str, Any] | None) -> LoadedDataset:
    """The dataset as a run with this subset sees it (the test split is untouched)."""
    split = membership_of(data.info.name, subset)
    if split is None:
        return data
    members, _ = split.indices(data)
    train = ImageSplit(data.train.images[members], data.train.labels[members], data.train.num_classes)
    return replace(data, train=train, source=f"{data.source} [{split.label}]")
