"""In-memory uint8 images with labels and a per-class index (every method samples per class)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .info import DatasetInfo


@dataclass
class ImageSplit:
    images: torch.Tensor  # uint8, N x C x H x W
    labels: torch.Tensor  # int64, N
    num_classes: int
    class_indices: list[torch.Tensor] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 N×C×H×W, got {self.images.dtype} {tuple(self.images.shape)}")
        self.labels = self.labels.to(torch.int64)
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"{self.images.shape[0]} images but labels of shape {tuple(self.labels.shape)}")
        if len(self.labels) and (int(self.labels.min()) < 0 or int(self.labels.max()) >= self.num_classes):
            raise ValueError(f"labels must lie in [0, {self.num_classes})")
        order = torch.argsort(self.labels, stable=True)
        counts = torch.bincount(self.labels, minlength=self.num_classes).tolist()
        self.class_indices = list(torch.split(order, counts))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> list[int]:
        return [len(ix) for ix in self.class_indices]

    def sample_class(self, cls: int, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Indices of n random images of one class (without replacement when possible)."""
        pool = self.class_indices[cls]
        if len(pool) == 0:
            raise ValueError(f"class {cls} has no images in this split")
        if n <= len(pool):
            pick = torch.randperm(len(pool), generator=generator)[:n]
        else:
            pick = torch.randint(len(pool), (n,), generator=generator)
        return pool[pick]

    def subset_per_class(self, per_class: int, generator: torch.Generator | None = None) -> "ImageSplit":
        """A class-balanced subset (the first `per_class` of a random order), for small tests and demos."""
        idx = torch.cat([self.sample_class(c, min(per_class, len(ix)), generator)
                         for c, ix in enumerate(self.class_indices) if len(ix)])
        return ImageSplit(self.images[idx], self.labels[idx], self.num_classes)


@dataclass
class LoadedDataset:
    """A dataset held in memory: uint8 train/test splits, its metadata and where it came from."""

    info: DatasetInfo
    train: ImageSplit
    test: ImageSplit
    source: str
    # Set when this is not the data papers report on (the embedded CIFAR-10 subset): pages show it wherever
    # results sit beside published numbers.
    note: str = ""

    def normalize(self, images_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 → float normalised with the dataset's mean/std (on the images' device)."""
        mean = torch.tensor(self.info.mean, device=images_uint8.device).view(1, -1, 1, 1)
        std = torch.tensor(self.info.std, device=images_uint8.device).view(1, -1, 1, 1)
        return (images_uint8.float().div_(255.0) - mean) / std

    def only_classes(self, classes: "list[int] | tuple[int, ...]") -> "LoadedDataset":
        """The dataset restricted to `classes`, relabelled 0..k-1 in the order given (a method then distils
        just those classes, e.g. one step of class-incremental learning). The name, normalisation and
        image shape stay, so presets and augmentation are the dataset's; the source names the classes, so
        caches keyed by (name, source) never mix the restricted dataset with the whole one."""
        chosen = [int(c) for c in classes]
        if not chosen or len(set(chosen)) != len(chosen):
            raise ValueError(f"only_classes needs distinct classes, got {chosen}")
        bad = [c for c in chosen if not 0 <= c < self.info.num_classes]
        if bad:
            raise ValueError(f"{self.info.display_name} has classes 0..{self.info.num_classes - 1}, not {bad}")
        info = self.info.with_changes(num_classes=len(chosen),
                                      class_names=tuple(self.info.class_names[c] for c in chosen))
        mapping = torch.full((self.info.num_classes,), -1, dtype=torch.int64)
        mapping[torch.tensor(chosen)] = torch.arange(len(chosen))

        def part(split: ImageSplit) -> ImageSplit:
            idx = torch.cat([split.class_indices[c] for c in chosen]).sort().values
            return ImageSplit(split.images[idx], mapping[split.labels[idx]], len(chosen))

        return LoadedDataset(info, part(self.train), part(self.test),
                             f"{self.source} · classes {','.join(map(str, chosen))}")

    def normalized_split(self, split: str = "train",
                         device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        part = self.train if split == "train" else self.test
        return self.normalize(part.images.to(device)), part.labels.to(device)
