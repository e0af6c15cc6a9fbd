"""The benchmark board: the table the field publishes, built from stored evaluations, with the fair-ranking
scores of DD-Ranking (NUS-HPC-AI-Lab, arXiv 2505.13300).

One row per (dataset, method, IPC): our mean ± std over every network that evaluated the method's current sets
(all its runs pooled), random real images at the same IPC, the whole training set, the published number with its
source, and

* random real **under the same protocol** as the set (DD-Ranking's rule: the same augmentation, epochs and test
  images, whatever preset name stored it), beside random real under the preset's own rule for random sets, so a
  gain that comes from the protocol is not counted as the data's;
* IOR (improvement over random, points) and HLR (hard-label recovery: whole − set, points);
* LRS, the label-robust score: (exp(λ·IOR − (1−λ)·HLR) − e⁻¹) / (e − e⁻¹) with λ = ½;
* ARS, the augmentation-robust score: the same transform of λ·(set − random with augmentation) +
  (1−λ)·(set − random without), where both pairs are stored;

all computed from accuracies as fractions, as the paper defines them (the `ddranking` 0.2.0 package feeds
percentages into the exponent, which returns -0.1565 or overflows), and cross-architecture columns.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from .data.info import variant_label
from .results import ResultRow, published_architecture

LAMBDA = 0.5  # DD-Ranking's default weight of IOR against HLR (and of with- against without-augmentation)


def robust_score(x: float) -> float:
    """DD-Ranking's squashing of a difference of fractions in [-1, 1] onto [0, 1]."""
    return (math.exp(x) - math.exp(-1)) / (math.e - math.exp(-1))


def label_robust_score(synthetic: float, random: float, whole: float, lam: float = LAMBDA) -> float:
    """LRS from three accuracies in percent (hard labels, one protocol)."""
    ior, hlr = (synthetic - random) / 100, (whole - synthetic) / 100
    return robust_score(lam * ior - (1 - lam) * hlr)


def augmentation_robust_score(synthetic_aug: float, random_aug: float, synthetic_plain: float, random_plain: float,
                              lam: float = LAMBDA) -> float:
    """ARS from four accuracies in percent: the set and random real, each with and without augmentation."""
    return robust_score(lam * (synthetic_aug - random_aug) / 100 + (1 - lam) * (synthetic_plain - random_plain) / 100)


@dataclass(frozen=True)
class Cell:
    """Accuracies of several networks pooled: mean ± population std (percent), how many networks and sets."""

    mean: float
    std: float
    networks: int
    sets: int

    @classmethod
    def pool(cls, rows: Sequence[ResultRow]) -> "Cell | None":
        accs = [a for r in rows for a in (r.accuracies or ([r.mean] if r.mean is not None else []))]
        if not accs:
            return None
        mean = sum(accs) / len(accs)
        std = math.sqrt(sum((a - mean) ** 2 for a in accs) / len(accs))
        return cls(mean, std, len(accs), len({r.subject for r in rows}))

    def label(self) -> str:
        return f"{self.mean:.1f} ± {self.std:.1f}"


@dataclass(frozen=True)
class BoardRow:
    dataset: str
    method: str
    ipc: int
    architecture: str
    preset: str
    ours: Cell
    augmentation: str | None  # what the set's networks trained with (dsa | dc | none)
    random_same: Cell | None  # random real trained exactly as the set (DD-Ranking's rule)
    random_preset: Cell | None  # random real under the same preset name (its own augmentation rule)
    whole: Cell | None
    published: Any = None  # ddcore.published.PublishedResult
    cross: dict[str, Cell] = field(default_factory=dict)
    ars: float | None = None
    variant: str | None = None  # 'subset': measured on the embedded subset, a row apart from the full data's

    @property
    def random(self) -> Cell | None:
        """The fair baseline when it is stored, else the preset's."""
        return self.random_same or self.random_preset

    @property
    def sigma_above_random(self) -> float | None:
        base = self.random
        if base is None or base.networks < 2 or base.std <= 0:  # one network: no spread to measure against
            return None
        return (self.ours.mean - base.mean) / base.std

    @property
    def ior(self) -> float | None:
        return None if self.random is None else self.ours.mean - self.random.mean

    @property
    def hlr(self) -> float | None:
        return None if self.whole is None else self.whole.mean - self.ours.mean

    @property
    def lrs(self) -> float | None:
        if self.random is None or self.whole is None:
            return None
        return label_robust_score(self.ours.mean, self.random.mean, self.whole.mean)


def _config(row: ResultRow) -> dict[str, Any]:
    return dict(row.record.get("config") or {}) if row.evaluation is not None else {}


def _protocol(row: ResultRow) -> tuple[Any, ...] | None:
    """What a fair comparison must share: augmentation, epochs, test images, optimiser, the ConvNet's norm and the
    pixel space (ZCA or raw) (None: not recorded; results from before the optimiser was recorded used the DC recipe on
    the network as it is)."""
    c = _config(row)
    if "augmentation" not in c:
        return None
    return (c.get("augmentation"), c.get("epochs"), c.get("test_limit"), c.get("optimizer", "sgd"),
            c.get("convnet_norm", ""), bool((c.get("extra") or {}).get("zca")))


def build_board(rows: Iterable[ResultRow], published: Iterable[Any] = (), *, preset: str = "quick",
                architecture: str = "convnet", cross_architectures: Sequence[str] = (),
                plain_preset: str | None = None) -> list[BoardRow]:
    """The board for one evaluation preset on one architecture. `plain_preset`: a preset of the same sets without
    augmentation (e.g. a custom '...-none' one), for ARS."""
    newest: dict[tuple[str, str, str], ResultRow] = {}  # per set, architecture and preset (latest() mixes presets)
    for r in rows:
        k = (r.subject, r.architecture, r.preset)
        if r.mean is not None and r.current and (k not in newest or r.created >= newest[k].created):
            newest[k] = r
    current = list(newest.values())
    sets = [r for r in current if r.kind == "run" and r.ipc]
    randoms = [r for r in current if r.kind == "random" and r.architecture == architecture]
    wholes = [r for r in current if r.kind == "whole" and r.architecture == architecture]
    pub_rows = list(published)
    groups: dict[tuple[str, str, str, int], list[ResultRow]] = {}
    for r in sets:  # the embedded subset's measurements never pool with the full data's ('' sorts the full first)
        groups.setdefault((r.dataset, r.variant or "", r.method, int(r.ipc or 0)), []).append(r)
    out = []
    for (dataset, variant, method, ipc), members in sorted(groups.items()):
        main = [r for r in members if r.architecture == architecture and r.preset == preset]
        ours = Cell.pool(main)
        if ours is None:
            continue
        protocols = {_protocol(r) for r in main} - {None}
        data_randoms = [r for r in randoms if r.dataset == dataset and (r.variant or "") == variant and r.ipc == ipc]
        same = [r for r in data_randoms if _protocol(r) in protocols] if len(protocols) == 1 else []
        own = [r for r in data_randoms if r.preset == preset and not r.recipe]
        # the whole data under the same protocol too (HLR and LRS compare like with like), else nothing
        whole = [r for r in wholes if r.dataset == dataset and (r.variant or "") == variant
                 and (r.preset == preset or _protocol(r) in protocols)]
        cross = {a: c for a in cross_architectures if a != architecture
                 for c in [Cell.pool([r for r in members if r.architecture == a and r.preset == preset])] if c}
        ars = None
        if plain_preset:
            plain_set = Cell.pool([r for r in members if r.architecture == architecture and r.preset == plain_preset])
            plain_random = Cell.pool([r for r in data_randoms if r.preset == plain_preset and not r.recipe])
            random_aug = Cell.pool(same) or Cell.pool(own)
            if plain_set and plain_random and random_aug:
                ars = augmentation_robust_score(ours.mean, random_aug.mean, plain_set.mean, plain_random.mean)
        pub = [p for p in pub_rows if p.dataset == dataset and p.method == method and p.ipc == ipc
               and p.architecture == published_architecture(architecture)]
        pub.sort(key=lambda p: p.uncertain)  # numbers checked against their paper first
        out.append(BoardRow(dataset, method, ipc, architecture, preset, ours,
                            next(iter(protocols))[0] if len(protocols) == 1 else None,
                            Cell.pool(same), Cell.pool(own), Cell.pool(whole), pub[0] if pub else None, cross, ars,
                            variant or None))
    return out


def board_table(board: Sequence[BoardRow]) -> list[dict[str, Any]]:
    """Plain rows for a table or a CSV (percent, two decimals; scores three)."""
    def r2(x: float | None) -> float | None:
        return None if x is None else round(x, 2)

    out = []
    for b in board:
        row: dict[str, Any] = {
            "dataset": b.dataset + variant_label({"variant": b.variant}), "method": b.method, "ipc": b.ipc, "architecture": b.architecture,
            "preset": b.preset, "augmentation": b.augmentation,
            "ours": b.ours.label(), "ours_mean": r2(b.ours.mean), "ours_std": r2(b.ours.std),
            "networks": b.ours.networks, "sets": b.ours.sets,
            "random_same_protocol": b.random_same.label() if b.random_same else None,
            "random_preset": b.random_preset.label() if b.random_preset else None,
            "whole": b.whole.label() if b.whole else None,
            "sigma_above_random": r2(b.sigma_above_random), "ior": r2(b.ior), "hlr": r2(b.hlr),
            "lrs": None if b.lrs is None else round(b.lrs, 3), "ars": None if b.ars is None else round(b.ars, 3),
            "published": b.published.label() if b.published else None,
            "published_source": f"{b.published.paper} ({b.published.table})" if b.published else None,
        }
        for arch, cell in b.cross.items():
            row[f"on {arch}"] = cell.label()
        out.append(row)
    return out
