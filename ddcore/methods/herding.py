"""Herding: per class, greedily pick the real images whose feature mean tracks the class feature mean.

DC paper baseline (Zhao et al., ICLR 2021, Table 1; herding as in Welling 2009 / iCaRL), with
distances between features of a ConvNet trained on the real training data (see
ddcore/tasks/networks.py for how that network is trained and stored as an artefact, selection.py for the order).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch

from ..data.info import DatasetInfo, variant_label
from . import register_method
from .base import MethodConfig, PresetRule, Requirement
from .random import CoresetConfig, CoresetMethod
from .selection import class_pool, embed, herding_order, random_network

ARTEFACT_KIND = "trained-network"


def network_requirement(dataset: str, architecture: str, epochs: int, per_class: int | None,
                        seed: int, source: Mapping[str, Any] | None = None) -> Requirement:
    """The network a feature coreset embeds with (ddcore.tasks.networks makes it); it also carries the data's
    `DatasetInfo.data_source` (an image folder's, or the embedded subset's variant), as experts do."""
    amount = "all images" if per_class is None else f"{per_class} images per class"
    return Requirement.from_dict(ARTEFACT_KIND, {"dataset": dataset, "architecture": architecture, "epochs": int(epochs),
                                                 "per_class": per_class, "seed": int(seed),
                                                 **(source or {})},
                                 label=f"{architecture}, {epochs} epoch(s) on {dataset}{variant_label(source)} ({amount})")


@dataclass
class FeatureCoresetConfig(CoresetConfig):
    """The paper preset: the DC paper (§4 baselines) takes features of a network trained on the training
    set and every image of a class as a candidate; ours trains it one epoch on the whole training set
    (what a CPU affords; the paper trained longer, benchmarks/README.md)."""

    embedding: str = "trained"  # 'trained': ConvNet trained on real data (cached); 'random': untrained, seeded
    embed_architecture: str = "convnet"
    embed_epochs: int = 1  # epochs of that training
    embed_per_class: int | None = None  # training images per class for it (None: the whole training set)
    pool_per_class: int | None = None  # candidates per class (None: all of the class's training images)
    normalize_features: bool = False  # L2-normalise features first (iCaRL does; the DC paper does not say)
    embed_seed: int = 0  # the feature network and the candidate pool depend on this, not on the run's seed,
    # so one network (cached on disk) serves every run on a dataset, as the paper's single trained model did


QUICK_FEATURES = PresetRule(
    "quick", {"embed_epochs": 2, "embed_per_class": 200, "pool_per_class": 500},
    "benchmarks/coresets.py --coreset-preset quick: features from a ConvNet trained 2 epochs on 200 images per class, "
    "500 seeded candidates per class (one CIFAR-10 epoch on the whole set takes 10+ minutes on the 2-core CPU; the "
    "quick features put herding above the DC paper's numbers at IPC 10, benchmarks/README.md)")


class FeatureCoreset(CoresetMethod):
    """Shared by herding and k-center: features of each class's candidates, then an ordering.

    With embedding='trained' the feature network is an artefact ('trained-network', made by the
    train-network task before the run starts, with its own progress, and reused by every run that names
    the same training); 'random' builds a seeded untrained network here."""

    Config = FeatureCoresetConfig
    preset_rules = (QUICK_FEATURES,)

    @classmethod
    def requires(cls, info: DatasetInfo, ipc: int, config: MethodConfig, architecture: str) -> tuple[Requirement, ...]:
        c = config
        if getattr(c, "embedding", "trained") != "trained":
            return ()
        return (network_requirement(info.name, c.embed_architecture, c.embed_epochs, c.embed_per_class, c.embed_seed,
                                    info.data_source),)

    def features(self, cls: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if not hasattr(self, "_net"):
            c = self.config
            if c.embedding == "trained":
                self._net = self.artefacts[ARTEFACT_KIND].to(self.device).eval()
            elif c.embedding == "random":
                self._net = random_network(self.data, c.embed_architecture, c.embed_seed, self.device)
            else:
                raise ValueError(f"embedding must be 'trained' or 'random', not '{c.embedding}'")
        pool_gen = torch.Generator().manual_seed(self.config.embed_seed * 1_000 + cls)
        pool = class_pool(self.data, cls, self.config.pool_per_class, pool_gen)
        feats = embed(self._net, self.data, pool, self.device)
        if self.config.normalize_features:
            feats = torch.nn.functional.normalize(feats, dim=1)
        return pool, feats


@register_method
class Herding(FeatureCoreset):
    name = "herding"
    title = "Herding coreset"
    explanation = ("Pick real images one at a time so that the average feature of the picked images stays as close "
                   "as possible to the average feature of the whole class (features from a ConvNet trained on the data).")
    objective = (r"s_{k+1} = \arg\min_{x \in \mathcal{T}_c} \Big\| \mu_c - \tfrac{1}{k+1}\Big(\textstyle\sum_{j \le k} "
                 r"\psi(s_j) + \psi(x)\Big) \Big\|_2,\qquad \mu_c = \tfrac{1}{|\mathcal{T}_c|}\textstyle\sum_{x \in "
                 r"\mathcal{T}_c} \psi(x)")
    symbols = (r"$\psi$: a trained network's features; $\mu_c$: the mean feature of class $c$; $s_1, \dots, s_k$: the "
               r"images picked so far.")
    loss_meaning = "Distance between the picked images' mean feature and the class mean (falls as images are picked)."
    paper = "Welling, Herding Dynamical Weights to Learn, ICML 2009; baseline in Zhao et al., ICLR 2021"
    paper_url = "https://arxiv.org/abs/2006.05929"
    colour = "#FFA15A"

    def select(self, cls: int, generator: torch.Generator) -> tuple[torch.Tensor, float]:
        pool, feats = self.features(cls, generator)
        order = herding_order(feats, self.ipc)
        gap = float(((feats.mean(0) - feats[order].mean(0)) ** 2).sum())
        return pool[torch.tensor(order, dtype=torch.long)], gap
