"""How closely a synthetic image resembles particular real ones: its nearest members and non-members.

Zhao & Zhang ("Does Training with Synthetic Data Truly Protect Privacy?", 2025, arXiv 2502.12976) and
Dong et al. (ICML 2022, their visual-privacy study) compare synthetic images with the real ones they were
made from. If a set copies its members, its images sit much closer to some member than to any non-member;
if it does not, members and non-members are equally near (the non-members are the reference). Distances
are measured in pixel space and in the feature space of a network trained on real images outside the pool.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class Neighbours:
    """For each synthetic image: the k nearest members and non-members (pool positions) with distances."""

    member_index: np.ndarray  # (S, k) int, positions in the members array
    member_distance: np.ndarray  # (S, k)
    non_member_index: np.ndarray
    non_member_distance: np.ndarray

    @property
    def closer_to_member(self) -> float:
        """Share of synthetic images whose nearest pool image is a member (0.5 expected without copying)."""
        return float((self.member_distance[:, 0] < self.non_member_distance[:, 0]).mean())

    @property
    def distance_ratio(self) -> float:
        """Median over synthetic images of (nearest member distance) / (nearest non-member distance)."""
        return float(np.median(self.member_distance[:, 0] / np.maximum(self.non_member_distance[:, 0], 1e-12)))


def nearest(synthetic: torch.Tensor, members: torch.Tensor, non_members: torch.Tensor, k: int) -> Neighbours:
    """k nearest of each group by Euclidean distance between flattened rows (any space)."""
    s = synthetic.flatten(1).double()

    def top(ref: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        d = torch.cdist(s, ref.flatten(1).double())
        kk = min(int(k), ref.shape[0])
        dist, idx = d.topk(kk, dim=1, largest=False)
        return idx.numpy(), dist.numpy()

    mi, md = top(members)
    ni, nd = top(non_members)
    return Neighbours(mi, md, ni, nd)


@torch.no_grad()
def features(net: nn.Module, images: torch.Tensor, chunk: int = 500) -> torch.Tensor:
    """The network's penultimate features (net.embed where it has one, else its logits)."""
    net.eval()
    fn = getattr(net, "embed", None) or net
    return torch.cat([fn(images[i:i + chunk]).flatten(1) for i in range(0, images.shape[0], chunk)])
