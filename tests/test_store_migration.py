"""A store written by the previous version (tests/fixtures/store-v0, made by commit 0bb1ea8's code) opens
with today's code: its runs and evaluations show unchanged (accuracies now in percent everywhere),
its results are reused, and its stopped run resumes from its checkpoint."""
from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

import tests.tiny_method  # noqa: F401  (the fixture's stopped run used the 'tinypull' test method)
from ddcore.data import load_dataset
from ddcore.platform.queue import JobManager
from ddcore.platform.records import Subject
from ddcore.platform.store import SCHEMA_VERSION, Store
from ddcore.results import collect
from ddcore.tasks.distill import resume_spec
from ddcore.tasks.evaluate import EvalSpec

FIXTURE = Path(__file__).parent / "fixtures" / "store-v0"


@pytest.fixture
def old_store(tmp_path: Path) -> tuple[Path, list[sqlite3.Row], list[sqlite3.Row]]:
    root = tmp_path / "home"
    shutil.copytree(FIXTURE, root)
    db = sqlite3.connect(root / "studio.sqlite3")
    db.row_factory = sqlite3.Row
    assert db.execute("PRAGMA user_version").fetchone()[0] == 0  # really the old layout
    runs = db.execute("SELECT * FROM runs").fetchall()
    evals = db.execute("SELECT * FROM evaluations").fetchall()
    db.close()
    return root, runs, evals


def test_old_runs_and_evaluations_show_unchanged(old_store) -> None:
    root, old_runs, old_evals = old_store
    store = Store(root)
    assert sqlite3.connect(root / "studio.sqlite3").execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    runs = {r.id: r for r in store.list_runs()}
    assert set(runs) == {r["id"] for r in old_runs}
    for old in old_runs:
        new = runs[old["id"]]
        assert (new.name, new.status, new.iteration, new.total, new.method, new.ipc) == \
               (old["name"], old["status"], old["iteration"], old["total"], old["method"], old["ipc"])
        assert new.spec == json.loads(old["spec"])
    rows = {(r.subject, r.architecture): r for r in collect(store)}
    assert len(rows) == len(old_evals) == 3
    for old in old_evals:
        kind, _, rest = old["subject"].partition(":")
        group = old["subject"] if kind == "run" else f"random:{rest.rsplit(':', 1)[0]}"
        row = rows[(group, old["architecture"])]
        assert row.mean == pytest.approx(old["mean"]) and row.std == pytest.approx(old["std"])  # percent then and now
        record = json.loads(old["record"])
        assert row.accuracies == pytest.approx([100 * a for a in record["accuracies"]])  # fractions became percent
        assert row.current  # the done run's set is the one that was measured
    done = next(r for r in runs.values() if r.status == "done")
    convnet = next(e for e in old_evals if e["subject"] == f"run:{done.id}" and e["architecture"] == "convnet")
    assert done.accuracy == pytest.approx(convnet["mean"])  # the Gallery's number is the same
    again = Store(root)  # opening twice migrates once
    assert len(again.list_evaluations()) == 3


@pytest.mark.slow
def test_old_results_are_reused_and_the_stopped_run_resumes(old_store) -> None:
    root, old_runs, old_evals = old_store
    manager = JobManager(Store(root))
    try:
        done = next(r for r in manager.store.list_runs() if r.status == "done")
        old = next(e for e in old_evals if e["subject"] == f"run:{done.id}" and e["architecture"] == "mlp")
        job = manager.submit(EvalSpec(Subject.run(done.id), architecture="mlp", preset=old["preset"]))
        snap = job.snapshot()
        assert snap.status == "done" and snap.reused and snap.accuracy == pytest.approx(old["mean"])
        stopped = next(r for r in manager.store.list_runs() if r.status == "stopped")
        resumed = manager.submit(resume_spec(manager.store, stopped.id, evaluate_after=False), data=load_dataset("mnist"))
        while resumed.snapshot().images is None:
            pass
        assert resumed.snapshot().iteration >= 10  # from its checkpoint, not from zero
        final = manager.wait(resumed.id, 120)
        assert final.status == "done" and final.iteration == final.total == 50
        assert [r["iteration"] for r in manager.store.read_metrics(stopped.id)] == list(range(1, 51))
    finally:
        manager.shutdown(wait=10)


def test_two_processes_opening_an_old_store_at_once_migrate_it_once(old_store) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    root, _, old_evals = old_store
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from ddcore.platform.store import Store\n"
            f"print(len(Store({str(root)!r}).list_evaluations()))\n")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-500:] for _, err in outs]
    assert [out.strip() for out, _ in outs] == [str(len(old_evals))] * 3


def test_an_unreadable_old_row_is_set_aside_not_fatal(old_store) -> None:
    root, _, old_evals = old_store
    db = sqlite3.connect(root / "studio.sqlite3")
    first, second = [r[0] for r in db.execute("SELECT key FROM evaluations ORDER BY created").fetchall()[:2]]
    record = json.loads(db.execute("SELECT record FROM evaluations WHERE key = ?", (first,)).fetchone()[0])
    record["std"] = None  # the first release wrote a NaN std as null
    db.execute("UPDATE evaluations SET record = ? WHERE key = ?", (json.dumps(record), first))
    db.execute("UPDATE evaluations SET record = 'not json' WHERE key = ?", (second,))
    db.commit()
    db.close()
    store = Store(root)
    rows = collect(store)
    assert len(rows) == len(old_evals) - 1  # the null std fell back to the index column; the broken row is set aside
    kept = sqlite3.connect(root / "studio.sqlite3").execute(
        "SELECT key, problem FROM evaluations_v0_unreadable").fetchall()
    assert [k for k, _ in kept] == [second] and "JSONDecodeError" in kept[0][1]


def test_a_version_1_store_gets_its_sets_iterations(tmp_path: Path) -> None:
    """Version 1 (this issue's first cut) lacked runs.set_iteration; opening it fills the column from the sets."""
    from ddcore.synthetic import SetMeta, SyntheticSet

    store = Store(tmp_path)
    run = store.create_run({"dataset": "mnist", "method": "dm", "ipc": 1})
    meta = SetMeta(dataset="mnist", method="dm", ipc=1, class_names=[str(i) for i in range(10)], mean=[0.1307],
                   std=[0.3081], iteration=7)
    import torch

    store.save_set(run.id, SyntheticSet(torch.zeros(10, 1, 28, 28), torch.arange(10), meta))
    store.close()
    db = sqlite3.connect(tmp_path / "studio.sqlite3")
    db.execute("ALTER TABLE runs DROP COLUMN set_iteration")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    assert Store(tmp_path).get_run(run.id).set_iteration == 7
    assert sqlite3.connect(tmp_path / "studio.sqlite3").execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
