"""Herding: per class, greedily pick the real images whose feature mean tracks the class feature mean.

DC paper baseline (Zhao et al., ICLR 2021, Table 1; herding as in Welling 2009 / iCaRL), with
distances between features of a ConvNet trained on the real training data (see
ddcore/evaluation/features.py for how that network is trained and cached).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.info import DatasetInfo
from ..evaluation.features import class_pool, embed, embedding_network, herding_order
from . import register_method
from .random import CoresetConfig, CoresetMethod


@dataclass
class FeatureCoresetConfig(CoresetConfig):
    embedding: str = "trained"  # 'trained': ConvNet trained on real data (cached); 'random': untrained, seeded
    embed_architecture: str = "convnet"
    embed_epochs: int = 1  # epochs of that training
    embed_per_class: int | None = None  # training images per class for it (None: the whole training set)
    pool_per_class: int | None = None  # candidates per class (None: all of the class's training images)
    normalize_features: bool = False  # L2-normalise features first (iCaRL does; the DC paper does not say)
    embed_seed: int = 0  # the feature network and the candidate pool depend on this, not on the run's seed,
    # so one network (cached on disk) serves every run on a dataset, as the paper's single trained model did


def feature_config(preset: str) -> dict:
    """'paper': whole training set (one epoch, what a CPU affords; the paper trained longer) and every
    image a candidate; 'quick': 200 images per class for 2 epochs and 500 candidates per class."""
    if preset == "quick":
        return {"embed_epochs": 2, "embed_per_class": 200, "pool_per_class": 500}
    return {"embed_epochs": 1, "embed_per_class": None, "pool_per_class": None}


class FeatureCoreset(CoresetMethod):
    """Shared by herding and k-center: features of each class's candidates, then an ordering."""

    Config = FeatureCoresetConfig

    @classmethod
    def default_config(cls, info: DatasetInfo, ipc: int, preset: str = "paper") -> FeatureCoresetConfig:
        CoresetMethod.default_config.__func__(cls, info, ipc, preset)  # validates the preset name
        return FeatureCoresetConfig(**feature_config(preset))

    def features(self, cls: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if not hasattr(self, "_net"):
            c = self.config
            self._net = embedding_network(self.data, c.embed_architecture, c.embedding, c.embed_epochs,
                                          c.embed_per_class, c.embed_seed, self.device)
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
    paper = "Welling, Herding Dynamical Weights to Learn, ICML 2009; baseline in Zhao et al., ICLR 2021"
    paper_url = "https://arxiv.org/abs/2006.05929"

    def select(self, cls: int, generator: torch.Generator) -> tuple[torch.Tensor, float]:
        pool, feats = self.features(cls, generator)
        order = herding_order(feats, self.ipc)
        gap = float(((feats.mean(0) - feats[order].mean(0)) ** 2).sum())
        return pool[torch.tensor(order, dtype=torch.long)], gap
