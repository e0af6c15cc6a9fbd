"""DATM: difficulty-aligned trajectory matching (Guo et al., ICLR 2024, "Towards Lossless Dataset Distillation
via Difficulty-Aligned Trajectory Matching").

MTT with three changes, after NUS-HPC-AI-Lab/DATM distill/DATM.py and its configs: (1) the window of start
epochs is aligned with the difficulty the IPC affords and grows over the run ("sequential generation": the
upper bound rises linearly from `current_max_start_epoch` to `max_start_epoch` by `expansion_end_iteration`);
(2) soft labels, learned with the images (SGD with momentum), initialised from the experts' logits on the
initial images; (3) the initial images are real images the experts classify correctly. An iteration whose
loss exceeds `threshold` changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from . import register_method
from .base import PresetRule
from .mtt import DIGITS_RULE, TRAJECTORY_QUICK_RULES
from .trajectory import MatchResult, TrajectoryConfig, TrajectoryMethod

_CONFIGS = "NUS-HPC-AI-Lab/DATM configs/CIFAR-10/ConvIN"


@dataclass
class DATMConfig(TrajectoryConfig):
    """Paper preset: DATM's CIFAR-10 IPC 10 config (configs/CIFAR-10/ConvIN/IPC10.yaml) where a dataset has none."""

    iterations: int = 10_000
    syn_steps: int = 80
    expert_epochs: int = 2
    lr_img: float = 100.0
    lr_teacher: float = 0.01
    lr_lr: float = 1e-5
    zca: bool = True
    min_start_epoch: int = 0
    current_max_start_epoch: int | None = 10  # None: no sequential generation (the window is fixed)
    max_start_epoch: int = 20
    expansion_end_iteration: int = 1000
    lr_y: float = 2.0
    momentum_y: float = 0.9
    threshold: float = 1.0
    label_experts: int = 4  # experts whose logits initialise the labels (DATM averages those that are right)
    label_epoch: int | None = None  # their epoch (None: max_start_epoch)
    init_pool: int = 10  # candidates per synthetic image when picking correctly classified ones


@register_method
class DATM(TrajectoryMethod):
    name = "datm"
    title = "DATM (difficulty-aligned trajectory matching)"
    explanation = ("Trajectory matching (see MTT) where the part of the experts' training that is matched depends "
                   "on how many images there are: with few images only the easy early epochs can be imitated, with "
                   "more the later, harder ones; the window moves later as the run goes on. The labels become soft "
                   "and are learned too, starting from what the experts predict, and the images start as real ones "
                   "the experts recognise.")
    objective = (r"\min_{\mathcal{S},\,\alpha,\,Y_s}\ \frac{\big\| \hat\theta_{t+N} - \theta^*_{t+M} \big\|^2}{\big\| "
                 r"\theta^*_{t} - \theta^*_{t+M} \big\|^2},\qquad t \sim \mathcal{U}[T^-, T^+],\ \ T^+ \text{ growing "
                 r"during the run}")
    symbols = (r"As MTT, with the window $[T^-, T^+]$ of expert epochs matched chosen for the IPC (early, easy epochs "
               r"for small sets) and learned soft labels $Y_s$.")
    loss_meaning = "The same normalised distance to the expert as MTT."
    paper = ("Ziyao Guo, Kai Wang, George Cazenavette, Hui Li, Kaipeng Zhang and Yang You. Towards Lossless Dataset "
             "Distillation via Difficulty-Aligned Trajectory Matching. ICLR 2024.")
    paper_url = "https://arxiv.org/abs/2310.05773"
    Config = DATMConfig
    colour = "#FF7F0E"
    learn_labels = True
    preset_rules = (
        DIGITS_RULE,
        PresetRule("paper", {"syn_steps": 80, "lr_img": 100.0, "lr_y": 5.0, "threshold": 1.1, "min_start_epoch": 0,
                             "current_max_start_epoch": None, "max_start_epoch": 4, "lr_lr": 1e-7},
                   f"{_CONFIGS}/IPC1.yaml", datasets=("cifar10",), ipcs=(1,)),
        PresetRule("paper", {"syn_steps": 80, "lr_img": 1000.0, "lr_y": 2.0, "current_max_start_epoch": 20,
                             "max_start_epoch": 40, "expansion_end_iteration": 2000, "batch_syn": 500},
                   f"{_CONFIGS}/IPC50.yaml", datasets=("cifar10",), ipcs=(50,)),
        PresetRule("quick", {"zca": False}, "quick: the trajectory methods' shared quick experts (ZCA only for CIFAR, "
                   "below), so MTT, TESLA and DATM reuse one set of experts per dataset"),
    ) + TRAJECTORY_QUICK_RULES + (
        PresetRule("quick", {"syn_steps": 20, "current_max_start_epoch": 2, "expansion_end_iteration": 200,
                             "lr_y": 2.0, "threshold": 1.1},
                   "quick: DATM's schedule scaled to the quick experts (start window 2 growing to 4 over 200 iterations)"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        c = self.config
        if c.current_max_start_epoch is not None and not c.min_start_epoch < c.current_max_start_epoch <= c.max_start_epoch:
            raise ValueError(f"current_max_start_epoch must lie in ({c.min_start_epoch}, {c.max_start_epoch}], "
                             f"not {c.current_max_start_epoch}")
        self._initialise_from_experts()

    # ------------------------------------------------------------------ initialisation
    def _label_logits(self, images: torch.Tensor) -> torch.Tensor:
        """(E, N, K) logits of the label experts at the label epoch."""
        c = self.config
        epoch = c.max_start_epoch if c.label_epoch is None else c.label_epoch
        out = []
        with torch.no_grad():
            for k in range(min(c.label_experts, self.experts.experts)):
                theta = self.experts.get(k, epoch).to(self.device)
                out.append(torch.cat([self.student(theta, images[i:i + 256]) for i in range(0, len(images), 256)]))
        return torch.stack(out)

    def _initialise_from_experts(self) -> None:
        c = self.config
        if c.init == "real":  # real images the experts classify correctly (DATM's samples_predicted_correctly)
            g = self.rng(stream=998)
            picked = []
            for cls in range(self.info.num_classes):
                pool = self.data.train.sample_class(cls, self.ipc * c.init_pool, g)
                x = self.data.normalize(self.data.train.images[pool].to(self.device))
                if c.zca:
                    from ..zca import dataset_zca

                    x = dataset_zca(self.data).apply(x)
                right = (self._label_logits(x).mean(0).argmax(1) == cls)
                order = torch.cat([torch.nonzero(right).flatten(), torch.nonzero(~right).flatten()])
                picked.append(x[order[: self.ipc]])
            self.images = torch.cat(picked).detach().requires_grad_(True)
            self._make_optimizers()
        logits = self._label_logits(self.images.detach())
        right = (logits.argmax(2) == self.labels.view(1, -1)).unsqueeze(2).float()
        counts = right.sum(0)
        averaged = (logits * right).sum(0) / counts.clamp_min(1)
        self.soft = torch.where(counts > 0, averaged, logits.mean(0)).detach().requires_grad_(True)
        self.opt_y = torch.optim.SGD([self.soft], lr=c.lr_y, momentum=c.momentum_y)

    # ------------------------------------------------------------------ the loop
    def start_window(self) -> tuple[int, int]:
        c = self.config
        if c.current_max_start_epoch is None or c.expansion_end_iteration <= 0:
            return c.min_start_epoch, c.max_start_epoch
        grown = c.current_max_start_epoch + int((c.max_start_epoch - c.current_max_start_epoch) * self.iteration
                                                / c.expansion_end_iteration)
        return c.min_start_epoch, min(grown, c.max_start_epoch)

    def targets(self, start: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.soft

    def accept(self, result: MatchResult) -> bool:
        return result.loss <= self.config.threshold

    def update(self, result: MatchResult) -> None:
        super().update(result)
        self.opt_y.zero_grad(set_to_none=True)
        assert result.grad_labels is not None
        self.soft.grad = result.grad_labels.to(self.soft.dtype)
        self.opt_y.step()

    # ------------------------------------------------------------------ outputs and checkpoints
    def synthetic(self):  # type: ignore[override]
        s = super().synthetic()
        s.labels = self.soft.detach().cpu().clone()  # logits: evaluation trains on their softmax
        return s

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["soft"] = self.soft.detach().cpu().clone()
        state["opt_y"] = self.opt_y.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.soft = state["soft"].to(self.device).clone().requires_grad_(True)
        self.opt_y = torch.optim.SGD([self.soft], lr=self.config.lr_y, momentum=self.config.momentum_y)
        self.opt_y.load_state_dict(state["opt_y"])
