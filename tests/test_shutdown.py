"""A clean stop loses nothing: running distillations are saved at the iteration they reached, queued jobs
(distillations and evaluations) are written down, and the next server on the store queues them all again.
Checked on the job manager directly, and on the real server stopped with SIGTERM and started again."""
from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

import tests.tiny_method  # noqa: F401  (registers the 'tinypull' method)
from ddcore.data import load_dataset
from ddcore.platform.queue import JobManager
from ddcore.platform.records import Subject
from ddcore.platform.store import Store
from ddcore.tasks.distill import DistillSpec
from ddcore.tasks.evaluate import EvalSpec
from tests.conftest import StreamlitServer, wait_for_app
from tests.evalkit import tiny_preset


def _wait(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def _tiny(seed: int, iterations: int = 400) -> DistillSpec:
    return DistillSpec(dataset="mnist", method="tinypull", ipc=1, seed=seed, device="cpu", evaluate_after=False,
                       checkpoint_every=1000, overrides={"iterations": iterations, "sleep_s": 0.02})


def test_shutdown_keeps_every_job_and_a_restart_queues_them_again(tmp_path: Path) -> None:
    data = load_dataset("mnist")
    store = Store(tmp_path)
    manager = JobManager(store)
    running = manager.submit(_tiny(0), data=data)
    queued = manager.submit(_tiny(1, iterations=5), data=data)
    evaluation = manager.submit(EvalSpec(Subject.random("mnist", 1, 0), preset=tiny_preset()), data=data)
    _wait(lambda: running.snapshot().iteration >= 5)
    manager.shutdown(wait=30, keep_pending=True)

    record = store.get_run(running.run_id)
    reached = record.iteration
    assert record.status == "interrupted" and f"shut down at iteration {reached:,}" in record.message
    assert store.load_checkpoint(running.run_id)["method"]["iteration"] == reached  # saved where it stopped
    assert store.get_run(queued.run_id).status in ("queued", "interrupted")  # not cancelled: resumable
    assert store.pending_path.exists()

    again = JobManager(Store(tmp_path))
    try:
        report = again.restore_pending()
        assert len(report) == 3 and all("queued again" in line for line in report), report
        assert not store.pending_path.exists()
        jobs = {j.run_id or j.kind: j for j in again.jobs()}
        resumed = jobs[running.run_id]
        _wait(lambda: resumed.snapshot().status == "running" and resumed.snapshot().iteration >= reached)
        assert f"at iteration {reached:,}" in store.get_run(running.run_id).message  # says where it resumed
        again.stop(resumed.id)
        assert again.wait(jobs[queued.run_id].id, 60).status == "done"
        assert again.wait(jobs["evaluate"].id, 120).status == "done"
        assert store.get_evaluation(evaluation.key) is not None
    finally:
        again.shutdown(wait=10)


def test_a_damaged_pending_list_never_blocks_a_start(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.pending_path.write_text("{not json")
    assert JobManager(store).restore_pending() == [] and not store.pending_path.exists()
    store.save_pending([{"kind": "distill", "run_id": "gone", "name": "a deleted run"}])
    report = JobManager(store).restore_pending()
    assert len(report) == 1 and report[0].startswith("a deleted run: not restored")


@pytest.mark.browser
def test_sigterm_on_the_server_saves_the_run_and_the_restart_continues_it(page, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    server = StreamlitServer(home)
    try:
        page.goto(f"{server.url}/distill?ipc=1")
        wait_for_app(page)
        page.get_by_role("button", name=re.compile("Start")).first.click()
        store = Store(home)
        _wait(lambda: any(r.iteration >= 3 for r in store.list_runs()), timeout=120)
        os.killpg(server.proc.pid, signal.SIGTERM)
        server.proc.wait(60)
    finally:
        server.stop()
    store = Store(home)
    (run,) = store.list_runs()
    assert run.status == "interrupted" and "shut down at iteration" in run.message, (run.status, run.message)
    reached = run.iteration
    assert store.load_checkpoint(run.id)["method"]["iteration"] == reached
    assert store.pending_path.exists()

    server = StreamlitServer(home, port=int(page.url.split(":")[2].split("/")[0]))  # the same address
    try:
        # the open page reconnects by itself; its session creates the server's Studio, which restores the run
        _wait(lambda: Store(home).get_run(run.id).status == "running"
              and Store(home).get_run(run.id).iteration > reached, timeout=120)
        wait_for_app(page)
        page.locator("[data-testid='stImage'] img").first.wait_for()  # the reconnected page shows the run again
    finally:
        server.stop()


def test_a_slow_run_is_checkpointed_by_time_as_well(tmp_path: Path, monkeypatch) -> None:
    """Checkpoints come every `checkpoint_every` iterations or CHECKPOINT_EVERY_S seconds, whichever is first,
    so a killed server loses under a minute of work even when iterations are slow."""
    from ddcore.platform import recorder

    monkeypatch.setattr(recorder, "CHECKPOINT_EVERY_S", 0.3)
    store = Store(tmp_path)
    manager = JobManager(store)
    try:
        job = manager.submit(_tiny(0, iterations=1000), data=load_dataset("mnist"))  # checkpoint_every=1000
        _wait(lambda: store.checkpoint_path(job.run_id).exists(), timeout=30)
        first = store.load_checkpoint(job.run_id)["method"]["iteration"]
        assert 0 < first < 1000
        _wait(lambda: store.load_checkpoint(job.run_id)["method"]["iteration"] > first, timeout=30)
    finally:
        manager.shutdown(wait=10)
