"""Stored evaluation results as flat rows, for plots, exports and the published-numbers comparison.

Why: the store keeps one typed record per evaluation (what was measured, how, and the EvalResult);
the Evaluate page needs them as a table (which method, which IPC, trained on which architecture,
evaluated on which) and next to the papers' numbers. Accuracies are percent, as everywhere.

    rows = collect(store, dataset="mnist")          # list[ResultRow], oldest first
    latest(rows)                                    # the newest row per (set, architecture)
    detail(row) -> EvalDetail                       # per-seed, per-class, confusion, curves
    compare_published(rows, published_rows)         # published row + our measurement + difference
    custom_preset(epochs=10, test_limit=500)        # -> 'custom-e10-t500-none', a preset name EvalSpec accepts

A row's `subject` names its set group: ``run:<id>`` (a stored run's set, at `iteration`),
``random:<dataset>:<ipc>`` (random real images, the baseline), ``whole:<dataset>`` (the whole training set).
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from .data.info import variant_label
from .platform.records import EvaluationRecord, RunRecord
from .platform.store import Store

# Our model names -> the published table's architecture ids (None: no paper reports it).
_PUBLISHED_ARCH: dict[str, str] = {
    "convnet": "convnet", "convnetd3": "convnet", "convnetw128": "convnet", "convnetin": "convnet",
    "convnetd4": "convnetd4", "alexnet": "alexnet", "lenet": "lenet",
    # the published 'fc' rows are KIP-FC's finite networks, trained in the kernel's regime: ours is fc_wide, not the
    # zoo's MLP trained with cross-entropy
    "fc_wide": "fc",
    # KRR with the ConvNet kernel: the published KRR rows (KIP-ConvNet's, RFAD's) are that measure
    "convnet_krr": "convnet_krr",
}


def published_architecture(architecture: str | None) -> str | None:
    """The published table's architecture id for one of our model names, or None."""
    return _PUBLISHED_ARCH.get((architecture or "").lower())


def family_of(method: str) -> str:
    """A method id's family: the registered method class's `family`, else the published-only methods
    table's (ddcore/resources/published_methods.csv), else 'other'."""
    from .methods import describe_method

    info = describe_method(method)
    return (info.family or "other") if info is not None else "other"


def families() -> list[str]:
    """Every family name, in the order of `ddcore.methods.known_methods()` (for filters)."""
    from .methods import known_methods

    return list(dict.fromkeys(family_of(m) for m in known_methods()))


@dataclass
class ResultRow:
    """One stored evaluation, flattened. Accuracies are percent."""

    key: str
    subject: str
    kind: str  # "run" | "random" | "whole"
    label: str  # what the set is, for legends and table rows
    method: str
    dataset: str
    ipc: int | None
    architecture: str  # evaluated on
    train_architecture: str | None  # the architecture the set was distilled with (runs only)
    preset: str
    n_seeds: int
    mean: float | None
    std: float | None
    accuracies: list[float] = field(default_factory=list)
    run_id: str | None = None
    run_name: str | None = None
    created: float = 0.0
    wall_time_s: float | None = None
    device: str | None = None
    test_images: int | None = None
    iteration: int | None = None  # of the run whose images were measured
    current: bool = True  # False: the run's images changed since (resumed); the row measured earlier ones
    evaluation: EvaluationRecord | None = field(default=None, repr=False)
    recipe: str = ""  # a baseline trained like some method's sets ('DSA, Adam, no norm'); '' its own protocol
    variant: str | None = None  # 'subset': trained and tested on the embedded subset (Subject.variant)

    @property
    def record(self) -> dict[str, Any]:
        """The stored EvalResult as plain data (exports)."""
        return self.evaluation.result.to_dict() if self.evaluation is not None else {}

    @property
    def set_key(self) -> str:
        """Identifies the evaluated set (one heatmap row)."""
        return self.subject

    def as_dict(self, with_record: bool = False) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "evaluation"}
        if with_record:
            out["record"] = self.record
        return out


@dataclass
class EvalDetail:
    """What one evaluation measured beyond the mean: per seed, per class, confusion, curves."""

    accuracies: list[float]
    class_names: list[str]
    per_class: list[float] | None  # percent (ddcore.evaluation: mean over the seeds' networks)
    per_class_std: list[float] | None
    confusion: list[list[float]] | None  # rows = true class, columns = predicted (counts summed over the seeds' networks)
    curves: list[dict[str, list[float]]]  # one per seed: {"epoch": [...], "train_loss": [...], ...}
    class_stats_over: str = "last seed"  # 'all seeds' (summed confusion) or 'last seed' (older records)


# ---------------------------------------------------------------------- reading records
def detail(record: EvaluationRecord | ResultRow) -> EvalDetail:
    """The per-seed, per-class, confusion and curve data of one evaluation."""
    evaluation = record.evaluation if isinstance(record, ResultRow) else record
    if evaluation is None:
        return EvalDetail(accuracies=[], class_names=[], per_class=None, per_class_std=None, confusion=None, curves=[])
    result = evaluation.result
    n = len(result.per_class_accuracy or result.confusion or [])
    names = list(result.class_names) or [str(i) for i in range(n)]
    curves = []
    for seed in result.seeds:
        if f"loss_{seed}" not in result.curves:
            continue
        c = {"epoch": [float(e) for e in result.curves.get("epoch", [])],
             "loss": [float(v) for v in result.curves[f"loss_{seed}"]]}
        if f"train_acc_{seed}" in result.curves:
            c["train_acc"] = [math.nan if v is None else float(v) for v in result.curves[f"train_acc_{seed}"]]
        curves.append(c)
    return EvalDetail(accuracies=list(result.accuracies), class_names=names,
                      per_class=list(result.per_class_accuracy) or None, per_class_std=None,
                      confusion=[[float(v) for v in r] for r in result.confusion] or None, curves=curves,
                      class_stats_over=result.class_stats_over)


# ---------------------------------------------------------------------- rows from the store
@functools.lru_cache(maxsize=256)
def _random_protocol(preset: str, dataset: str, architecture: str) -> Any:
    """Random real's own resolved protocol under a preset (cached: every page rerun labels every baseline row)."""
    from .evaluation.protocol import get_preset

    try:
        return get_preset(preset).resolve(dataset, architecture, "random")
    except (KeyError, ValueError):
        return None


def baseline_recipe(ev: EvaluationRecord) -> str:
    """'' for random real (or the whole set) trained by random's own protocol, else how it was trained (e.g. 'DSA,
    Adam, no norm': Evaluate's 'trained like FRePo sets'), so the two are told apart."""
    config = ev.result.config or {}
    if config.get("schedule_of"):  # random real replaying a DD run's learned schedule: one row per run replayed
        return f"DD schedule · {str(config['schedule_of'])[-4:]}"
    if "kernel" in config:  # KRR trains nothing: only the pixel space can differ (random real whitened)
        return "ZCA" if ev.subject.kind != "run" and config.get("zca") else ""
    if "optimizer" not in config:  # recorded before recipes: the DC recipe
        return ""
    own = _random_protocol(ev.preset, ev.subject.dataset, ev.architecture)
    if own is None:  # an uploaded dataset: nothing to compare with
        return ""
    parts = []
    if config.get("augmentation") != own.augmentation:
        parts.append(str(config.get("augmentation", "?")).upper())
    if config.get("optimizer") != own.optimizer:
        parts.append(str(config["optimizer"]).capitalize())
    if config.get("convnet_norm"):
        parts.append("no norm" if config["convnet_norm"] == "none" else str(config["convnet_norm"]))
    if (config.get("extra") or {}).get("zca"):  # random real whitened, as a ZCA method's sets are
        parts.append("ZCA")
    return ", ".join(parts)


def to_row(ev: EvaluationRecord, runs: dict[str, RunRecord]) -> ResultRow:
    """Flatten one stored evaluation (its run looked up in `runs`)."""
    subject, result = ev.subject, ev.result
    run_name = train_arch = None
    dataset, ipc, current = subject.dataset, subject.ipc, True
    on = variant_label({"variant": subject.variant})  # ' (embedded subset)': tested on the subset's images
    if subject.kind == "run":
        run = runs.get(subject.run_id or "")
        method = run.method if run else result.method
        if run:
            run_name, train_arch, dataset, ipc = run.name, run.architecture, run.dataset, run.ipc
            current = bool(run.fingerprint) and run.fingerprint == subject.fingerprint
        # the run's id last: set_labels drops it when no other run shares the rest of the label
        label = f"{method.upper()} · IPC {ipc}{on}" + (f" · {subject.run_id[-4:]}" if run and subject.run_id else "")
    elif subject.kind == "random":
        method, label = "random", f"random real · IPC {ipc}{on}"
    else:
        method, label, ipc = "whole", f"whole dataset{on}", None
    group = subject.group
    trained = baseline_recipe(ev) if subject.kind != "run" else ""
    if trained:  # a fair baseline trained like some method's sets: its own row beside random real's own protocol
        label, group = f"{label} · {trained}", f"{group}:{trained}"
    if (result.config or {}).get("schedule_of"):  # one row per DD run replayed (the label shows 4 characters of it)
        group = f"{group}:{result.config['schedule_of']}"
    return ResultRow(key=ev.key, subject=group, kind=subject.kind, label=label, method=method, dataset=dataset,
                     ipc=None if ipc is None else int(ipc), architecture=ev.architecture,
                     train_architecture=train_arch, preset=ev.preset, n_seeds=len(result.seeds), mean=result.mean,
                     std=result.std, accuracies=list(result.accuracies), run_id=subject.run_id, run_name=run_name,
                     created=ev.created, wall_time_s=result.wall_time_s, device=result.device,
                     test_images=result.test_images, iteration=subject.iteration, current=current, evaluation=ev,
                     recipe=trained, variant=subject.variant)


def collect(store: Store, dataset: str | None = None) -> list[ResultRow]:
    """Every stored evaluation (of one dataset), oldest first; runs deleted since are skipped, and so are random
    real sets that replayed a deleted DD run's schedule (their row would stand beside nothing)."""
    evs = store.list_evaluations(dataset=dataset)
    runs = {r.id: r for r in store.list_runs()} if evs else {}

    def kept(ev: EvaluationRecord) -> bool:
        source = (ev.result.config or {}).get("schedule_of")
        return (ev.subject.kind != "run" or ev.subject.run_id in runs) and (not source or source in runs)

    return [to_row(ev, runs) for ev in evs if kept(ev)]


def latest(rows: Iterable[ResultRow]) -> list[ResultRow]:
    """Keep the newest row per (set, architecture), preferring a run's current images over earlier ones."""
    best: dict[tuple[str, str], ResultRow] = {}
    for r in rows:
        k = (r.subject, r.architecture)
        if k not in best or (r.current, r.created) >= (best[k].current, best[k].created):
            best[k] = r
    return sorted(best.values(), key=lambda r: r.created)


def set_labels(rows: Iterable[ResultRow]) -> dict[str, str]:
    """subject -> a unique display label (run names disambiguate two runs of one method)."""
    by_subject: dict[str, ResultRow] = {}
    for r in rows:
        by_subject.setdefault(r.subject, r)
    labels: dict[str, str] = {}
    counts: dict[str, int] = {}
    for r in by_subject.values():
        base = r.label.rsplit(" · ", 1)[0] if r.kind == "run" else r.label
        counts[base] = counts.get(base, 0) + 1
    for s, r in by_subject.items():
        base = r.label.rsplit(" · ", 1)[0] if r.kind == "run" else r.label
        labels[s] = r.label if counts[base] > 1 else base
    return labels


# ---------------------------------------------------------------------- beside the papers
def compare_published(rows: Iterable[ResultRow], published: Iterable[Any]) -> list[dict[str, Any]]:
    """Each published row with our newest matching measurement (same dataset, method, IPC,
    architecture) and ours − published; rows we did not measure keep None there."""
    ours: dict[tuple[str, str, int | None, str], ResultRow] = {}
    for r in rows:
        arch = published_architecture(r.architecture)
        if arch is None or r.mean is None or r.recipe:  # a baseline trained another way is not the published one's
            continue
        k = (r.dataset, r.method, r.ipc, arch)
        if k not in ours or r.created >= ours[k].created:
            ours[k] = r
    out = []
    for p in published:
        d = p.as_dict() if hasattr(p, "as_dict") else dict(p)
        d["family"] = family_of(d["method"])
        mine = ours.get((d["dataset"], d["method"], d["ipc"], d["architecture"]))
        d["ours_mean"] = None if mine is None else round(float(mine.mean), 2)
        d["ours_std"] = None if mine is None or mine.std is None else round(float(mine.std), 2)
        d["ours_preset"] = None if mine is None else mine.preset
        d["ours_seeds"] = None if mine is None else mine.n_seeds
        d["difference"] = None if mine is None else round(float(mine.mean) - float(d["mean"]), 2)
        out.append(d)
    return out


# ---------------------------------------------------------------------- custom evaluation presets
def custom_preset(epochs: int, test_limit: int | None = None, augmentation: str = "none", lr: float | None = None,
                  batch_size: int | None = None) -> str:
    """A named preset for custom values, e.g. 'custom-e10-t500-none', usable wherever a preset name is
    (EvalSpec.preset, the store's key); see evaluation.protocol.custom_preset_name."""
    from .evaluation.protocol import custom_preset_name

    return custom_preset_name(epochs, test_limit, augmentation, lr, batch_size)
