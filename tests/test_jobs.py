"""The job queue: order and positions, pause/step/resume, stop and cancel, failures captured,
several concurrent readers, evaluation jobs whose stored results are reused."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import tests.tiny_method  # noqa: F401  (registers the 'tinypull' method)
from ddcore.data import load_dataset
from ddcore.methods.random import random_real_set
from ddcore.platform.queue import JobManager
from ddcore.platform.records import Subject
from ddcore.platform.store import Store
from ddcore.registry import UnknownNameError
from ddcore.tasks.distill import DistillSpec
from ddcore.tasks.evaluate import EvalSpec


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


@pytest.fixture
def manager(tmp_path: Path):
    m = JobManager(Store(tmp_path))
    yield m
    m.shutdown(wait=10)


def tiny(iterations: int = 10, **overrides) -> DistillSpec:
    return DistillSpec(dataset="mnist", method="tinypull", ipc=2, overrides={"iterations": iterations, **overrides},
                       device="cpu", checkpoint_every=5, evaluate_after=False)


def wait_until(predicate, timeout: float = 30.0, every: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(every)


def test_queue_runs_in_order_with_visible_positions(manager: JobManager, mnist) -> None:
    jobs = [manager.submit(tiny(8, sleep_s=0.03), data=mnist) for _ in range(3)]
    wait_until(lambda: jobs[0].status == "running")
    assert [j.snapshot().position for j in jobs] == [None, 1, 2]
    assert [j.snapshot().status for j in jobs[1:]] == ["queued", "queued"]
    finished = [manager.wait(j.id, 60) for j in jobs]
    assert [s.status for s in finished] == ["done"] * 3
    assert finished[0].updated <= finished[1].updated <= finished[2].updated  # one CPU slot: strictly in turn
    assert all(s.iteration == s.total == 8 and len(s.metrics) == 8 for s in finished)
    store = manager.store
    for j in jobs:
        record = store.get_run(j.run_id)
        assert record.status == "done" and record.iteration == 8
        assert store.load_set(j.run_id).meta.iteration == 8
        assert [r["iteration"] for r in store.read_metrics(j.run_id)] == list(range(1, 9))
        assert store.frame_iterations(j.run_id)[0] == 0 and store.frame_iterations(j.run_id)[-1] == 8


def test_pause_step_resume_and_stop(manager: JobManager, mnist) -> None:
    job = manager.submit(tiny(400, sleep_s=0.01), data=mnist)
    wait_until(lambda: job.snapshot().iteration >= 2)
    manager.pause(job.id)
    wait_until(lambda: job.snapshot().status == "paused" and job.holding)
    held = job.snapshot().iteration
    time.sleep(0.3)
    assert job.snapshot().iteration == held  # really paused
    manager.step(job.id)
    wait_until(lambda: job.snapshot().iteration == held + 1 and job.holding)
    time.sleep(0.2)
    assert job.snapshot().iteration == held + 1 and job.snapshot().status == "paused"
    manager.resume(job.id)
    wait_until(lambda: job.snapshot().iteration > held + 3)
    assert job.snapshot().status == "running"
    manager.stop(job.id)
    snap = manager.wait(job.id, 30)
    assert snap.status == "stopped" and snap.iteration < 400
    record = manager.store.get_run(job.run_id)
    assert record.status == "stopped" and record.resumable
    assert manager.store.load_set(job.run_id).meta.iteration == snap.iteration
    with pytest.raises(ValueError):
        manager.step(job.id)  # only while paused


def test_cancel_a_queued_job_and_capture_failures(manager: JobManager, mnist) -> None:
    running = manager.submit(tiny(300, sleep_s=0.01), data=mnist)
    failing = manager.submit(tiny(20, fail_at=4), data=mnist)
    cancelled = manager.submit(tiny(20), data=mnist)
    diverging = manager.submit(tiny(20, diverge_at=6), data=mnist)
    wait_until(lambda: running.status == "running")
    manager.cancel(cancelled.id)
    assert cancelled.snapshot().status == "cancelled"
    assert diverging.snapshot().position == 2  # behind `failing`, the cancelled one no longer counts
    manager.stop(running.id)
    bad = manager.wait(failing.id, 30)
    assert bad.status == "failed" and "failed on purpose at iteration 4" in bad.message
    record = manager.store.get_run(failing.run_id)
    assert record.status == "failed" and "on purpose" in record.message
    assert manager.store.load_set(failing.run_id).meta.iteration == 3  # the last good set is kept
    div = manager.wait(diverging.id, 30)
    assert div.status == "failed" and "DivergenceError" in div.message
    assert manager.store.get_run(cancelled.run_id).status == "cancelled"
    assert not cancelled.started
    # The manager keeps working after failures.
    after = manager.submit(tiny(3), data=mnist)
    assert manager.wait(after.id, 30).status == "done"
    runs_before = len(manager.store.list_runs())
    with pytest.raises(UnknownNameError, match="Unknown method 'no-such-method'"):
        manager.submit(DistillSpec(dataset="mnist", method="no-such-method", ipc=2), data=mnist)
    with pytest.raises(ValueError, match="IPC must be a whole number from 1 to 10,000, not 0"):
        manager.submit(DistillSpec(dataset="mnist", method="tinypull", ipc=0), data=mnist)
    assert len(manager.store.list_runs()) == runs_before  # refused before anything was stored


def test_two_concurrent_readers_see_consistent_snapshots(manager: JobManager, mnist) -> None:
    job = manager.submit(tiny(60, sleep_s=0.005), data=mnist)
    seen: list[list[tuple[int, int]]] = [[], []]
    errors: list[BaseException] = []

    def reader(k: int) -> None:
        try:
            while not job.finished.is_set():
                s = job.snapshot()
                if s.images is not None:
                    assert s.images.shape == (20, 28, 28, 1) and s.images.dtype == np.uint8
                    assert len(s.labels) == 20
                    seen[k].append((s.frame, s.iteration))
                time.sleep(0.002)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    manager.wait(job.id, 60)
    for t in threads:
        t.join(10)
    assert not errors
    for frames in seen:
        assert len(frames) > 3
        assert frames == sorted(frames)  # frame numbers and iterations only ever grow
    assert job.snapshot().iteration == 60


def test_a_second_manager_on_the_same_store_sees_the_runs(manager: JobManager, mnist, tmp_path: Path) -> None:
    job = manager.submit(tiny(3), data=mnist)
    manager.wait(job.id, 30)
    other = JobManager(Store(tmp_path))  # another server process on the same home
    assert other.interrupted == []  # this process is alive: nothing is wrongly marked
    assert other.store.get_run(job.run_id).status == "done"


def test_random_real_baseline_set(mnist) -> None:
    s = random_real_set(mnist, 3, seed=1)
    assert len(s) == 30 and s.labels.tolist() == [c for c in range(10) for _ in range(3)]
    assert np.array_equal(random_real_set(mnist, 3, seed=1).to_uint8(), s.to_uint8())


def test_evaluation_subjects_are_validated_and_keyed_to_content(manager: JobManager, mnist) -> None:
    from ddcore.tasks.evaluate import prepare_spec

    for bad in (dict(kind="nothing", dataset="mnist"), dict(kind="random", dataset="mnist", ipc=0),
                dict(kind="run", dataset="mnist")):
        with pytest.raises(ValueError):
            Subject(**bad)
    random_spec, _ = prepare_spec(EvalSpec(Subject.random("mnist", 10, 0)), manager.store)
    assert random_spec.seeds == 1 and random_spec.subject.fingerprint  # the quick preset trains one network
    assert random_spec.key() != prepare_spec(EvalSpec(Subject.random("mnist", 10, 1)), manager.store)[0].key()
    assert random_spec.key() != prepare_spec(EvalSpec(Subject.random("mnist", 10, 0), preset="paper"),
                                             manager.store)[0].key()
    with pytest.raises(ValueError, match="prepared spec"):
        EvalSpec(Subject.random("mnist", 10, 0)).key()


@pytest.mark.slow
def test_evaluation_job_stores_its_result_and_reuses_it(manager: JobManager, mnist) -> None:
    run = manager.submit(tiny(3), data=mnist)
    manager.wait(run.id, 30)
    # tinypull's sets are evaluated with augmentation ('auto'), so epochs_aug is the count that runs (quick: 100)
    fast = {"epochs_no_aug": 3, "epochs_aug": 3, "test_limit": 200}
    spec = EvalSpec(Subject.run(run.run_id), seeds=1, device="cpu", options=fast)
    job = manager.submit(spec)
    assert manager.submit(spec) is job  # the same evaluation in flight is shared
    snap = manager.wait(job.id, 180)
    assert snap.status == "done" and not snap.reused, snap.message
    assert 0.0 <= snap.accuracy <= 100.0
    stored = manager.store.get_evaluation(job.spec.key())
    assert stored is not None and stored.run_id == run.run_id and stored.mean == pytest.approx(snap.accuracy)
    assert stored.subject.iteration == 3 and stored.subject.fingerprint == manager.store.get_run(run.run_id).fingerprint
    assert manager.store.get_run(run.run_id).accuracy == pytest.approx(snap.accuracy)
    assert manager.submit(spec) is job  # asked again on this server: the same (finished) job, no duplicate
    fresh = JobManager(manager.store)  # another server on the same store reuses the stored result
    again = fresh.submit(spec)
    assert again.snapshot().status == "done" and again.snapshot().reused
    assert again.snapshot().accuracy == pytest.approx(snap.accuracy)
    # An evaluation of a run that does not exist is refused at once.
    with pytest.raises(KeyError):
        manager.submit(EvalSpec(Subject.run("no-such-run")))


@pytest.mark.slow
def test_a_resumed_run_is_not_shown_the_accuracy_of_its_earlier_images(manager: JobManager, mnist) -> None:
    """Evaluations are keyed to the images: after a resume the run's accuracy is that of its new images."""
    from ddcore.tasks.distill import resume_spec

    job = manager.submit(tiny(200, sleep_s=0.01), data=mnist)
    wait_until(lambda: job.snapshot().iteration >= 6)
    manager.stop(job.id)
    manager.wait(job.id, 30)
    fast = {"epochs_no_aug": 2, "epochs_aug": 2, "test_limit": 200}  # both: tinypull's sets are augmented
    first = manager.wait(manager.submit(EvalSpec(Subject.run(job.run_id), seeds=1, device="cpu", options=fast)).id, 180)
    assert manager.store.get_run(job.run_id).accuracy == pytest.approx(first.accuracy)
    resumed = manager.submit(resume_spec(manager.store, job.run_id, evaluate_after=False).__class__(
        **{**resume_spec(manager.store, job.run_id).to_dict(), "evaluate_after": False,
           "overrides": {"iterations": 200, "sleep_s": 0.0}}), data=mnist)
    assert manager.wait(resumed.id, 60).status == "done"
    record = manager.store.get_run(job.run_id)
    assert record.iteration == 200 and record.accuracy is None  # the stored accuracy measured iteration ~6's images
    old = manager.store.run_evaluations(job.run_id)
    assert len(old) == 1 and old[0].subject.iteration == first.result.subject.iteration < 200


def test_a_resume_that_never_runs_leaves_the_run_resumable(manager: JobManager, mnist) -> None:
    """Cancelling a queued resume, or a resume refused at submission (a device this host lacks), puts the run
    back as it was: still stopped, still resumable."""
    from ddcore.tasks.distill import resume_spec

    job = manager.submit(tiny(200, sleep_s=0.01), data=mnist)
    wait_until(lambda: job.snapshot().iteration >= 3)
    manager.stop(job.id)
    manager.wait(job.id, 30)
    blocker = manager.submit(tiny(300, sleep_s=0.01), data=mnist)  # holds the CPU slot: the resume stays queued
    wait_until(lambda: blocker.status == "running")
    queued = manager.submit(resume_spec(manager.store, job.run_id, evaluate_after=False), data=mnist)
    assert queued.status == "queued" and manager.store.get_run(job.run_id).status == "queued"
    manager.stop(queued.id)
    assert queued.status == "cancelled"
    assert manager.store.get_run(job.run_id).status == "stopped" and manager.store.get_run(job.run_id).resumable
    manager.stop(blocker.id)
    if not torch.cuda.is_available():
        on_gpu = DistillSpec.from_dict({**resume_spec(manager.store, job.run_id).to_dict(), "device": "cuda",
                                        "evaluate_after": False})
        with pytest.raises(RuntimeError):
            manager.submit(on_gpu, data=mnist)
        assert manager.store.get_run(job.run_id).status == "stopped"


def test_an_evaluation_queued_before_the_images_changed_is_not_stored_under_the_old_images(manager: JobManager,
                                                                                             mnist) -> None:
    from ddcore.platform.recorder import EventControl, NullRecorder
    from ddcore.tasks.base import TaskContext
    from ddcore.tasks.evaluate import EvaluateTask, prepare_spec

    run = manager.submit(tiny(3), data=mnist)
    manager.wait(run.id, 30)
    spec, _ = prepare_spec(
        EvalSpec(Subject.run(run.run_id), seeds=1, device="cpu", options={"epochs_no_aug": 1, "test_limit": 100}),
        manager.store)
    changed = manager.store.load_set(run.run_id)
    changed.images += 0.5  # what a resumed run does to the stored set meanwhile
    manager.store.save_set(run.run_id, changed)
    ctx = TaskContext(store=manager.store, recorder=NullRecorder(), control=EventControl())
    with pytest.raises(RuntimeError, match="changed since this evaluation was queued"):
        EvaluateTask().run(spec, ctx)
    assert manager.store.list_evaluations() == []


def test_ctrl_c_in_the_loop_saves_the_run_as_stopped(mnist, tmp_path: Path) -> None:
    from ddcore.tasks.distill import distil

    store = Store(tmp_path)
    spec = tiny(50)
    run_id = store.create_run(spec.stored()).id

    def interrupt(runner, row):
        if row["iteration"] == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distil(spec, mnist, store=store, run_id=run_id, on_step=interrupt)
    record = store.get_run(run_id)
    assert record.status == "stopped" and record.resumable and store.load_set(run_id).meta.iteration == 4
    assert [r["iteration"] for r in store.read_metrics(run_id)] == [1, 2, 3, 4]


def test_queued_jobs_are_shared_fairly_between_sessions(manager: JobManager, mnist) -> None:
    """Session A queues three runs, then session B one: B's run goes second, not fourth."""
    started: list[str] = []
    a = [manager.submit(tiny(3, sleep_s=0.05), data=mnist, owner="session-a", start_paused=i == 0) for i in range(3)]
    b = manager.submit(tiny(3, sleep_s=0.05), data=mnist, owner="session-b")
    for job in a + [b]:
        assert job.snapshot().owner in ("session-a", "session-b")
    wait_until(lambda: a[0].status == "paused")  # holding the one slot
    assert [j.snapshot().position for j in (b, a[1], a[2])] == [1, 2, 3]  # the places shown are the starting order
    manager.resume(a[0].id)

    def order() -> list[str]:
        for job in a + [b]:
            if job.started and job.id not in started:
                started.append(job.id)
        return started

    wait_until(lambda: len(order()) == 4 and all(j.finished.is_set() for j in a + [b]), timeout=60)
    assert started[:2] == [a[0].id, b.id], started


def test_cpu_slots_and_threads_follow_the_cores(monkeypatch) -> None:
    from ddcore import device
    from ddcore.platform import queue

    monkeypatch.setattr(device, "PROCESS_CORES", list(range(16)))  # the cores this process may use, not the host's
    monkeypatch.setattr(queue.os, "cpu_count", lambda: 64)
    monkeypatch.delenv("DDCORE_JOB_THREADS", raising=False)
    monkeypatch.delenv(queue.CPU_SLOTS_VARIABLE, raising=False)
    assert queue.cpu_slots() == 3 and queue.job_threads(3) == 5  # 15 spare cores: three jobs of five threads
    monkeypatch.setattr(device, "PROCESS_CORES", [0, 1])
    assert queue.cpu_slots() == 1 and queue.job_threads(1) == 1  # a laptop: one job at a time, one core spare
    monkeypatch.setenv(queue.CPU_SLOTS_VARIABLE, "2")
    assert queue.cpu_slots() == 2


def test_cpu_jobs_run_off_the_core_kept_for_browsers(manager: JobManager, mnist) -> None:
    import os

    from ddcore.device import ui_and_job_cores

    split = ui_and_job_cores()
    if split is None:
        pytest.skip("a single core, or no thread affinity on this system: nothing to keep apart")
    job = manager.submit(tiny(400, sleep_s=0.01), data=mnist)
    wait_until(lambda: job.snapshot().iteration >= 1)
    worker = next(t for t in threading.enumerate() if t.name == f"ddjob-{job.id}")
    assert os.sched_getaffinity(worker.native_id) == split[1]  # the job's cores, not the browsers' core
    assert os.sched_getaffinity(threading.get_native_id()) != split[1] or len(split[1]) > 1  # this thread is free
    manager.stop(job.id)
    manager.wait(job.id, 30)
