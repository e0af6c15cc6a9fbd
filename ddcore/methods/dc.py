"""DC: dataset condensation with gradient matching (Zhao, Mopuri & Bilen, ICLR 2021).

Reference: VICO-UoE/DatasetCondensation main.py (outer/inner loop, optimisers, defaults) and
utils.py (`get_loops`, `match_loss`, `distance_wb`, `epoch`). One `step()` is one reference
"iteration": a fresh random network, `outer_loop` image updates, each followed (except the last)
by `inner_loop` epochs of network training on the current synthetic set.
Speed: real data stays normalised-on-the-fly on the device, per-class losses are backpropagated
class by class (same gradient as the reference's summed loss, a fraction of the memory), the
inner loop indexes tensors directly instead of going through a DataLoader. On a CPU the real
gradients and the inner loop take models/fast_cpu.py's first-order passes in chunks of 32 images.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..augment import apply_dsa, dsa_augment, plan_dsa
from ..data.info import DatasetInfo
from ..models.fast_cpu import chunked_backward
from . import register_method
from .matching import MatchingConfig, MatchingMethod, class_seeds, cross_entropy, get_loops, match_loss

BN_IMAGES_PER_CLASS = 16  # reference main.py BNSizePC


@dataclass
class DCConfig(MatchingConfig):
    iterations: int = 1000
    init: str = "noise"
    lr_img: float = 0.1
    lr_net: float = 0.01  # SGD without momentum for the network in the inner loop
    batch_real: int = 256
    batch_train: int = 256  # inner-loop batch of synthetic images
    dis_metric: str = "ours"  # ours | mse | cos
    outer_loop: int = 0  # 0: the reference schedule for the IPC (get_loops)
    inner_loop: int = 0


@register_method
class DC(MatchingMethod):
    name = "dc"
    title = "Dataset Condensation (DC, gradient matching)"
    family = "gradient matching"
    explanation = ("A network is trained at the same time as the synthetic images. At every step the "
                   "gradient the network would get from a batch of real images of a class is compared "
                   "with the gradient from that class's synthetic images, and the synthetic images are "
                   "changed so that the two gradients point the same way (layer by layer, channel by "
                   "channel). A network trained on the synthetic images should then follow a path "
                   "similar to one trained on the real data.")
    paper = "Bo Zhao, Konda Reddy Mopuri and Hakan Bilen. Dataset Condensation with Gradient Matching. ICLR 2021."
    paper_url = "https://arxiv.org/abs/2006.05929"
    Config = DCConfig

    @classmethod
    def default_config(cls, info: DatasetInfo, ipc: int, preset: str = "paper") -> DCConfig:
        super().default_config(info, ipc, preset)  # validates the preset name
        config = cls.Config()
        if preset == "quick":  # tuned on a 2-core CPU (benchmarks/methods_accuracy.py)
            cls._quick(config, info, ipc)
        return config

    @staticmethod
    def _quick(config: DCConfig, info: DatasetInfo, ipc: int) -> None:
        """The quick preset of DC and DSA (DSA inherits it), measured on the 2-core CPU (benchmarks/methods_accuracy.py).

        Real init, real batches of 64 instead of 256 and image lr 1.0 (10x the paper's). IPC 1: 100
        iterations; CIFAR-10 DC sets reached 25.9% after 30 iterations and 28.3% after 60 (176 s / 342 s, 3
        quick evaluations each), where lr 0.1 gave 20.8% after 50 and 22.4% after 100. IPC > 1: 15 iterations
        with a fifth of the reference's inner epochs; CIFAR-10 IPC 10 after a 15-minute budget (7 of 15
        iterations): 37.3% at lr 1.0 vs 34.3% at lr 0.1 (random real 27.5%).
        """
        config.init, config.batch_real, config.lr_img = "real", 64, 1.0
        if ipc == 1:
            config.iterations = 100
        else:
            config.iterations = 15
            config.inner_loop = max(1, get_loops(ipc)[1] // 5)

    @property
    def loops(self) -> tuple[int, int]:
        outer, inner = get_loops(self.ipc)
        return self.config.outer_loop or outer, self.config.inner_loop or inner

    def _step(self) -> dict[str, float]:
        cfg, k, ipc = self.config, self.info.num_classes, self.ipc
        outer, inner = self.loops
        g_real, g_aug, g_train = self.rng(1), self.rng(3), self.rng(4)
        net = self.network(self.rng(2))
        net.train()
        params = [p for p in net.parameters()]
        for p in params:
            p.requires_grad_(True)
        forward = net  # torch.compile cannot trace the double backward (create_graph); 'compile' acts as channels_last
        opt_net = torch.optim.SGD(params, lr=cfg.lr_net)
        labels = self.labels
        loss_total = torch.zeros((), device=self.device)  # summed on the device: no GPU sync per class
        for ol in range(outer):
            if self.has_batchnorm(net):  # freeze BN statistics from a real batch (reference main.py)
                with torch.no_grad():
                    net.train()
                    net(self.layout(self.real_batches(BN_IMAGES_PER_CLASS, g_real)))
                for m in net.modules():
                    if isinstance(m, nn.modules.batchnorm._BatchNorm):
                        m.eval()
            real_all = self.real_batches(cfg.batch_real, g_real)
            seeds = class_seeds(k, g_aug) if cfg.dsa else None
            self.optimizer.zero_grad(set_to_none=True)
            for c in range(k):
                real = real_all[c * cfg.batch_real:(c + 1) * cfg.batch_real]
                syn = self.images[c * ipc:(c + 1) * ipc]
                if seeds is not None:  # siamese: the same transform for both batches
                    plan = plan_dsa(self.strategy, real.shape, seed=seeds[c], params=self.dsa_params)
                    real, syn = apply_dsa(real, plan), apply_dsa(syn, plan)
                gw_real = self._backprop(net, forward, real, labels.new_full((real.shape[0],), c), params)
                with self.autocast():
                    out_syn = forward(self.layout(syn))
                gw_syn = torch.autograd.grad(cross_entropy(out_syn, labels[c * ipc:(c + 1) * ipc]), params,
                                             create_graph=True)
                loss = match_loss([g.float() for g in gw_syn], [g.float() for g in gw_real], cfg.dis_metric)
                loss.backward(inputs=[self.images])  # per class (= the summed loss), images only: no 2nd-order weight grads
                loss_total += loss.detach()
            self.optimizer.step()
            if ol == outer - 1:
                break
            self._train_net(net, forward, opt_net, inner, g_train)
        return {"loss": loss_total.item() / (k * outer)}

    def _backprop(self, net: nn.Module, forward, x: torch.Tensor, y: torch.Tensor,
                  params: list[torch.Tensor] | None = None) -> list[torch.Tensor] | None:
        """Mean cross-entropy of (x, y): its gradients w.r.t. `params`, or (without) accumulated into .grad.

        fp32 takes models/fast_cpu.py's chunked first-order passes (the module itself where they do not
        apply); the other speed modes run the module with their layout and autocast."""
        if self.config.speed_mode == "fp32":
            return chunked_backward(net, x, y, cross_entropy, params).grads
        with self.autocast():
            loss = cross_entropy(forward(self.layout(x)), y)
        if params is None:
            loss.backward()
            return None
        return [g.detach() for g in torch.autograd.grad(loss, params)]

    def _train_net(self, net: nn.Module, forward, opt: torch.optim.Optimizer, epochs: int,
                   generator: torch.Generator) -> None:
        """The reference's inner loop: `epochs` passes over the (detached) synthetic set."""
        images, labels = self.images.detach(), self.labels
        n, bs = images.shape[0], self.config.batch_train
        net.train()
        for _ in range(epochs):
            order = torch.randperm(n, generator=generator).to(self.device)
            for start in range(0, n, bs):
                idx = order[start:start + bs]
                x = images[idx]
                if self.config.dsa:  # DSA trains the network on augmented images (non-siamese)
                    x = dsa_augment(x, self.strategy, seed=None, params=self.dsa_params, generator=generator)
                opt.zero_grad(set_to_none=True)
                self._backprop(net, forward, x, labels[idx])
                opt.step()
