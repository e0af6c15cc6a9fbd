"""Distilled data as a proxy for architecture search: does training on a small set rank architectures as
training on the whole data does?

As in the DC paper's NAS experiment (Zhao et al., ICLR 2021, §4; 720 ConvNets varying depth, width,
activation, normalisation and pooling, Spearman correlation of proxy and whole-data accuracies over the
top architectures): a grid of ConvNet variants (the models registry's ConvNet options) is trained briefly
on each proxy (a stored synthetic set, a random real subset of the same size, a coreset) and on the whole
data; the rank correlation of the two accuracy vectors, over all architectures and over the top-k by
whole-data accuracy, says how good a proxy is. DC-Bench (Cui et al., NeurIPS 2022 Datasets & Benchmarks)
found near-zero or negative correlations on NAS-Bench-201, so the intervals matter: they are bootstrap
intervals over the architectures.

Everything accuracy-like is in percent. The tasks layer (ddcore/tasks/nas.py) stores the results.
"""
from __future__ import annotations

import itertools
import numbers
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .data import LoadedDataset
from .evaluation.api import evaluate
from .evaluation.protocol import EvalConfig
from .evaluation.result import EvaluationCancelled
from .models.layers import ACTIVATIONS, NORMS, POOLINGS

StopFn = Callable[[], bool]


class Stopped(RuntimeError):
    """The study was told to stop; nothing of it is kept."""


# ---------------------------------------------------------------------------------------------- the grid
@dataclass(frozen=True)
class Architecture:
    """One ConvNet variant of the grid (ddcore.models ConvNet options)."""

    width: int
    depth: int
    norm: str
    activation: str
    pooling: str

    @property
    def name(self) -> str:
        return f"ConvNet-W{self.width}-D{self.depth}-{self.norm}-{self.activation}-{self.pooling}"

    def kwargs(self) -> dict[str, Any]:
        return asdict(self)


MAX_NAS_DEPTH = 16  # ConvNet blocks; with pooling, 32-pixel images are one pixel after five


@dataclass(frozen=True)
class Grid:
    """The product of the option values, enumerated in a fixed order (width, depth, norm, activation, pooling)."""

    widths: tuple[int, ...] = (32, 64)
    depths: tuple[int, ...] = (2, 3)
    norms: tuple[str, ...] = ("instancenorm", "batchnorm", "none")
    activations: tuple[str, ...] = ("relu",)
    poolings: tuple[str, ...] = ("avgpooling",)

    def __post_init__(self) -> None:
        for name, values, allowed in (("norms", self.norms, NORMS), ("activations", self.activations, ACTIVATIONS),
                                      ("poolings", self.poolings, POOLINGS)):
            bad = [v for v in values if v not in allowed]
            if bad:
                raise ValueError(f"unknown {name[:-1]} {', '.join(map(str, bad))}; choose from {', '.join(allowed)}")
        from .models.registry import MAX_WIDTH

        for name, values, top in (("widths", self.widths, MAX_WIDTH), ("depths", self.depths, MAX_NAS_DEPTH)):
            if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 1 <= v <= top for v in values):
                raise ValueError(f"{name} must be whole numbers from 1 to {top}, not {list(values)}")
        for name in ("widths", "depths", "norms", "activations", "poolings"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"the grid needs at least one value of {name}")
            if len(set(values)) != len(values):
                raise ValueError(f"{name} lists a value twice: {list(values)}")

    def architectures(self) -> list[Architecture]:
        return [Architecture(int(w), int(d), n, a, p) for w, d, n, a, p in
                itertools.product(self.widths, self.depths, self.norms, self.activations, self.poolings)]

    def __len__(self) -> int:
        return len(self.widths) * len(self.depths) * len(self.norms) * len(self.activations) * len(self.poolings)

    def to_dict(self) -> dict[str, list]:
        return {k: list(v) for k, v in asdict(self).items()}


GRIDS: dict[str, Grid] = {
    # 12 variants that a 2-core CPU trains in minutes (widths up to 64): width x depth x normalisation.
    "quick": Grid(),
    # Wider: widths up to 128, depths 1-3, two normalisations and two activations: 36 variants.
    "factors": Grid(widths=(32, 64, 128), depths=(1, 2, 3), norms=("instancenorm", "batchnorm"),
                    activations=("relu", "sigmoid"), poolings=("avgpooling",)),
    # The DC paper's search space: depth 1-4, width 32-256, 3 activations, 5 normalisations, 3 poolings = 720.
    "dc720": Grid(widths=(32, 64, 128, 256), depths=(1, 2, 3, 4), norms=("none", "batchnorm", "layernorm", "instancenorm", "groupnorm"),
                  activations=("sigmoid", "relu", "leakyrelu"), poolings=("none", "maxpooling", "avgpooling")),
}


# ---------------------------------------------------------------------------------------------- budgets
@dataclass(frozen=True)
class Budget:
    """How briefly each architecture is trained: on a proxy, and on the whole data (the reference ranking)."""

    name: str
    proxy: EvalConfig  # training on a proxy set (the same for every proxy: no augmentation, so none is favoured)
    whole_epochs: int
    whole_per_class: int | None  # training images per class of the 'whole data' (None: all of them)
    seeds: int  # networks per architecture and training set
    test_limit: int | None
    note: str = ""

    def whole_config(self) -> EvalConfig:
        return EvalConfig(name=f"nas-whole-{self.name}", epochs=self.whole_epochs, extra_final_epoch=False,
                          augmentation="none", num_seeds=self.seeds, test_limit=self.test_limit)


BUDGETS: dict[str, Budget] = {
    # Measured on the shared 2-core CPU (benchmarks/results/nas.md): 100 passes over a 100-image MNIST set take
    # 3-12 s per architecture of the quick grid; 3 epochs over 1,000 images per class 10-30 s.
    "quick": Budget("quick", EvalConfig(name="nas-proxy-quick", epochs=100, extra_final_epoch=False, augmentation="none",
                                        num_seeds=1, test_limit=2000),
                    whole_epochs=3, whole_per_class=1000, seeds=1, test_limit=2000,
                    note="proxy: 100 passes without augmentation; whole data: 3 epochs over 1,000 images per class; "
                         "1 network each; 2,000 test images"),
    # The DC paper trains each architecture on the proxy and on the real data (its exact schedule is not in our
    # references): here the evaluation protocol's 300 epochs on the proxy and 50 epochs on every training image.
    "paper": Budget("paper", EvalConfig(name="nas-proxy-paper", epochs=300, augmentation="none", num_seeds=1),
                    whole_epochs=50, whole_per_class=None, seeds=1, test_limit=None,
                    note="proxy: 300 epochs; whole data: 50 epochs over every training image; full test set"),
    "tiny": Budget("tiny", EvalConfig(name="nas-proxy-tiny", epochs=3, extra_final_epoch=False, augmentation="none",
                                      num_seeds=1, test_limit=300),
                   whole_epochs=1, whole_per_class=30, seeds=1, test_limit=300,
                   note="for tests and a first look: a smoke test, not a measurement"),
}


def get_budget(name: str) -> Budget:
    if name not in BUDGETS:
        raise ValueError(f"Unknown architecture-search budget '{name}'. Choose one of: {', '.join(BUDGETS)}")
    return BUDGETS[name]


# ---------------------------------------------------------------------------------------------- training
@dataclass(frozen=True)
class Trained:
    accuracy: float  # percent, mean over the networks
    seconds: float  # training time (testing excluded)


def train_architecture(images: torch.Tensor, labels: torch.Tensor, data: LoadedDataset, arch: Architecture,
                       config: EvalConfig, seeds: int, device: str, progress: Callable[[float], None] | None = None,
                       should_stop: StopFn | None = None) -> Trained:
    """Fresh networks of one architecture trained on (images, labels), tested on the dataset's test set."""

    def report(d: dict) -> None:
        if progress is not None and isinstance(d.get("fraction"), (int, float)):
            progress(float(d["fraction"]))

    try:
        result = evaluate((images, labels), "convnet", config, seeds=seeds, device=device, progress=report,
                          should_stop=should_stop, dataset=data.info.name, method="nas-proxy",
                          model_kwargs=arch.kwargs(), test_data=data)
    except EvaluationCancelled as e:
        raise Stopped(str(e)) from e
    return Trained(float(result.mean), float(result.train_time_s))


def whole_training_set(data: LoadedDataset, per_class: int | None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The 'whole data' of a budget: every training image, or a seeded class-balanced subset."""
    split = data.train
    if per_class is None:
        return data.normalize(split.images), split.labels.clone()
    g = torch.Generator().manual_seed(int(seed))
    idx = torch.cat([split.sample_class(c, min(int(per_class), n), g) for c, n in enumerate(split.class_counts())])
    return data.normalize(split.images[idx]), split.labels[idx]


# ---------------------------------------------------------------------------------------------- rank correlation
def _statistic(kind: str, a: np.ndarray, b: np.ndarray) -> float:
    from scipy import stats

    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")  # a constant vector has no ranking
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "spearman":
            return float(stats.spearmanr(a, b).statistic)
        if kind == "kendall":
            return float(stats.kendalltau(a, b).statistic)  # tau-b: ties (a bootstrap repeats values) counted
    raise ValueError(f"kind must be 'spearman' or 'kendall', not {kind!r}")


def _row_statistics(kind: str, a: np.ndarray, b: np.ndarray, chunk_cells: int = 4_000_000) -> np.ndarray:
    """`_statistic` of every row pair of two (rows, n) arrays at once, NaN where a row is constant. A bootstrap of
    1000 resamples called scipy 1000 times per statistic and subset: 7.6 s of a 46 s tiny study on a 2-core CPU.
    Spearman is Pearson's r of average ranks; Kendall's tau-b is sum(sa * sb) / sqrt(sum(sa^2) * sum(sb^2)) over
    the pairs i < j, with sa = sign(a_i - a_j) (a tied pair adds 0 to all three sums)."""
    from scipy import stats

    rows, n = a.shape
    if n < 2:
        return np.full(rows, np.nan)
    if kind == "spearman":
        ra, rb = stats.rankdata(a, axis=1), stats.rankdata(b, axis=1)
        ra, rb = ra - ra.mean(1, keepdims=True), rb - rb.mean(1, keepdims=True)
        num, den = (ra * rb).sum(1), np.sqrt((ra * ra).sum(1) * (rb * rb).sum(1))
    elif kind == "kendall":
        i, j = np.triu_indices(n, 1)
        num, sa2, sb2 = np.empty(rows), np.empty(rows), np.empty(rows)
        step = max(1, chunk_cells // len(i))  # rows at a time, so a large grid's pairs stay within memory
        for lo in range(0, rows, step):
            sa, sb = np.sign(a[lo:lo + step, i] - a[lo:lo + step, j]), np.sign(b[lo:lo + step, i] - b[lo:lo + step, j])
            num[lo:lo + step], sa2[lo:lo + step], sb2[lo:lo + step] = (sa * sb).sum(1), (sa * sa).sum(1), (sb * sb).sum(1)
        den = np.sqrt(sa2 * sb2)
    else:
        raise ValueError(f"kind must be 'spearman' or 'kendall', not {kind!r}")
    out = np.full(rows, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return np.clip(out, -1.0, 1.0)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when either vector is constant."""
    return _statistic("spearman", np.asarray(a, float), np.asarray(b, float))


def kendall(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b; NaN when either vector is constant."""
    return _statistic("kendall", np.asarray(a, float), np.asarray(b, float))


def bootstrap_interval(a: Sequence[float], b: Sequence[float], kind: str, reps: int = 1000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval over the architectures (pairs resampled with replacement); resamples whose
    ranking is undefined (a constant vector) are left out. NaNs when fewer than 3 architectures."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or reps < 1:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(a), size=(reps, len(a)))
    values = _row_statistics(kind, a[rows], b[rows])
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Correlation:
    """Proxy against whole-data accuracy over a subset of the architectures ('all' or the top k on whole data)."""

    proxy: str
    subset: str
    n: int
    spearman: float
    spearman_low: float
    spearman_high: float
    kendall: float
    kendall_low: float
    kendall_high: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def correlations(proxy: str, proxy_acc: Sequence[float], whole_acc: Sequence[float], top_ks: Sequence[int] = (5, 10),
                 reps: int = 1000, seed: int = 0) -> list[Correlation]:
    """Over all architectures, then over the top k by whole-data accuracy (each k smaller than the grid)."""
    p, w = np.asarray(proxy_acc, float), np.asarray(whole_acc, float)
    order = np.argsort(-w, kind="stable")
    subsets = [("all", np.arange(len(w)))] + [(f"top {k}", order[:k]) for k in sorted(set(int(k) for k in top_ks))
                                              if 2 < k < len(w)]
    out = []
    for name, idx in subsets:
        a, b = p[idx], w[idx]
        s_lo, s_hi = bootstrap_interval(a, b, "spearman", reps, seed=seed)
        k_lo, k_hi = bootstrap_interval(a, b, "kendall", reps, seed=seed)
        out.append(Correlation(proxy, name, len(idx), spearman(a, b), s_lo, s_hi, kendall(a, b), k_lo, k_hi))
    return out


# ---------------------------------------------------------------------------------------------- results
@dataclass
class WholeResult:
    """Whole-data accuracies of a grid under a budget: the reference ranking every study of them reuses."""

    dataset: str
    budget: str
    grid: dict[str, list]
    architectures: list[str]
    accuracy: np.ndarray  # (A,) percent
    seconds: np.ndarray  # (A,) training seconds
    images: int  # training images per architecture
    config: dict[str, Any] = field(default_factory=dict)
    device: str = ""
    created: float = field(default_factory=time.time)
    key: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("accuracy", "seconds", "key")}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"accuracy": self.accuracy, "seconds": self.seconds}

    @classmethod
    def from_stored(cls, data: dict[str, Any], arrays: dict[str, np.ndarray], record: Any) -> "WholeResult":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known}, accuracy=arrays["accuracy"],
                   seconds=arrays["seconds"], key=getattr(record, "key", ""))


@dataclass
class NasResult:
    """One study: every proxy on every architecture, the whole-data ranking, and the correlations."""

    dataset: str
    ipc: int
    budget: str
    grid: dict[str, list]
    architectures: list[str]
    proxies: list[str]  # labels, e.g. 'DM (run 1a2b, IPC 10)' or 'random real (IPC 10)'
    proxy_specs: list[str]  # what the spec named ('run:<id>', 'random', 'herding')
    proxy_images: list[int]
    proxy_make_seconds: list[float]  # what making each proxy cost (distillation or selection), where known
    whole_accuracy: np.ndarray  # (A,)
    whole_seconds: np.ndarray  # (A,)
    proxy_accuracy: np.ndarray  # (P, A)
    proxy_seconds: np.ndarray  # (P, A)
    correlations: list[dict[str, Any]]
    whole_images: int = 0
    whole_key: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    device: str = ""
    bootstrap: int = 1000
    versions: dict[str, str] = field(default_factory=dict)
    wall_time_s: float = 0.0
    notes: str = ""
    created: float = field(default_factory=time.time)
    key: str = ""

    ARRAYS = ("whole_accuracy", "whole_seconds", "proxy_accuracy", "proxy_seconds")

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in self.ARRAYS and k != "key"}

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in self.ARRAYS}

    @classmethod
    def from_stored(cls, data: dict[str, Any], arrays: dict[str, np.ndarray], record: Any) -> "NasResult":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known}, **{k: arrays[k] for k in cls.ARRAYS},
                   key=getattr(record, "key", ""))

    def correlation(self, proxy: str, subset: str = "all") -> dict[str, Any] | None:
        return next((c for c in self.correlations if c["proxy"] == proxy and c["subset"] == subset), None)

    def time_saved(self, p: int) -> float:
        """Whole-data training time over this proxy's (training only), summed over the grid."""
        spent = float(self.proxy_seconds[p].sum())
        return float(self.whole_seconds.sum()) / spent if spent > 0 else float("nan")


def estimate_seconds(grid: Grid, proxies: int, budget: Budget, dataset: str, whole_stored: bool) -> float:
    """A rough cost on this machine's CPU: per architecture, measured on the quick grid and budget (MNIST; CIFAR-10 ~1.5x),
    scaled by width (the convolutions grow with its square) and by the budget's passes."""
    base = 1.5 if dataset.startswith("cifar") else 1.0
    per_arch = [base * (a.width / 48) ** 2 * (a.depth / 2.5) for a in grid.architectures()]
    proxy = sum(6.0 * f for f in per_arch) * budget.proxy.epochs / 100 * budget.seeds
    images = 1000 * 10 if budget.whole_per_class is None else budget.whole_per_class * 10
    whole = 0.0 if whole_stored else sum(15.0 * f for f in per_arch) * budget.whole_epochs / 3 * images / 10_000 * budget.seeds
    if budget.whole_per_class is None:
        whole *= 6  # every image of MNIST/CIFAR-10: ~6x the 10,000 of the quick budget
    return proxies * proxy + whole
