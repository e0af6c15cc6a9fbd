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
from ..models.fast_cpu import chunked_backward
from . import register_method
from .base import PresetRule
from .matching import MatchingConfig, MatchingMethod, class_seeds, cross_entropy, get_loops, match_loss

BN_IMAGES_PER_CLASS = 16  # reference main.py BNSizePC


@dataclass
class DCConfig(MatchingConfig):
    """The paper preset: refdc main.py's argparse defaults (Iteration 1000, lr_img 0.1, lr_net 0.01,
    batch_real 256, batch_train 256, init 'noise', dis_metric 'ours'), its SGD(momentum 0.5) on the
    images and SGD without momentum for the network, and utils.py get_loops for the loops."""

    iterations: int = 1000
    init: str = "noise"
    lr_img: float = 0.1
    lr_net: float = 0.01  # SGD without momentum for the network in the inner loop
    batch_real: int = 256
    batch_train: int = 256  # inner-loop batch of synthetic images
    dis_metric: str = "ours"  # ours | mse | cos
    outer_loop: int = 0  # 0: the reference schedule for the IPC (get_loops)
    inner_loop: int = 0


# The quick preset of DC and DSA (DSA inherits it), measured on the 2-core CPU with
# benchmarks/methods_accuracy.py (benchmarks/README.md, results/methods-accuracy.md).
_QUICK_BASE = ("benchmarks/methods_accuracy.py, 2-core CPU: real init, real batches of 64 instead of 256 and image lr "
               "1.0 (10x the paper's); CIFAR-10 IPC 1 DC sets reached 25.9% after 30 iterations and 28.3% after 60 "
               "(3 quick evaluations each) where lr 0.1 gave 20.8% after 50 and 22.4% after 100; CIFAR-10 IPC 10 "
               "after a 15-minute budget: 37.3% at lr 1.0 vs 34.3% at lr 0.1 (random real 27.5%)")
_QUICK_IPC1 = "benchmarks/methods_accuracy.py: IPC 1 sets reach their quick accuracy within 100 iterations (28.3% after 60)"
_QUICK_IPCN = ("benchmarks/methods_accuracy.py: IPC > 1, 15 iterations (7-11 fit a 15-minute budget on 2 cores; CIFAR-10 "
               "IPC 10 DC 37.4 / DSA 40.6 after 11, the same as after 7)")
# A fifth of the reference's inner epochs, max(1, get_loops(ipc)[1] // 5): the values below are that table.
_INNER = "a fifth of the reference's inner epochs, max(1, inner // 5), inner from refdc utils.py get_loops"
_INNER_EXT = ("a fifth of get_loops' inner epochs, max(1, inner // 5), for IPCs outside the reference table "
              "(matching.get_loops: inner = round(500 / IPC) in [1, 50])")


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
    objective = (r"\min_{\mathcal{S}}\ \mathbb{E}_{\theta_0}\Big[\sum_{t=0}^{T-1} D\big(\nabla_\theta \ell(\mathcal{S}; "
                 r"\theta_t),\ \nabla_\theta \ell(\mathcal{T}; \theta_t)\big)\Big]")
    symbols = (r"$\mathcal{S}$: the synthetic images; $\mathcal{T}$: the real ones; $\theta_t$: a network trained on "
               r"$\mathcal{S}$ for $t$ steps from a random $\theta_0$; $\ell$: the classification loss; $D$: a "
               r"layer-wise cosine distance.")
    loss_meaning = ("How differently the synthetic and the real images push the network's weights (summed distance "
                    "between their gradients).")
    paper = "Bo Zhao, Konda Reddy Mopuri and Hakan Bilen. Dataset Condensation with Gradient Matching. ICLR 2021."
    paper_url = "https://arxiv.org/abs/2006.05929"
    Config = DCConfig
    eval_augmentation = "dc"  # refdc main.py: DC sets are evaluated with get_daparam's DC augmentation
    colour = "#636EFA"
    restores_on_interrupt = True  # an iteration's outer loops update the images one after another
    preset_rules = (
        PresetRule("quick", {"init": "real", "batch_real": 64, "lr_img": 1.0}, _QUICK_BASE),
        PresetRule("quick", {"iterations": 100}, _QUICK_IPC1, ipcs=(1,)),
        PresetRule("quick", {"iterations": 15}, _QUICK_IPCN, min_ipc=2),
        PresetRule("quick", {"inner_loop": 10}, f"{_INNER} (IPC 10: 50); {_INNER_EXT} (IPC 2-9: 50)", min_ipc=2, max_ipc=10),
        PresetRule("quick", {"inner_loop": 9}, f"{_INNER_EXT} (IPC 11: 45)", ipcs=(11,)),
        PresetRule("quick", {"inner_loop": 8}, f"{_INNER_EXT} (IPC 12: 42)", ipcs=(12,)),
        PresetRule("quick", {"inner_loop": 7}, f"{_INNER_EXT} (IPC 13-14: 38-36)", min_ipc=13, max_ipc=14),
        PresetRule("quick", {"inner_loop": 6}, f"{_INNER_EXT} (IPC 15-16: 33-31)", min_ipc=15, max_ipc=16),
        PresetRule("quick", {"inner_loop": 5}, f"{_INNER} (IPC 20: 25); {_INNER_EXT} (IPC 17-19: 29-26)",
                   min_ipc=17, max_ipc=20),
        PresetRule("quick", {"inner_loop": 4}, f"{_INNER_EXT} (IPC 21-25: 24-20)", min_ipc=21, max_ipc=25),
        PresetRule("quick", {"inner_loop": 3}, f"{_INNER_EXT} (IPC 26-34: 19-15)", min_ipc=26, max_ipc=34),
        PresetRule("quick", {"inner_loop": 4}, f"{_INNER} (IPC 30: 20)", ipcs=(30,)),
        PresetRule("quick", {"inner_loop": 2}, f"{_INNER} (IPC 50: 10); {_INNER_EXT} (IPC 35-52: 14-10)",
                   min_ipc=35, max_ipc=52),
        PresetRule("quick", {"inner_loop": 3}, f"{_INNER} (IPC 40: 15)", ipcs=(40,)),
        PresetRule("quick", {"inner_loop": 1}, f"{_INNER_EXT} (IPC 53 and more: 9 or less)", min_ipc=53),
    )

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
            real_blocks = self.real_blocks(cfg.batch_real, g_real)
            seeds = class_seeds(k, g_aug) if cfg.dsa else None
            self.optimizer.zero_grad(set_to_none=True)
            for c in range(k):
                real = real_blocks[c]
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
                self.on_progress((ol + (c + 1) / (k + 1)) / outer)  # CIFAR-10 IPC 10 on a CPU: seconds per class
            self.optimizer.step()
            if ol == outer - 1:
                break
            self._train_net(net, forward, opt_net, inner, g_train)
            self.on_progress((ol + 1) / outer)
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
