"""A dataset of a real one's shape filled with random pixels, for timing on a machine that cannot hold the data.

Why: a lent GPU takes at most 64 MiB with the code, and CIFAR-10's zip alone is 51 MB. Per-iteration speed does
not depend on pixel values (dense convolutions, no data-dependent branches), so a speed benchmark can run on
noise of the same shape, class count and normalisation; accuracy benchmarks cannot.
"""
from __future__ import annotations

import torch

from ddcore.data.info import BUILTIN_INFOS, canonical_name
from ddcore.data.split import ImageSplit, LoadedDataset


def noise_dataset(name: str, train_per_class: int = 500, test_per_class: int = 100, seed: int = 0) -> LoadedDataset:
    """`name`'s shape and classes, uniformly random uint8 pixels, `train_per_class` images per class (enough for
    the paper preset's real batches of 256 per class)."""
    info = BUILTIN_INFOS[canonical_name(name)]
    gen = torch.Generator().manual_seed(seed)

    def split(per_class: int) -> ImageSplit:
        n = per_class * info.num_classes
        images = torch.randint(0, 256, (n, info.channels, info.image_size, info.image_size), dtype=torch.uint8,
                               generator=gen)
        return ImageSplit(images, torch.arange(n) % info.num_classes, info.num_classes)

    return LoadedDataset(info, split(train_per_class), split(test_per_class), f"random pixels of {info.display_name}'s shape",
                         note="random pixels: for timing only")
