"""Stored evaluation results as flat rows, for plots, exports and the published-numbers comparison.

Why: the store keeps one JSON record per (subject, architecture, preset, seeds); the Evaluate page
needs them as a table (which method, which IPC, trained on which architecture, evaluated on which)
and next to the papers' numbers. This module reads the store's public API only and never imports
streamlit.

    rows = collect(store, dataset="mnist")          # list[ResultRow], newest last
    latest(rows)                                    # the newest row per (set, architecture)
    detail(row) -> EvalDetail                       # per-seed, per-class, confusion, curves
    compare_published(rows, published_rows)         # published row + our measurement + difference
    custom_preset(epochs=10, test_limit=500)        # -> 'custom-e10-t500-none', a preset name EvalSpec accepts

Subjects: ``run:<id>`` (a stored run's set), ``random:<dataset>:<ipc>:<seed>`` (random real images,
the baseline), ``whole:<dataset>`` (the whole training set, the upper reference).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

from .store import EvaluationRecord, RunStore, accuracy_of

# Our model names -> the published table's architecture ids (None: no paper reports it).
_PUBLISHED_ARCH: dict[str, str] = {
    "convnet": "convnet", "convnetd3": "convnet", "convnetw128": "convnet", "convnetin": "convnet",
    "convnetd4": "convnetd4", "alexnet": "alexnet", "mlp": "fc",
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


def __getattr__(name: str) -> Any:
    """`FAMILIES` (method id -> family) is derived from the registry and the published-methods table; kept
    for callers that still import it (pages/evaluate.py) until they use `families()` / `family_of()`."""
    if name == "FAMILIES":
        from .methods import known_methods

        return {m: family_of(m) for m in known_methods()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    record: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def set_key(self) -> str:
        """Identifies the evaluated set (one heatmap row)."""
        return self.subject

    def as_dict(self, with_record: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not with_record:
            out.pop("record")
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
def record_scale(record: dict[str, Any]) -> float:
    """100 when the record stores accuracies as fractions (ddcore.evaluation's EvalResult), else 1."""
    mean = record.get("mean")
    if record.get("unit") == "percent":
        return 1.0
    if isinstance(mean, (int, float)):
        return 100.0 if mean <= 1.0 else 1.0
    accs = record.get("accuracies")
    if isinstance(accs, list) and accs and all(isinstance(a, (int, float)) for a in accs):
        return 100.0 if max(accs) <= 1.0 else 1.0
    return 100.0


def _percent_list(values: Any, scale: float = 100.0) -> list[float]:
    if not isinstance(values, (list, tuple)):
        return []
    return [float(v) * scale for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]


def _first(record: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in record and record[name] is not None:
            return record[name]
    return None


def seed_accuracies(record: dict[str, Any]) -> list[float]:
    """Per-seed test accuracies in percent."""
    value = _first(record, "accuracies", "per_seed", "seed_accuracies", "accs", "test_accuracies")
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list) and value and isinstance(value[0], dict):
        value = [_first(v, "accuracy", "test_accuracy", "acc") for v in value]
    return _percent_list(value, record_scale(record))


def _per_seed_entries(record: dict[str, Any]) -> list[dict[str, Any]]:
    value = _first(record, "per_seed", "seeds_detail", "runs")
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def detail(record: dict[str, Any] | ResultRow) -> EvalDetail:
    """Pull the per-class, confusion and curve data out of a record, whatever the evaluator stored."""
    if isinstance(record, ResultRow):
        record = record.record
    entries = _per_seed_entries(record)
    class_names = [str(c) for c in (_first(record, "class_names", "classes") or [])]

    per_class = _first(record, "per_class", "per_class_accuracy", "class_accuracy")
    per_class_std = _first(record, "per_class_std", "per_class_accuracy_std")
    if isinstance(per_class, dict):  # {"mean": [...], "std": [...]} or {class: acc}
        if "mean" in per_class:
            per_class_std = per_class.get("std", per_class_std)
            per_class = per_class["mean"]
        else:
            class_names = class_names or [str(k) for k in per_class]
            per_class = list(per_class.values())
    if per_class is None and entries:
        seeds = [_first(e, "per_class", "per_class_accuracy") for e in entries]
        seeds = [s for s in seeds if isinstance(s, list)]
        if seeds:
            n = len(seeds[0])
            per_class = [sum(s[i] for s in seeds) / len(seeds) for i in range(n)]
            per_class_std = [_std([s[i] for s in seeds]) for i in range(n)]
    scale = record_scale(record)
    per_class_list = _percent_list(per_class, scale) or None
    per_class_std_list = None
    if isinstance(per_class_std, list) and per_class_list is not None:
        per_class_std_list = _percent_list(per_class_std, scale)

    confusion = _first(record, "confusion", "confusion_matrix")
    if confusion is None and entries:
        mats = [_first(e, "confusion", "confusion_matrix") for e in entries]
        mats = [m for m in mats if isinstance(m, list) and m]
        if mats:
            confusion = [[sum(m[i][j] for m in mats) for j in range(len(mats[0][0]))] for i in range(len(mats[0]))]
    confusion_list = [[float(v) for v in r] for r in confusion] if isinstance(confusion, list) and confusion else None

    curves_raw = _first(record, "curves", "training_curves", "history")
    curves: list[dict[str, list[float]]] = []
    if isinstance(curves_raw, dict) and any(k.startswith("loss_") for k in curves_raw):
        curves_raw = _split_seed_curves(curves_raw, scale)
    if isinstance(curves_raw, dict):
        curves_raw = [curves_raw] if all(isinstance(v, list) for v in curves_raw.values()) else list(curves_raw.values())
    if curves_raw is None and entries:
        curves_raw = [_first(e, "curve", "curves", "history") for e in entries]
    for c in curves_raw or []:
        if isinstance(c, dict):
            curves.append({str(k): [float(x) if x is not None else math.nan for x in v]
                           for k, v in c.items() if isinstance(v, list)})
        elif isinstance(c, list) and c and isinstance(c[0], dict):  # list of per-epoch dicts
            keys = [k for k, v in c[0].items() if isinstance(v, (int, float))]
            curves.append({k: [float(row.get(k, math.nan)) for row in c] for k in keys})
    n = len(per_class_list or confusion_list or [])
    if not class_names and n:
        class_names = [str(i) for i in range(n)]
    return EvalDetail(accuracies=seed_accuracies(record), class_names=class_names, per_class=per_class_list,
                      per_class_std=per_class_std_list, confusion=confusion_list, curves=curves,
                      class_stats_over=str(record.get("class_stats_over") or "last seed"))


def _split_seed_curves(curves: dict[str, Any], scale: float) -> list[dict[str, list[float]]]:
    """ddcore.evaluation's layout {'epoch', 'lr', 'loss_<seed>', 'train_acc_<seed>'} -> one dict per seed
    with 'epoch', 'loss' and 'train_acc' (percent)."""
    seeds = [k[len("loss_"):] for k in curves if k.startswith("loss_")]
    out = []
    for seed in seeds:
        c: dict[str, list[float]] = {"epoch": [float(e) for e in curves.get("epoch", [])],
                                     "loss": [float(v) for v in curves[f"loss_{seed}"]]}
        if f"train_acc_{seed}" in curves:
            c["train_acc"] = [float(v) * scale for v in curves[f"train_acc_{seed}"]]
        out.append(c)
    return out


def _std(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


# ---------------------------------------------------------------------- rows from the store
def parse_subject(subject: str) -> dict[str, Any]:
    """'run:<id>' | 'random:<ds>:<ipc>:<seed>' | 'whole:<ds>' -> its parts."""
    kind, _, rest = subject.partition(":")
    if kind == "random":
        dataset, ipc, seed = rest.split(":")
        return {"kind": "random", "dataset": dataset, "ipc": int(ipc), "seed": int(seed)}
    if kind == "whole":
        return {"kind": "whole", "dataset": rest.split(":")[0]}
    return {"kind": "run", "run_id": rest}


def to_row(ev: EvaluationRecord, store: RunStore | None = None, runs: dict[str, Any] | None = None) -> ResultRow:
    """Flatten one stored evaluation (looking its run up in `runs` or the store)."""
    parts = parse_subject(ev.subject)
    record = ev.record or {}
    mean, std = (ev.mean, ev.std) if ev.mean is not None else accuracy_of(record)
    accs = seed_accuracies(record)
    seeds = _first(record, "seeds")
    n_seeds = len(accs) or (len(seeds) if isinstance(seeds, list) else int(seeds) if isinstance(seeds, int) else 1)
    kind = parts["kind"]
    dataset = ev.dataset or parts.get("dataset") or str(record.get("dataset", ""))
    ipc = ev.ipc if ev.ipc is not None else parts.get("ipc")
    run_name = train_arch = None
    if kind == "run":
        run = (runs or {}).get(parts["run_id"]) if runs is not None else (store.get_run(parts["run_id"]) if store else None)
        method = run.method if run else str(record.get("method", "run"))
        if run:
            run_name, train_arch, dataset, ipc = run.name, run.architecture, run.dataset, run.ipc
        label = f"{method.upper()} · IPC {ipc}" + (f" · {parts['run_id'][-4:]}" if run else "")
    elif kind == "random":
        method, label = "random", f"random real · IPC {ipc}"
    else:
        method, label, ipc = "whole", "whole dataset", None
    wall = _first(record, "wall_time_s", "wall_s", "elapsed_s", "seconds", "time_s")
    device = _first(record, "device")
    test_images = record.get("test_images")
    return ResultRow(key=ev.key, subject=ev.subject, kind=kind, label=label, method=method, dataset=dataset,
                     ipc=None if ipc is None else int(ipc), architecture=ev.architecture or str(record.get("architecture", "")),
                     train_architecture=train_arch, preset=ev.preset or str(record.get("preset", "")),
                     n_seeds=int(n_seeds), mean=mean, std=std, accuracies=accs, run_id=ev.run_id, run_name=run_name,
                     created=ev.created, wall_time_s=float(wall) if isinstance(wall, (int, float)) else None,
                     device=str(device) if device is not None else None,
                     test_images=int(test_images) if isinstance(test_images, int) else None, record=record)


def collect(store: RunStore, dataset: str | None = None) -> list[ResultRow]:
    """Every stored evaluation (of one dataset), oldest first; runs deleted since are skipped."""
    evs = store.list_evaluations(dataset=dataset)
    runs = {r.id: r for r in store.list_runs(dataset=dataset)} if evs else {}
    rows = []
    for ev in evs:
        if ev.subject.startswith("run:") and ev.subject[4:] not in runs:
            run = store.get_run(ev.subject[4:])
            if run is None:
                continue
            runs[run.id] = run
        rows.append(to_row(ev, store, runs))
    return rows


def latest(rows: Iterable[ResultRow]) -> list[ResultRow]:
    """Keep the newest row per (set, architecture): a re-evaluation under another preset replaces the view."""
    best: dict[tuple[str, str], ResultRow] = {}
    for r in rows:
        k = (r.subject, r.architecture)
        if k not in best or r.created >= best[k].created:
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
        if arch is None or r.mean is None:
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
