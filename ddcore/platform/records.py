"""Typed records: what the store writes and reads, one frozen type per kind, in one unit per quantity.

Accuracies are percent everywhere. An evaluation is keyed to the content it measured: a set's
fingerprint (a hash of its images and labels), so a resumed run's new images never inherit the
accuracy of its earlier ones.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..data.info import variant_label
from ..evaluation.result import EvalResult

SubjectKind = Literal["run", "random", "whole"]

RUN_STATUSES = ("queued", "running", "paused", "done", "stopped", "failed", "cancelled", "interrupted")
ACTIVE_RUN = ("queued", "running", "paused")  # a process owns the run
RESUMABLE = ("stopped", "interrupted", "failed")


@dataclass(frozen=True)
class Subject:
    """What an evaluation measures: a stored run's set, random real images, or the whole training set.

    `fingerprint` identifies the content (set_fingerprint of images and labels; the dataset's name and
    source for the whole set); `iteration` is the run's iteration the set belongs to."""

    kind: SubjectKind
    dataset: str
    run_id: str | None = None
    ipc: int | None = None
    seed: int = 0
    fingerprint: str = ""
    iteration: int | None = None
    variant: str | None = None  # 'subset': trained and tested on the embedded subset (DatasetInfo.variant)

    def __post_init__(self) -> None:
        if self.kind not in ("run", "random", "whole"):
            raise ValueError(f"an evaluation subject is a run, random real images or the whole set, not {self.kind!r}")
        if self.kind == "run" and not self.run_id:
            raise ValueError("a run subject needs the run's id")
        if self.kind == "random" and (self.ipc is None or int(self.ipc) < 1):
            raise ValueError(f"random real images need an IPC of at least 1, not {self.ipc}")

    @classmethod
    def run(cls, run_id: str, dataset: str = "", fingerprint: str = "", iteration: int | None = None,
            ipc: int | None = None) -> "Subject":
        return cls("run", dataset, run_id=run_id, fingerprint=fingerprint, iteration=iteration, ipc=ipc)

    @classmethod
    def random(cls, dataset: str, ipc: int, seed: int = 0, fingerprint: str = "") -> "Subject":
        return cls("random", dataset, ipc=int(ipc), seed=int(seed), fingerprint=fingerprint)

    @classmethod
    def whole(cls, dataset: str) -> "Subject":
        return cls("whole", dataset)

    @property
    def label(self) -> str:
        on = variant_label({"variant": self.variant})
        if self.kind == "run":
            return f"run {self.run_id}" + (f" at iteration {self.iteration:,}" if self.iteration is not None else "") + on
        if self.kind == "random":
            return f"random real · {self.dataset} · IPC {self.ipc}" + on
        return f"whole {self.dataset} training set" + on

    @property
    def group(self) -> str:
        """One heatmap row per group: a run, a random-real IPC, the whole set (the embedded subset's apart)."""
        mark = f":{self.variant}" if self.variant else ""
        if self.kind == "run":
            return f"run:{self.run_id}{mark}"
        return (f"random:{self.dataset}:{self.ipc}" if self.kind == "random" else f"whole:{self.dataset}") + mark

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Subject":
        return cls(**d)


def content_key(**parts: Any) -> str:
    """A short stable hash of JSON-able parts (used for evaluation and artefact keys)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def evaluation_key(subject: Subject, architecture: str, preset: str, seeds: int, options: dict[str, Any]) -> str:
    """The key of an evaluation: what it measured (the subject and its content's fingerprint) and how.

    The subject is part of it: the random-real baseline and a 'random' run of the same seed hold the same
    images, and each keeps its own row."""
    identity = subject.fingerprint or f"{subject.kind}:{subject.dataset}"
    variant = {"variant": subject.variant} if subject.variant else {}  # the full data's keys as they were stored
    return content_key(subject=subject.kind, run=subject.run_id, content=identity, architecture=architecture,
                       preset=preset, seeds=int(seeds), options=options or {}, **variant)


@dataclass(frozen=True)
class RunRecord:
    id: str
    name: str
    dataset: str
    method: str
    ipc: int
    architecture: str
    preset: str
    seed: int
    status: str
    message: str
    iteration: int
    total: int
    elapsed_s: float
    created: float
    updated: float
    owner: str
    spec: dict[str, Any] = field(hash=False)
    fingerprint: str = ""  # of the stored set ('' until the run saved one)
    set_iteration: int | None = None  # the iteration the stored set belongs to
    accuracy: float | None = None  # percent: the newest evaluation of the current set on the run's architecture
    accuracy_std: float | None = None
    accuracy_seeds: int | None = None

    @property
    def resumable(self) -> bool:
        return self.status in RESUMABLE

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_RUN

    @property
    def progress(self) -> float:
        return min(1.0, self.iteration / self.total) if self.total else 0.0


@dataclass(frozen=True)
class EvaluationRecord:
    """One stored evaluation: what was measured (subject, architecture, preset, seeds) and the result."""

    key: str
    subject: Subject
    architecture: str
    preset: str
    seeds: int
    created: float
    result: EvalResult = field(hash=False)

    @property
    def mean(self) -> float:
        return self.result.mean

    @property
    def std(self) -> float:
        return self.result.std

    @property
    def run_id(self) -> str | None:
        return self.subject.run_id

    @property
    def dataset(self) -> str:
        return self.subject.dataset

    @property
    def ipc(self) -> int | None:
        return self.subject.ipc


@dataclass(frozen=True)
class ArtefactRecord:
    """A stored object a task produced for others to use (expert trajectories, a trained network, ...).

    Lineage: the job and spec that produced it, its inputs, and the code version."""

    key: str
    kind: str
    name: str
    params: dict[str, Any] = field(hash=False)
    path: str = ""  # folder below the store's artefacts/ directory
    size_bytes: int = 0
    created: float = 0.0
    producer: dict[str, Any] = field(default_factory=dict, hash=False)  # {"job": id, "kind": task kind, "spec": {...}}
    inputs: tuple[str, ...] = ()
    code_version: str = ""
