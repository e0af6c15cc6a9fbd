"""The 2-D playground's engine: a registered method distilling points in the plane, and two small networks whose
decision boundaries show what the synthetic points teach.

Why it steps in the caller's thread rather than as a job: one step is a few milliseconds (an MLP on a few
hundred points), a view needs ten of them a second, and each browser session plays its own; a job would
queue a student's toy behind someone's hour-long run on the one job slot and add a snapshot's round trip to
every frame. The work per call is bounded (`advance` stops after `budget_s`), so the caller stays responsive.

The data and the method go through the normal contracts (ddcore.data.points registers the toys as datasets,
ddcore.methods.create_method builds the method on the MLP), so there is no second engine for toys.

    pg = Playground(PlaygroundSpec(dataset="points-moons", method="dm", ipc=5))
    pg.advance(budget_s=0.05)      # some distillation steps, then the boundary network catches up
    frame = pg.frame()             # points in plane coordinates, class probabilities on a grid, accuracies
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import load_dataset, point_datasets
from .data.points import EXTENT
from .methods import create_method, make_config, method_class
from .methods.base import Requirement

# Per method, what changes on points (the quick preset, then these): augmentations made for images are off (a
# 1×1 "image" has nothing to crop or rotate), real batches fit a toy's few hundred points per class, and the
# run never ends by itself (the playground plays until paused). Each lr default was tried on the four toys
# (tests/test_playground.py checks that each method beats its own starting points on the moons).
METHOD_OVERRIDES: dict[str, dict[str, Any]] = {
    "dm": {"dsa": False, "batch_real": 128, "lr_img": 0.5},
    "dc": {"dsa": False, "batch_real": 64, "lr_img": 0.05},
    "dd": {"lr_img": 0.05},
    "frepo": {"norm": "", "lr_img": 0.01},
    "mtt": {"dsa_strategy": "none", "lr_img": 1.0, "expert_per_class": None, "num_experts": 3, "expert_train_epochs": 8},
}
PLAYGROUND_METHODS = tuple(METHOD_OVERRIDES)
DEFAULT_LR = {m: float(o["lr_img"]) for m, o in METHOD_OVERRIDES.items()}
ENDLESS = 1_000_000  # iterations (the most a setting allows): the playground never finishes by itself
GRID = 72  # boundary resolution (cells per side)
HIDDEN = 32
BOUNDARY_LR = 0.01
FULL_STEPS = 400  # the all-points network, trained once per dataset and seed
MAX_IPC = 50
ARCHITECTURE = "mlp"  # the method's networks: the three-layer perceptron takes a point as it is


@dataclass(frozen=True)
class PlaygroundSpec:
    """What the page's URL holds: a link reproduces the view."""

    dataset: str = "points-moons"
    method: str = "dm"
    ipc: int = 5  # synthetic points per class
    lr: float | None = None  # the method's image learning rate (None: METHOD_OVERRIDES)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.dataset not in point_datasets():
            raise ValueError(f"the playground takes {', '.join(point_datasets())}, not {self.dataset!r}")
        if self.method not in PLAYGROUND_METHODS:
            raise ValueError(f"the playground runs {', '.join(PLAYGROUND_METHODS)}, not {self.method!r}")
        if not 1 <= int(self.ipc) <= MAX_IPC:
            raise ValueError(f"points per class must be between 1 and {MAX_IPC}, not {self.ipc}")
        if self.lr is not None and not (0 < float(self.lr) <= 1e4):
            raise ValueError(f"the learning rate must be above 0 and at most 10,000, not {self.lr}")


@dataclass(frozen=True)
class PlaygroundFrame:
    """One view: everything in plane coordinates ([-extent, extent]²), probabilities as GRID×GRID×classes."""

    iteration: int
    loss: float | None
    synthetic_xy: np.ndarray  # N×2
    synthetic_labels: np.ndarray  # N (hard labels)
    real_xy: np.ndarray
    real_labels: np.ndarray
    synthetic_probs: np.ndarray
    full_probs: np.ndarray
    synthetic_accuracy: float  # percent on the test points
    full_accuracy: float
    extent: float = EXTENT
    losses: tuple[float, ...] = field(default=())


@contextlib.contextmanager
def one_thread():
    """Torch on one thread while the playground computes: its tensors are a few hundred points, where a second
    thread costs more in synchronisation than it saves, and on a busy machine (a job on the other core) an
    OpenMP team waiting for its descheduled member made the all-points fit take 6 s instead of 0.4 s. (The
    setting is per thread for threads that set their own, as every job does, so a running job keeps its own.)"""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def boundary_net(num_classes: int, generator: torch.Generator) -> nn.Module:
    """The small classifier whose boundary is drawn: 2 → 32 → 32 → classes, ReLU."""
    net = nn.Sequential(nn.Linear(2, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
                        nn.Linear(HIDDEN, num_classes))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * (0.5 if p.ndim == 1 else (1 / p.shape[1]) ** 0.5))
    return net


def _fit(net: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, steps: int,
         soft_mse: bool) -> None:
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        out = net(x)
        if y.ndim == 1:
            loss = F.cross_entropy(out, y)
        elif soft_mse:  # learned regression targets (FRePo), trained as the paper evaluates them
            loss = F.mse_loss(out, y)
        else:
            loss = F.cross_entropy(out, y.softmax(1))
        loss.backward()
        opt.step()


def _method_config(spec: PlaygroundSpec) -> tuple[type, Any]:
    overrides = dict(METHOD_OVERRIDES[spec.method])
    if spec.lr is not None:
        overrides["lr_img"] = float(spec.lr)
    overrides.update(iterations=ENDLESS, init="noise")
    info = load_dataset(spec.dataset).info
    return method_class(spec.method), make_config(spec.method, info, spec.ipc, "quick", **overrides)


def requirements(spec: PlaygroundSpec) -> tuple[Requirement, ...]:
    """The artefacts the spec's method needs on the points (MTT: expert trajectories of the MLP)."""
    cls, config = _method_config(spec)
    return tuple(cls.requires(load_dataset(spec.dataset).info, spec.ipc, config, ARCHITECTURE))


class Playground:
    """One session's playground: the method, the boundary networks and the points, all on the CPU."""

    def __init__(self, spec: PlaygroundSpec, artefacts: dict[str, Any] | None = None) -> None:
        """`artefacts`: what `requirements(spec)` names, resolved by the caller (the Studio keeps MTT's experts on
        the points in its store: seconds to make, once)."""
        with one_thread():
            self._build(spec, artefacts)

    def _build(self, spec: PlaygroundSpec, artefacts: dict[str, Any] | None) -> None:
        self.spec = spec
        self.data = load_dataset(spec.dataset)
        self.info = self.data.info
        cls, config = _method_config(spec)
        self.method = create_method(spec.method, self.data, spec.ipc, config, seed=spec.seed, device="cpu",
                                    architecture=ARCHITECTURE, artefacts=artefacts)
        self._soft_mse = cls.eval_soft_label_loss == "mse"
        g = torch.Generator().manual_seed(spec.seed)
        self._net = boundary_net(self.info.num_classes, g)
        self._opt = torch.optim.Adam(self._net.parameters(), lr=BOUNDARY_LR)
        self._test_x, self._test_y = self.data.normalized_split("test")
        self._test_x = self._test_x.flatten(1)
        self._grid = self._grid_points()
        self._full_probs, self._full_accuracy = _full_boundary(spec.dataset, spec.seed, self._grid)
        self.losses: list[float] = []
        self._fit_synthetic(60)  # the starting points already have a boundary to show

    # ------------------------------------------------------------------ stepping
    def step(self) -> dict[str, float]:
        """One iteration of the method, then the boundary network follows the moved points."""
        with one_thread():
            return self._step()

    def _step(self) -> dict[str, float]:
        metrics = self.method.step()
        if "loss" in metrics:
            self.losses.append(float(metrics["loss"]))
            del self.losses[:-300]
        self._fit_synthetic(10)
        return metrics

    def advance(self, budget_s: float = 0.05, max_steps: int = 50) -> int:
        """Steps until `budget_s` has passed (at least one); returns how many ran."""
        start, n = time.perf_counter(), 0
        with one_thread():
            while n < max_steps and (n == 0 or time.perf_counter() - start < budget_s):
                self._step()
                n += 1
        return n

    @property
    def iteration(self) -> int:
        return self.method.iteration

    # ------------------------------------------------------------------ the boundary networks
    def _grid_points(self) -> torch.Tensor:
        """GRID×GRID cell centres of the plane, in the normalised coordinates the networks take."""
        ticks = (np.arange(GRID) + 0.5) / GRID
        yy, xx = np.meshgrid(ticks[::-1], ticks, indexing="ij")  # row 0 is the top (largest y)
        unit = torch.tensor(np.stack([xx, yy], -1).reshape(-1, 2), dtype=torch.float32)
        mean, std = torch.tensor(self.info.mean), torch.tensor(self.info.std)
        return (unit - mean) / std

    def _synthetic_targets(self) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.method.synthetic()
        return s.images.flatten(1).float(), s.labels

    def _fit_synthetic(self, steps: int) -> None:
        x, y = self._synthetic_targets()
        _fit(self._net, self._opt, x, y, steps, self._soft_mse)

    # ------------------------------------------------------------------ the view
    def _to_plane(self, normalised: torch.Tensor) -> np.ndarray:
        mean, std = np.array(self.info.mean), np.array(self.info.std)
        unit = normalised.detach().numpy().reshape(-1, 2) * std + mean
        return unit * (2 * EXTENT) - EXTENT

    def frame(self) -> PlaygroundFrame:
        s = self.method.synthetic()
        with torch.no_grad(), one_thread():
            probs = self._net(self._grid).softmax(1).numpy().reshape(GRID, GRID, -1)
            accuracy = float((self._net(self._test_x).argmax(1) == self._test_y).float().mean()) * 100
        real = self.data.train
        real_xy = real.images.float().numpy().reshape(-1, 2) / 255.0 * (2 * EXTENT) - EXTENT
        return PlaygroundFrame(iteration=self.iteration, loss=self.losses[-1] if self.losses else None,
                               synthetic_xy=self._to_plane(s.images), synthetic_labels=s.hard_labels().numpy(),
                               real_xy=real_xy, real_labels=real.labels.numpy(), synthetic_probs=probs,
                               full_probs=self._full_probs, synthetic_accuracy=accuracy,
                               full_accuracy=self._full_accuracy, losses=tuple(self.losses))


_FULL_CACHE: dict[tuple[str, int], tuple[np.ndarray, float]] = {}
FULL_CACHE_SIZE = 32


def _full_boundary(dataset: str, seed: int, grid: torch.Tensor) -> tuple[np.ndarray, float]:
    """The same small network trained on every training point (once per dataset and seed, then cached)."""
    key = (dataset, seed)
    if key not in _FULL_CACHE:
        data = load_dataset(dataset)
        x, y = data.normalized_split("train")
        tx, ty = data.normalized_split("test")
        net = boundary_net(data.info.num_classes, torch.Generator().manual_seed(seed))
        _fit(net, torch.optim.Adam(net.parameters(), lr=BOUNDARY_LR), x.flatten(1), y, FULL_STEPS, False)
        with torch.no_grad():
            probs = net(grid).softmax(1).numpy().reshape(GRID, GRID, -1)
            accuracy = float((net(tx.flatten(1)).argmax(1) == ty).float().mean()) * 100
        while len(_FULL_CACHE) >= FULL_CACHE_SIZE:  # seeds come from URLs: keep the newest few
            _FULL_CACHE.pop(next(iter(_FULL_CACHE)))
        _FULL_CACHE[key] = (probs, accuracy)
    return _FULL_CACHE[key]
