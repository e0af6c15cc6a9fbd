"""Finite networks trained in their kernel regime: the finite-network evaluations of the kernel methods.

A kernel method (KIP, RFAD) distils for kernel ridge regression with the kernel of an infinitely wide network. Its
papers also report a finite, wide network of that kernel's shape, trained on the set by gradient descent on the
squared error with its output at initialisation subtracted ("centring"), so that its prediction tends to the
kernel's. wide_fc.py (KIP's fully connected network) and wide_conv.py (RFAD's ConvNet) are two recipes of the one
training loop here, which also keeps the result in the form the store and the Evaluate page read.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol

import torch
from torch import nn

# The finite networks by their evaluation architecture name, as the store, the Evaluate page and the CLI list them
# (KIP's: wide_fc.py; RFAD's: wide_conv.py), with the title they are printed under
FINITE_NETWORKS = {"fc_wide": "Wide FC network", "convnet_wide": "Wide ConvNet"}


def _finite(architecture: str) -> tuple[int, Callable[..., "KernelNetworkResult"]]:
    """(the most images it trains on in one full batch, its evaluation) for a finite network's name."""
    from . import wide_conv, wide_fc

    table = {"fc_wide": (wide_fc.MAX_SET, wide_fc.evaluate_wide_fc),
             "convnet_wide": (wide_conv.MAX_SET, wide_conv.evaluate_wide_conv)}
    if architecture not in table:
        raise ValueError(f"no finite network {architecture!r}; choose one of {', '.join(FINITE_NETWORKS)}")
    return table[architecture]


def finite_network_max_set(architecture: str) -> int:
    """The most images the finite network named `architecture` trains on (one full batch)."""
    return _finite(architecture)[0]


def evaluate_finite_network(architecture: str, data: Any, **kwargs: Any) -> "KernelNetworkResult":
    """Train and test the finite network named `architecture` (a key of FINITE_NETWORKS) on the set."""
    return _finite(architecture)[1](data, **kwargs)


class CentredNetwork(Protocol):
    """What the loop needs of a network: its trainable tensors, their initial values, and f(x) - f_0(x)."""

    params: list[torch.Tensor]
    initial: list[torch.Tensor]

    def start(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward(self, x: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor: ...

    def backward(self, x: torch.Tensor, start: torch.Tensor, target: torch.Tensor,
                 factor: float) -> tuple[torch.Tensor, torch.Tensor]: ...


def squared_error(factor: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """factor * mean_i |out_i - target_i|^2: the loss of every recipe here."""
    return lambda out, target: factor * ((out - target) ** 2).sum(1).mean()


class CentredModule:
    """An nn.Module whose output at initialisation is taken away: `forward` returns f(x) - f_0(x), f_0 a frozen copy
    of the module as it was built."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.frozen = copy.deepcopy(module).eval()
        for p in self.frozen.parameters():
            p.requires_grad_(False)
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.initial = [p.detach().clone() for p in self.params]

    def start(self, x: torch.Tensor) -> torch.Tensor:
        from ..models.fast_cpu import fast_logits

        with torch.no_grad():
            return fast_logits(self.frozen, x)  # = frozen(x), faster on a CPU

    def forward(self, x: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor:
        from ..models.fast_cpu import fast_logits

        out = self.module(x) if torch.is_grad_enabled() else fast_logits(self.module, x)
        return out - (self.start(x) if start is None else start)

    def backward(self, x: torch.Tensor, start: torch.Tensor, target: torch.Tensor,
                 factor: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradients of factor * mean_i |f(x_i) - f_0(x_i) - target_i|^2 into .grad; (that loss, f - f_0), detached.
        A ConvNet on a CPU goes through models/fast_cpu in chunks (the same gradients, ~1.6x faster)."""
        from ..models.fast_cpu import chunked_backward

        done = chunked_backward(self.module, x, start + target, squared_error(factor))
        return done.loss, done.logits - start


@dataclass(frozen=True)
class CentredRecipe:
    """Full-batch SGD on  c / n * sum_i |f(x_i) - f_0(x_i) - s y_i|^2  +  wd * |theta - theta_0|^2,  with c the
    squared error's factor (KIP's 0.5; RFAD's 1 / (K s^2), the mean over entries), s the label scale and the weight
    decay pulling towards the initial weights (RFAD's centring). With `check_every`, the network is scored on a
    validation split that often, training stops after `patience` steps without a better score, and the best
    network is the one tested (RFAD's early stopping)."""

    steps: int
    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    label_scale: float = 1.0
    loss_factor: float = 0.5
    check_every: int = 0
    patience: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError("steps must be at least 1")
        if not self.lr > 0:
            raise ValueError(f"the learning rate must be positive, not {self.lr}")


@dataclass
class TrainOutcome:
    final_loss: float  # the training loss of the network returned (with early stopping: the one kept, not the last)
    steps_done: int
    best_step: int | None = None  # the step whose network was kept (early stopping), else None
    best_validation: float | None = None  # its validation accuracy, percent


def predict(net: CentredNetwork, x: torch.Tensor, chunk: int = 2000) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([net.forward(x[i:i + chunk]) for i in range(0, len(x), chunk)])


def train_centred(net: CentredNetwork, x: torch.Tensor, y: torch.Tensor, recipe: CentredRecipe, *,
                  validation: tuple[torch.Tensor, torch.Tensor] | None = None, chunk: int = 2000,
                  curves: dict[str, list] | None = None, tag: str = "",
                  should_stop: Callable[[], bool] | None = None,
                  progress: Callable[[float], None] | None = None) -> TrainOutcome:
    """Train `net` on (x, y) by the recipe; `curves` gets 'loss_<tag>' and 'train_acc_<tag>' every 1% of the steps
    (and 'valid_acc_<tag>' at each check), `progress(fraction of the steps)` as often and at least once a second (a
    wide ConvNet's step on 500 images takes ~2 s on a CPU, so 1% of its steps is ~20 s)."""
    from .result import EvaluationCancelled

    r = recipe
    opt = torch.optim.SGD(net.params, lr=r.lr, momentum=r.momentum)
    start = net.start(x)
    target = r.label_scale * y
    hard = y.argmax(1)
    every = max(1, r.steps // 100)
    checking = validation is not None and r.check_every > 0
    valid_start = (torch.cat([net.start(validation[0][i:i + chunk]) for i in range(0, len(validation[0]), chunk)])
                   if checking else None)
    best = TrainOutcome(float("nan"), 0)
    best_params: list[torch.Tensor] | None = None

    def check(step: int) -> bool:
        """Score the network on the validation split, keep it if it is the best yet; True: patience ran out."""
        nonlocal best, best_params
        with torch.no_grad():
            pred = torch.cat([net.forward(validation[0][i:i + chunk], valid_start[i:i + chunk])
                              for i in range(0, len(validation[0]), chunk)])
        acc = 100.0 * float((pred.argmax(1) == validation[1]).float().mean())
        if curves is not None:
            curves.setdefault(f"valid_step_{tag}", []).append(step)
            curves.setdefault(f"valid_acc_{tag}", []).append(round(acc, 3))
        if best.best_validation is None or acc > best.best_validation:
            best = TrainOutcome(float("nan"), step, step, acc)
            best_params = [p.detach().clone() for p in net.params]
            return False
        return step >= (best.best_step or 0) + r.patience

    step = 0
    reported = time.monotonic()
    for step in range(r.steps):
        if should_stop is not None and should_stop():  # every step: one can take a second on a CPU
            raise EvaluationCancelled("finite-network evaluation stopped")
        if checking and step % r.check_every == 0 and check(step):
            break
        opt.zero_grad(set_to_none=True)
        loss, out = net.backward(x, start, target, r.loss_factor)
        if r.weight_decay:
            decay = r.weight_decay * _drift(net)
            decay.backward()
            loss = loss + decay.detach()
        if progress is not None and step % every and time.monotonic() - reported >= 1.0:
            reported = time.monotonic()
            progress(step / r.steps)
        if step % every == 0:
            if not torch.isfinite(loss):
                raise ValueError(f"the network's training diverged (loss {float(loss)}) at step {step}")
            if progress is not None:
                reported = time.monotonic()
                progress(step / r.steps)
            if curves is not None:
                curves.setdefault(f"loss_{tag}", []).append(round(float(loss), 8))
                curves.setdefault(f"train_acc_{tag}", []).append(round(100.0 * float((out.argmax(1) == hard).float().mean()), 3))
        opt.step()
    else:
        step = r.steps
        if checking:  # the trained network is a candidate too
            check(step)
    if best_params is not None:
        with torch.no_grad():
            for p, kept in zip(net.params, best_params):
                p.copy_(kept)
    return TrainOutcome(_loss_of(net, x, start, target, r, chunk), step, best.best_step, best.best_validation)


def _drift(net: CentredNetwork) -> torch.Tensor:
    """|theta - theta_0|^2: what the weight decay towards the initial weights penalises."""
    return sum(((p - p0) ** 2).sum() for p, p0 in zip(net.params, net.initial))


def _loss_of(net: CentredNetwork, x: torch.Tensor, start: torch.Tensor, target: torch.Tensor, r: CentredRecipe,
             chunk: int) -> float:
    """The recipe's training loss of the network as it is now: the loop's last loss belongs to the weights before
    its last update, and with early stopping to a network that was not kept."""
    with torch.no_grad():
        out = torch.cat([net.forward(x[i:i + chunk], start[i:i + chunk]) for i in range(0, len(x), chunk)])
        loss = squared_error(r.loss_factor)(out, target)
        if r.weight_decay:
            loss = loss + r.weight_decay * _drift(net)
    return float(loss)


@dataclass(frozen=True)
class KernelNetworkResult:
    """Test accuracy of finite networks of a kernel's shape trained on a set, one per seed."""

    dataset: str
    method: str
    ipc: int | None
    architecture: str  # its name where architectures are listed: 'fc_wide', 'convnet_wide'
    description: str
    width: int
    steps: int
    lr: float
    seeds: tuple[int, ...]
    accuracies: tuple[float, ...]
    mean: float
    std: float
    final_losses: tuple[float, ...]
    test_images: int
    settings: dict[str, Any] = field(default_factory=dict)  # the recipe's other numbers, per-seed stopping steps
    confusion: tuple[tuple[int, ...], ...] = ()  # rows: true class, columns: predicted; summed over the seeds
    class_names: tuple[str, ...] = ()
    device: str = "cpu"
    curves: dict[str, list] = field(default_factory=dict)  # the trainer's layout: 'epoch' (here: step), loss_s, train_acc_s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_eval_result(self, set_id: str, num_images: int, wall_time_s: float, preset: str) -> Any:
        """The same numbers as an EvalResult, so the store and the Evaluate page keep it like any other evaluation."""
        from .api import library_versions
        from .result import EvalResult, per_class_percent

        return EvalResult(set_id=set_id, dataset=self.dataset, method=self.method, ipc=self.ipc, num_images=num_images,
                          architecture=self.architecture, preset=preset,
                          config={"network": self.description, "width": self.width, "steps": self.steps,
                                  "lr": self.lr, **self.settings, "final_losses": list(self.final_losses)},
                          seeds=list(self.seeds), accuracies=list(self.accuracies), mean=self.mean, std=self.std,
                          wall_time_s=round(wall_time_s, 3), train_time_s=round(wall_time_s, 3), test_time_s=0.0,
                          device=self.device, versions=library_versions(), test_images=self.test_images,
                          class_names=list(self.class_names),
                          curves=dict(self.curves), confusion=[list(r) for r in self.confusion],
                          per_class_accuracy=per_class_percent(self.confusion),
                          class_stats_over="all seeds")

