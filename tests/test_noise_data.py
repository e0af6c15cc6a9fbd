"""The timing benchmarks' stand-in data (benchmarks/noise_data.py): a real dataset's shape, classes and
normalisation with random pixels, accepted by the methods as the real data is."""
from __future__ import annotations

import torch

from benchmarks.noise_data import noise_dataset
from ddcore.methods import create_method


def test_noise_has_the_datasets_shape_and_runs_a_method() -> None:
    data = noise_dataset("CIFAR-10", train_per_class=4, test_per_class=2)
    assert data.info.name == "cifar10" and data.train.images.shape == (40, 3, 32, 32)
    assert data.train.class_counts() == [4] * 10 and data.test.class_counts() == [2] * 10
    assert data.note and "random" in data.source
    assert data.train.images.float().std() > 60  # noise, not a constant image
    assert torch.equal(data.train.images, noise_dataset("cifar10", 4, 2).train.images)  # seeded
    method = create_method("dm", data, 1, preset="quick", batch_real=4, iterations=2)
    before = method.images.clone()
    method.step()
    assert not torch.equal(before, method.images)
