"""RFAD: kernel distillation with the random-feature approximation of a ConvNet's NNGP kernel (Loo, Hasani, Amini &
Rus, NeurIPS 2022), the scalable successor of KIP (Nguyen et al., ICLR 2021 / NeurIPS 2021).

Each step draws fresh random ConvNets (no normalisation, N(0, 2/fan_in) weights); their concatenated penultimate
features phi give the kernel K = 2 <phi, phi'> + 0.01, an unbiased estimate of the infinitely wide ConvNet's NNGP
kernel. KRR on the synthetic set with that kernel predicts a batch of real images (ddcore/evaluation/krr.py, shared
with the KRR evaluation), and the squared error of that prediction (or, with `platt`, the cross-entropy of the
prediction times a learned temperature) is back-propagated into the synthetic images (and, with learn_labels, their
labels).

Hyperparameters: yolky/RFAD run_distillation.py (argparse defaults and the ConvNet_wide it builds) and
distillation.py (kernel, jitter, batches, Platt scaling); the code is ours. Simplified: Adam instead of AdaBelief
(eps 1e-16); no learned linear transform of the images, no early stopping on a validation split; the networks are
the studio's ConvNet at width 256 (RFAD's ConvNet_wide, k = 2).

Its own measures, beside the DC recipe's ConvNet: KRR with the kernel it distils with (evaluation/krr.py) and its
finite network, a ConvNet of the kernel's shape trained by RFAD's finite recipe (evaluation/wide_conv.py,
`eval_finite_network`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..evaluation.krr import centered_one_hot, network_features, nngp_krr_predict, random_networks
from ..models import create_model
from . import register_method
from .base import DistillMethod, MethodConfig, PresetRule
from .kernel import RegressionTargets

_RUN = "yolky/RFAD run_distillation.py"
_DISTILL = "yolky/RFAD distillation.py"


@dataclass
class RFADConfig(MethodConfig):
    """Paper preset: RFAD's run_distillation.py argparse defaults and the call it makes (100000 iterations, lr 1e-3,
    jit 5e-3, 8 models, 4 batches of 1280 real images, no Platt scaling, labels not learned, random real init) and
    its ConvNet_wide(k=2, net_norm='none')."""

    iterations: int = 100_000  # run_distillation.py: n_iters (early stopping on a validation split not used here)
    init: str = "real"  # init_strategy 'random': random real images of each class
    lr_img: float = 1e-3  # --lr (AdaBelief there, Adam here)
    reg: float = 5e-3  # --jit: jitter x trace(K) / n on the diagonal
    models: int = 8  # --n_models: random networks per step, drawn anew each step (schedule (0, 8, 1))
    batch_real: int = 5120  # --n_batches 4 x 1280 real images per step
    width: int = 256  # ConvNet_wide k = 2 x net_width 128
    platt: bool = False  # --platt: cross-entropy of exp(k) * prediction, k learned (lr 1e-2)
    platt_lr: float = 1e-2  # distillation.py: the Platt parameter's lr
    learn_labels: bool = False  # --learn_labels
    zca: bool = True  # run_distillation.py: ZCA (reg 0.1) for CIFAR-10/100 and SVHN, none for MNIST/FashionMNIST


@register_method
class RFAD(RegressionTargets, DistillMethod):
    name = "rfad"
    title = "RFAD (random-feature kernel distillation)"
    family = "kernel"
    explanation = ("An infinitely wide network trained to convergence behaves like kernel ridge regression with a "
                   "fixed kernel. RFAD estimates that kernel from the features of a few random, untrained networks, "
                   "fits the synthetic images by kernel regression in closed form, and changes them so that the fit "
                   "predicts a batch of real images well. No network is ever trained, and fresh random networks are "
                   "drawn every step.")
    objective = (r"\min_{X_s}\ \ell\Big(Y_t,\ \hat K_{ts}\,(\hat K_{ss} + \lambda I)^{-1}\, Y_s\Big),\qquad \hat K_{ab} "
                 r"= \tfrac{1}{m}\, \phi(X_a)\, \phi(X_b)^{\top}")
    symbols = (r"$\phi$: the outputs of $m$ random (untrained) ConvNets, whose products approximate the infinitely "
               r"wide network's (NNGP) kernel; $\ell$: Platt-scaled cross-entropy.")
    loss_meaning = "Loss of the kernel ridge regression prediction on a real batch, with the random-feature kernel."
    paper = ("Noel Loo, Ramin Hasani, Alexander Amini and Daniela Rus. Efficient Dataset Distillation using Random "
             "Feature Approximation. NeurIPS 2022.")
    paper_url = "https://arxiv.org/abs/2210.12067"
    eval_augmentation = "dc"  # as KIP's row in the published-methods table (the DC paper's default)
    eval_soft_label_loss = "mse"  # learned labels (learn_labels) are regression targets
    eval_finite_network = "convnet_wide"  # RFAD's finite network: a ConvNet of the kernel's shape (wide_conv.py)
    Config = RFADConfig
    preset_rules = (
        PresetRule("*", {"zca": False}, f"{_RUN}: no ZCA for mnist and fashion", datasets=("mnist", "fashionmnist")),
        PresetRule("quick", {"iterations": 500, "batch_real": 512, "models": 2, "width": 128, "lr_img": 1e-2},
                   "quick (measured in results/methods-accuracy.md): 2 networks of width 128 and 512 real images per step (RFAD: 8 of width 256 "
                   "and 5120) estimated to fit 500 steps in a 15-minute budget on 2 cores; lr 10x RFAD's for 200x "
                   "fewer steps"),
        PresetRule("quick", {"platt": True},
                   "benchmarks/methods_accuracy.py, 2-core CPU, MNIST IPC 1 in 300 s: without Platt scaling 63.3 +- 3.8 "
                   "(+1.5 std above random real), with it (RFAD's --platt) 73.2 +- 3.1 (+4.0 std)",
                   datasets=("mnist", "fashionmnist"), ipcs=(1,)),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        c = self.config
        if c.models < 1:
            raise ValueError("models must be at least 1")
        self.images = self.images.detach().clone().requires_grad_(True)
        self.targets = centered_one_hot(self.labels, self.info.num_classes).to(self.device).requires_grad_(c.learn_labels)
        self.log_temperature = torch.zeros((), dtype=torch.float64, device=self.device, requires_grad=c.platt)
        self._zca = None
        if c.zca:
            from ..zca import dataset_zca

            self._zca = dataset_zca(self.data).to(self.device)
        self._make_optimizer()

    def _make_optimizer(self) -> None:
        c = self.config
        groups: list[dict[str, Any]] = [{"params": [self.images] + ([self.targets] if c.learn_labels else [])}]
        if c.platt:
            groups.append({"params": [self.log_temperature], "lr": c.platt_lr})
        self.optimizer = torch.optim.Adam(groups, lr=c.lr_img, eps=1e-16)

    def _build(self):
        kwargs = {"width": self.config.width, "norm": "none", **self.model_kwargs}
        return create_model(self.architecture, self.info.channels, self.info.num_classes, self.info.image_size, **kwargs)

    def _step(self) -> dict[str, float]:
        c = self.config
        g = self.rng()
        nets = random_networks(self._build, c.models, g, self.device)
        n = len(self.data.train)
        idx = torch.randperm(n, generator=g)[: min(c.batch_real, n)]
        x_t = self.data.normalize(self.data.train.images[idx].to(self.device))
        if self._zca is not None:
            x_t = self._zca.apply(x_t)
        y_t = self.data.train.labels[idx].to(self.device)
        with torch.no_grad():
            f_t = torch.cat([network_features(nets, x_t[i:i + 1024]) for i in range(0, len(x_t), 1024)]).double()
        f_s = network_features(nets, self.images).double()
        pred = nngp_krr_predict(f_t, f_s, self.targets.double(), c.reg)
        if c.platt:
            loss = F.cross_entropy(self.log_temperature.exp() * pred, y_t)
        else:
            loss = 0.5 * ((centered_one_hot(y_t, self.info.num_classes).double() - pred) ** 2).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.detach()), "krr_batch_accuracy": 100.0 * float((pred.argmax(1) == y_t).float().mean())}

    # ------------------------------------------------------------------ checkpoints (labels: RegressionTargets)
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["log_temperature"] = self.log_temperature.detach().cpu().clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.log_temperature = state["log_temperature"].to(self.device).clone().requires_grad_(self.config.platt)
        super().load_state_dict(state)  # then the optimiser, over it too
