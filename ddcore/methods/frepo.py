"""FRePo: dataset distillation with neural feature regression and a model pool (Zhou, Nezhadarya & Ba, NeurIPS 2022).

Each step takes one network from a pool, computes the features of a real batch and of the synthetic set, and
predicts the real labels by kernel ridge regression on the synthetic features (the network's last layer
trained to convergence, in closed form: ddcore/evaluation/krr.py). The loss is that prediction's squared
error plus a margin penalty on the learned labels; images and labels move by LAMB with a cosine decay.
The network then takes one Adam step on the synthetic set (or is re-initialised once it has taken
`max_online_updates`), so the pool holds networks at staggered stages of training.

Hyperparameters: yongchao97/FRePo script/distill.py (get_config and main) and lib/datadistillation/frepo.py
(init_proto, nfr, lb_margin_th, proto_train_and_evaluate); the code is ours. Simplified: the pool's networks are
the studio's architecture (ConvNet: constant width 128, FRePo's doubles it per block) with BatchNorm as FRePo
distils; the real batch is drawn anew each step (FRePo walks through a shuffled epoch); no EMA.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..evaluation.krr import centered_one_hot, feature_krr_predict
from ..models import create_model
from . import register_method
from .base import DistillMethod, MethodConfig, PresetRule
from .kernel import (
    RegressionTargets,
    cosine_lr,
    half_squared_error,
    initial_targets,
    label_margin_loss,
    make_image_optimizer,
)

_REPO = "yongchao97/FRePo"
_DISTILL = f"{_REPO} script/distill.py"


@dataclass
class FRePoConfig(MethodConfig):
    """Paper preset: FRePo's script/distill.py and README (CIFAR-100 command: num_train_steps 500000,
    num_nn_state 10, max_online_updates 100, normalization batch, learn_label True)."""

    iterations: int = 500_000  # README: --num_train_steps=500000
    init: str = "real"  # init_proto: real images of each class
    lr_img: float = 3e-4  # get_config: kernel.learning_rate, cosine decay to 0.1x over the run (alpha=0.1)
    optimizer: str = "lamb"  # get_config: kernel.optimizer
    batch_real: int = 1024  # get_config: kernel.batch_size
    learn_labels: bool = True  # README: --learn_label=True
    reg: float = 1e-6  # frepo.py nfr: reg * trace(K) / n on the diagonal
    pool_size: int = 10  # README: --num_nn_state=10
    max_online_updates: int = 100  # README: --max_online_updates=100
    online_lr: float = 3e-4  # get_config: online.optimizer adam, online.learning_rate
    online_batch: int = 1000  # get_config: kernel.eval_batch_size (get_sample_proto's batch for the online step)
    use_flip: bool = True  # distill.py: horizontally flipped copies join the support set (not for digits)
    zca: bool = True  # README: ZCA for every dataset except MNIST and FashionMNIST
    norm: str = "batchnorm"  # README: --normalization=batch for the pool's networks ('' : the architecture's own)


@register_method
class FRePo(RegressionTargets, DistillMethod):
    name = "frepo"
    title = "FRePo (neural feature regression with a model pool)"
    family = "kernel"
    explanation = ("A network's last layer can be fitted to the synthetic images exactly, in closed form (kernel "
                   "ridge regression on the network's features). FRePo asks how well that fitted layer predicts a "
                   "batch of real images, and changes the synthetic images and their learned labels to predict "
                   "better. The features come from a pool of networks that keep training on the synthetic set and "
                   "are restarted from scratch now and then, so the images must work for networks at every stage.")
    objective = (r"\min_{X_s,\,Y_s}\ \big\| Y_t - K_{ts}\,(K_{ss} + \lambda I)^{-1}\, Y_s \big\|^2,\qquad K_{ab} = "
                 r"\psi_\theta(X_a)\, \psi_\theta(X_b)^{\top}")
    symbols = (r"$\psi_\theta$: the features of a network from a pool that keeps training on the synthetic set; $X_s, "
               r"Y_s$: synthetic images and learned labels; $X_t, Y_t$: a real batch; the last layer is solved "
               r"exactly by kernel ridge regression.")
    loss_meaning = ("Loss of the closed-form (kernel ridge regression) classifier fitted on the synthetic set, measured "
                    "on a real batch.")
    paper = ("Yongchao Zhou, Ehsan Nezhadarya and Jimmy Ba. Dataset Distillation using Neural Feature Regression. "
             "NeurIPS 2022.")
    paper_url = "https://arxiv.org/abs/2206.00719"
    # FRePo trains its evaluation networks with its differentiable augmentation (script/eval.py: diff_aug,
    # 'flip_color_crop_rotate_translate_cutout'), the closest of ours being DSA; its learned labels are regression
    # targets (eval.py: loss 'mse' by default)
    eval_augmentation = "dsa"
    eval_soft_label_loss = "mse"
    # script/eval.py: Adam (lr 3e-4, 500 warm-up steps, cosine to 1%) on the ConvNet without normalisation ('batch'
    # becomes 'identity'). Measured on a CIFAR-10 IPC 1 set: 19.8% with the DC recipe on the instance-norm ConvNet,
    # 27.3% with Adam on it, 35.8% with Adam and no norm (benchmarks/results/methods-accuracy.md)
    eval_optimizer = "adam"
    eval_convnet_norm = "none"
    colour = "#FECB52"  # the published-methods table's colour for frepo
    Config = FRePoConfig
    preset_rules = (
        PresetRule("*", {"use_flip": False, "zca": False},
                   f"{_DISTILL}: no flip for mnist and fashion_mnist; README: no ZCA for them",
                   datasets=("mnist", "fashionmnist")),
        PresetRule("*", {"use_flip": False}, f"{_DISTILL}: CIFAR-100 and Tiny-ImageNet flip only at IPC 1",
                   datasets=("cifar100", "tinyimagenet"), min_ipc=2),
        PresetRule("quick", {"iterations": 1000, "batch_real": 256, "lr_img": 3e-3, "pool_size": 10,
                             "max_online_updates": 100},
                   "quick: 1000 steps with real batches of 256 (a quarter of FRePo's 1024) and 10x FRePo's image lr "
                   "3e-4 (LAMB moves each tensor by lr x its norm per step: 500x fewer steps need larger ones). "
                   "Measured on this CPU, evaluated with FRePo's own recipe (benchmarks/results/methods-accuracy.md): "
                   "CIFAR-10 IPC 1 34.1 +- 1.1 % in 815 s, MNIST IPC 1 87.2 +- 0.7 % in 539 s and IPC 10 95.7 +- 0.2 % in 1080 s; "
                   "CIFAR-10 IPC 10 44.9 +- 1.0 % after 500 steps in 900 s"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        c = self.config
        if c.pool_size < 1 or c.max_online_updates < 1:
            raise ValueError("pool_size and max_online_updates must be at least 1")
        self.images = self.images.detach().clone().requires_grad_(True)
        self.targets = initial_targets(self.labels, self.info.num_classes).to(self.device).requires_grad_(c.learn_labels)
        self._zca = None
        if c.zca:
            from ..zca import dataset_zca

            self._zca = dataset_zca(self.data).to(self.device)
        self._make_optimizer()
        g = self.rng(stream=997)
        # FRePo staggers the pool: member i starts as if it had taken (max_online_updates // pool_size) * i steps
        self.pool = [self._fresh_member(g, (c.max_online_updates // c.pool_size) * i) for i in range(c.pool_size)]

    # ------------------------------------------------------------------ pieces
    def _make_optimizer(self) -> None:
        params = [self.images] + ([self.targets] if self.config.learn_labels else [])
        self.optimizer = make_image_optimizer(self.config.optimizer, params, self.config.lr_img)

    def _build(self) -> nn.Module:
        kwargs = dict(self.model_kwargs)
        if self.config.norm:
            kwargs.setdefault("norm", self.config.norm)
        return create_model(self.architecture, self.info.channels, self.info.num_classes, self.info.image_size,
                            **kwargs).to(self.device)

    def _fresh_member(self, g: torch.Generator, steps: int = 0) -> dict[str, Any]:
        seed = int(torch.randint(0, 2**62, (1,), generator=g))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self._build()
        return {"net": net, "opt": torch.optim.Adam(net.parameters(), lr=self.config.online_lr), "steps": steps}

    def _real_batch(self, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self.data.train)
        idx = torch.randperm(n, generator=g)[: min(self.config.batch_real, n)]
        x = self.data.normalize(self.data.train.images[idx].to(self.device))
        if self._zca is not None:
            x = self._zca.apply(x)
        return x, centered_one_hot(self.data.train.labels[idx].to(self.device), self.info.num_classes)

    def support(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The support set of the regression: the images and, with use_flip, their mirror images (same labels)."""
        if not self.config.use_flip:
            return images, targets
        return torch.cat([images, images.flip(-1)]), torch.cat([targets, targets])

    # ------------------------------------------------------------------ one step
    def _step(self) -> dict[str, float]:
        c = self.config
        g = self.rng()
        member = self.pool[int(torch.randint(len(self.pool), (1,), generator=g))]
        net = member["net"]
        x_t, y_t = self._real_batch(g)
        for p in net.parameters():
            p.requires_grad_(False)
        net.eval()  # FRePo's features use the running BatchNorm statistics (train=False)
        with torch.no_grad():
            f_t = net.embed(x_t).double()
        x_s, y_s = self.support(self.images, self.targets)
        f_s = net.embed(x_s).double()
        pred = feature_krr_predict(f_t, f_s, y_s.double(), c.reg).float()
        kernel_loss = half_squared_error(pred, y_t)
        margin = label_margin_loss(self.targets).mean()
        loss = kernel_loss + margin
        for group in self.optimizer.param_groups:
            group["lr"] = cosine_lr(c.lr_img, self.iteration, self.total_iterations)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        accuracy = float((pred.argmax(1) == y_t.argmax(1)).float().mean())
        self._online_update(member, g)
        return {"loss": float(loss.detach()), "kernel_loss": float(kernel_loss.detach()),
                "label_loss": float(margin.detach()), "krr_batch_accuracy": 100.0 * accuracy}

    def _online_update(self, member: dict[str, Any], g: torch.Generator) -> None:
        """One Adam step of the network on a sample of the (new) synthetic set, or a fresh network once it has
        taken more than max_online_updates (proto_train_and_evaluate)."""
        if member["steps"] > self.config.max_online_updates:
            member.update(self._fresh_member(g))
            return
        net = member["net"]
        n = len(self.images)
        idx = torch.randperm(n, generator=g)[: min(self.config.online_batch, n)].to(self.device)
        x, y = self.images.detach()[idx], self.targets.detach()[idx]
        for p in net.parameters():
            p.requires_grad_(True)
        net.train()
        member["opt"].zero_grad(set_to_none=True)
        half_squared_error(net(x), y).backward()
        member["opt"].step()
        member["steps"] += 1

    # ------------------------------------------------------------------ outputs and checkpoints (labels: RegressionTargets)
    def labels_are_targets(self) -> bool:
        return True  # FRePo's labels are scaled, centred regression targets even when not learned

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["pool"] = [{"net": {k: v.detach().cpu().clone() for k, v in m["net"].state_dict().items()},
                          "opt": m["opt"].state_dict(), "steps": int(m["steps"])} for m in self.pool]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if len(state["pool"]) != len(self.pool):
            raise ValueError(f"the checkpoint has a pool of {len(state['pool'])} networks; this run has {len(self.pool)}")
        for member, saved in zip(self.pool, state["pool"]):
            member["net"].load_state_dict({k: v.to(self.device) for k, v in saved["net"].items()})
            member["opt"] = torch.optim.Adam(member["net"].parameters(), lr=self.config.online_lr)
            member["opt"].load_state_dict(saved["opt"])
            member["steps"] = int(saved["steps"])
