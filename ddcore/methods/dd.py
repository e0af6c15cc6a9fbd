"""DD: dataset distillation by back-propagating through unrolled training (Wang, Zhu, Torralba & Efros, 2018).

A freshly initialised network takes T plain gradient steps on the synthetic images, each with its own learned step
size; its cross-entropy on a batch of real images is then differentiated through all T steps (the unrolled
graph, ddcore/methods/trajectory.py's `FlatNet` and `student_step`) with respect to the images and the step sizes.
The images are split into `groups = min(syn_steps, IPC)` per-class slices, one per step, repeated for
`distill_epochs` passes (DD's distill_steps x distill_epochs with distilled_images_per_class_per_step = IPC /
groups): IPC 10 with 10 steps is DD's setting of one image per class per step.

Hyperparameters: SsnL/dataset-distillation base_options.py and train_distilled_image.py (softplus-parameterised
step sizes, Adam with betas (0.5, 0.999), StepLR); the code is ours. Simplified: the network is the run's
architecture with its default initialisation (DD: LeNet / AlexNet with Xavier init); decay periods are counted in
iterations of `batch_real` real images (DD: epochs of the real data).

Evaluation: the DC recipe trains fresh networks on the images for hundreds of epochs, as for every method; DD's own
protocol, its learned schedule replayed from fresh initialisations (the paper's "unknown random initialisation"
numbers), is ddcore/evaluation/replay.py (`python -m ddcore evaluate` prints it for a DD set).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..models import create_model
from . import register_method
from .base import DistillMethod, MethodConfig, PresetRule, StepInterrupted
from .trajectory import FlatNet, student_step

_OPTIONS = "SsnL/dataset-distillation base_options.py"


@dataclass
class DDConfig(MethodConfig):
    """Paper preset: DD's base_options.py defaults (400 epochs of batches of 1024 real images, Adam lr 0.01 halved
    every 40 epochs, distill_steps 10, distill_epochs 3, distill_lr 0.02, noise init); 23 200 iterations are 400
    epochs of MNIST's 58 batches of 1024."""

    iterations: int = 23_200
    init: str = "noise"  # train_distilled_image.py: torch.randn images
    syn_steps: int = 10  # distill_steps: distinct image groups, one per step (at most IPC)
    distill_epochs: int = 3  # passes over the groups: T = groups x distill_epochs steps
    lr_init: float = 0.02  # distill_lr: every step size starts here
    lr_img: float = 0.01  # lr: Adam(betas=(0.5, 0.999)) on images and step sizes
    decay_every: int = 2320  # decay_epochs 40 x 58 MNIST batches of 1024
    decay_factor: float = 0.5  # decay_factor
    batch_real: int = 1024  # batch_size


def dd_groups(num_classes: int, ipc: int, syn_steps: int) -> list[torch.Tensor]:
    """The image indices each step uses: per class, the slots k with k % groups == j (class-major layout)."""
    groups = max(1, min(int(syn_steps), ipc))
    return [torch.tensor([c * ipc + k for c in range(num_classes) for k in range(j, ipc, groups)])
            for j in range(groups)]


def unrolled_loss(net: FlatNet, theta0: torch.Tensor, images: torch.Tensor, labels: torch.Tensor,
                  raw_lrs: torch.Tensor, groups: list[torch.Tensor], real_x: torch.Tensor, real_y: torch.Tensor,
                  check: Any = None) -> torch.Tensor:
    """DD's objective: the real batch's cross-entropy after len(raw_lrs) steps from theta0, step i on group
    i % len(groups) with step size softplus(raw_lrs[i]); differentiable in images and raw_lrs."""
    theta = theta0
    lrs = F.softplus(raw_lrs)
    for i in range(len(lrs)):
        if check is not None:
            check()
        idx = groups[i % len(groups)]
        theta, _ = student_step(net, theta, images[idx], labels[idx], lrs[i], create_graph=True)
    return F.cross_entropy(net(theta, real_x), real_y)


def softplus_inverse(x: float) -> float:
    """raw such that softplus(raw) = x (DD stores log(exp(lr) - 1))."""
    return float(torch.tensor(float(x), dtype=torch.float64).expm1().log())


@register_method
class DD(DistillMethod):
    name = "dd"
    title = "Dataset Distillation (DD, unrolled meta-learning)"
    family = "meta-learning"  # the published-methods table's family for dd
    explanation = ("The original dataset distillation. A new network is trained for a few plain gradient steps on "
                   "the synthetic images only, each step with its own learned step size, and then tested on a batch "
                   "of real images. That test loss is differentiated back through every training step, and the "
                   "synthetic images and step sizes are changed so that the few steps teach the network as much as "
                   "possible. Each iteration starts again from a new random network.")
    objective = (r"\min_{\mathcal{S},\,\eta}\ \ell\big(\mathcal{T};\ \theta_T\big),\qquad \theta_{t+1} = \theta_t - "
                 r"\eta_t\, \nabla_\theta \ell(\mathcal{S}; \theta_t)")
    symbols = (r"$\theta_0$: a random network; $\theta_T$: after $T$ steps on the synthetic images with learned step "
               r"sizes $\eta_t$; the loss on real images is back-propagated through all $T$ steps.")
    loss_meaning = "The real-data loss of the network after its few steps on the synthetic images."
    paper = "Tongzhou Wang, Jun-Yan Zhu, Antonio Torralba and Alexei A. Efros. Dataset Distillation. arXiv 2018."
    paper_url = "https://arxiv.org/abs/1811.10959"
    eval_augmentation = "dc"  # the published-methods table's (the DC paper's default, get_daparam)
    colour = "#2CA02C"  # the published-methods table's colour for dd
    Config = DDConfig
    preset_rules = (
        PresetRule("paper", {"iterations": 19_200, "decay_every": 1920},
                   f"{_OPTIONS}: 400 epochs, decay every 40, of CIFAR's 48 batches of 1024", datasets=("cifar10", "cifar100")),
        PresetRule("quick", {"iterations": 300, "batch_real": 256, "decay_every": 100, "distill_epochs": 2},
                   "quick (measured in results/methods-accuracy.md): 300 iterations on batches of 256 real images with the step size "
                   "halved every 100 (DD: every 40 epochs), 2 passes over the image groups instead of 3 to halve the "
                   "unrolled graph; measured on one core of a 2-core CPU (ddcore/estimates.py): 1.7-4 s per iteration, 8-20 min"),
        PresetRule("quick", {"init": "real", "distill_epochs": 3},
                   "benchmarks/methods_accuracy.py, 2-core CPU, MNIST IPC 1 in 300 s: from noise 47.7 +- 3.8 (below random "
                   "real's 57.4 +- 4.0), from random real images 64.3 +- 0.8 (+1.7 std) with 2 passes over the image groups, "
                   "68.9 +- 1.4 (+2.9 std) with DD's own 3 (--set distill_epochs=3, 120 iterations with two other "
                   "benchmarks on the 2 cores)", datasets=("mnist", "fashionmnist")),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        c = self.config
        if c.syn_steps < 1 or c.distill_epochs < 1:
            raise ValueError("syn_steps and distill_epochs must be at least 1")
        self.groups = [g.to(self.device) for g in dd_groups(self.info.num_classes, self.ipc, c.syn_steps)]
        steps = len(self.groups) * c.distill_epochs
        self.raw_lrs = torch.full((steps,), softplus_inverse(c.lr_init), device=self.device, requires_grad=True)
        self.images = self.images.detach().clone().requires_grad_(True)
        self._net = create_model(self.architecture, self.info.channels, self.info.num_classes, self.info.image_size,
                                 **self.model_kwargs).to(self.device)
        self.student = FlatNet(self._net)
        self._make_optimizer()

    def _make_optimizer(self) -> None:
        self.optimizer = torch.optim.Adam([self.images, self.raw_lrs], lr=self.config.lr_img, betas=(0.5, 0.999))

    @property
    def step_sizes(self) -> list[float]:
        return F.softplus(self.raw_lrs.detach()).cpu().tolist()

    def _initial_parameters(self, g: torch.Generator) -> torch.Tensor:
        """A fresh random initialisation of the network as one flat vector (DD's unknown_init)."""
        seed = int(torch.randint(0, 2**62, (1,), generator=g))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for module in self._net.modules():
                if hasattr(module, "reset_parameters") and module is not self._net:
                    module.reset_parameters()
        return torch.cat([p.detach().reshape(-1) for p in self._net.parameters()])

    def _step(self) -> dict[str, float]:
        c = self.config
        g = self.rng()
        theta0 = self._initial_parameters(g).requires_grad_(True)
        n = len(self.data.train)
        idx = torch.randperm(n, generator=g)[: min(c.batch_real, n)]
        real_x = self.data.normalize(self.data.train.images[idx].to(self.device))
        real_y = self.data.train.labels[idx].to(self.device)

        def check() -> None:
            if self.should_stop():
                raise StepInterrupted("stopped during DD's unroll")

        loss = unrolled_loss(self.student, theta0, self.images, self.labels, self.raw_lrs, self.groups, real_x, real_y,
                             check)
        for group in self.optimizer.param_groups:  # StepLR(step_size=decay_every, gamma=decay_factor)
            group["lr"] = c.lr_img * c.decay_factor ** (self.iteration // max(1, c.decay_every))
        self.optimizer.zero_grad(set_to_none=True)
        grads = torch.autograd.grad(loss, [self.images, self.raw_lrs])
        self.images.grad, self.raw_lrs.grad = grads[0], grads[1]
        self.optimizer.step()
        lrs = self.step_sizes
        return {"loss": float(loss.detach()), "step_size_mean": sum(lrs) / len(lrs)}

    # ------------------------------------------------------------------ outputs and checkpoints
    def synthetic(self):  # type: ignore[override]
        s = super().synthetic()
        s.meta.config["learned_step_sizes"] = self.step_sizes  # DD's schedule; evaluation keeps its own protocol
        if self.model_kwargs:  # the network the schedule was learned on, for its replay (evaluation/replay.py)
            s.meta.config["model_kwargs"] = dict(self.model_kwargs)
        return s

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["raw_lrs"] = self.raw_lrs.detach().cpu().clone()
        state["optimizer"] = self.optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.images = self.images.detach().clone().requires_grad_(True)
        self.raw_lrs = state["raw_lrs"].to(self.device).clone().requires_grad_(True)
        self._make_optimizer()
        self.optimizer.load_state_dict(state["optimizer"])
