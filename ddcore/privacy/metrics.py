"""How well a membership score separates members from non-members: ROC, AUC, TPR at a low FPR and the
membership advantage, each with a bootstrap interval.

Why TPR at a low FPR: LiRA (Carlini et al., "Membership Inference Attacks From First Principles", S&P 2022,
arXiv 2112.03570) argues an attack matters when it identifies *some* members with confidence, which an
average like AUC or accuracy hides; they report TPR at 0.1% and 1% FPR on log-log ROC curves.
Why intervals: "No Free Lunch in 'Privacy for Free'" (Carlini et al., 2022, arXiv 2209.14987) found the
published gain of dataset condensation was not statistically significant; a reader must see the noise.

Scores: higher means "more likely a member". Every function takes the scores of members and of non-members.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOW_FPRS = (0.001, 0.01)


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, d: dict[str, float]) -> "Interval":
        return cls(float(d["value"]), float(d["low"]), float(d["high"]))


@dataclass(frozen=True)
class AttackMeasures:
    """One attack on one target: point estimates with 95% bootstrap intervals (percentile method)."""

    auc: Interval
    tpr_at_0_1: Interval  # TPR at 0.1% FPR
    tpr_at_1: Interval  # TPR at 1% FPR
    advantage: Interval  # max over thresholds of TPR - FPR (Yeom et al. 2018's membership advantage)
    members: int
    non_members: int

    def to_dict(self) -> dict:
        return {"auc": self.auc.to_dict(), "tpr_at_0_1": self.tpr_at_0_1.to_dict(), "tpr_at_1": self.tpr_at_1.to_dict(),
                "advantage": self.advantage.to_dict(), "members": self.members, "non_members": self.non_members}

    @classmethod
    def from_dict(cls, d: dict) -> "AttackMeasures":
        return cls(Interval.from_dict(d["auc"]), Interval.from_dict(d["tpr_at_0_1"]), Interval.from_dict(d["tpr_at_1"]),
                   Interval.from_dict(d["advantage"]), int(d["members"]), int(d["non_members"]))


def _check(members: np.ndarray, non_members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(members, dtype=np.float64).ravel()
    n = np.asarray(non_members, dtype=np.float64).ravel()
    if m.size == 0 or n.size == 0:
        raise ValueError(f"an attack needs members and non-members to score (got {m.size} and {n.size})")
    if not (np.isfinite(m).all() and np.isfinite(n).all()):
        raise ValueError("membership scores must be finite")
    return m, n


def roc_curve(members: np.ndarray, non_members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) at every distinct threshold, from (0, 0) to (1, 1); ties move both rates at once."""
    m, n = _check(members, non_members)
    scores = np.concatenate([m, n])
    is_member = np.concatenate([np.ones(m.size), np.zeros(n.size)])
    order = np.argsort(-scores, kind="mergesort")
    scores, is_member = scores[order], is_member[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    tp = np.cumsum(is_member)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    return np.r_[0.0, fp / n.size], np.r_[0.0, tp / m.size]


def auc_score(members: np.ndarray, non_members: np.ndarray) -> float:
    """P(score of a random member > score of a random non-member), ties counted half (Mann-Whitney U)."""
    m, n = _check(members, non_members)
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([m, n]))  # ties get their average rank
    return float((ranks[: m.size].sum() - m.size * (m.size + 1) / 2) / (m.size * n.size))


def tpr_at_fpr(members: np.ndarray, non_members: np.ndarray, fpr: float) -> float:
    """The highest TPR of a threshold whose FPR is at most `fpr` (0 if even the strictest threshold
    passes more non-members). With fewer than 1/fpr non-members only FPR 0 qualifies."""
    fprs, tprs = roc_curve(members, non_members)
    ok = fprs <= fpr + 1e-12
    return float(tprs[ok].max()) if ok.any() else 0.0


def advantage(members: np.ndarray, non_members: np.ndarray) -> float:
    fprs, tprs = roc_curve(members, non_members)
    return float((tprs - fprs).max())


def measure(members: np.ndarray, non_members: np.ndarray, bootstrap: int = 200, seed: int = 0,
            level: float = 0.95) -> AttackMeasures:
    """Point estimates and percentile intervals from `bootstrap` resamples of members and non-members (each
    resampled separately, so both counts stay fixed)."""
    m, n = _check(members, non_members)
    rng = np.random.default_rng(seed)
    stats = [_stats(m, n)]
    for _ in range(max(0, int(bootstrap))):
        stats.append(_stats(m[rng.integers(0, m.size, m.size)], n[rng.integers(0, n.size, n.size)]))
    table = np.array(stats)
    lo, hi = np.quantile(table[1:], [(1 - level) / 2, (1 + level) / 2], axis=0) if bootstrap else (table[0], table[0])
    out = [Interval(float(table[0, j]), float(lo[j]), float(hi[j])) for j in range(table.shape[1])]
    return AttackMeasures(out[0], out[1], out[2], out[3], int(m.size), int(n.size))


def _stats(m: np.ndarray, n: np.ndarray) -> list[float]:
    fprs, tprs = roc_curve(m, n)

    def at(f: float) -> float:
        ok = fprs <= f + 1e-12
        return float(tprs[ok].max()) if ok.any() else 0.0

    return [auc_score(m, n), at(LOW_FPRS[0]), at(LOW_FPRS[1]), float((tprs - fprs).max())]


def thin_curve(fpr: np.ndarray, tpr: np.ndarray, points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """At most `points` ROC points, spread evenly in log FPR (what a log-log plot shows), ends kept."""
    if fpr.size <= points:
        return fpr, tpr
    grid = np.unique(np.r_[0.0, np.logspace(np.log10(max(fpr[fpr > 0].min(), 1e-6)), 0, points - 1)])
    idx = np.unique(np.clip(np.searchsorted(fpr, grid, side="right") - 1, 0, fpr.size - 1))
    return fpr[idx], tpr[idx]
