"""Shared pieces of the matching methods (DC, DSA, DM): distances, loops, siamese DSA, fast nets.

Maths and hyperparameters follow VICO-UoE/DatasetCondensation utils.py (`get_loops`,
`match_loss`, `distance_wb`) and main.py / main_DM.py; the code is our own.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import DSAParams, DSAStep, apply_dsa, default_strategy, plan_dsa
from ..device import cpu_has_bf16
from ..models import create_model
from ..models.registry import accepts_option
from .base import DistillMethod, MethodConfig

SPEED_MODES = ("fp32", "channels_last", "bf16", "compile")

# Reference utils.py get_loops: IPC -> (outer_loop, inner_loop).
REFERENCE_LOOPS: dict[int, tuple[int, int]] = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15),
                                               50: (50, 10)}


def get_loops(ipc: int) -> tuple[int, int]:
    """The reference's (outer, inner) schedule; other IPCs: outer = IPC, inner ~ 500 / IPC in [1, 50]."""
    if ipc in REFERENCE_LOOPS:
        return REFERENCE_LOOPS[ipc]
    return ipc, int(min(50, max(1, round(500 / ipc))))


# ----------------------------------------------------------------------------------------------
# Gradient-matching distances
# ----------------------------------------------------------------------------------------------
def distance_wb(gwr: torch.Tensor, gws: torch.Tensor) -> torch.Tensor:
    """Per-output-channel (1 - cosine) summed over channels; 1-D tensors (bias, norm) count 0."""
    if gwr.ndim == 1:
        return torch.zeros((), dtype=gws.dtype, device=gws.device)
    if gwr.ndim != 2:
        gwr, gws = gwr.reshape(gwr.shape[0], -1), gws.reshape(gws.shape[0], -1)
    cos = (gwr * gws).sum(-1) / (gwr.norm(dim=-1) * gws.norm(dim=-1) + 1e-6)
    return (1 - cos).sum()


def match_loss(gw_syn: Sequence[torch.Tensor], gw_real: Sequence[torch.Tensor], metric: str = "ours") -> torch.Tensor:
    """Distance between two gradient lists: 'ours' (layer-wise, per channel), 'mse', 'l1' or 'cos' (flattened)."""
    if metric == "ours":
        return torch.stack([distance_wb(r, s) for r, s in zip(gw_real, gw_syn)]).sum()
    real = torch.cat([g.reshape(-1) for g in gw_real])
    syn = torch.cat([g.reshape(-1) for g in gw_syn])
    if metric == "mse":
        return ((syn - real) ** 2).sum()
    if metric == "l1":  # IDC's 'l1'
        return (syn - real).abs().sum()
    if metric == "cos":
        return 1 - (real * syn).sum() / (real.norm() * syn.norm() + 1e-6)
    raise ValueError(f"Unknown distance metric '{metric}'. Choose 'ours', 'mse', 'l1' or 'cos'.")


# ----------------------------------------------------------------------------------------------
# Siamese DSA for many classes at once
# ----------------------------------------------------------------------------------------------
def class_seeds(num_classes: int, generator: torch.Generator) -> list[int]:
    """One augmentation seed per class (the reference draws int(time*1000) % 100000 per class)."""
    return torch.randint(0, 100_000, (num_classes,), generator=generator).tolist()


def class_plans(strategy: str, seeds: Sequence[int], shape: Sequence[int], params: DSAParams | None) -> list[list[DSAStep]]:
    return [plan_dsa(strategy, shape, seed=s, params=params) for s in seeds]


def block_offsets(counts: Sequence[int]) -> list[int]:
    """Where each class's block starts in a batch that holds the classes in contiguous blocks of `counts`."""
    offsets = [0]
    for n in counts:
        offsets.append(offsets[-1] + int(n))
    return offsets


def class_means(x: torch.Tensor, counts: Sequence[int]) -> torch.Tensor:
    """The mean of each class's block in x (classes in contiguous blocks of `counts` rows): one row per class."""
    if len(set(counts)) == 1:
        return x.reshape(len(counts), int(counts[0]), *x.shape[1:]).mean(1)
    return torch.stack([block.mean(0) for block in x.split([int(n) for n in counts])])


def apply_class_plans(x: torch.Tensor, plans: Sequence[list[DSAStep]], per_class: int | Sequence[int]) -> torch.Tensor:
    """x holds len(plans) classes in contiguous blocks of `per_class` (one count for all, or one per class);
    block c gets plans[c].

    Equal to applying each class's plan to its block separately (the reference's per-class
    DiffAugment calls), but classes that drew the same op are transformed in one batched call.
    """
    counts = [per_class] * len(plans) if isinstance(per_class, int) else [int(n) for n in per_class]
    starts = block_offsets(counts)
    if starts[-1] != x.shape[0]:
        raise ValueError(f"{x.shape[0]} rows, but the class blocks hold {starts[-1]}")
    groups: dict[tuple[str, ...], list[int]] = {}
    for c, plan in enumerate(plans):
        groups.setdefault(tuple(step.fn for step in plan), []).append(c)
    pieces, order = [], []
    for fns, classes in groups.items():
        idx = torch.cat([torch.arange(starts[c], starts[c + 1]) for c in classes])
        block = x if len(groups) == 1 else x.index_select(0, idx.to(x.device))
        if fns:
            steps = []
            for k, fn in enumerate(fns):
                values: dict[str, torch.Tensor] = {}
                for key, v0 in plans[classes[0]][k].values.items():
                    if key in ("size_h", "size_w"):  # a size, the same for every class
                        values[key] = v0
                    else:
                        values[key] = torch.cat([plans[c][k].values[key].reshape(1).expand(counts[c]) for c in classes])
                steps.append(DSAStep(fn, values))
            block = apply_dsa(block, steps)
        pieces.append(block)
        order.append(idx)
    if len(pieces) == 1:
        return pieces[0]
    inverse = torch.empty(x.shape[0], dtype=torch.long)
    inverse[torch.cat(order)] = torch.arange(x.shape[0])
    return torch.cat(pieces).index_select(0, inverse.to(x.device))


# ----------------------------------------------------------------------------------------------
# Config and base class shared by DC, DSA and DM
# ----------------------------------------------------------------------------------------------
@dataclass
class MatchingConfig(MethodConfig):
    """Fields shared by DC, DSA and DM. Defaults from refdc main.py: SGD on the images with lr_img 0.1 and
    momentum 0.5, batch_real 256; dsa off ('' strategy = the readme's strategy for the dataset,
    augment.default_strategy); speed_mode is ours (fp32 = the reference's numbers)."""

    lr_img: float = 0.1  # SGD on the synthetic images
    momentum_img: float = 0.5
    batch_real: int = 256  # real images per class per matching step (at most the class's: real_counts)
    dsa: bool = False  # differentiable siamese augmentation
    dsa_strategy: str = ""  # '' = the reference strategy for the dataset
    speed_mode: str = "fp32"  # fp32 | channels_last | bf16 (autocast) | compile (torch.compile)
    net_width: int = 0  # ours: the matching networks' width (0: the architecture's own, 128 for ConvNet)


class MatchingMethod(DistillMethod):
    """Owns the image optimiser, a reusable network re-initialised per iteration, and real data on device."""

    config: MatchingConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.config.speed_mode not in SPEED_MODES:
            raise ValueError(f"speed_mode must be one of {', '.join(SPEED_MODES)}, not '{self.config.speed_mode}'")
        if self.config.speed_mode == "bf16" and self.device.type == "cpu" and not cpu_has_bf16():
            raise ValueError("speed_mode 'bf16' needs a CPU with bfloat16 instructions (AVX-512 BF16 or AMX); this one "
                             f"has {torch.backends.cpu.get_cpu_capability()}, where a bf16 convolution measured ~80x "
                             "slower than fp32 (5.3 s vs 67 ms). Use 'fp32' here, or bf16 on a GPU.")
        self.images = self.images.detach().clone().requires_grad_(True)
        self.optimizer = self._make_optimizer()
        self._train_u8 = self.data.train.images.to(self.device)  # real data stays on the device
        mean = torch.tensor(self.info.mean, device=self.device).view(1, -1, 1, 1)
        std = torch.tensor(self.info.std, device=self.device).view(1, -1, 1, 1)
        self._scale, self._shift = 1.0 / (255.0 * std), -mean / std
        self.strategy = self.config.dsa_strategy or default_strategy(self.info.name)
        self.dsa_params = DSAParams()
        self._net: nn.Module | None = None
        self._compiled: Any = None

    # -- optimiser and checkpoints
    def _make_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.SGD([self.images], lr=self.config.lr_img, momentum=self.config.momentum_img)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["optimizer"] = self.optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.images = self.images.detach().clone().requires_grad_(True)
        self.optimizer = self._make_optimizer()
        if state.get("optimizer") is not None:
            self.optimizer.load_state_dict(state["optimizer"])

    # -- real data
    def real_counts(self, n: int) -> list[int]:
        """Images per class in a real batch of n per class: n, or all of a class that has fewer. The reference's
        get_images cuts a permutation at n, so a small class (a folder, a subset, a privacy study's members) gives
        each of its images once rather than repeats drawn with replacement."""
        return [min(int(n), len(ix)) for ix in self.data.train.class_indices]

    def real_batches(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Up to n normalised real images of every class, classes in contiguous blocks of `real_counts(n)`
        (one gather), none repeated."""
        idx = torch.cat([self.data.train.sample_class(c, count, generator) for c, count in enumerate(self.real_counts(n))])
        return self.normalize_u8(self._train_u8[idx.to(self.device)])

    def real_blocks(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """`real_batches` split into one block per class."""
        return self.real_batches(n, generator).split(self.real_counts(n))

    def normalize_u8(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() * self._scale + self._shift

    # -- networks
    def network(self, generator: torch.Generator) -> nn.Module:
        """The network with fresh random weights drawn from `generator` (same as a new model)."""
        seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if self._net is None:
                options = dict(self.model_kwargs)
                if self.config.net_width and accepts_option(self.architecture, "width"):
                    options.setdefault("width", int(self.config.net_width))  # a preset's narrower ConvNet (live)
                net = create_model(self.architecture, self.info.channels, self.info.num_classes,
                                   self.info.image_size, **options).to(self.device)
                if self.config.speed_mode in ("channels_last", "compile"):
                    net = net.to(memory_format=torch.channels_last)
                self._net = net
            else:
                for module in self._net.modules():
                    if hasattr(module, "reset_parameters") and module is not self._net:
                        module.reset_parameters()
        return self._net

    @staticmethod
    def has_batchnorm(net: nn.Module) -> bool:
        return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.speed_mode in ("channels_last", "compile"):
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.config.speed_mode == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def compiled(self, fn: Any) -> Any:
        """fn compiled once when speed_mode is 'compile' (the net object is reused, so no recompiles)."""
        if self.config.speed_mode != "compile":
            return fn
        if self._compiled is None:
            self._compiled = torch.compile(fn, dynamic=False)
        return self._compiled


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), labels)
