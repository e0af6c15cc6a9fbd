"""Train K fresh networks on one small labelled set and test them: the inner loop of evaluation.

Why one optimiser over all K networks: the total loss is the sum of the K per-network losses, so each
network's gradient is exactly its own, and SGD (momentum, weight decay) acts element-wise; one
optimiser over the K parameter sets is the same as K optimisers, and lets the K forward passes run
either in turn ('loop') or as one batched call through torch.func ('vmap': stack_module_state +
functional_call + vmap). Randomness (initialisation, shuffling, augmentation) comes from one
generator per seed, so a seed gives the same network whichever way the seeds are batched.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import dc_augment, dsa_augment
from ..models.fast_cpu import chunked_backward, fast_logits
from .protocol import ResolvedConfig
from .result import EvaluationCancelled

ProgressFn = Callable[[dict], None]
StopFn = Callable[[], bool]


@dataclass
class TrainOutcome:
    group: "NetworkGroup"
    curves: dict[str, list] = field(default_factory=dict)
    train_time_s: float = 0.0


def build_seeded(build: Callable[[], nn.Module], seed: int, device: torch.device) -> nn.Module:
    """A network initialised from `seed` without disturbing the caller's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        net = build()
    return net.to(device)


def has_running_stats(net: nn.Module) -> bool:
    return any(True for _ in net.buffers())


class NetworkGroup:
    """K networks of one architecture, run in turn or as one vmapped call."""

    def __init__(self, nets: list[nn.Module], mode: str) -> None:
        self.nets = nets
        self.mode = mode
        if mode == "vmap":
            from torch.func import stack_module_state

            params, buffers = stack_module_state(nets)
            self.params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
            self.buffers = buffers
            self.base = copy.deepcopy(nets[0]).to("meta")
        elif mode != "loop":
            raise ValueError(f"batch_seeds must be 'auto', 'vmap' or 'loop', not '{mode}'")

    def parameters(self) -> list[torch.Tensor]:
        if self.mode == "vmap":
            return list(self.params.values())
        return [p for net in self.nets for p in net.parameters()]

    def train(self, flag: bool = True) -> None:
        for net in self.nets:
            net.train(flag)
        if self.mode == "vmap":
            self.base.train(flag)

    def forward_each(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Logits of network k on xs[k] (all xs of the same shape in vmap mode)."""
        if self.mode == "loop":
            return [net(x) for net, x in zip(self.nets, xs)]
        from torch.func import functional_call, vmap

        def call(p, b, x):
            return functional_call(self.base, (p, b), (x,))

        out = vmap(call)(self.params, self.buffers, torch.stack(xs))
        return list(out.unbind(0))

    def module(self, k: int) -> nn.Module:
        """Network k as an ordinary module with its trained weights (for saving or inspection)."""
        net = self.nets[k]
        if self.mode == "vmap":
            with torch.no_grad():
                for name, p in net.named_parameters():
                    p.copy_(self.params[name][k])
        return net


def prepare_targets(labels: torch.Tensor, num_classes: int, soft_loss: str) -> torch.Tensor:
    """Hard labels stay int64; soft labels become a distribution for 'ce' or stay raw for 'mse'."""
    if labels.ndim == 1:
        return labels.long()
    labels = labels.float()
    if soft_loss == "mse":
        return labels
    if soft_loss != "ce":
        raise ValueError(f"soft_label_loss must be 'ce' or 'mse', not '{soft_loss}'")
    ones = torch.ones(len(labels), device=labels.device)
    is_distribution = bool((labels >= 0).all()) and torch.allclose(labels.sum(1), ones, atol=1e-3)
    return labels if is_distribution else labels.softmax(1)


def loss_fn(logits: torch.Tensor, targets: torch.Tensor, soft_loss: str) -> torch.Tensor:
    if targets.ndim == 1:
        return F.cross_entropy(logits, targets)
    if soft_loss == "mse":
        return F.mse_loss(logits, targets)
    return F.cross_entropy(logits, targets)


def _augment(x: torch.Tensor, cfg: ResolvedConfig, gen: torch.Generator) -> torch.Tensor:
    if cfg.augmentation == "dsa":
        return dsa_augment(x, cfg.strategy, seed=None, generator=gen)
    if cfg.augmentation == "dc":
        return dc_augment(x, cfg.strategy, generator=gen)
    return x


def choose_mode(requested: str, nets: list[nn.Module], device: torch.device) -> str:
    """'auto': vmap on accelerators (one launch for K networks); the loop on CPU, where batching
    gave no gain in our measurements (benchmarks/README.md), and for BatchNorm nets, whose running
    statistics cannot be updated in place under vmap."""
    requested = requested.strip().lower()
    if requested == "auto":
        return "vmap" if device.type != "cpu" and len(nets) > 1 and not has_running_stats(nets[0]) else "loop"
    if requested == "vmap" and has_running_stats(nets[0]):
        return "loop"
    return requested


SMALL_STEP_PIXELS = 32 * 32 * 32  # a training batch up to 32 images of 32x32 counts as small


def training_threads(requested: int | None, batch: int, image_pixels: int, device: torch.device) -> int | None:
    """Threads to use while training. Measured on the shared 2-core CPU (benchmarks/README.md): a
    10-image ConvNet step took 0.3-0.45 s with 1 thread and 0.9-3.7 s with 2 (OpenMP threads wait
    on each other when the cores are busy), and a tiny test evaluation 0.8 s vs 24 s; big batches
    gain little either way. So 'auto' (-1) uses 1 thread for small batches on CPU."""
    if device.type != "cpu" or requested is None:
        return None
    if requested == -1:
        return 1 if batch * image_pixels <= SMALL_STEP_PIXELS else None
    return max(1, int(requested))


def train_group(build: Callable[[], nn.Module], seeds: list[int], images: torch.Tensor, labels: torch.Tensor,
                cfg: ResolvedConfig, device: torch.device, num_classes: int,
                progress: ProgressFn | None = None, should_stop: StopFn | None = None,
                stage: str = "train") -> TrainOutcome:
    """Train len(seeds) networks from scratch on (images, labels) with the resolved protocol."""
    threads = training_threads(cfg.train_threads, min(cfg.batch_size, images.shape[0]),
                               images.shape[-1] * images.shape[-2], device)
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _train_group(build, seeds, images, labels, cfg, device, num_classes, progress, should_stop, stage)
    finally:
        torch.set_num_threads(previous)


def _train_group(build: Callable[[], nn.Module], seeds: list[int], images: torch.Tensor, labels: torch.Tensor,
                 cfg: ResolvedConfig, device: torch.device, num_classes: int,
                 progress: ProgressFn | None, should_stop: StopFn | None, stage: str) -> TrainOutcome:
    start = time.perf_counter()
    nets = [build_seeded(build, s, device) for s in seeds]
    group = NetworkGroup(nets, choose_mode(cfg.batch_seeds, nets, device))
    gens = [torch.Generator().manual_seed(int(s) * 7_919 + 17) for s in seeds]
    images = images.to(device)
    targets = prepare_targets(labels.to(device), num_classes, cfg.soft_label_loss)
    n, k = images.shape[0], len(seeds)
    bs = min(cfg.batch_size, n)
    lr = cfg.lr

    def make_opt() -> torch.optim.Optimizer:
        if cfg.optimizer == "adam":
            return torch.optim.Adam(group.parameters(), lr=lr, weight_decay=cfg.weight_decay)
        return torch.optim.SGD(group.parameters(), lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)

    opt = make_opt()
    keep_every = max(1, cfg.passes // max(1, cfg.curve_points))
    curves: dict[str, list] = {"epoch": [], "lr": [], **{f"loss_{s}": [] for s in seeds},
                               **{f"train_acc_{s}": [] for s in seeds}}
    batches = (n + bs - 1) // bs
    total_steps = cfg.passes * batches
    report_every = max(1, total_steps // 100)
    step = 0
    group.train(True)
    for ep in range(cfg.passes):
        perms = [torch.randperm(n, generator=g).to(device) for g in gens]
        loss_sum = torch.zeros(k, device=device)
        correct = torch.zeros(k, device=device)
        for b0 in range(0, n, bs):
            if should_stop is not None and should_stop():  # per step: a whole-data pass can take minutes
                raise EvaluationCancelled(f"evaluation cancelled during training, pass {ep + 1} of {cfg.passes}")
            if cfg.optimizer == "adam":
                lr = warmup_cosine_lr(cfg.lr, step, total_steps, cfg.warmup_steps, cfg.final_lr_fraction)
                for param_group in opt.param_groups:
                    param_group["lr"] = lr
            idxs = [p[b0:b0 + bs] for p in perms]
            xs = [_augment(images[ix], cfg, g) for ix, g in zip(idxs, gens)]
            ys = [targets[ix] for ix in idxs]
            opt.zero_grad(set_to_none=True)
            logits, losses = forward_backward(group, xs, ys, cfg.soft_label_loss)
            opt.step()
            with torch.no_grad():
                m = len(idxs[0])
                loss_sum += losses.detach() * m
                correct += torch.stack([(lg.argmax(1) == (y if y.ndim == 1 else y.argmax(1))).sum()
                                        for lg, y in zip(logits, ys)])
            step += 1
            if progress is not None and (step % report_every == 0 or step == total_steps):
                progress({"stage": stage, "pass": ep + 1, "passes": cfg.passes, "fraction": step / total_steps,
                          "seeds": list(seeds), "loss": float(losses.detach().mean()),
                          "elapsed_s": time.perf_counter() - start})
        if ep == cfg.lr_decay_epoch:
            lr *= cfg.lr_decay_factor
            opt = make_opt()  # the reference builds a new SGD: momentum restarts
        if ep % keep_every == 0 or ep == cfg.passes - 1:
            loss_ep = (loss_sum / n).tolist()
            acc_ep = (100.0 * correct / n).tolist()  # percent, as every accuracy
            curves["epoch"].append(ep)
            curves["lr"].append(lr)
            for s, lv, av in zip(seeds, loss_ep, acc_ep):
                curves[f"loss_{s}"].append(round(float(lv), 5))
                curves[f"train_acc_{s}"].append(round(float(av), 3))
    group.train(False)
    return TrainOutcome(group, curves, time.perf_counter() - start)


def warmup_cosine_lr(base: float, step: int, total: int, warmup: int, final_fraction: float) -> float:
    """FRePo's evaluation schedule (script/eval.py): linear from 0 over the warm-up (at most half the steps), then
    cosine from `base` down to `final_fraction` x base at the last step."""
    warmup = min(warmup, total // 2)
    if step < warmup:
        return base * step / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def forward_backward(group: NetworkGroup, xs: list[torch.Tensor], ys: list[torch.Tensor],
                      soft_loss: str) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Backpropagate the sum of the K networks' mean losses; return the logits and the K losses (detached).

    In turn ('loop'), each network goes through models/fast_cpu.chunked_backward: on a CPU in chunks of
    32 with the fast kernels (a 100-image ConvNet step 704 -> 428 ms), elsewhere in one piece."""
    if group.mode != "loop":
        logits = group.forward_each(xs)
        losses = torch.stack([loss_fn(lg, y, soft_loss) for lg, y in zip(logits, ys)])
        losses.sum().backward()
        return [lg.detach() for lg in logits], losses.detach()
    outs, losses = [], []
    for net, x, y in zip(group.nets, xs, ys):
        done = chunked_backward(net, x, y, lambda logits, t: loss_fn(logits, t, soft_loss))
        outs.append(done.logits)
        losses.append(done.loss)
    return outs, torch.stack(losses)


@torch.no_grad()
def predict(group: NetworkGroup, images: torch.Tensor, chunk: int = 500,
            should_stop: StopFn | None = None) -> torch.Tensor:
    """Predicted classes (K, N) of every network on (normalised, on-device) images, in large no-grad
    chunks. Always network by network: for inference, batched weights (a grouped convolution under
    vmap) measured 2x slower on CPU than K ordinary calls with large batches."""
    group.train(False)
    out = []
    for k in range(len(group.nets)):
        net = group.module(k).eval()
        preds = []
        for i in range(0, images.shape[0], chunk):
            if should_stop is not None and should_stop():
                raise EvaluationCancelled("evaluation cancelled while testing")
            preds.append(fast_logits(net, images[i:i + chunk]).argmax(-1))  # = net(x), faster on a CPU
        out.append(torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long, device=images.device))
    return torch.stack(out)


def confusion_matrix(pred: torch.Tensor, true: torch.Tensor, num_classes: int) -> torch.Tensor:
    idx = true.long() * num_classes + pred.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)
