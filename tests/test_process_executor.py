"""Jobs in worker processes (the Studio server's default): live progress and images relayed, pause / step / stop,
a failure's message and kept set, a killed worker, and the plugin methods a worker imports."""
from __future__ import annotations

import os
import signal
import time

import pytest

import tests.tiny_method  # noqa: F401  (registers 'tinypull': a worker must import it too)
from ddcore.platform.process_executor import ProcessExecutor
from ddcore.platform.queue import JobManager
from ddcore.platform.store import Store
from ddcore.tasks.distill import DistillSpec
from tests.waiting import until

pytestmark = pytest.mark.slow  # a spawned worker imports torch (~3 s)


@pytest.fixture(scope="module")
def executor():
    ex = ProcessExecutor(job_threads=1)
    yield ex
    ex.shutdown()


@pytest.fixture
def manager(executor, tmp_path):
    m = JobManager(Store(tmp_path / "store"), executor=executor)
    yield m
    m.shutdown(wait=10)


def tiny(iterations: int, **options) -> DistillSpec:
    return DistillSpec("mnist", "tinypull", 2, overrides={"iterations": iterations, **options}, device="cpu",
                       checkpoint_every=5, evaluate_after=False)


def test_a_distillation_runs_in_a_worker_process_and_is_seen_live(manager):
    # on the MLP: its set and random real are evaluated in a fraction of a second each (a ConvNet's take ~7 s)
    job = manager.submit(DistillSpec("mnist", "dm", 1, preset="live", architecture="mlp", overrides={"iterations": 100}))
    until(lambda: job.snapshot().frame >= 2, 120, "live images")
    live = job.snapshot()
    assert live.worker_pid and live.worker_pid != os.getpid() and live.images is not None
    snap = manager.wait(job.id, 300)
    assert snap.status == "done" and snap.executor == "process"
    run = manager.store.get_run(snap.run_id)
    assert run.status == "done" and run.iteration == 100 and manager.store.load_set(run.id) is not None
    evaluations = [manager.wait(f, 300) for f in snap.followups]  # the set and random real, in a worker too
    assert [e.status for e in evaluations] == ["done", "done"] and all(e.accuracy for e in evaluations)
    assert manager.store.get_run(run.id).accuracy == evaluations[0].accuracy


def test_pause_step_and_stop_reach_the_worker(manager):
    job = manager.submit(tiny(10_000, sleep_s=0.02))
    until(lambda: job.snapshot().iteration >= 3, 120, "the job to run")
    manager.pause(job.id)
    until(lambda: job.snapshot().status == "paused" and not job.snapshot().pausing, 30, "the worker to hold")
    held = job.snapshot().iteration
    time.sleep(0.5)
    assert job.snapshot().iteration == held
    manager.step(job.id)
    until(lambda: job.snapshot().iteration > held, 30, f"one step past iteration {held}")
    time.sleep(0.5)  # one step, not more: the worker holds again
    assert job.snapshot().iteration == held + 1 and job.snapshot().status == "paused", job.snapshot()
    manager.stop(job.id)
    snap = manager.wait(job.id, 60)
    run = manager.store.get_run(snap.run_id)
    assert snap.status == "stopped" and run.status == "stopped" and run.set_iteration == held + 1


def test_a_failing_task_says_what_failed_and_where(manager):
    snap = manager.wait(manager.submit(tiny(20, fail_at=4)).id, 120)
    assert snap.status == "failed"
    assert "RuntimeError: tiny pull failed on purpose at iteration 4 (at tiny_method.py:" in snap.message
    run = manager.store.get_run(snap.run_id)
    assert run.status == "failed" and run.resumable and manager.store.load_set(run.id) is not None


def test_a_killed_worker_fails_its_job_and_the_next_job_gets_a_new_one(manager):
    kept = manager.wait(manager.submit(tiny(3)).id, 120)
    job = manager.submit(tiny(100_000, sleep_s=0.01))
    until(lambda: job.snapshot().worker_pid and job.snapshot().iteration >= 2, 120, "the job to start")
    pid = job.snapshot().worker_pid
    os.kill(pid, signal.SIGKILL)
    snap = manager.wait(job.id, 60)
    assert snap.status == "failed" and "killed by signal 9" in snap.message
    assert manager.store.get_run(snap.run_id).status == "failed"
    assert manager.store.get_run(kept.run_id).status == "done"
    after = manager.wait(manager.submit(tiny(3)).id, 120)
    assert after.status == "done" and after.worker_pid != pid


@pytest.mark.parametrize("raw, expected", [("0", 0), ("2", 2), (" 1 ", 1), ("many", 1), ("-1", 1), ("9", 1)])
def test_warm_workers_reads_its_variable_and_says_when_it_falls_back(raw: str, expected: int, monkeypatch,
                                                                      capsys) -> None:
    from ddcore.platform.process_executor import WARM_VARIABLE, warm_workers

    monkeypatch.setenv(WARM_VARIABLE, raw)
    assert warm_workers() == expected
    said = capsys.readouterr().err
    assert (WARM_VARIABLE in said) == (raw.strip() not in {"0", "1", "2"}), said


def test_a_store_opened_with_no_warm_worker_starts_none_until_a_job(tmp_path, monkeypatch) -> None:
    """DDSTUDIO_WARM_WORKERS=0: opening a Studio costs no process; its first job starts one and runs as usual."""
    from ddcore.platform.bridge import Studio

    monkeypatch.setenv("DDSTUDIO_WARM_WORKERS", "0")
    studio = Studio(tmp_path)
    try:
        assert studio.manager.executor._idle == []
        job = studio.submit(DistillSpec(dataset="mnist", method="random", ipc=1, evaluate_after=False))
        until(lambda: job.status == "done", timeout=120, what="the first job on a cold executor")
        assert len(studio.manager.executor._idle) == 1  # its worker stays for the next job
    finally:
        studio.close()
