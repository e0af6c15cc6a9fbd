"""Helpers for the Evaluate tests: stored runs of real (tiny) sets and a very short custom preset.

Every number the tests compare comes from a real evaluation (networks trained on real MNIST images),
run through the job manager exactly as the page runs it; only the sizes are tiny.
"""
from __future__ import annotations

import time
from pathlib import Path

from ddcore.data import load_dataset
from ddcore.evaluation.result import EvalResult
from ddcore.methods import create_method
from ddcore.platform.queue import JobManager
from ddcore.platform.records import Subject
from ddcore.platform.store import Store
from ddcore.results import custom_preset
from ddcore.tasks.evaluate import EvalSpec

TINY = dict(epochs=3, test_limit=300, augmentation="none")  # ~1 s per evaluation on a busy CPU


def tiny_preset() -> str:
    return custom_preset(**TINY)


def make_runs(store: Store, methods: tuple[str, ...] = ("random", "dm"), ipc: int = 1,
              prefix: str | None = None) -> list[str]:
    """Distil real MNIST sets (random real coreset; DM for one iteration) and store them as finished runs."""
    data = load_dataset("mnist")
    ids = []
    for k, name in enumerate(methods):
        overrides = {"iterations": 1} if name != "random" else {}
        method = create_method(name, data, ipc, preset="quick", seed=k, **overrides)
        while not method.done:
            method.step()
        spec = {"dataset": "mnist", "method": name, "ipc": ipc, "architecture": "convnet", "preset": "quick",
                "seed": k}
        rec = store.create_run(spec, status="done", name=f"{prefix} {name.upper()} · IPC {ipc}" if prefix else None)
        store.save_set(rec.id, method.synthetic())
        ids.append(rec.id)
        time.sleep(0.01)  # distinct creation times: the newest run is listed first
    return ids


def evaluate_all(manager: JobManager, subjects: list[Subject], architectures: list[str], preset: str,
                 timeout: float = 240.0) -> list[str]:
    """Submit every (subject, architecture) and wait; returns the store keys."""
    jobs = [manager.submit(EvalSpec(s, architecture=a, preset=preset)) for s in subjects for a in architectures]
    for job in jobs:
        snap = manager.wait(job.id, timeout)
        assert snap.status == "done", (snap.name, snap.status, snap.message)
    return [job.spec.key() for job in jobs]


def wait_for_keys(root: Path, keys: list[str], timeout: float = 240.0) -> Store:
    """Poll a store (as another reader would) until every key holds a result."""
    store = Store(root)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if all(store.get_evaluation(k) is not None for k in keys):
            return store
        time.sleep(0.5)
    missing = [k for k in keys if store.get_evaluation(k) is None]
    raise TimeoutError(f"{len(missing)} evaluation(s) still missing after {timeout} s")


def stored_result(mean: float, std: float, accuracies: list[float], dataset: str = "mnist") -> EvalResult:
    """An EvalResult to store where a test is about storage, not about training (percent, as everywhere)."""
    return EvalResult(set_id="test", dataset=dataset, method="test", ipc=1, num_images=10, architecture="convnet",
                      preset="quick", config={}, seeds=list(range(len(accuracies))), accuracies=accuracies, mean=mean,
                      std=std, wall_time_s=0.0, train_time_s=0.0, test_time_s=0.0, device="cpu", versions={},
                      test_images=100)


def key_of(store: Store, subject: Subject, architecture: str, preset: str) -> str:
    """The store key an evaluation of this subject's current content gets."""
    from ddcore.tasks.evaluate import prepare_spec

    return prepare_spec(EvalSpec(subject, architecture=architecture, preset=preset), store)[0].key()


def store_result(store: Store, subject: Subject, result: EvalResult, architecture: str = "convnet",
                 preset: str = "quick", options: dict | None = None) -> str:
    """Store `result` as the evaluation of the subject's current content (with the result's seed count), trained
    with these EvalSpec options (a baseline trained like some method's sets)."""
    from ddcore.tasks.evaluate import prepare_spec

    spec = prepare_spec(EvalSpec(subject, architecture=architecture, preset=preset, seeds=len(result.seeds),
                                 options=dict(options or {})), store)[0]
    store.save_evaluation(spec.key(), spec.subject, architecture, preset, len(result.seeds), result)
    return spec.key()
