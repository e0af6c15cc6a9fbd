"""The run store: index, run files, thinned history, evaluations, and restart → interrupted → resume."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ddcore.platform.records import Subject, evaluation_key
from ddcore.platform.store import HistoryWriter, Store
from ddcore.synthetic import SetMeta, SyntheticSet
from tests.conftest import ROOT
from tests.evalkit import stored_result

SPEC = {"dataset": "mnist", "method": "dm", "ipc": 2, "preset": "quick", "architecture": "convnet", "seed": 0}


def test_create_list_filter_rename_delete(tmp_path: Path) -> None:
    store = Store(tmp_path)
    a = store.create_run(SPEC)
    b = store.create_run({**SPEC, "method": "dc", "ipc": 10}, name="my DC run")
    assert a.status == "queued" and a.name == "DM · MNIST · IPC 2" and (tmp_path / "runs" / a.id / "config.json").is_file()
    assert [r.id for r in store.list_runs()] == [b.id, a.id]  # newest first
    assert [r.id for r in store.list_runs(method="dc")] == [b.id]
    assert [r.id for r in store.list_runs(ipc=2, status=["queued", "done"])] == [a.id]
    store.rename_run(a.id, "  renamed  ")
    assert store.get_run(a.id).name == "renamed"
    with pytest.raises(ValueError):
        store.rename_run(a.id, "   ")
    store.update_run(b.id, status="done", iteration=5, total=5)
    store.delete_run(b.id)
    assert store.get_run(b.id) is None and not (tmp_path / "runs" / b.id).exists()
    with pytest.raises(ValueError):
        store.update_run(a.id, status="exploded")
    # A second store on the same folder (another process, another tab) sees the same index.
    assert [r.name for r in Store(tmp_path).list_runs()] == ["renamed"]


def test_set_metrics_and_evaluations_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path)
    run = store.create_run(SPEC)
    meta = SetMeta(dataset="mnist", method="dm", ipc=2, class_names=[str(i) for i in range(10)], mean=[0.1307],
                   std=[0.3081])
    s = SyntheticSet(torch.randn(20, 1, 28, 28), torch.arange(10).repeat_interleave(2), meta)
    store.save_set(run.id, s)
    assert torch.equal(store.load_set(run.id).images, s.images)
    store.append_metrics(run.id, [{"iteration": i, "loss": float(i) / 3} for i in range(1, 6)])
    store.append_metrics(run.id, [{"iteration": 6, "loss": float("nan"), "x": np.float32(2.5)}])
    rows = store.read_metrics(run.id)
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4, 5, 6] and rows[-1]["loss"] is None and rows[-1]["x"] == 2.5
    store.truncate_metrics(run.id, 3)
    assert [r["iteration"] for r in store.read_metrics(run.id)] == [1, 2, 3]

    fingerprint = store.get_run(run.id).fingerprint
    assert fingerprint  # save_set remembered what the run's images are
    subject = Subject.run(run.id, "mnist", fingerprint, iteration=0, ipc=2)
    key = evaluation_key(subject, "convnet", "quick", 2, {})
    assert store.get_evaluation(key) is None
    store.save_evaluation(key, subject, "convnet", "quick", 2, stored_result(91.2, 0.4, [90.8, 91.6]))
    found = store.get_evaluation(key)
    assert found.mean == pytest.approx(91.2) and found.std == pytest.approx(0.4) and found.subject == subject
    assert found.result.accuracies == [90.8, 91.6]
    assert store.get_run(run.id).accuracy == pytest.approx(91.2) and store.get_run(run.id).accuracy_seeds == 2
    assert [e.key for e in store.run_evaluations(run.id)] == [key]
    # New images (a resumed run): the stored accuracy no longer belongs to the run's set.
    store.save_set(run.id, SyntheticSet(s.images + 1, s.labels, meta))
    assert store.get_run(run.id).accuracy is None and store.get_evaluation(key) is not None


def test_history_stays_thin_and_evenly_spaced(tmp_path: Path) -> None:
    store = Store(tmp_path)
    run = store.create_run(SPEC)
    writer = HistoryWriter(store, run.id, max_frames=8)
    for it in range(0, 101):
        writer.offer(it, lambda it=it: (np.full((2, 4, 4, 1), it % 256, np.uint8), np.array([0, 1])))
    writer.offer(101, lambda: (np.zeros((2, 4, 4, 1), np.uint8), np.array([0, 1])), force=True)
    frames = store.frame_iterations(run.id)
    assert len(frames) <= 9 and frames[0] == 0 and frames[-1] == 101
    gaps = np.diff(frames[:-1])
    assert len(set(gaps.tolist())) == 1  # even spacing
    images, labels = store.load_frame(run.id, frames[1])
    assert images.dtype == np.uint8 and images[0, 0, 0, 0] == frames[1] % 256 and labels.tolist() == [0, 1]
    # A resumed run continues with the same stride.
    again = HistoryWriter(store, run.id, max_frames=8)
    assert again.stride == writer.stride


def test_runs_of_a_dead_process_are_marked_interrupted(tmp_path: Path) -> None:
    """Simulates a server killed mid-run: its process is gone, its runs are still 'running' in the index."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r});"
            "from ddcore.platform.store import Store;"
            f"s = Store({str(tmp_path)!r});"
            "r = s.create_run({'dataset': 'mnist', 'method': 'dm', 'ipc': 1});"
            "s.update_run(r.id, status='running', iteration=7); print(r.id)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    dead_id = out.stdout.strip()
    store = Store(tmp_path)
    mine = store.create_run(SPEC)
    store.update_run(mine.id, status="running")
    assert store.mark_interrupted() == [dead_id]
    assert store.get_run(dead_id).status == "interrupted" and store.get_run(dead_id).resumable
    assert store.get_run(mine.id).status == "running"  # this process is alive: its runs are left alone


@pytest.mark.slow
def test_killed_server_run_is_interrupted_then_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    """A real kill -9 of a process running a job; a new manager resumes the run where its checkpoint was."""
    import tests.tiny_method  # noqa: F401
    from ddcore.data import load_dataset
    from ddcore.platform.queue import JobManager
    from ddcore.tasks.distill import DistillSpec, resume_spec

    overrides = {"iterations": 60, "sleep_s": 0.04}
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "import tests.tiny_method\n"
            "from ddcore.platform.queue import JobManager\nfrom ddcore.platform.store import Store\n"
            "from ddcore.tasks.distill import DistillSpec\n"
            f"m = JobManager(Store({str(tmp_path)!r}))\n"
            f"job = m.submit(DistillSpec(dataset='mnist', method='tinypull', ipc=2, overrides={overrides!r}, "
            "device='cpu', checkpoint_every=5, evaluate_after=False))\n"
            "print(job.run_id, flush=True)\njob.finished.wait()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])})
    try:
        run_id = proc.stdout.readline().strip()
        store = Store(tmp_path)
        deadline = time.time() + 120
        while len(store.read_metrics(run_id)) < 12:  # metrics are flushed at each checkpoint (every 5 iterations)
            assert proc.poll() is None and time.time() < deadline, "the job process ended early"
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL: no chance to clean up, like a crashed server
        proc.wait(30)
    assert store.get_run(run_id).status == "running"  # what the dead process left behind
    assert store.checkpoint_path(run_id).is_file()

    manager = JobManager(Store(tmp_path))  # "restart the server"
    try:
        assert manager.interrupted == [run_id]
        assert manager.store.get_run(run_id).status == "interrupted"
        mnist = load_dataset("mnist")
        job = manager.submit(resume_spec(manager.store, run_id, evaluate_after=False), data=mnist)
        while job.snapshot().images is None:
            time.sleep(0.01)
        first = job.snapshot().iteration
        assert first >= 10 and first % 5 == 0  # from the checkpoint, not from zero
        snap = manager.wait(job.id, 120)
        assert snap.status == "done" and snap.iteration == 60
        rows = manager.store.read_metrics(run_id)
        assert [r["iteration"] for r in rows] == list(range(1, 61))  # no gap, no repeat across the crash

        # The resumed run ends exactly where an uninterrupted one does.
        straight = manager.submit(DistillSpec(dataset="mnist", method="tinypull", ipc=2,
                                              overrides={**overrides, "sleep_s": 0.0}, device="cpu",
                                              evaluate_after=False), data=mnist)
        manager.wait(straight.id, 60)
        assert torch.allclose(manager.store.load_set(run_id).images, manager.store.load_set(straight.run_id).images,
                              atol=1e-6)
    finally:
        manager.shutdown(wait=10)


def test_damaged_store_files_read_as_what_survives_or_say_what_to_do(tmp_path: Path) -> None:
    """A hand-edited or damaged store: stray lines and files are skipped, a damaged run spec still lists, and a
    database file that is not one is named with what to do, never a sqlite traceback."""
    store = Store(tmp_path / "s")
    run = store.create_run(SPEC)
    store.append_metrics(run.id, [{"iteration": 1, "loss": 0.5}])
    with open(store.run_dir(run.id) / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write("[1, 2]\n7\n")
    assert store.read_metrics(run.id) == [{"iteration": 1, "loss": 0.5}]
    store.add_frame(run.id, 3, np.zeros((1, 1, 4, 4), np.uint8), np.zeros(1))
    (store.history_dir(run.id) / "5 copy.npz").write_bytes(b"x")
    assert store.frame_iterations(run.id) == [3]
    store._execute("UPDATE runs SET spec = ? WHERE id = ?", ("{not json", run.id))
    assert store.get_run(run.id).spec == {} and [r.id for r in store.list_runs()] == [run.id]
    from ddcore.tasks.distill import resume_spec

    with pytest.raises(ValueError, match="has lost its settings"):
        resume_spec(store, run.id)
    store.close()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "studio.sqlite3").write_bytes(b"this is not a database, just text " * 200)
    with pytest.raises(RuntimeError, match="is not a readable DD Studio store.*move that file aside"):
        Store(tmp_path / "bad")
    out = subprocess.run([sys.executable, "-m", "ddcore", "distill", "--dataset", "mnist", "--method", "random",
                          "--ipc", "1", "--out", str(tmp_path / "r.ddset"), "--quiet"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, env={**os.environ, "DDCORE_HOME": str(tmp_path / "bad")})
    assert out.returncode == 2 and "move that file aside" in out.stderr and "Traceback" not in out.stderr
