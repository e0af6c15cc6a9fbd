"""IDM: improved distribution matching (Zhao et al., CVPR 2023, "Improved Distribution Matching for Dataset
Condensation").

DM's loss (class means of the embeddings of real and synthetic images, siamese DSA) with three changes, after the
authors' IDM_cifar10.py and command.txt: (1) partitioning and expansion: each synthetic image is cut into 2 x 2 cells
grown back to full size, so it counts four times (ddcore/multiformation.py, the same decoding as IDC; the set
records formation_factor 2 and evaluation trains on the decoded images, as IDM's evaluation does); (2) a queue of
networks that are partially trained on real data (a new random network joins every `net_generate_interval`
iterations, the oldest leaves past `net_num`; each iteration `fetch_net_num` of them take `model_train_steps` SGD
steps on real batches) instead of a fresh random network; (3) class-aware regularisation: the cross-entropy of the
matching network's predictions on the synthetic images, weighted by ce_weight times that network's running training
accuracy (in percent, as the reference's ClassErrorMeter).

Simplified: the IPC-1 top-k selection of real images (used only without partitioning) is not implemented; a network's
running accuracy is reset every `meter_reset` iterations (the reference resets it at its evaluations).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..augment import dsa_augment
from ..models import create_model
from ..multiformation import decode
from . import register_method
from .base import PresetRule
from .matching import MatchingConfig, MatchingMethod, class_seeds, cross_entropy

_COMMANDS = "uitrbn/IDM command.txt"
_SCRIPT = "uitrbn/IDM IDM_cifar10.py"


@dataclass
class IDMConfig(MatchingConfig):
    """Paper preset: command.txt's CIFAR-10 IPC 10 command (lr_img 0.2, --aug, --syn_ce --ce_weight 0.5, --net_decay,
    --net_train_real, train_net_num 1, real init, DSA) over IDM_cifar10.py's defaults (Iteration 20000, batch_real 256,
    net_num 100, net_generate_interval 30, fetch_net_num 2, model_train_steps 10, trained_bs 256, lr_net 0.01)."""

    iterations: int = 20_000
    init: str = "real"
    lr_img: float = 0.2
    batch_real: int = 256
    dsa: bool = True
    formation_factor: int = 2  # --aug: partitioning and expansion (number_sign_augment), also at evaluation
    ce_weight: float = 0.5  # --syn_ce --ce_weight
    net_num: int = 100  # the queue's length
    net_generate_interval: int = 30  # a new random network joins every this many iterations
    train_net_num: int = 1  # networks the images are matched on per iteration
    fetch_net_num: int = 2  # networks trained on real data per iteration
    model_train_steps: int = 10  # their SGD steps (lr_net, momentum 0.9, weight decay 5e-4: --net_decay)
    trained_bs: int = 256  # their real batch
    lr_net: float = 0.01
    meter_reset: int = 100  # --eval_interval: the running accuracies restart


@register_method
class IDM(MatchingMethod):
    name = "idm"
    title = "IDM (improved distribution matching)"
    family = "distribution matching"  # the published-methods table's family for idm
    explanation = ("Distribution matching (see DM) with three repairs. Each synthetic image is cut into four "
                   "quarters that are each enlarged, so one stored image yields four training images. The feature "
                   "extractors are no longer untrained: a queue of networks keeps learning from real data, new ones "
                   "join and old ones leave, so the features range from random to meaningful. And synthetic images "
                   "are also asked to be classified correctly by those networks, more strongly by the networks that "
                   "already classify well.")
    objective = (r"\min_{\mathcal{S}}\ \mathbb{E}_{\theta \sim \mathcal{Q}} \sum_c \big\| "
                 r"\bar\psi_\theta(\mathcal{T}_c) - \bar\psi_\theta(\mathcal{S}_c) \big\|^2 + \lambda\, "
                 r"\ell_{\mathrm{CE}}\big(h_\theta(\mathcal{S}), y\big)")
    symbols = (r"$\mathcal{Q}$: a queue of networks partially trained on real data; $\bar\psi$: a mean feature; the "
               r"second, class-aware term asks the networks to classify the synthetic images correctly.")
    loss_meaning = "DM's feature distance plus the class-aware classification term."
    paper = ("Ganlong Zhao, Guanbin Li, Yipeng Qin and Yizhou Yu. Improved Distribution Matching for Dataset "
             "Condensation. CVPR 2023.")
    paper_url = "https://arxiv.org/abs/2307.09742"
    eval_augmentation = "dsa"  # the published-methods table's (IDM_cifar10.py evaluates with DSA)
    Config = IDMConfig
    preset_rules = (
        PresetRule("*", {"net_generate_interval": 5, "batch_real": 5000}, f"{_COMMANDS}: CIFAR-10 and CIFAR-100 IPC 1",
                   datasets=("cifar10", "cifar100"), ipcs=(1,)),
        PresetRule("*", {"ce_weight": 0.1}, f"{_COMMANDS}: IPC 50 (and CIFAR-100 IPC 10)", min_ipc=50),
        PresetRule("*", {"ce_weight": 0.1, "model_train_steps": 50}, f"{_COMMANDS}: CIFAR-100 IPC 10",
                   datasets=("cifar100",), ipcs=(10,)),
        PresetRule("quick", {"iterations": 400, "batch_real": 64, "net_num": 10, "net_generate_interval": 20,
                             "model_train_steps": 5, "trained_bs": 64, "meter_reset": 50},
                   "quick (measured in results/methods-accuracy.md): DM's quick budget (400 iterations, real batches of 64, benchmarks/README.md) "
                   "with a queue of at most 10 networks trained 5 steps of 64 real images per iteration"),
        PresetRule("quick", {"formation_factor": 1},
                   "benchmarks/methods_accuracy.py, 2-core CPU: MNIST IPC 10 with factor 2 (each digit decoded from a "
                   "14x14 quarter) scored 86.2 +- 0.7 after 58 iterations, below random real's 94.1 +- 0.5; IDM's paper "
                   "partitions CIFAR and Tiny ImageNet, not 28x28 digits", datasets=("mnist", "fashionmnist"), min_ipc=10),
        # Not a rule (measured, benchmarks/methods_accuracy.py, one core): with factor 1 all 400 iterations gave MNIST
        # IPC 10 93.5 +- 0.4, and lr_img 2.0 (10x, as DM's quick MNIST rule) 93.1 +- 0.2, so 0.2 stays: under DSA
        # evaluation random real scores 92.0 +- 0.7, under DC 94.1 +- 0.5. A smaller class-aware term helps (2026-12-01,
        # same command, --set ce_weight=...): 0.1 gave 94.7 +- 0.1 (cut at 369/400 by the budget on a shared core), 0 gave
        # 94.8 +- 0.2 (400/400), still short of +2 std over DC's random real (95.1); 0.5 stays, the paper's value.
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        c = self.config
        if c.net_num < 1 or c.train_net_num < 1 or c.net_generate_interval < 1:
            raise ValueError("net_num, train_net_num and net_generate_interval must be at least 1")
        g = self.rng(stream=997)
        self.queue: list[dict[str, Any]] = [self._fresh(g) for _ in range(min(3, c.net_num))]  # the reference starts with 3

    def _fresh(self, g: torch.Generator) -> dict[str, Any]:
        seed = int(torch.randint(0, 2**62, (1,), generator=g))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = create_model(self.architecture, self.info.channels, self.info.num_classes, self.info.image_size,
                               **self.model_kwargs).to(self.device)
        opt = torch.optim.SGD(net.parameters(), lr=self.config.lr_net, momentum=0.9, weight_decay=5e-4)
        return {"net": net, "opt": opt, "correct": 0, "seen": 0}

    @staticmethod
    def accuracy(member: dict[str, Any]) -> float:
        """The network's running training accuracy in percent (0 before it has trained)."""
        return 100.0 * member["correct"] / member["seen"] if member["seen"] else 0.0

    def _step(self) -> dict[str, float]:
        c, k, ipc = self.config, self.info.num_classes, self.ipc
        g = self.rng()
        if self.iteration % c.net_generate_interval == 0:
            if len(self.queue) >= c.net_num:
                self.queue.pop(0)
            self.queue.append(self._fresh(g))
        if self.iteration and self.iteration % c.meter_reset == 0:
            for m in self.queue:
                m["correct"] = m["seen"] = 0
        chosen = torch.randperm(len(self.queue), generator=g)[: c.train_net_num].tolist()
        g_real, g_aug = self.rng(1), self.rng(3)
        total = 0.0
        for index in chosen:
            member = self.queue[index]
            net, weight = member["net"], self.accuracy(member)
            net.eval()
            for p in net.parameters():
                p.requires_grad_(False)
            real_blocks = self.real_blocks(c.batch_real, g_real)
            seeds = class_seeds(k, g_aug)
            for cls in range(k):
                real = real_blocks[cls]
                syn = decode(self.images[cls * ipc:(cls + 1) * ipc], c.formation_factor)
                if c.dsa:
                    real = dsa_augment(real, self.strategy, seed=seeds[cls], params=self.dsa_params)
                    syn = dsa_augment(syn, self.strategy, seed=seeds[cls], params=self.dsa_params)
                with torch.no_grad():
                    mean_real = net.embed(real).mean(0)
                mean_syn = net.embed(syn).mean(0)
                loss = ((mean_real - mean_syn) ** 2).sum()
                if c.ce_weight:
                    target = torch.full((len(syn),), cls, device=self.device)
                    loss = loss + c.ce_weight * weight * cross_entropy(net(syn), target)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total += float(loss.detach())
        self._train_queue(g)
        return {"loss": total / (k * len(chosen)), "networks": float(len(self.queue))}

    def _train_queue(self, g: torch.Generator) -> None:
        """fetch_net_num networks of the queue take model_train_steps SGD steps on random real batches."""
        c = self.config
        n = len(self.data.train)
        for index in torch.randperm(len(self.queue), generator=g)[: c.fetch_net_num].tolist():
            member = self.queue[index]
            net: nn.Module = member["net"]
            net.train()
            for p in net.parameters():
                p.requires_grad_(True)
            for _ in range(c.model_train_steps):
                idx = torch.randint(n, (c.trained_bs,), generator=g)
                x = self.normalize_u8(self._train_u8[idx.to(self.device)])
                y = self.data.train.labels[idx].to(self.device)
                logits = net(x)
                member["opt"].zero_grad(set_to_none=True)
                cross_entropy(logits, y).backward()
                member["opt"].step()
                member["correct"] += int((logits.argmax(1) == y).sum())
                member["seen"] += len(y)
            for p in net.parameters():
                p.requires_grad_(False)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["queue"] = [{"net": {n: t.detach().cpu().clone() for n, t in m["net"].state_dict().items()},
                           "opt": m["opt"].state_dict(), "correct": m["correct"], "seen": m["seen"]} for m in self.queue]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        g = torch.Generator().manual_seed(0)  # shells only: every value is overwritten below
        self.queue = []
        for saved in state["queue"]:
            member = self._fresh(g)
            member["net"].load_state_dict({n: t.to(self.device) for n, t in saved["net"].items()})
            member["opt"].load_state_dict(saved["opt"])
            member["correct"], member["seen"] = int(saved["correct"]), int(saved["seen"])
            self.queue.append(member)
