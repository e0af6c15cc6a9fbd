"""Shared pieces of the kernel-regression methods (FRePo, RFAD, KIP): learned regression labels (their state, their
margin penalty), the LAMB optimiser FRePo uses on images and labels, and its cosine learning-rate decay.

The KRR prediction itself lives in ddcore/evaluation/krr.py (the evaluation uses the same function).
Hyperparameters follow yongchao97/FRePo (lib/datadistillation/frepo.py, script/distill.py); the code is ours.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch

from ..evaluation.krr import centered_one_hot


class RegressionTargets:
    """What the kernel methods (FRePo, RFAD, KIP) share around their labels: the set's labels are regression targets
    `self.targets` (learned with the images where `config.learn_labels`), optimised by `self.optimizer`, which
    `_make_optimizer()` builds. The targets leave as the set's soft labels where `labels_are_targets()` (evaluated
    with 'mse', the class's eval_soft_label_loss) and travel in checkpoints with the optimiser's state.

    Mixed in before DistillMethod. A subclass with more state saves it in its own state_dict and restores it
    before calling this load_state_dict, which makes the optimiser over it."""

    def labels_are_targets(self) -> bool:
        return bool(self.config.learn_labels)  # type: ignore[attr-defined]

    def synthetic(self):  # type: ignore[no-untyped-def]
        s = super().synthetic()  # type: ignore[misc]
        if self.labels_are_targets():
            s.labels = self.targets.detach().float().cpu().clone()  # type: ignore[attr-defined]
        return s

    def state_dict(self) -> dict:
        state = super().state_dict()  # type: ignore[misc]
        state["targets"] = self.targets.detach().cpu().clone()  # type: ignore[attr-defined]
        state["optimizer"] = self.optimizer.state_dict()  # type: ignore[attr-defined]
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)  # type: ignore[misc]
        self.images = self.images.detach().clone().requires_grad_(True)  # type: ignore[attr-defined]
        learn = bool(self.config.learn_labels)  # type: ignore[attr-defined]
        self.targets = state["targets"].to(self.device).clone().requires_grad_(learn)  # type: ignore[attr-defined]
        self._make_optimizer()  # type: ignore[attr-defined]
        self.optimizer.load_state_dict(state["optimizer"])  # type: ignore[attr-defined]


def initial_targets(labels: torch.Tensor, num_classes: int, scale_by_classes: bool = True) -> torch.Tensor:
    """FRePo's init_proto: centred one-hot labels, divided by sqrt(K / 10) (scale_y) so their norm does not grow
    with the number of classes."""
    y = centered_one_hot(labels, num_classes)
    return y / math.sqrt(num_classes / 10) if scale_by_classes else y


def label_margin_loss(y: torch.Tensor) -> torch.Tensor:
    """FRePo's lb_margin_th: -min(top1 - top2, 1/K) per row, so learned labels keep a margin but no more."""
    top = y.topk(2, dim=1).values
    return -torch.clamp(top[:, 0] - top[:, 1], max=1.0 / y.shape[1])


def half_squared_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """FRePo's mean_squared_loss: 0.5 * sum over classes, averaged over rows."""
    return 0.5 * ((pred - target) ** 2).sum(1).mean()


def cosine_lr(base: float, step: int, total: int, final_fraction: float = 0.1) -> float:
    """optax.cosine_decay_schedule(init, decay_steps=total, alpha=final_fraction) at `step`."""
    t = min(max(step, 0), max(total, 1)) / max(total, 1)
    return base * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * t)))


class Lamb(torch.optim.Optimizer):
    """LAMB (You et al., ICLR 2020) as optax.lamb: Adam's direction (bias-corrected, eps outside the root) scaled
    per tensor by ||w|| / ||update|| (1 where either is zero). No weight decay (optax's default)."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-6) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float64)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = float(state["step"])
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                update = (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + group["eps"])
                w_norm, u_norm = p.norm(), update.norm()
                ratio = torch.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm, torch.ones_like(w_norm))
                p.add_(update * ratio, alpha=-group["lr"])
        return None


def make_image_optimizer(name: str, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    if name == "lamb":
        return Lamb(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"optimizer must be 'lamb' or 'adam', not '{name}'")
