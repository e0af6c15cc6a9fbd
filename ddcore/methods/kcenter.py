"""k-center greedy: per class, real images that cover the class's feature cloud (minimax distance).

DC paper baseline (Zhao et al., ICLR 2021, Table 1; Sener & Savarese, ICLR 2018) in the same
ConvNet feature space as herding. The first center is the image nearest the class's mean feature
(first_center='mean'): the DC paper's Table 1 gives k-center exactly herding's accuracy at IPC 1
(MNIST 89.3/89.2 within noise, CIFAR-10 21.5/21.5), which is what that start produces, since
herding's first pick is also the image nearest the mean. first_center='random' starts at a seeded
random image (Sener & Savarese's variant).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from . import register_method
from .herding import FeatureCoreset, FeatureCoresetConfig
from .selection import kcenter_order


@dataclass
class KCenterConfig(FeatureCoresetConfig):
    first_center: str = "mean"  # 'mean': the image nearest the class mean; 'random': seeded random image


@register_method
class KCenter(FeatureCoreset):
    name = "kcenter"
    title = "K-center coreset"
    explanation = ("Pick real images that cover the class: start from one image, then repeatedly add the image farthest "
                   "from everything picked so far. Good coverage, but it favours unusual images (outliers).")
    objective = r"s_{k+1} = \arg\max_{x \in \mathcal{T}_c}\ \min_{j \le k} \big\| \psi(x) - \psi(s_j) \big\|_2"
    symbols = (r"$\psi$: a trained network's features; each new image is the real one farthest from every image "
               r"picked so far.")
    loss_meaning = "The largest distance from a real image to its nearest picked image (the covering radius)."
    paper = "Sener & Savarese, Active Learning for CNNs: A Core-Set Approach, ICLR 2018; baseline in Zhao et al., ICLR 2021"
    paper_url = "https://arxiv.org/abs/1708.00489"
    Config = KCenterConfig
    colour = "#19D3F3"
    # preset_rules: FeatureCoreset's (the quick feature network and candidate pool)

    def select(self, cls: int, generator: torch.Generator) -> tuple[torch.Tensor, float]:
        pool, feats = self.features(cls, generator)
        if self.config.first_center == "mean":
            first = int(((feats - feats.mean(0)) ** 2).sum(1).argmin())
        elif self.config.first_center == "random":
            first = int(torch.randint(len(pool), (1,), generator=generator))
        else:
            raise ValueError(f"first_center must be 'mean' or 'random', not '{self.config.first_center}'")
        order = kcenter_order(feats, self.ipc, first)
        chosen = feats[order]
        cover = float(torch.cdist(feats, chosen).min(1).values.max())  # the covering radius
        return pool[torch.tensor(order, dtype=torch.long)], cover
