"""Shared pieces of the method tests: a tiny MNIST, and a run stepped straight through beside one stopped,
saved through the checkpoint format, restored into a fresh method and finished."""
from __future__ import annotations

from typing import Callable

import torch

from ddcore.checkpoint import state_from_bytes, state_to_bytes
from ddcore.data import LoadedDataset, load_dataset
from ddcore.methods import DistillMethod

TINY_NET = {"width": 8, "depth": 2}


def tiny_mnist(train_per_class: int = 20, test_per_class: int = 5) -> LoadedDataset:
    d = load_dataset("mnist")
    g = torch.Generator().manual_seed(0)
    return LoadedDataset(d.info, d.train.subset_per_class(train_per_class, g),
                         d.test.subset_per_class(test_per_class, g), "tiny mnist")


def straight_and_resumed(make: Callable[[], DistillMethod], total: int,
                         split: int) -> tuple[DistillMethod, DistillMethod]:
    """(a method stepped `total` times, one stepped `split` times, checkpointed, restored and finished)."""
    straight = make()
    for _ in range(total):
        straight.step()
    first = make()
    for _ in range(split):
        first.step()
    resumed = make()
    resumed.load_state_dict(state_from_bytes(state_to_bytes(first.state_dict())))  # through the file format
    for _ in range(total - split):
        resumed.step()
    return straight, resumed
