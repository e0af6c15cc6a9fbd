"""Trajectory matching, the shared part of MTT, TESLA and DATM: a student unrolled on the synthetic set.

A student starts at an expert's parameters theta_t, takes N SGD steps on synthetic batches with a learnable
step size alpha, and is compared with the expert M epochs later (Cazenavette et al., CVPR 2022):

    L = ||theta_N - theta*_{t+M}||^2 / ||theta*_t - theta*_{t+M}||^2

Two ways to get dL/d(images, labels, alpha), with the same result to rounding:

* `unrolled` (MTT): keep the graph of all N steps and backpropagate once; memory grows with N.
* `adjoint` (TESLA's constant memory, Cui et al., ICML 2023): one forward pass that keeps only the N
  parameter vectors, then a reverse pass that rebuilds one step's graph at a time and carries the adjoint
  lambda_i = dL/dtheta_i back through it (lambda_i = lambda_{i+1} - alpha * H_i lambda_{i+1}, a
  Hessian-vector product), so activation memory does not grow with N. TESLA's published code keeps
  lambda fixed at lambda_N (dropping the Hessian terms of later steps): `adjoint_first_order`, offered to
  reproduce it and measured against the exact gradient in the tests.

Reference for hyperparameters: GeorgeCazenavette/mtt-distillation distill.py and the per-dataset table in
../shared/reference/protocols.md; the code here is our own.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..data.info import variant_label
from .base import DistillMethod, MethodConfig, Requirement, StepInterrupted

GRADIENTS = ("unrolled", "adjoint", "adjoint_first_order")
ARTEFACT_KIND = "expert-trajectories"


def expert_requirement(dataset: str, architecture: str, experts: int, epochs: int, lr: float, batch: int,
                       augmentation: str, zca: bool, per_class: int | None, seed: int = 0,
                       source: Mapping[str, Any] | None = None) -> Requirement:
    """What a trajectory-matching run needs (ddcore.methods.trajectory declares it with this shape). The experts
    also carry the data's `DatasetInfo.data_source` (an image folder's fingerprint, path and size, or the embedded
    subset's variant), so other data of the same name never shares them and the experts' task finds the data
    again."""
    amount = "all images" if per_class is None else f"{per_class} images per class"
    return Requirement.from_dict(ARTEFACT_KIND, {
        "dataset": dataset, "architecture": architecture, "experts": int(experts), "epochs": int(epochs),
        "lr": float(lr), "batch": int(batch), "augmentation": augmentation, "zca": bool(zca), "per_class": per_class,
        "seed": int(seed), **(source or {})},
        label=f"{experts} expert trajectories ({architecture}, {epochs} epochs, {amount}{', ZCA' if zca else ''}) "
              f"on {dataset}{variant_label(source)}")


class FlatNet:
    """A network as a function of one flat parameter vector (the experts' storage format)."""

    def __init__(self, net: nn.Module) -> None:
        self.base = copy.deepcopy(net).to("meta")
        self.names = [n for n, _ in net.named_parameters()]
        self.shapes = [p.shape for _, p in net.named_parameters()]
        self.sizes = [p.numel() for _, p in net.named_parameters()]
        self.buffers = {n: b for n, b in net.named_buffers()}
        self.numel = sum(self.sizes)

    def __call__(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call

        params = {n: t.view(s) for n, t, s in zip(self.names, flat.split(self.sizes), self.shapes)}
        return functional_call(self.base, {**params, **self.buffers}, (x,))


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against hard labels (int64) or soft ones given as logits (softmax taken here, as DATM)."""
    if targets.ndim == 1:
        return F.cross_entropy(logits, targets)
    return -(F.softmax(targets, dim=1) * F.log_softmax(logits, dim=1)).sum(1).mean()


@dataclass(frozen=True)
class Unroll:
    """What the N student steps see: per step the synthetic indices and an augmentation for them."""

    batches: tuple[torch.Tensor, ...]
    augment: Callable[[torch.Tensor, int], torch.Tensor]  # (images, step) -> augmented, deterministic per step
    should_stop: Callable[[], bool] = lambda: False

    def check(self) -> None:
        if self.should_stop():
            raise StepInterrupted("stopped during the student's unroll")


def plan_batches(n_images: int, steps: int, batch: int | None, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """MTT's order: a fresh permutation cut into batches, drawn again whenever it runs out."""
    batch = n_images if batch is None else min(int(batch), n_images)
    out: list[torch.Tensor] = []
    pending: list[torch.Tensor] = []
    while len(out) < steps:
        if not pending:
            pending = list(torch.randperm(n_images, generator=generator).split(batch))
        out.append(pending.pop(0))
    return tuple(out)


@dataclass
class MatchResult:
    loss: float
    grad_images: torch.Tensor
    grad_lr: torch.Tensor
    grad_labels: torch.Tensor | None


def matching_loss(end: torch.Tensor, start: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||end - target||^2 / ||start - target||^2 (the reference divides both by the parameter count: it cancels)."""
    return ((end - target) ** 2).sum() / ((start - target) ** 2).sum()


def student_step(net: FlatNet, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lr: torch.Tensor,
                 create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(theta - lr * grad, grad) for one student step on (x, y)."""
    loss = soft_cross_entropy(net(theta, x), y)
    (grad,) = torch.autograd.grad(loss, theta, create_graph=create_graph)
    return theta - lr * grad, grad


def match(net: FlatNet, start: torch.Tensor, target: torch.Tensor, images: torch.Tensor, labels: torch.Tensor,
          lr: torch.Tensor, unroll: Unroll, gradient: str = "unrolled", learn_labels: bool = False) -> MatchResult:
    """The matching loss of one student unroll and its gradients w.r.t. images, lr (and soft labels).
    `unroll.should_stop` is polled before every student step (StepInterrupted: nothing was changed)."""
    if gradient == "unrolled":
        return _match_unrolled(net, start, target, images, labels, lr, unroll, learn_labels)
    if gradient in ("adjoint", "adjoint_first_order"):
        return _match_adjoint(net, start, target, images, labels, lr, unroll, learn_labels,
                              exact=gradient == "adjoint")
    raise ValueError(f"gradient must be one of {', '.join(GRADIENTS)}, not '{gradient}'")


def _leaves(images: torch.Tensor, labels: torch.Tensor, lr: torch.Tensor, learn_labels: bool):
    x = images.detach().requires_grad_(True)
    y = labels.detach().requires_grad_(True) if learn_labels else labels.detach()
    a = lr.detach().reshape(()).requires_grad_(True)
    return x, y, a


def _match_unrolled(net: FlatNet, start: torch.Tensor, target: torch.Tensor, images: torch.Tensor,
                    labels: torch.Tensor, lr: torch.Tensor, unroll: Unroll, learn_labels: bool) -> MatchResult:
    x, y, a = _leaves(images, labels, lr, learn_labels)
    theta = start.detach().requires_grad_(True)
    for i, idx in enumerate(unroll.batches):
        unroll.check()
        theta, _ = student_step(net, theta, unroll.augment(x[idx], i), y[idx], a, create_graph=True)
    loss = matching_loss(theta, start.detach(), target)
    wrt = [x, a] + ([y] if learn_labels else [])
    grads = torch.autograd.grad(loss, wrt)
    return MatchResult(float(loss.detach()), grads[0], grads[1], grads[2] if learn_labels else None)


def _match_adjoint(net: FlatNet, start: torch.Tensor, target: torch.Tensor, images: torch.Tensor,
                   labels: torch.Tensor, lr: torch.Tensor, unroll: Unroll, learn_labels: bool,
                   exact: bool) -> MatchResult:
    x, y, a = _leaves(images, labels, lr, learn_labels)
    alpha = a.detach()
    thetas = [start.detach()]
    for i, idx in enumerate(unroll.batches):  # forward: parameters only, one step's graph at a time
        unroll.check()
        theta = thetas[-1].requires_grad_(True)
        nxt, _ = student_step(net, theta, unroll.augment(x.detach()[idx], i), y.detach()[idx], alpha, create_graph=False)
        thetas[-1] = theta.detach()
        thetas.append(nxt.detach())
    end = thetas[-1]
    denom = ((start - target) ** 2).sum()
    loss = ((end - target) ** 2).sum() / denom
    lam = 2 * (end - target) / denom  # dL/dtheta_N
    grad_x = torch.zeros_like(x)
    grad_y = torch.zeros_like(y) if learn_labels else None
    grad_a = torch.zeros((), dtype=start.dtype, device=start.device)
    for i in reversed(range(len(unroll.batches))):  # reverse: rebuild step i, push the adjoint through it
        unroll.check()
        idx = unroll.batches[i]
        theta = thetas[i].requires_grad_(True)
        xi = x.detach()[idx].requires_grad_(True)
        yi = y.detach()[idx].requires_grad_(True) if learn_labels else y.detach()[idx]
        loss_i = soft_cross_entropy(net(theta, unroll.augment(xi, i)), yi)
        (g,) = torch.autograd.grad(loss_i, theta, create_graph=True)
        grad_a -= (lam * g.detach()).sum()  # theta_{i+1} = theta_i - alpha g_i
        wrt = [xi] + ([yi] if learn_labels else []) + ([theta] if exact else [])
        parts = torch.autograd.grad((lam * g).sum(), wrt)
        grad_x.index_add_(0, idx.to(x.device), -alpha * parts[0])
        if learn_labels:
            assert grad_y is not None
            grad_y.index_add_(0, idx.to(y.device), -alpha * parts[1])
        if exact:
            lam = lam - alpha * parts[-1]
        thetas[i] = thetas[i].detach()
    return MatchResult(float(loss), grad_x, grad_a, grad_y)


# ---------------------------------------------------------------------------------------------- the method base
@dataclass
class TrajectoryConfig(MethodConfig):
    """The paper preset: GeorgeCazenavette/mtt-distillation distill.py's argparse defaults (Iteration 5000,
    syn_steps 20, expert_epochs 3, max_start_epoch 25, lr_img 1000, lr_lr 1e-5, lr_teacher 0.01, real init, DSA)
    and buffer.py's experts (100 ConvNets, 50 epochs, SGD lr 0.01 without momentum or weight decay); the
    per-dataset values of protocols.md's table are preset rules of each method."""

    iterations: int = 5000
    init: str = "real"
    syn_steps: int = 20  # N: student steps per iteration
    expert_epochs: int = 3  # M: the expert epochs the N steps must cover
    min_start_epoch: int = 0
    max_start_epoch: int = 25  # T+: the start epoch is drawn from [min_start_epoch, max_start_epoch)
    lr_img: float = 1000.0  # SGD(momentum 0.5) on the pixels
    lr_lr: float = 1e-5  # SGD(momentum 0.5) on the learned student step size
    lr_teacher: float = 0.01  # the learned step size's starting value
    batch_syn: int | None = None  # synthetic images per student step (None: all)
    zca: bool = False
    dsa_strategy: str = "color_crop_cutout_flip_scale_rotate"  # 'none': no augmentation
    gradient: str = "unrolled"  # unrolled (MTT) | adjoint (TESLA, exact) | adjoint_first_order (TESLA's code)
    num_experts: int = 100
    expert_train_epochs: int = 50
    expert_lr: float = 0.01
    expert_batch: int = 256
    expert_per_class: int | None = None  # the experts' training images per class (None: all)
    expert_seed: int = 0


class TrajectoryMethod(DistillMethod):
    """MTT's loop; TESLA and DATM change the gradient, the labels and the start-epoch window."""

    family = "trajectory"
    eval_augmentation = "dsa"
    Config = TrajectoryConfig
    learn_labels = False  # DATM: soft labels are learned with the images

    @classmethod
    def requires(cls, info: Any, ipc: int, config: MethodConfig, architecture: str) -> tuple[Requirement, ...]:
        c = config
        return (expert_requirement(info.name, architecture, c.num_experts, c.expert_train_epochs, c.expert_lr,
                                   c.expert_batch, c.dsa_strategy, c.zca, c.expert_per_class, c.expert_seed,
                                   info.data_source),)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        c = self.config
        if c.gradient not in GRADIENTS:
            raise ValueError(f"gradient must be one of {', '.join(GRADIENTS)}, not '{c.gradient}'")
        if not 0 <= c.min_start_epoch < c.max_start_epoch:
            raise ValueError(f"the start epoch window [{c.min_start_epoch}, {c.max_start_epoch}) is empty")
        if c.max_start_epoch - 1 + c.expert_epochs > c.expert_train_epochs:
            raise ValueError(f"start epochs up to {c.max_start_epoch - 1} plus {c.expert_epochs} expert epochs pass the "
                             f"experts' {c.expert_train_epochs} epochs")
        if c.syn_steps < 1:
            raise ValueError(f"syn_steps must be at least 1, not {c.syn_steps}")
        self.experts = self.artefacts[ARTEFACT_KIND]
        if self.experts.epochs < c.expert_train_epochs:
            raise ValueError(f"the experts have {self.experts.epochs} epochs; this run needs {c.expert_train_epochs}")
        from ..models import create_model

        net = create_model(self.architecture, self.info.channels, self.info.num_classes, self.info.image_size,
                           **self.model_kwargs).to(self.device)
        self.student = FlatNet(net)
        if self.student.numel != self.experts.get(0, 0).numel():
            raise ValueError(f"the experts have {self.experts.get(0, 0).numel()} parameters; a {self.architecture} has "
                             f"{self.student.numel}")
        self.images = self.images.detach().requires_grad_(True)
        self.syn_lr = torch.tensor(float(c.lr_teacher), device=self.device, requires_grad=True)
        self.lr = float(c.lr_teacher)
        self._make_optimizers()

    # ------------------------------------------------------------------ pieces the variants change
    def start_window(self) -> tuple[int, int]:
        """[low, high) of the start epoch at this iteration (DATM grows it)."""
        return int(self.config.min_start_epoch), int(self.config.max_start_epoch)

    def targets(self, start: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The labels the student trains on this iteration (hard labels; TESLA and DATM: soft ones)."""
        return self.labels

    def _make_optimizers(self) -> None:
        c = self.config
        self.opt_img = torch.optim.SGD([self.images], lr=c.lr_img, momentum=0.5)
        self.opt_lr = torch.optim.SGD([self.syn_lr], lr=c.lr_lr, momentum=0.5)

    # ------------------------------------------------------------------ one iteration
    def _step(self) -> dict[str, float]:
        c = self.config
        g = self.rng()
        expert = int(torch.randint(self.experts.experts, (1,), generator=g))
        low, high = self.start_window()
        start_epoch = int(torch.randint(low, high, (1,), generator=g))
        start = self.experts.get(expert, start_epoch).to(self.device)
        target = self.experts.get(expert, start_epoch + c.expert_epochs).to(self.device)
        batches = plan_batches(len(self.images), c.syn_steps, c.batch_syn, g)
        aug_seed = int(torch.randint(2**31 - 1, (1,), generator=g))

        def augment(x: torch.Tensor, step: int) -> torch.Tensor:
            if c.dsa_strategy == "none":
                return x
            from ..augment import dsa_augment

            return dsa_augment(x, c.dsa_strategy, seed=None, generator=torch.Generator().manual_seed(aug_seed + step))

        labels = self.targets(start, target)
        result = match(self.student, start, target, self.images, labels, self.syn_lr, Unroll(batches, augment, self.should_stop),
                       c.gradient, learn_labels=self.learn_labels)
        if self.accept(result):
            self.update(result)
        self.lr = float(self.syn_lr.detach())
        return {"loss": result.loss, "lr": self.lr, "start_epoch": float(start_epoch), "expert": float(expert)}

    def accept(self, result: MatchResult) -> bool:
        return True

    def update(self, result: MatchResult) -> None:
        self.opt_img.zero_grad(set_to_none=True)
        self.opt_lr.zero_grad(set_to_none=True)
        self.images.grad = result.grad_images.to(self.images.dtype)
        self.syn_lr.grad = result.grad_lr.reshape(()).to(self.syn_lr.dtype)
        self.opt_img.step()
        self.opt_lr.step()

    # ------------------------------------------------------------------ outputs and checkpoints
    def synthetic(self) -> Any:
        s = super().synthetic()
        s.lr = float(self.syn_lr.detach())
        return s

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["syn_lr"] = self.syn_lr.detach().cpu().clone()
        state["opt_img"] = self.opt_img.state_dict()
        state["opt_lr"] = self.opt_lr.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.images = self.images.detach().clone().requires_grad_(True)
        self.syn_lr = state["syn_lr"].to(self.device).clone().reshape(()).requires_grad_(True)
        self.lr = float(self.syn_lr.detach())
        self._make_optimizers()
        self.opt_img.load_state_dict(state["opt_img"])
        self.opt_lr.load_state_dict(state["opt_lr"])
