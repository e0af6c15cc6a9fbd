"""Coreset selection: the feature space of herding and k-center (a ConvNet embedding of real
images) and their greedy orderings. Used by methods/herding.py and methods/kcenter.py only.

The DC paper (Zhao et al., ICLR 2021, §4 baselines) computes herding and k-center distances on
features of a network trained on the training data. Training one on a whole dataset costs minutes
per epoch on a CPU, so the network's training is a parameter (RealTraining: epochs and images per
class) and the trained network is an artefact made by its own job (tasks/networks.py). `embedding='random'`
uses an untrained, seeded network instead (DM's observation: random ConvNet features already
separate classes), which is free.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data import LoadedDataset
from ..evaluation.trainer import build_seeded
from ..models import create_model

_FEATURES: dict[tuple, torch.Tensor] = {}  # (network key, class, pool) -> features, within one process


def random_network(data: LoadedDataset, architecture: str, seed: int, device: torch.device) -> nn.Module:
    """A seeded untrained network (embedding='random'; the trained one is an artefact, tasks/networks.py)."""
    info = data.info
    net = build_seeded(lambda: create_model(architecture, info.channels, info.num_classes, info.image_size),
                       seed, device).eval()
    net.feature_key = (info.name, data.source, architecture, "random", seed)  # type: ignore[attr-defined]
    return net


@torch.no_grad()
def embed(net: nn.Module, data: LoadedDataset, indices: torch.Tensor, device: torch.device,
          chunk: int = 500) -> torch.Tensor:
    """Features (N, D) of training images `indices`, from net.embed (or the logits if it has none).
    Remembered per (network, indices) in this process: herding and k-center at several IPCs share them."""
    key = getattr(net, "feature_key", None)
    # the source too: indices of a dataset restricted to some classes (LoadedDataset.only_classes) are not the whole one's
    memo = None if key is None else (key, data.source, str(device), len(indices), hash(indices.cpu().numpy().tobytes()))
    if memo is not None and memo in _FEATURES:
        return _FEATURES[memo]
    fn = getattr(net, "embed", None) or net
    out = []
    for i in range(0, len(indices), chunk):
        x = data.normalize(data.train.images[indices[i:i + chunk]].to(device))
        out.append(fn(x).flatten(1).float())
    feats = torch.cat(out) if out else torch.zeros(0, 1, device=device)
    if memo is not None:
        if len(_FEATURES) > 64:
            _FEATURES.clear()
        _FEATURES[memo] = feats
    return feats


def class_pool(data: LoadedDataset, cls: int, pool_per_class: int | None, generator: torch.Generator) -> torch.Tensor:
    """Candidate training indices of one class: all of them, or a seeded random subset."""
    pool = data.train.class_indices[cls]
    if pool_per_class is not None and pool_per_class < len(pool):
        pool = pool[torch.randperm(len(pool), generator=generator)[:pool_per_class]].sort().values
    return pool


def herding_order(features: torch.Tensor, k: int) -> list[int]:
    """Greedy herding (Welling 2009; iCaRL's exemplar selection): pick, one at a time, the sample that
    brings the mean of the picked features closest to the class mean. Deterministic given features."""
    n = features.shape[0]
    mu = features.mean(0)
    chosen: list[int] = []
    running = torch.zeros_like(mu)
    available = torch.ones(n, dtype=torch.bool, device=features.device)
    for t in range(1, min(k, n) + 1):
        dist = ((mu - (running.unsqueeze(0) + features) / t) ** 2).sum(1)
        dist[~available] = float("inf")
        i = int(dist.argmin())
        chosen.append(i)
        available[i] = False
        running += features[i]
    return chosen


def kcenter_order(features: torch.Tensor, k: int, first: int) -> list[int]:
    """k-center greedy (Sener & Savarese 2018): start at `first`, then repeatedly add the sample
    farthest from its nearest chosen center (a 2-approximation of the minimax cover)."""
    n = features.shape[0]
    chosen = [int(first)]
    nearest = ((features - features[first]) ** 2).sum(1)
    for _ in range(1, min(k, n)):
        nearest[chosen] = -1.0
        i = int(nearest.argmax())
        chosen.append(i)
        nearest = torch.minimum(nearest, ((features - features[i]) ** 2).sum(1))
    return chosen
