"""CAFE: condensing a dataset by aligning features (Wang et al., CVPR 2022).

Each iteration takes a fresh network and alternates two loops, as the authors' distill.py does:
(1) image updates: the class means of the synthetic images' features are pulled onto the real ones at every layer
(layer-wise feature alignment, weighted per layer), and a discrimination loss asks that real images be classified
by their similarity to the synthetic class centres (real embedding x synthetic class means as logits); this repeats
until the network's accuracy on real images has been stable (range < lambda_1) over 10 updates;
(2) network updates: epochs of training on the synthetic set until the real accuracy moves (range > lambda_2 over 10
epochs); then back to (1).

Hyperparameters: kaiwang960112/CAFE distill.py (argparse defaults, adjust_learning_rate, criterion_middle) and
networks.py (which layers are aligned); the code is ours. Simplified: the real accuracy each watcher tracks is the mean
over a fresh real batch (the reference accumulates it across steps); both loops are capped (max_outer_loop,
max_inner_loop) so one iteration cannot run forever.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import dsa_augment
from . import register_method
from .base import PresetRule
from .matching import MatchingConfig, MatchingMethod, apply_class_plans, class_means, class_plans, class_seeds, cross_entropy

_DISTILL = "kaiwang960112/CAFE distill.py"
ACTIVATIONS = (nn.ReLU, nn.Sigmoid, nn.LeakyReLU, nn.SiLU)


def layer_features(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The outputs of each block's activation (before pooling), then the last block's pooled output: CAFE's f1..f4
    for ConvNet-3 (networks.py); the last, flattened, is the embedding the classifier reads."""
    feats, out = [], x
    modules = list(net.features)
    for m in modules:
        out = m(out)
        if isinstance(m, ACTIVATIONS):
            feats.append(out)
    if not isinstance(modules[-1], ACTIVATIONS):
        feats.append(out)
    return feats


def class_mean_distance(real: torch.Tensor, syn: torch.Tensor, num_classes: int,
                        real_counts: Sequence[int] | None = None) -> torch.Tensor:
    """criterion_middle: squared distance (summed) between per-class means; both batches hold the classes in
    contiguous blocks, equal ones unless `real_counts` gives the real batch's (a class with fewer images)."""
    r = class_means(real, real_counts or [real.shape[0] // num_classes] * num_classes)
    s = syn.reshape(num_classes, -1, *syn.shape[1:]).mean(1)
    return ((r - s) ** 2).sum()


def discrimination_loss(real_embed: torch.Tensor, real_labels: torch.Tensor, syn_embed: torch.Tensor,
                        num_classes: int) -> torch.Tensor:
    """Real images classified by their inner products with the synthetic class centres, summed cross-entropy."""
    centres = syn_embed.reshape(num_classes, -1, syn_embed.shape[1]).mean(1)
    return F.cross_entropy(real_embed @ centres.T, real_labels, reduction="sum")


@dataclass
class CAFEConfig(MatchingConfig):
    """Paper preset: CAFE's distill.py defaults (Iteration 2000, lr_img 0.1 halved at 1200, 1600 and 1800, SGD
    momentum 0.5, lr_net 0.01, batch_real 256, batch_train 256, init noise, layer weights 1, 1, 0.1, 0.1 from the
    output side, inner_weight 0.01, lambda_1 0.04, lambda_2 0.03, no DSA)."""

    iterations: int = 2000
    init: str = "noise"
    lr_img: float = 0.1
    lr_milestones: tuple[int, ...] = (1200, 1600, 1800)  # adjust_learning_rate: x0.5 at each
    lr_net: float = 0.01
    batch_real: int = 256
    batch_train: int = 256
    layer_weights: tuple[float, ...] = field(default=(0.1, 0.1, 1.0, 1.0))  # fourth, third, second, first_weight
    inner_weight: float = 0.01  # the discrimination loss's weight
    lambda_1: float = 0.04  # leave the image loop when the real accuracy's range over 10 updates is below this
    lambda_2: float = 0.03  # leave the network loop when it is above this over 10 epochs
    watch: int = 10  # the watchers' window
    test_per_class: int = 128  # real images per class for the watchers' accuracy
    max_outer_loop: int = 200  # ours: caps on the loops the watchers end
    max_inner_loop: int = 100


@register_method
class CAFE(MatchingMethod):
    name = "cafe"
    title = "CAFE (layer-wise feature alignment)"
    family = "distribution matching"  # the published-methods table's family for cafe
    explanation = ("Like distribution matching, CAFE makes the synthetic images of each class look like the real "
                   "ones to a network, but at every layer, not only the last: the average feature map of a class's "
                   "synthetic images is pulled onto that of its real images, layer by layer. A second loss asks "
                   "that real images be recognisable from the synthetic class averages alone. The network is "
                   "trained on the synthetic images in between, for as long as it keeps learning.")
    objective = (r"\min_{\mathcal{S}}\ \sum_{l} \sum_{c} \big\| \bar f^{\,l}_c(\mathcal{T}) - \bar "
                 r"f^{\,l}_c(\mathcal{S}) \big\|^2 + \beta\, \ell_{\mathrm{CE}}\Big(\mathrm{softmax}\big(\langle f(x), "
                 r"\bar f_c(\mathcal{S}) \rangle / \tau\big)_c,\ y_x\Big)")
    symbols = (r"$\bar f^{\,l}_c$: the mean feature of class $c$ at layer $l$; the second term classifies each real "
               r"image $x$ by its similarity to the synthetic class centres (discrimination).")
    loss_meaning = "Layer-wise feature distance plus the discrimination loss."
    paper = ("Kai Wang, Bo Zhao, Xiangyu Peng, Zheng Zhu, Shuo Yang, Shuo Wang, Guan Huang, Hakan Bilen, Xinchao Wang "
             "and Yang You. CAFE: Learning to Condense Dataset by Aligning Features. CVPR 2022.")
    paper_url = "https://arxiv.org/abs/2203.01531"
    eval_augmentation = "dsa"  # the published-methods table's (ddcore's protocol for CAFE sets)
    colour = "#B6E880"  # the published-methods table's colour for cafe
    Config = CAFEConfig
    preset_rules = (
        PresetRule("quick", {"iterations": 40, "lr_milestones": (24, 32, 36), "batch_real": 32, "test_per_class": 16,
                             "max_outer_loop": 5, "max_inner_loop": 12, "init": "real"},
                   "quick (measured in results/methods-accuracy.md): 40 iterations (CAFE: 2000) with the lr halved at the same "
                   "fractions, batches of 32 real images, watchers on 16 per class, loops capped at 5 and 12, real init. "
                   "One core of a 2-core CPU, IPC 1: with outer loops capped at 20 an iteration took 56-85 s and 300 s "
                   "reached 4-6 of 40 (MNIST 84.4 +- 0.8, CIFAR-10 23.5 +- 0.4); capped at 5 all 40 ran in 13 min "
                   "(MNIST 85.8 +- 0.9, CIFAR-10 25.4 +- 0.9)"),
    )

    def _lr(self) -> float:
        return self.config.lr_img * 0.5 ** sum(self.iteration >= m for m in self.config.lr_milestones)

    def _real_accuracy(self, net: nn.Module, g: torch.Generator) -> float:
        k, counts = self.info.num_classes, self.real_counts(self.config.test_per_class)
        with torch.no_grad():
            pred = net(self.real_batches(self.config.test_per_class, g)).argmax(1)
        truth = torch.arange(k).repeat_interleave(torch.tensor(counts)).to(self.device)  # built on the host: no sync
        return float((pred == truth).float().mean())

    def alignment_loss(self, net: nn.Module, real: torch.Tensor, syn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(layer-wise alignment, discrimination + embedding alignment) for class-blocked real and synthetic batches
        (the real one in blocks of `real_counts(batch_real)`)."""
        c, k = self.config, self.info.num_classes
        counts = self.real_counts(c.batch_real)
        with torch.no_grad():
            f_real = layer_features(net, real)
        f_syn = layer_features(net, syn)
        weights = c.layer_weights[-len(f_real):]  # aligned from the output side
        offset = len(f_real) - len(weights)
        middle = sum(w * class_mean_distance(r, s, k, counts)
                     for w, r, s in zip(weights, f_real[offset:], f_syn[offset:]))
        e_real, e_syn = f_real[-1].flatten(1), f_syn[-1].flatten(1)
        labels = torch.arange(k).repeat_interleave(torch.tensor(counts)).to(self.device)
        output = class_mean_distance(e_real, e_syn, k, counts) + c.inner_weight * discrimination_loss(e_real, labels, e_syn, k)
        return middle, output

    def _step(self) -> dict[str, float]:
        c, k = self.config, self.info.num_classes
        g_real, g_aug, g_test, g_train = self.rng(1), self.rng(3), self.rng(4), self.rng(5)
        net = self.network(self.rng(2))
        net.train()
        opt_net = torch.optim.SGD(net.parameters(), lr=c.lr_net)
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        watcher: list[float] = []
        total, updates = 0.0, 0
        for _ in range(c.max_outer_loop):
            for p in net.parameters():
                p.requires_grad_(False)
            real, syn = self.real_batches(c.batch_real, g_real), self.images
            if c.dsa:  # the same transform for a class's real and synthetic images
                plans = class_plans(self.strategy, class_seeds(k, g_aug), real.shape, self.dsa_params)
                real = apply_class_plans(real, plans, self.real_counts(c.batch_real))
                syn = apply_class_plans(syn, plans, self.ipc)
            middle, output = self.alignment_loss(net, real, syn)
            loss = middle + output
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total, updates = total + float(loss.detach()), updates + 1
            watcher = (watcher + [self._real_accuracy(net, g_test)])[-c.watch:]
            if len(watcher) == c.watch and max(watcher) - min(watcher) < c.lambda_1:
                break
            self._train_net(net, opt_net, g_train, g_test)
        return {"loss": total / max(1, updates), "image_updates": float(updates)}

    def _train_net(self, net: nn.Module, opt: torch.optim.Optimizer, g: torch.Generator, g_test: torch.Generator) -> None:
        """Epochs on the synthetic set until the real accuracy's range over `watch` epochs exceeds lambda_2."""
        c = self.config
        for p in net.parameters():
            p.requires_grad_(True)
        images, labels = self.images.detach(), self.labels
        watcher: list[float] = []
        for _ in range(c.max_inner_loop):
            order = torch.randperm(len(images), generator=g).to(self.device)
            for part in order.split(c.batch_train):
                x = images[part]
                if c.dsa:
                    x = dsa_augment(x, self.strategy, seed=None, params=self.dsa_params, generator=g)
                opt.zero_grad(set_to_none=True)
                cross_entropy(net(x), labels[part]).backward()
                opt.step()
            watcher = (watcher + [self._real_accuracy(net, g_test)])[-c.watch:]
            if len(watcher) == c.watch and max(watcher) - min(watcher) > c.lambda_2:
                break
        for p in net.parameters():
            p.requires_grad_(False)
