"""Jobs that need artefacts: a method declares one, its producer job runs first with its own progress,
a second run reuses it, and deleting it is refused while a run that uses it is active."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from ddcore.data import load_dataset
from ddcore.methods import METHODS, DistillMethod, MethodConfig, Requirement, register_method
from ddcore.platform.queue import JobManager
from ddcore.platform.store import Store
from ddcore.tasks import TASKS, Task, TaskContext, register_task
from ddcore.tasks.base import Prepared
from ddcore.tasks.distill import DistillSpec


@dataclass(frozen=True)
class ClassMeansSpec:
    kind: ClassVar[str] = "toy-class-means"
    dataset: str
    key: str
    device: str = "cpu"


class ClassMeansTask(Task):
    """Produces a toy artefact: the mean real image of every class, in ten reported steps."""

    kind = "toy-class-means"
    title = "Class means (test artefact)"
    Spec = ClassMeansSpec
    produces = "class-means"

    def prepare(self, spec: ClassMeansSpec, store: Store) -> Prepared:
        return Prepared(spec, f"Class means of {spec.dataset}", key=spec.key)

    def spec_for(self, requirement: Requirement, device: str) -> ClassMeansSpec:
        return ClassMeansSpec(dict(requirement.params)["dataset"], requirement.key(), device)

    def run(self, spec: ClassMeansSpec, ctx: TaskContext) -> object:
        data = ctx.dataset(spec.dataset)
        means = []
        for c in range(data.info.num_classes):
            time.sleep(0.05)
            means.append(data.normalize(data.train.images[data.train.class_indices[c][:200]]).mean(0))
            ctx.recorder.progress(c + 1, data.info.num_classes)
        folder = ctx.store.artefact_dir(spec.key)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "means.npz", means=torch.stack(means).numpy())
        return ctx.store.put_artefact(spec.key, "class-means", f"class means of {spec.dataset}",
                                      {"dataset": spec.dataset}, producer={"job": ctx.job_id, "kind": self.kind},
                                      inputs=(f"dataset:{spec.dataset}",), code_version="test")

    def load_artefact(self, record, store: Store) -> torch.Tensor:
        with np.load(store.artefact_dir(record.key) / "means.npz", allow_pickle=False) as z:
            return torch.from_numpy(z["means"])


@dataclass
class PullToMeansConfig(MethodConfig):
    iterations: int = 5
    sleep_s: float = 0.0


class PullToMeans(DistillMethod):
    """Moves each synthetic image halfway to its class's mean image (the artefact) per step."""

    name = "pull-to-means"
    title = "Pull to class means (test method)"
    family = "test"
    Config = PullToMeansConfig

    @classmethod
    def requires(cls, info, ipc, config, architecture):
        return (Requirement.from_dict("class-means", {"dataset": info.name}),)

    def _step(self) -> dict[str, float]:
        time.sleep(self.config.sleep_s)
        means = self.artefacts["class-means"].to(self.device)
        target = means[self.labels]
        with torch.no_grad():
            diff = target - self.images
            self.images += 0.5 * diff
        return {"loss": float(diff.pow(2).mean())}


class NeedsTheUnmakeable(PullToMeans):
    name = "needs-unmakeable"
    title = "Needs an artefact no task makes (test method)"

    @classmethod
    def requires(cls, info, ipc, config, architecture):
        return (Requirement.from_dict("no-such-artefact", {"dataset": info.name}),)


if "needs-unmakeable" not in METHODS:
    register_method(NeedsTheUnmakeable)
if "toy-class-means" not in TASKS:
    register_task(ClassMeansTask)
if "pull-to-means" not in METHODS:
    register_method(PullToMeans)


def test_a_required_artefact_is_made_first_then_reused_and_guarded(tmp_path: Path) -> None:
    mnist = load_dataset("mnist")
    manager = JobManager(Store(tmp_path))
    try:
        spec = DistillSpec(dataset="mnist", method="pull-to-means", ipc=1, device="cpu", evaluate_after=False)
        first = manager.submit(spec, data=mnist)
        assert len(first.depends) == 1
        producer = first.depends[0]
        assert producer.kind == "toy-class-means" and first.snapshot().waiting_for == (producer.id,)
        seen = []
        while not producer.finished.is_set():
            seen.append((producer.snapshot().iteration, first.status))
            time.sleep(0.02)
        done = manager.wait(first.id, 60)
        assert done.status == "done", done.message
        made = producer.snapshot()
        assert made.status == "done" and made.iteration == made.total == 10  # its own progress, to the end
        assert any(0 < it < 10 for it, _ in seen) and all(status == "queued" for _, status in seen)
        record = made.result
        assert record.kind == "class-means" and record.producer["job"] == producer.id and record.size_bytes > 0
        # The method really used it: after 5 halving steps every image is within 1/32 of its class mean.
        means = ClassMeansTask().load_artefact(record, manager.store)
        final = manager.store.load_set(first.run_id)
        assert torch.allclose(final.images, means[final.labels], atol=(means.abs().max() / 16).item())
        assert manager.store.artefact_dependents(record.key) == [first.run_id]

        # A second run reuses the stored artefact: no producer job.
        second = manager.submit(DistillSpec(dataset="mnist", method="pull-to-means", ipc=1, device="cpu",
                                            evaluate_after=False, overrides={"iterations": 200, "sleep_s": 0.01}),
                                data=mnist)
        assert second.depends == [] and len(manager.jobs(kind="toy-class-means")) == 1
        while second.snapshot().iteration < 2:
            time.sleep(0.01)
        with pytest.raises(RuntimeError, match="in use by run"):
            manager.store.delete_artefact(record.key, force=True)  # refused while a run that uses it is active
        manager.stop(second.id)
        manager.wait(second.id, 30)
        with pytest.raises(ValueError, match="used by 2 run"):
            manager.store.delete_artefact(record.key)  # warned: stopped runs could not resume without it
        manager.store.delete_artefact(record.key, force=True)
        assert manager.store.get_artefact(record.key) is None and not manager.store.artefact_dir(record.key).exists()
        # Needed again: made again.
        third = manager.submit(spec, data=mnist)
        assert len(third.depends) == 1 and manager.wait(third.id, 60).status == "done"
    finally:
        manager.shutdown(wait=10)


def test_an_artefact_no_task_makes_is_refused_before_anything_is_stored(tmp_path: Path) -> None:
    manager = JobManager(Store(tmp_path))
    try:
        with pytest.raises(LookupError, match="no task kind produces 'no-such-artefact' artefacts"):
            manager.submit(DistillSpec(dataset="mnist", method="needs-unmakeable", ipc=1, device="cpu"))
        assert manager.store.list_runs() == [] and manager.jobs() == []
    finally:
        manager.shutdown()


def test_the_gallery_lists_artefacts_with_their_users_and_deletes_them(tmp_path: Path, monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    mnist = load_dataset("mnist")
    manager = JobManager(Store(tmp_path))
    try:
        job = manager.submit(DistillSpec(dataset="mnist", method="pull-to-means", ipc=1, device="cpu",
                                         evaluate_after=False), data=mnist)
        assert manager.wait(job.id, 60).status == "done"
    finally:
        manager.shutdown(wait=10)
    record = Store(tmp_path).list_artefacts()[0]
    monkeypatch.setenv("DDCORE_HOME", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "pages" / "gallery.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [s.value for s in at.subheader] == ["Artefacts"]
    text = "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption])
    assert "class means of mnist" in text and "`class-means`" in text
    assert f"by job `{record.producer['job']}`" in text  # lineage: the job that made it
    assert "Used by: PULL-TO-MEANS · MNIST · IPC 1" in text
    assert any("cannot resume without it" in w.value for w in at.warning)  # said before deleting
    at.checkbox(key=f"art_confirm_{record.key}").check().run()
    at.button(key=f"art_delete_{record.key}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert Store(tmp_path).list_artefacts() == [] and not at.subheader


def test_herding_trains_its_feature_network_as_its_own_job_first(tmp_path: Path, monkeypatch) -> None:
    """The real case: herding's trained feature network (minutes on a CPU at full size) is a job with progress
    before the run, not hidden work inside its first step; k-center with the same training reuses it."""
    monkeypatch.setenv("DDCORE_CACHE", str(tmp_path / "cache"))
    mnist = load_dataset("mnist")
    small = {"embed_epochs": 1, "embed_per_class": 10, "pool_per_class": 20, "embed_architecture": "convnetw32"}
    manager = JobManager(Store(tmp_path / "home"))
    try:
        herding = manager.submit(DistillSpec(dataset="mnist", method="herding", ipc=2, device="cpu", overrides=small,
                                             evaluate_after=False), data=mnist)
        assert [d.kind for d in herding.depends] == ["train-network"]
        trainer = herding.depends[0]
        assert trainer.snapshot().name == "Train the feature network: convnetw32, 1 epoch(s) on mnist (10 images per class)"
        assert manager.wait(herding.id, 120).status == "done", herding.snapshot().message
        made = trainer.snapshot()
        assert made.status == "done" and made.iteration == made.total == 100  # percent of the training
        assert made.result.kind == "trained-network" and made.result.params["per_class"] == 10
        kcenter = manager.submit(DistillSpec(dataset="mnist", method="kcenter", ipc=2, device="cpu", overrides=small,
                                             evaluate_after=False), data=mnist)
        assert kcenter.depends == [] and manager.wait(kcenter.id, 120).status == "done"
        assert manager.store.artefact_dependents(made.result.key) == [herding.run_id, kcenter.run_id]
    finally:
        manager.shutdown(wait=10)
