"""Faults of the machine under the store: a disk that fills during a run, a store that is read-only, and a
server killed with SIGKILL in the middle of a distillation, an evaluation and a study. Each ends with a clear
message, no half-written file, an intact SQLite index, and every finished result still there.

The disk faults use real mounts (a small tmpfs, a read-only bind mount): they need root and mount permission,
which this project's machines and CI have; elsewhere they are skipped with the reason."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tests.tiny_method  # noqa: F401  (registers the 'tinypull' method)
from ddcore.data import load_dataset
from ddcore.platform.bridge import Studio
from ddcore.platform.store import Store
from ddcore.tasks.distill import DistillSpec
from tests.apptest_kit import ok, page
from tests.conftest import ROOT
from tests.evalkit import make_runs


def _mount(*args: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount here ({proc.stderr.strip() or proc.returncode}): disk faults need root")


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 3 MiB tmpfs: the store on it fills up for real (ENOSPC)."""
    target = tmp_path / "small"
    target.mkdir()
    _mount("-t", "tmpfs", "-o", "size=3m", "tmpfs", str(target))
    yield target
    subprocess.run(["umount", "-l", str(target)], capture_output=True)


@pytest.fixture
def read_only_store(tmp_path: Path):
    """A store with one finished run, seen through a read-only bind mount (EROFS, even for root)."""
    source, target = tmp_path / "source", tmp_path / "read-only"
    source.mkdir()
    target.mkdir()
    run_ids = make_runs(Store(source), ("random",))
    _mount("--bind", str(source), str(target))
    _mount("-o", "remount,bind,ro", str(target))
    yield target, run_ids
    subprocess.run(["umount", "-l", str(target)], capture_output=True)


def _integrity(root: Path) -> str:
    with sqlite3.connect(root / "studio.sqlite3") as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def _debris(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if ".tmp" in p.name]


def test_a_disk_that_fills_during_a_run_fails_it_clearly_and_leaves_no_debris(small_disk: Path) -> None:
    studio = Studio(small_disk)
    data = load_dataset("mnist")
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler = small_disk / "filler.bin"
    filler.write_bytes(b"\0" * max(0, free - 400_000))  # ~0.4 MB left: the first checkpoint (~1.6 MB) cannot fit
    spec = DistillSpec(dataset="mnist", method="tinypull", ipc=50, device="cpu", evaluate_after=False,
                       checkpoint_every=1, overrides={"iterations": 20})
    job = studio.submit(spec, data=data)
    snap = studio.manager.wait(job.id, timeout=120)
    assert snap.status == "failed" and "No space left on device" in snap.message, (snap.status, snap.message)
    view = studio.run_view(job.run_id)
    assert view.status == "failed" and "No space left" in view.record.message  # the page says why
    assert _debris(small_disk) == []  # no half-written set, checkpoint or snapshot
    filler.unlink()  # space again: the server carries on, and the failed run can be deleted at once
    studio.delete_run(job.run_id)
    assert studio.run(job.run_id) is None and _integrity(small_disk) == "ok"
    again = studio.submit(DistillSpec(dataset="mnist", method="tinypull", ipc=1, device="cpu", evaluate_after=False,
                                      overrides={"iterations": 3}), data=data)
    assert studio.manager.wait(again.id, timeout=60).status == "done"
    studio.manager.shutdown(wait=10)


def test_a_read_only_store_is_said_on_every_page(read_only_store, monkeypatch) -> None:
    root, _ = read_only_store
    monkeypatch.setenv("DDCORE_HOME", str(root))
    for name in ("distill.py", "gallery.py", "compare.py", "evaluate.py", "privacy.py", "continual.py", "nas.py"):
        at = ok(page(name).run())
        assert any("cannot be opened" in e.value and "DDCORE_HOME" in e.value for e in at.error), name


def test_an_unusable_home_is_said_on_every_page(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store folder should be")
    monkeypatch.setenv("DDCORE_HOME", str(blocker / "home"))
    for name in ("distill.py", "gallery.py", "compare.py", "evaluate.py"):
        at = ok(page(name).run())
        assert any("cannot be opened" in e.value for e in at.error), name


KILL_SCRIPT = r"""
import sys, time
sys.path.insert(0, {root!r})
from ddcore.data import load_dataset
from ddcore.platform.bridge import Studio
from ddcore.platform.records import Subject
from ddcore.tasks.distill import DistillSpec
from ddcore.tasks.evaluate import EvalSpec
studio = Studio({home!r})
studio.manager.slots["cpu"] = 3  # all three at once, so the kill finds each one mid-way
data = load_dataset("mnist")
studio.submit(DistillSpec(dataset="mnist", method="dm", ipc=1, preset="live", device="cpu", evaluate_after=False,
                          checkpoint_every=2, overrides={{"iterations": 100000, "net_width": 32, "batch_real": 8}}),
              data=data)  # live with a width-32 network and 8 real images per class: many iterations a second
studio.submit(EvalSpec(Subject.random("mnist", 10, 5), preset="custom-e400-t500-none"), data=data)
from ddcore.tasks.continual import ContinualSpec
studio.submit(ContinualSpec(dataset="mnist", methods=("random",), ipc=1, steps=2, orders=1, preset="tiny",
                            architecture="convnetw32"), data=data)
print("submitted", flush=True)
time.sleep(3600)
"""


def test_sigkill_mid_work_keeps_finished_results_and_marks_the_rest_interrupted(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store(home)
    finished = make_runs(store, ("random",))[0]  # work finished before the kill
    before = store.load_set(finished).images.clone()
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT.format(root=str(ROOT), home=str(home))],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "submitted"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until the distillation has a checkpoint and goes on past it
            runs = [r for r in store.list_runs() if r.method == "dm"]
            if runs and runs[0].iteration >= 3 and store.checkpoint_path(runs[0].id).exists():
                break
            time.sleep(0.2)
        else:
            pytest.fail("the distillation did not get going")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert _integrity(home) == "ok"
    studio = Studio(home)  # the restart
    try:
        (dm,) = [r for r in studio.runs() if r.method == "dm"]
        assert dm.status == "interrupted" and dm.resumable and "resume it" in dm.message
        assert studio.run(finished).status == "done"
        assert (studio.run_set(finished).images == before).all()  # finished work intact
        assert _debris(home) == []
        checkpoint = studio.store.load_checkpoint(dm.id)
        assert checkpoint is not None and checkpoint["method"]["iteration"] >= 2
        job = studio.resume_run(dm.id)  # and it continues from its checkpoint
        deadline = time.monotonic() + 60
        while job.snapshot().iteration <= checkpoint["method"]["iteration"]:
            assert time.monotonic() < deadline, "the resumed run did not continue"
            time.sleep(0.1)
        assert f"at iteration {checkpoint['method']['iteration']:,}" in studio.run(dm.id).message
    finally:
        studio.manager.shutdown(wait=10)


def test_writers_filling_one_cache_entry_at_once_each_leave_a_whole_file(tmp_path: Path) -> None:
    """Two jobs (or two test workers) that miss the same cache entry write it at once: the reader sees one writer's
    whole file, never a mix, and no temporary is left behind."""
    import threading

    from ddcore.atomic import write_atomic

    target = tmp_path / "entry.bin"
    payloads = [bytes([i]) * 2_000_000 for i in range(6)]
    seen: list[bytes] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            if target.exists():
                seen.append(target.read_bytes())

    failures: list[BaseException] = []

    def write(payload: bytes) -> None:
        try:
            for _ in range(5):
                write_atomic(target, payload)
        except BaseException as e:  # noqa: BLE001 - a writer's failure is the finding
            failures.append(e)

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    reader.join()
    assert not failures, failures
    assert target.read_bytes() in payloads
    assert seen and all(s in payloads for s in seen)
    assert [p.name for p in tmp_path.iterdir()] == ["entry.bin"]


def _cli_until_loaded(*args: str) -> subprocess.Popen:
    """`python -m ddcore *args`, returned once it has said where its data came from (the loop starts next)."""
    import select

    env = {**os.environ, "PYTHONPATH": str(ROOT), "DDCORE_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ddcore", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # a line at a time, never blocking past the deadline
        if select.select([proc.stderr], [], [], 1.0)[0]:
            line = proc.stderr.readline()
            if " from " in line:
                return proc
            if not line:
                break
    proc.kill()
    raise AssertionError(f"the CLI did not load its data: {proc.communicate()[1][-2000:]}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_cli_distillation_stopped_by_a_signal_saves_its_set(tmp_path: Path, sig: int) -> None:
    """Ctrl-C or SIGTERM (a closed terminal, a batch system's time limit) once lost a --no-store run whole."""
    from ddcore.synthetic import SyntheticSet

    out = tmp_path / "s.ddset"
    proc = _cli_until_loaded("distill", "--dataset", "mnist", "--method", "dm", "--ipc", "1", "--iterations", "100000",
                             "--no-store", "--out", str(out))
    try:
        time.sleep(2.0)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    assert "stopped at iteration" in stderr and "Traceback" not in stderr
    saved = SyntheticSet.load(out)
    assert saved.meta.iteration < 100000 and f"({saved.meta.iteration} iterations" in stdout


def test_ctrl_c_while_experts_train_stops_them(tmp_path: Path) -> None:
    """The stop reaches the artefact a run waits for: it once went on training MTT's experts to the end."""
    proc = _cli_until_loaded("distill", "--dataset", "mnist", "--method", "mtt", "--ipc", "1", "--set",
                             "expert_train_epochs=50", "num_experts=20", "--out", str(tmp_path / "s.ddset"))
    try:
        time.sleep(2.0)
        asked = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
        took = time.monotonic() - asked
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Expert training stopped" in stderr and "Traceback" not in stderr, stderr[-2000:]
    assert took < 60 and not (tmp_path / "s.ddset").exists()


def test_a_damaged_store_database_is_said_on_every_page(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "studio.sqlite3").write_bytes(b"not a database " * 300)
    monkeypatch.setenv("DDCORE_HOME", str(tmp_path))
    for name in ("distill.py", "gallery.py"):
        at = ok(page(name).run())
        assert any("cannot be opened" in e.value and "move that file aside" in e.value for e in at.error), name
