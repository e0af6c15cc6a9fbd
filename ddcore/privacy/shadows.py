"""Shadow models for LiRA: K networks, each trained on a random half of the candidate pool, so every
candidate is IN exactly K/2 of them and OUT of the rest (the reference's column-wise ranking of a random
matrix, Carlini et al. S&P 2022). Their logit-scaled confidences on every candidate are what the attack needs.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..data import LoadedDataset
from ..evaluation.protocol import ResolvedConfig
from .attacks import outputs_from_logits
from .training import logits_of, train_target


def shadow_membership(candidates: int, shadows: int, seed: int) -> np.ndarray:
    """(K, N) bool: which candidates shadow k trains on; each column has exactly K // 2 True."""
    if shadows < 2:
        raise ValueError(f"LiRA needs at least 2 shadow models (one with and one without each candidate), not {shadows}")
    rng = np.random.default_rng(int(seed) + 77)
    ranks = rng.uniform(size=(shadows, candidates)).argsort(0).argsort(0)
    return ranks < shadows // 2


def train_shadows(data: LoadedDataset, architecture: str, images: torch.Tensor, labels: torch.Tensor,
                  keep: np.ndarray, cfg: ResolvedConfig, seed: int, device: torch.device,
                  progress: Callable[[float], None] | None = None, should_stop: Callable[[], bool] | None = None,
                  on_model: Callable[[int, torch.nn.Module], None] | None = None) -> np.ndarray:
    """(K, N) phi of each shadow model on every candidate (images are normalised, on device)."""
    k_total = keep.shape[0]
    phi = np.zeros(keep.shape, dtype=np.float64)
    for k in range(k_total):
        mask = torch.from_numpy(keep[k]).to(images.device)

        def part(fraction: float, k: int = k) -> None:
            if progress is not None:
                progress((k + fraction) / k_total)

        trained = train_target(data, architecture, images[mask], labels[mask], cfg, seed=int(seed) * 1_000 + k + 1,
                               device=device, progress=part, should_stop=should_stop)
        phi[k] = outputs_from_logits(logits_of(trained.net, images), labels).phi
        if on_model is not None:
            on_model(k, trained.net)
    return phi
