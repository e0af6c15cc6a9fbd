"""Expert trajectories: networks trained on the real data with their parameters kept after every epoch.

Trajectory matching (MTT, TESLA, DATM) starts a student at an expert's epoch t and matches it to the expert
at t + M. The reference (GeorgeCazenavette/mtt-distillation buffer.py) trains 100 ConvNets for 50 epochs with
SGD at lr 0.01, no momentum and no weight decay, DSA augmentation, optionally on ZCA-whitened images, and
saves the flattened parameters after every epoch.

Several experts train as one batched computation where the device allows it: their parameters stacked,
one `torch.func.vmap` call for all forward and backward passes (each expert still sees its own shuffle and
augmentation), or in turn ('loop'). `benchmarks/experts_speed.py` measures the two.

    trajectories = train_experts(images, labels, build, plan, device)      # (K, E+1, P) float32
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from .augment import dsa_augment
from .evaluation.result import EvaluationCancelled
from .evaluation.trainer import NetworkGroup, build_seeded, choose_mode, forward_backward


@dataclass(frozen=True)
class ExpertPlan:
    """How experts train (buffer.py's defaults unless a preset says otherwise)."""

    experts: int = 100
    epochs: int = 50
    lr: float = 0.01
    batch: int = 256
    momentum: float = 0.0
    weight_decay: float = 0.0
    dsa_strategy: str = "color_crop_cutout_flip_scale_rotate"  # 'none': no augmentation
    seed: int = 0
    mode: str = "auto"  # 'vmap' | 'loop' | 'auto' (vmap off the CPU)


def flat_parameters(net: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


def train_experts(images: torch.Tensor, labels: torch.Tensor, build: Callable[[], nn.Module], plan: ExpertPlan,
                  device: torch.device, progress: Callable[[float], None] | None = None,
                  should_stop: Callable[[], bool] | None = None,
                  on_expert: Callable[[int, torch.Tensor], None] | None = None,
                  group_size: int | None = None) -> torch.Tensor | None:
    """Train plan.experts networks and return their trajectories (K, E+1, P); with `on_expert`, each expert's
    (E+1, P) trajectory is handed over as soon as it is done and nothing is returned (bounded memory).
    `group_size` experts train together (default: all in vmap mode, one in loop mode)."""
    if plan.mode not in ("auto", "vmap", "loop"):
        raise ValueError(f"expert training mode must be 'auto', 'vmap' or 'loop', not '{plan.mode}'")
    # the evaluation trainer's rule: batched (vmap) off the CPU, in turn on it (measured: results/experts-speed.md)
    mode = choose_mode(plan.mode, [build_seeded(build, 0, device)] * max(2, plan.experts), device)
    size = group_size or (plan.experts if mode == "vmap" else 1)
    images, labels = images.to(device), labels.to(device)
    out: list[torch.Tensor] = []
    done_steps = 0
    steps_per_expert = plan.epochs * ((len(labels) + plan.batch - 1) // plan.batch)
    total_steps = max(1, plan.experts * steps_per_expert)
    for first in range(0, plan.experts, size):
        seeds = [plan.seed * 10_007 + k for k in range(first, min(plan.experts, first + size))]
        nets = [build_seeded(build, s, device) for s in seeds]
        group = NetworkGroup(nets, mode if len(nets) > 1 else "loop")
        gens = [torch.Generator().manual_seed(s * 7_919 + 3) for s in seeds]
        params = group.parameters()
        opt = torch.optim.SGD(params, lr=plan.lr, momentum=plan.momentum, weight_decay=plan.weight_decay)
        snaps = [[_flat(group, k)] for k in range(len(nets))]
        group.train(True)
        n = len(labels)
        for _ in range(plan.epochs):
            perms = [torch.randperm(n, generator=g).to(device) for g in gens]
            for b0 in range(0, n, plan.batch):
                if should_stop is not None and should_stop():
                    raise EvaluationCancelled("expert training stopped")
                idx = [p[b0:b0 + plan.batch] for p in perms]
                xs = [images[ix] if plan.dsa_strategy == "none" else
                      dsa_augment(images[ix], plan.dsa_strategy, seed=None, generator=g) for ix, g in zip(idx, gens)]
                if group.mode == "vmap" and len({x.shape[0] for x in xs}) > 1:
                    raise RuntimeError("batched experts need equal batch sizes")
                opt.zero_grad(set_to_none=True)
                # the evaluation trainer's pass: the K losses summed (each expert's gradient is its own), in turn
                # through the CPU's fast first-order kernels, or as one vmapped call
                forward_backward(group, xs, [labels[ix] for ix in idx], "ce")
                opt.step()
                done_steps += len(nets)
                if progress is not None:
                    progress(done_steps / total_steps)
            for k in range(len(nets)):
                snaps[k].append(_flat(group, k))
        for k in range(len(nets)):
            trajectory = torch.stack(snaps[k]).cpu()
            if on_expert is not None:
                on_expert(first + k, trajectory)
            else:
                out.append(trajectory)
    return None if on_expert is not None else torch.stack(out)


def _flat(group: NetworkGroup, k: int) -> torch.Tensor:
    if group.mode == "vmap":
        return torch.cat([p[k].detach().reshape(-1) for p in group.params.values()]).clone()
    return flat_parameters(group.nets[k]).clone()


def expert_data(data: Any, per_class: int | None, zca: bool, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalised (and, with zca, whitened) training images the experts learn from."""
    split = data.train
    if per_class is not None:
        split = split.subset_per_class(int(per_class), torch.Generator().manual_seed(int(seed) + 101))
    images = data.normalize(split.images)
    if zca:
        from .zca import dataset_zca

        images = dataset_zca(data).apply(images)
    return images, split.labels
