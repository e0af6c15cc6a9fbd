"""EvalResult: one evaluation as a JSON-serialisable record (what the Evaluate page and benchmarks read).

Every accuracy in it (per seed, mean, std, per class, training curves) is in percent, the one unit
accuracy has everywhere in DD Studio."""
from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

from ..atomic import write_atomic


class EvaluationCancelled(RuntimeError):
    """should_stop() returned True; no partial result is reported as if it were complete."""


@dataclass
class EvalResult:
    set_id: str
    dataset: str
    method: str
    ipc: int | None
    num_images: int
    architecture: str
    preset: str
    config: dict[str, Any]
    seeds: list[int]
    accuracies: list[float]  # test accuracy per seed, percent
    mean: float
    std: float  # population std (numpy default), as the reference reports
    wall_time_s: float
    train_time_s: float
    test_time_s: float
    device: str
    versions: dict[str, str]
    test_images: int
    curves: dict[str, list] = field(default_factory=dict)  # 'epoch', and per seed 'loss'/'train_acc' lists
    per_class_accuracy: list[float] = field(default_factory=list)  # percent, mean over the seeds' networks
    confusion: list[list[int]] = field(default_factory=list)  # rows: true class, cols: predicted; summed over seeds
    # what per_class_accuracy/confusion cover (records before 2026-11-25: last seed)
    class_stats_over: str = "last seed"
    class_names: list[str] = field(default_factory=list)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvalResult":
        from dataclasses import MISSING

        known = {f.name for f in fields(cls)}
        missing = sorted(f.name for f in fields(cls) if f.name not in data
                         and f.default is MISSING and f.default_factory is MISSING)
        if missing:
            raise ValueError(f"not an evaluation record: missing {', '.join(missing)}")
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, text: str) -> "EvalResult":
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_atomic(path, self.to_json(indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "EvalResult":
        return cls.from_json(Path(path).read_text())


def mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    m = sum(values) / len(values)
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def per_class_percent(confusion: Sequence[Sequence[int]]) -> list[float]:
    """Per-class test accuracy (percent) from a confusion matrix (rows: true class, columns: predicted)."""
    return [100.0 * row[i] / max(1, sum(row)) for i, row in enumerate(confusion)]


def library_versions() -> dict[str, str]:
    import numpy
    import torch

    try:
        from importlib.metadata import version

        ddstudio = version("ddstudio")
    except Exception:
        ddstudio = "0.1.0"
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "ddstudio": ddstudio, "platform": platform.platform(terse=True)}
