"""The networks a privacy study attacks: trained on real images, on a small set, or with DP-SGD.

Every target and shadow model is trained by the evaluation trainer (the same loop that scores a set), so a
target's test accuracy means what it means elsewhere in the studio. DP-SGD goes through Opacus (per-sample
gradient clipping plus Gaussian noise, privacy accounted with RDP), the maintained library for it.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..data import LoadedDataset
from ..evaluation.api import test_tensors
from ..evaluation.protocol import EvalConfig, ResolvedConfig
from ..evaluation.result import EvaluationCancelled
from ..evaluation.trainer import build_seeded, predict, train_group
from ..models import create_model

Progress = Callable[[float], None]  # fraction of this training done
StopFn = Callable[[], bool]

DP_DELTA = 1e-5  # Abadi et al. 2016 and the DP-SGD literature on MNIST/CIFAR-10 use 1e-5 (below 1 / members)


@dataclass(frozen=True)
class Trained:
    net: nn.Module
    test_accuracy: float  # percent
    seconds: float
    epsilon: float | None = None  # DP-SGD only: the privacy spent, accounted by Opacus (RDP)
    noise_multiplier: float | None = None


def builder(data: LoadedDataset, architecture: str) -> Callable[[], nn.Module]:
    info = data.info
    return lambda: create_model(architecture, info.channels, info.num_classes, info.image_size)


def real_config(epochs: int, test_limit: int | None) -> ResolvedConfig:
    """How real-image targets and shadow models train: the paper's optimiser, no augmentation (so members and
    shadows see exactly their images), a fixed number of epochs."""
    return EvalConfig(name="privacy", epochs=int(epochs), augmentation="none", extra_final_epoch=False,
                      test_limit=test_limit).resolve("", "convnet")


def train_target(data: LoadedDataset, architecture: str, images: torch.Tensor, labels: torch.Tensor,
                 cfg: ResolvedConfig, seed: int, device: torch.device, progress: Progress | None = None,
                 should_stop: StopFn | None = None) -> Trained:
    """One network trained on (normalised) images with `cfg`, and its test accuracy."""
    start = time.perf_counter()
    out = train_group(builder(data, architecture), [int(seed)], images, labels, cfg, device, data.info.num_classes,
                      progress=(lambda info: progress(float(info["fraction"]))) if progress else None,
                      should_stop=should_stop)
    net = out.group.module(0).eval()
    return Trained(net, test_accuracy(net, data, device, cfg.test_limit, should_stop), time.perf_counter() - start)


def test_accuracy(net: nn.Module, data: LoadedDataset, device: torch.device, limit: int | None,
                  should_stop: StopFn | None = None) -> float:
    from ..evaluation.trainer import NetworkGroup

    x, y = test_tensors(data, device, limit)
    pred = predict(NetworkGroup([net], "loop"), x, should_stop=should_stop)[0]
    return float(100.0 * (pred == y).float().mean())


@torch.no_grad()
def logits_of(net: nn.Module, images: torch.Tensor, chunk: int = 500) -> torch.Tensor:
    net.eval()
    return torch.cat([net(images[i:i + chunk]) for i in range(0, images.shape[0], chunk)]) if len(images) else \
        torch.zeros(0, 1)


def train_dp_sgd(data: LoadedDataset, architecture: str, images: torch.Tensor, labels: torch.Tensor, epsilon: float,
                 epochs: int, seed: int, device: torch.device, test_limit: int | None, batch_size: int = 64,
                 lr: float = 0.5, max_grad_norm: float = 1.0, progress: Progress | None = None,
                 should_stop: StopFn | None = None) -> Trained:
    """DP-SGD (Abadi et al., CCS 2016) to a target (epsilon, DP_DELTA) over `epochs`, through Opacus: Poisson
    batches of expected size `batch_size`, per-example clipping to `max_grad_norm`, the noise multiplier that
    spends exactly the budget. Plain SGD at a large lr, as DP-SGD papers train (momentum interacts badly with
    the noise)."""
    from opacus import PrivacyEngine

    if not epsilon > 0:
        raise ValueError(f"a DP-SGD budget epsilon must be positive, not {epsilon}")
    start = time.perf_counter()
    net = build_seeded(builder(data, architecture), seed, device)
    for module in net.modules():  # Opacus's backward hooks cannot see through in-place activations
        if hasattr(module, "inplace"):
            module.inplace = False
    gen = torch.Generator().manual_seed(int(seed) * 7_919 + 29)
    dataset = torch.utils.data.TensorDataset(images.to(device), labels.to(device))
    loader = torch.utils.data.DataLoader(dataset, batch_size=min(batch_size, len(dataset)), generator=gen)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    with warnings.catch_warnings():  # Opacus warns that secure_mode is off (a fixed seed is the point here)
        warnings.simplefilter("ignore")
        engine = PrivacyEngine(accountant="rdp")
        private, optimizer, loader = engine.make_private_with_epsilon(
            module=net, optimizer=optimizer, data_loader=loader, target_epsilon=float(epsilon), target_delta=DP_DELTA,
            epochs=int(epochs), max_grad_norm=max_grad_norm, noise_generator=torch.Generator().manual_seed(int(seed)))
        steps = max(1, int(epochs) * len(loader))
        done = 0
        private.train()
        for _ in range(int(epochs)):
            for x, y in loader:
                if should_stop is not None and should_stop():
                    raise EvaluationCancelled("DP-SGD training stopped")
                if len(y) == 0:  # Poisson sampling can draw an empty batch
                    continue
                optimizer.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(private(x), y).backward()
                optimizer.step()
                done += 1
                if progress is not None:
                    progress(min(1.0, done / steps))
        spent = float(engine.get_epsilon(DP_DELTA))
    if hasattr(private, "remove_hooks"):
        private.remove_hooks()
    plain = private._module.eval()
    return Trained(plain, test_accuracy(plain, data, device, test_limit, should_stop), time.perf_counter() - start,
                   epsilon=spent, noise_multiplier=float(optimizer.noise_multiplier))
