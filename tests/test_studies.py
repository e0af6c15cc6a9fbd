"""Studies (ddcore.tasks.study): a result stored once per spec and content, served again without recomputation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from ddcore.methods import Requirement
from ddcore.platform.bridge import Studio
from ddcore.tasks import TASKS, register_task
from ddcore.tasks.study import StudyTask


@dataclass(frozen=True)
class CountSpec:
    kind: ClassVar[str] = "toy-count"
    dataset: str
    limit: int
    device: str = "cpu"


@dataclass(frozen=True)
class CountResult:
    counts: dict
    histogram: np.ndarray
    key: str = ""

    def to_dict(self) -> dict:
        return {"counts": self.counts}

    def arrays(self) -> dict:
        return {"histogram": self.histogram}

    @classmethod
    def from_stored(cls, data: dict, arrays: dict, record) -> "CountResult":
        return cls(data["counts"], arrays["histogram"], record.key)


class CountTask(StudyTask):
    """Counts the first `limit` training labels: a study small enough to run in a test."""

    kind = "toy-count"
    title = "Label counts"
    Spec = CountSpec
    produces = "toy-count-study"
    Result = CountResult
    runs = 0

    def identity(self, spec: CountSpec, store) -> tuple[CountSpec, Requirement]:
        if spec.limit < 1:
            raise ValueError(f"limit must be at least 1, not {spec.limit}")
        return spec, Requirement.from_dict(self.produces, {"dataset": spec.dataset, "limit": spec.limit},
                                           label=f"label counts of {spec.limit} images")

    def run(self, spec: CountSpec, ctx) -> CountResult:
        CountTask.runs += 1
        labels = ctx.dataset(spec.dataset).train.labels[: spec.limit].numpy()
        hist = np.bincount(labels, minlength=10)
        return self.save(ctx, spec, CountResult({str(i): int(c) for i, c in enumerate(hist)}, hist),
                         inputs=(f"dataset:{spec.dataset}",))


@pytest.fixture
def count_task():
    register_task(CountTask)
    yield TASKS.get("toy-count")
    TASKS.remove("toy-count")


def test_a_study_is_stored_once_and_served_again_without_recomputation(tmp_path, count_task):
    studio = Studio(tmp_path / "home")
    try:
        spec = CountSpec("mnist", 50)
        assert studio.study_state(spec).stored is None
        job = studio.submit(spec)
        snap = studio.manager.wait(job.id, 60)
        assert snap.status == "done", snap.message
        assert sum(snap.result.counts.values()) == 50
        assert snap.result.histogram.sum() == 50
        runs = CountTask.runs

        # reopening (a new server on the same home) finds it stored; submitting again reuses it
        again = Studio(tmp_path / "home")
        state = again.study_state(spec)
        assert state.stored is not None and state.stored.counts == snap.result.counts
        reused = again.submit(spec)
        assert reused.snapshot().reused and CountTask.runs == runs
        assert [r.counts for r in again.studies("toy-count")] == [snap.result.counts]

        # another spec is another study; a bad one is refused with its reason and nothing stored
        assert again.study_state(CountSpec("mnist", 60)).stored is None
        bad = again.study_state(CountSpec("mnist", 0))
        assert bad.spec is None and "at least 1" in bad.problem
        with pytest.raises(ValueError, match="at least 1"):
            again.submit(CountSpec("mnist", 0))
        again.manager.shutdown()
    finally:
        studio.manager.shutdown()
