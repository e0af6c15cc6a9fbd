"""TESLA: trajectory matching with constant memory and soft labels (Cui et al., ICML 2023).

The same matching loss as MTT; its gradient is computed by a forward pass that keeps only the student's
parameters and a reverse pass that rebuilds one step at a time (ddcore/methods/trajectory.py, `adjoint`), so
memory does not grow with the number of unrolled steps. The exact adjoint equals MTT's gradient to rounding
(tests/test_trajectory.py); the authors' code keeps the last step's adjoint for every step
(`gradient='adjoint_first_order'`). Soft label assignment (`soft_labels`): the labels are the expert's
predictions at the target epoch on the current synthetic images (justincui03/tesla distill.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from . import register_method
from .base import PresetRule
from .mtt import TRAJECTORY_PAPER_RULES, TRAJECTORY_QUICK_RULES
from .trajectory import TrajectoryConfig, TrajectoryMethod


@dataclass
class TESLAConfig(TrajectoryConfig):
    gradient: str = "adjoint"
    soft_labels: bool = False  # the paper turns it on for ImageNet-1K, where hard labels stall


@register_method
class TESLA(TrajectoryMethod):
    name = "tesla"
    title = "TESLA (trajectory matching, constant memory)"
    explanation = ("The same idea as MTT: synthetic images should move a student network the way real images "
                   "moved an expert. MTT remembers every step of the student to learn from them, so its memory grows "
                   "with the number of steps; TESLA replays the steps backwards one at a time and needs the same "
                   "memory for 10 steps or 80, which lets it scale to large datasets. Optionally the labels are "
                   "soft: the expert's own predictions on the synthetic images.")
    objective = (r"\min_{\mathcal{S},\,\alpha,\,Y_s}\ \frac{\big\| \hat\theta_{t+N} - \theta^*_{t+M} \big\|^2}{\big\| "
                 r"\theta^*_{t} - \theta^*_{t+M} \big\|^2}\quad\text{with}\quad \frac{\partial \mathcal{L}}{\partial "
                 r"\mathcal{S}} = -\alpha \sum_{n} \frac{\partial\, \nabla_\theta \ell(\mathcal{S}_n; "
                 r"\hat\theta_n)}{\partial \mathcal{S}}\, \frac{\partial \mathcal{L}}{\partial \hat\theta_{t+N}}")
    symbols = (r"As MTT; the gradient with respect to the images is computed one batch at a time (constant memory), "
               r"and the labels $Y_s$ are soft labels from the experts.")
    loss_meaning = "The same normalised distance to the expert as MTT."
    paper = ("Justin Cui, Ruochen Wang, Si Si and Cho-Jui Hsieh. Scaling Up Dataset Distillation to ImageNet-1K "
             "with Constant Memory. ICML 2023.")
    paper_url = "https://arxiv.org/abs/2211.10586"
    Config = TESLAConfig
    colour = "#1F77B4"
    preset_rules = TRAJECTORY_PAPER_RULES + (
        PresetRule("paper", {"syn_steps": 50, "expert_epochs": 2, "max_start_epoch": 5, "lr_img": 1000.0,
                             "lr_lr": 1e-7}, "justincui03/tesla README.md: CIFAR-10 IPC 1", datasets=("cifar10",),
                   ipcs=(1,)),
    ) + TRAJECTORY_QUICK_RULES

    def targets(self, start: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not self.config.soft_labels:
            return self.labels
        with torch.no_grad():
            self._soft = self.student(target, self.images.detach())
        return self._soft

    def synthetic(self):  # type: ignore[override]
        s = super().synthetic()
        if self.config.soft_labels and getattr(self, "_soft", None) is not None:
            s.labels = self._soft.detach().cpu().clone()  # logits: evaluation trains on their softmax
        return s

