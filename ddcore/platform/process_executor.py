"""The process executor: portable jobs (distill, evaluate, expert training) run in worker processes on this machine.

Why: a job thread shares the server's interpreter lock with every page run. Measured with 20 sessions watching a
live DM run (benchmarks/load.py --clients protocol), the in-process job kept 23% of its speed although it had a core
to itself: each of its thousands of small torch calls per second waits for the lock the page runs hold. In a process
of its own the job holds its own lock; pages read its snapshots exactly as before.

    manager = JobManager(store, executor=ProcessExecutor(job_threads=1))

Workers are spawned once (torch imported once) and reused; each is pinned to the cores kept for jobs. A worker opens
the same store (SQLite in WAL mode is safe across processes), so checkpoints and sets land where they always do. The
job's progress, metrics, live images and Pause / Step / Stop travel over the worker's pipe (ddcore.platform.relay).
A worker that dies fails its job with the reason; a new worker takes the next job.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from .executors import ThreadExecutor
from .relay import NO_CONTROL, RelayRecorder, apply_event, control_of, portable_exception, take_steps

PROCESSES_VARIABLE = "DDSTUDIO_JOB_PROCESSES"  # '0': jobs run on threads of the server process
WARM_VARIABLE = "DDSTUDIO_WARM_WORKERS"  # workers started with the server, before any job ('0': on the first job)
RELAY_EVERY_S = 0.1  # a pipe is cheap: the live view gets images as often as the task publishes them


class WorkerLost(RuntimeError):
    """The worker process running a job died."""


class SubmitterGone(BaseException):
    """The process that sent the job is gone (killed): the task unwinds as interrupted, saving its run as stopped,
    resumable, rather than as failed."""


def processes_enabled() -> bool:
    return os.environ.get(PROCESSES_VARIABLE, "1") != "0"


def warm_workers() -> int:
    """How many workers a server starts before its first job (default 1: the first Start shows images in 0.5 s, not
    1.9 s). 0 costs nothing until a job comes: a store opened only to read, or a test suite opening a server per
    test, need not pay torch's import and a dataset load in a process that may never run anything."""
    raw = os.environ.get(WARM_VARIABLE, "1").strip()
    if raw.isdigit() and int(raw) <= 4:
        return int(raw)
    print(f"[ddstudio] {WARM_VARIABLE}={raw!r} is not a number of workers from 0 to 4; starting 1", file=sys.stderr)
    return 1


class _Worker:
    """A fresh interpreter (`python -m ddcore.platform.process_executor FD ...`) joined by a socket pair: not
    multiprocessing's spawn, which re-imports the parent's __main__ (Streamlit swaps a page script in there)."""

    def __init__(self, cores: list[int] | None, threads: int) -> None:
        mine, theirs = socket.socketpair()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))  # plugins import there too
        from .store import process_owner

        command = [sys.executable, "-m", "ddcore.platform.process_executor", str(theirs.fileno()),
                   json.dumps(cores), str(int(threads)), process_owner()]
        # in the server's process group, so a SIGKILL of the group ends it too; it ignores SIGTERM and Ctrl-C, which
        # the server handles by asking the job to stop and save (worker_main)
        self.process = subprocess.Popen(command, pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self.conn = Connection(mine.detach())

    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def exitcode(self) -> int | None:
        try:
            self.process.wait(1)
        except subprocess.TimeoutExpired:
            pass
        return self.process.returncode

    def stop(self) -> None:
        try:
            self.conn.send(("exit",))
        except (OSError, EOFError):
            pass
        try:
            self.process.wait(2)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.conn.close()


class ProcessExecutor(ThreadExecutor):
    """Each portable job runs in an idle worker process (spawned when none is idle); the queue's slots limit how many."""

    name = "process"
    remote = True

    def __init__(self, job_threads: int = 1, prestart: int = 1) -> None:
        super().__init__()
        from ..device import ui_and_job_cores

        split = ui_and_job_cores()
        self._cores = sorted(split[1]) if split else None
        self._job_threads = int(job_threads)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(prestart):  # torch's import is paid now, not on the first Start
            self._idle.append(self._spawn())

    def _spawn(self) -> _Worker:
        return _Worker(self._cores, self._job_threads)

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
        return self._spawn()

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed and worker.alive():
                self._idle.append(worker)
                return
        worker.stop()

    def run(self, task: Any, spec: Any, ctx: Any, job: Any) -> Any:
        worker = self._take()
        artefact_keys = {kind: record.key for kind, record in ctx.artefacts.items()}
        steps_granted, sent, attempts = 0, None, 0
        try:
            worker.conn.send(("run", task.kind, spec, str(ctx.store.root), ctx.run_id, artefact_keys, job.id,
                              plugin_modules()))
            while True:
                if worker.conn.poll(RELAY_EVERY_S):
                    try:
                        message = worker.conn.recv()
                    except (EOFError, OSError):
                        raise WorkerLost(self._death(worker)) from None
                    if message[0] == "events":
                        for event in message[1]:
                            attempts = apply_event(event, job, ctx, task, attempts)
                    elif message[0] == "done":
                        _, ok, value = message
                        break
                elif not worker.alive():
                    raise WorkerLost(self._death(worker))
                steps_granted += take_steps(job)
                control = control_of(job, steps_granted)
                if control != sent:
                    worker.conn.send(("control", control))
                    sent = control
        except BaseException:
            worker.stop()
            raise
        self._give_back(worker)
        if not ok:
            raise value
        return value

    @staticmethod
    def _death(worker: _Worker) -> str:
        code = worker.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return f"the worker process running it died ({how}); what it saved before (checkpoints) is kept"

    def shutdown(self, wait: float = 0.0) -> None:
        super().shutdown(wait)
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()


def plugin_modules() -> list[str]:
    """Modules outside ddcore that registered methods, models or task kinds here: a worker imports them too."""
    from ..methods import METHODS
    from ..models import MODELS
    from ..tasks import TASKS

    modules = set()
    for registry in (METHODS, MODELS, TASKS):
        for entry in registry.entries():
            obj = entry.obj
            module = getattr(obj, "__module__", None) or getattr(type(obj), "__module__", "")
            if module and not module.startswith("ddcore") and module != "__main__":
                modules.add(module)
    return sorted(modules)


def warm_up() -> None:
    """Before its first job, a worker imports the methods, makes one torch optimiser (the first imports torch._dynamo:
    1.4 s) and loads the Distill page's default dataset, MNIST, where this machine has it, while the user is still
    choosing. Measured (a DM live run, 2-core CPU): 1.8 s from submit to the first images on a fresh worker, 0.2 s on
    one that had run a job. A job that arrives meanwhile waits in the pipe; anything that fails here is left for the
    job that needs it to report."""
    try:
        import torch

        from ..data import available_datasets, load_dataset
        from ..methods import list_methods

        list_methods()
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        if "mnist" in available_datasets():  # the page's default; any other dataset waits for a job that needs it
            load_dataset("mnist")
    except Exception:  # noqa: BLE001 - only a head start; the job reports its own failure
        pass


def worker_main(conn: Any, cores: list[int] | None, threads: int, owner: str | None = None) -> None:
    """A worker's life: pinned to the job cores, torch imported once, then one task at a time from the pipe."""
    import importlib
    import signal

    for number in (signal.SIGTERM, signal.SIGINT):  # the server's clean stop reaches the job through the pipe
        signal.signal(number, signal.SIG_IGN)
    if cores:
        try:
            os.sched_setaffinity(0, cores)
        except (OSError, AttributeError):
            pass
    from ..device import set_threads
    from ..tasks import TASKS, TaskContext
    from .store import Store, adopt_owner

    if owner:
        adopt_owner(owner)
    set_threads(threads)
    warm_up()
    stores: dict[str, Store] = {}
    control: list[tuple[Any, ...]] = [NO_CONTROL]

    def report(events: list[Any]) -> tuple[Any, ...]:
        try:
            if events:
                conn.send(("events", events))
            while conn.poll():
                message = conn.recv()
                if message[0] == "control":
                    control[0] = message[1]
        except (OSError, EOFError):
            raise SubmitterGone() from None
        return control[0]

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "exit":
            return
        if message[0] != "run":  # a control that arrived after its task ended
            continue
        _, kind, spec, root, run_id, artefact_keys, job_id, plugins = message
        for module in plugins:  # methods or models registered in the submitting process
            if module not in sys.modules:
                try:
                    importlib.import_module(module)
                except Exception:  # a plugin that cannot load here fails its own jobs with the reason, not the worker
                    pass
        control[0] = NO_CONTROL
        recorder = RelayRecorder(report, every=RELAY_EVERY_S)
        try:
            store = stores.get(root) or stores.setdefault(root, Store(root))
            recorder.send("started", os.getpid(), "this machine")
            artefacts = {k: store.get_artefact(key) for k, key in artefact_keys.items()}
            ctx = TaskContext(store=store, recorder=recorder, control=recorder, job_id=job_id, run_id=run_id,
                              artefacts=artefacts)  # type: ignore[arg-type]
            result, ok = TASKS.get(kind).run(spec, ctx), True
        except SubmitterGone:
            return
        except Exception as e:
            result, ok = portable_exception(e), False
        try:
            recorder._flush(force=True)
            conn.send(("done", ok, result))
        except (OSError, EOFError):
            return
        except Exception as e:  # a result that cannot cross the pipe
            conn.send(("done", False, portable_exception(e)))


if __name__ == "__main__":  # a worker: python -m ddcore.platform.process_executor FD CORES THREADS OWNER
    worker_main(Connection(int(sys.argv[1])), json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
