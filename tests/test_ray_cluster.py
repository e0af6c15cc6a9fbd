"""Jobs and sweeps on a real two-node Ray cluster started on loopback by the test (README's `ray start` commands),
with a worker killed mid-task; the cluster is shut down at the end."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")  # pinned in requirements.txt; a machine without it (the GPU box) skips these

from ddcore.platform.queue import JobManager  # noqa: E402
from ddcore.platform.ray_executor import SCRATCH_PREFIX, RayExecutor, sweep_dead_scratch  # noqa: E402
from ddcore.platform.store import Store  # noqa: E402
from ddcore.tasks.distill import DistillSpec  # noqa: E402
from ddcore.tasks.sweep import SweepSpec  # noqa: E402
from tests.raykit import LocalCluster, is_loopback  # noqa: E402
from tests.waiting import until  # noqa: E402

pytestmark = pytest.mark.slow

TINY_EVAL = dict(eval_seeds=1, eval_options={"epochs_no_aug": 5, "epochs_aug": 5, "test_limit": 500})


@pytest.fixture(scope="module")
def cluster():
    c = LocalCluster()
    try:
        yield c
    finally:
        ray.shutdown()
        c.stop()


@pytest.fixture(scope="module")
def executor(cluster):
    ex = RayExecutor(cluster.address, max_retries=2)
    yield ex
    ex.shutdown()


def _live_distill(iterations: int) -> DistillSpec:
    """DM's live preset on a width-32 ConvNet and 8 real images per class: ~10x cheaper iterations than the preset's."""
    return DistillSpec("mnist", "dm", 1, preset="live", overrides={"iterations": iterations, "net_width": 32,
                                                                   "batch_real": 8}, evaluate_after=False)


def test_only_the_scratch_of_workers_that_are_gone_is_swept(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead = tmp_path / f"{SCRATCH_PREFIX}{int(gone.stdout)}-abc"
    alive = tmp_path / f"{SCRATCH_PREFIX}{os.getpid()}-xyz"
    unnamed, other = tmp_path / f"{SCRATCH_PREFIX}0dwss8h6", tmp_path / "ddray-1234-abc"  # an older name; not ours
    for folder in (dead, alive, unnamed, other):
        (folder / "runs").mkdir(parents=True)
    assert sweep_dead_scratch(tmp_path) == [dead]
    assert not dead.exists() and alive.exists() and unnamed.exists() and other.exists()


def test_the_cluster_has_two_nodes_on_loopback(executor):
    nodes = executor.nodes()
    assert len(nodes) == 2
    assert all(n["address"].startswith("127.") for n in nodes), nodes
    assert executor.capacity("cpu") == 2
    assert ray.util.get_node_ip_address().startswith("127.")  # this process joined on loopback too


def test_a_sweep_on_the_cluster_gives_the_numbers_of_the_same_sweep_here(executor, tmp_path):
    spec = SweepSpec(("mnist",), ("dm",), (1,), seeds=(0, 1), presets=("live",), overrides={"iterations": 2},
                     eval_architectures=("convnetw32",), **TINY_EVAL)  # width 32: a quarter of the default's time
    remote_store = Store(tmp_path / "remote")
    remote = JobManager(remote_store, executors={"ray": executor})
    sweep = remote.submit(spec)  # executor 'auto': the connected cluster
    done = remote.wait(sweep.id, 600)
    assert done.status == "done", done.message
    children = [j for j in remote.jobs() if j.kind != "sweep"]
    assert {j.executor for j in children} == {"ray"} and len(children) == 6  # 2 distills, 2 sets + 2 baselines
    assert len({j.snapshot().where.split(" · ")[0] for j in children}) == 2  # both nodes worked
    runs = remote_store.list_runs()
    assert len(runs) == 2 and all(r.status == "done" and r.fingerprint for r in runs)
    assert len(remote_store.list_evaluations()) == 4
    assert remote_store.list_artefacts("sweep")

    local = JobManager(Store(tmp_path / "local"))
    here = local.wait(local.submit(spec).id, 600)
    assert here.status == "done"
    on_cluster = {(c.cell, c.accuracy, c.baseline) for c in done.result.cells}
    assert on_cluster == {(c.cell, c.accuracy, c.baseline) for c in here.result.cells}
    assert all(c.accuracy and c.baseline for c in here.result.cells)
    remote.shutdown(), local.shutdown()


def test_nothing_in_the_cluster_talks_to_any_address_but_loopback(executor, cluster):
    """After the sweep above: every established TCP connection of the nodes, the workers and this driver."""
    connections = cluster.connections()
    assert connections  # the check looked at real sockets
    outside = [c for c in connections if not (is_loopback(c[0]) and is_loopback(c[1]))]
    assert not outside, outside


def test_a_worker_killed_mid_task_is_retried_and_the_run_completes(executor, tmp_path):
    store = Store(tmp_path / "s")
    manager = JobManager(store, executors={"ray": executor})
    job = manager.submit(_live_distill(100), executor="ray")  # killed at iteration 3 or so: mid-task
    until(lambda: job.snapshot().worker_pid and job.snapshot().iteration >= 3, 180, "the first attempt to start")
    first = job.snapshot()
    assert first.images is not None and first.frame > 0  # the live images came through the relay
    scratch = list(Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}{first.worker_pid}-*"))
    assert len(scratch) == 1 and (scratch[0] / "studio.sqlite3").exists()  # the task's scratch store, named by its pid
    os.kill(first.worker_pid, signal.SIGKILL)
    snap = manager.wait(job.id, 300)
    assert snap.status == "done", snap.message
    assert snap.attempt == 2 and snap.worker_pid != first.worker_pid
    assert not scratch[0].exists()  # the retry's worker removed what the killed one left
    run = store.get_run(snap.run_id)
    assert run.status == "done" and run.iteration == 100 and store.load_set(run.id) is not None
    manager.shutdown()


def test_a_worker_dying_on_every_attempt_fails_the_job_with_the_reason_and_loses_nothing(cluster, tmp_path):
    no_retries = RayExecutor(cluster.address, max_retries=0)
    store = Store(tmp_path / "s")
    manager = JobManager(store, executors={"ray": no_retries})
    kept = manager.wait(manager.submit(_live_distill(3), executor="ray").id, 300)  # a run already stored
    assert kept.status == "done"
    before = store.get_run(kept.run_id)
    job = manager.submit(_live_distill(500), executor="ray")
    until(lambda: job.snapshot().worker_pid and job.snapshot().iteration >= 2, 180, "the job to start")
    os.kill(job.snapshot().worker_pid, signal.SIGKILL)
    snap = manager.wait(job.id, 120)
    assert snap.status == "failed" and "worker running it died" in snap.message
    run = store.get_run(snap.run_id)
    assert run.status == "failed" and "died" in run.message
    after = store.get_run(kept.run_id)
    assert (after.status, after.fingerprint, after.iteration) == (before.status, before.fingerprint, before.iteration)
    assert store.load_set(kept.run_id) is not None
    manager.shutdown()
    no_retries.shutdown()


def test_pause_step_and_stop_reach_a_job_on_the_cluster(executor, tmp_path):
    store = Store(tmp_path / "s")
    manager = JobManager(store, executors={"ray": executor})
    job = manager.submit(_live_distill(5000), executor="ray")
    until(lambda: job.snapshot().iteration >= 2, 180, "the job to run")
    manager.pause(job.id)
    until(lambda: job.snapshot().status == "paused" and not job.snapshot().pausing, 30, "the worker to hold")
    held = job.snapshot().iteration
    time.sleep(1.0)
    assert job.snapshot().iteration == held  # paused on the worker, not only here
    manager.step(job.id)
    until(lambda: job.snapshot().iteration == held + 1, 30, "one step")
    time.sleep(1.0)
    assert job.snapshot().iteration == held + 1
    manager.stop(job.id)
    snap = manager.wait(job.id, 60)
    assert snap.status == "stopped"
    run = store.get_run(snap.run_id)
    assert run.status == "stopped" and run.set_iteration == held + 1 and run.resumable
    manager.shutdown()
