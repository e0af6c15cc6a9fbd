"""The job queue: background work of every task kind, and the live state every browser tab reads.

Why: distillation, evaluation and the coming kinds take seconds to hours, and Streamlit re-runs page
scripts on every click. Jobs therefore run outside the page (on an executor), never touch the UI, and
publish plain, immutable snapshots (`Job.snapshot()`), so they survive page switches, reloads and
several tabs. The queue knows no kind by name: a kind is a `ddcore.tasks.Task`.

    manager = JobManager(store=None, slots=None)     # slots: concurrent jobs per device type, default 1
    job = manager.submit(spec)                       # DistillSpec, EvalSpec, ... (validated; bad input raises)
    manager.pause(id) / resume(id) / step(id) / stop(id)   # where the kind supports it; stop on a queued
                                                     # job cancels it
    manager.jobs(active=False, kind=None); manager.get(id); manager.job_for_run(run_id); manager.wait(id, t)

A job may require artefacts (its task's `requires`): one that is stored is reused; one that is not is
produced first by a job of the producing kind (its own progress, shared by every job that needs it).
"""
from __future__ import annotations

import os
import threading
import time
import traceback
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from ..device import pin_this_thread, resolve_device, set_threads
from ..names import check_name
from ..tasks import TASKS, TaskContext, producer_of, task_for
from ..tasks.base import Cancelled, spec_from_dict, spec_to_dict
from .executors import Executor, ThreadExecutor
from .recorder import ProgressRate
from .store import Store

JOB_STATUSES = ("queued", "running", "paused", "done", "stopped", "interrupted", "failed", "cancelled")
ACTIVE_JOB = ("queued", "running", "paused")


def job_threads(slots: int = 1) -> int:
    """Torch threads for each job on CPU: all cores but one (so the server keeps answering clicks), shared by the
    `slots` jobs that may run at once."""
    env = os.environ.get("DDCORE_JOB_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, (usable_cores() - 1) // max(1, slots))


def usable_cores() -> int:
    """The cores this process may use (its affinity: a container's or taskset's share, not the host's count)."""
    from ..device import PROCESS_CORES

    return len(PROCESS_CORES) or os.cpu_count() or 2


CPU_SLOTS_VARIABLE = "DDSTUDIO_CPU_SLOTS"


def cpu_slots() -> int:
    """How many CPU jobs run at once: DDSTUDIO_CPU_SLOTS, else one per four spare cores (a shared classroom server
    with 16 cores runs three students' jobs side by side; a laptop runs one at a time, at full speed)."""
    env = os.environ.get(CPU_SLOTS_VARIABLE, "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, (usable_cores() - 1) // 4)


@dataclass(frozen=True)
class JobSnapshot:
    """A job's state at one moment: plain data, never mutated, cheap to hand to any reader."""

    id: str
    kind: str
    status: str
    name: str
    run_id: str | None = None
    device: str = "cpu"
    position: int | None = None  # 1-based place among queued jobs of its device
    iteration: float = 0  # units done (iterations, percent of an evaluation, ...)
    total: float = 0
    its_per_s: float = 0.0
    eta_s: float | None = None
    elapsed_s: float = 0.0
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    frame: int = 0  # increments with each new image
    metrics: tuple[dict[str, Any], ...] = ()
    message: str = ""
    result: Any = None  # the task's typed result (EvaluationRecord, DistillResult, ArtefactRecord, ...)
    reused: bool = False
    followups: tuple[str, ...] = ()
    waiting_for: tuple[str, ...] = ()  # ids of the jobs producing artefacts this one needs
    controls: frozenset[str] = frozenset()
    owner: str | None = None  # the session that submitted it (None: a library call, the CLI, a follow-up of those)
    executor: str = "threads"  # where it runs: 'threads' (this process) or 'ray' (a cluster)
    detail: Any = None  # a task's own live state beyond progress (a sweep's cells)
    where: str = ""  # on a cluster: the worker's address, pid and attempt
    worker_pid: int | None = None
    attempt: int = 0  # on a cluster: 1 for the first try, more after a worker died
    stopping: bool = False  # a stop was asked for and the task has not ended yet (pages say "stopping…")
    pausing: bool = False  # paused, but the task is still finishing (or unwinding) the iteration it was in
    spec: Any = None
    created: float = 0.0
    updated: float = 0.0

    @property
    def progress(self) -> float:
        return min(1.0, self.iteration / self.total) if self.total else (1.0 if self.status == "done" else 0.0)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_JOB

    @property
    def accuracy(self) -> float | None:
        """Percent, for a finished evaluation."""
        return getattr(self.result, "mean", None)

    @property
    def accuracy_std(self) -> float | None:
        return getattr(self.result, "std", None)


class Job:
    """One unit of background work; its mutable state is behind a lock, readers get snapshots.

    It is also the recorder and the control its task reports through (ddcore.platform.recorder)."""

    _counter = 0
    _counter_lock = threading.Lock()

    def __init__(self, kind: str, spec: Any, name: str, device: str, run_id: str | None, controls: frozenset[str],
                 key: str | None, owner: str | None = None, executor: str = "threads") -> None:
        with Job._counter_lock:
            Job._counter += 1
            self.id = f"{kind[0]}{Job._counter:04d}-{int(time.time()) % 100000:05d}"
        self.kind, self.spec, self.device, self.run_id, self.key = kind, spec, device, run_id, key
        self.owner = owner  # who asked for it (a browser session): queued jobs are shared out fairly between owners
        self.executor = executor  # the name of the executor that runs it (JobManager.executors)
        self.depends: list[Job] = []
        self.data: Any = None
        self.prepared: Any = None  # what the task's prepare decided (ddcore.tasks.Prepared)
        self.started = False
        self._cond = threading.Condition()
        self._stop = self._paused = self._shutdown = False
        self._steps = 0  # single steps requested while paused
        self._pauses = 0  # how many times it was paused: a hold answers one pause (relay.py)
        self._holding = False
        self._rate = ProgressRate()
        self._metrics: list[dict[str, Any]] = []
        self._position: Callable[[Job], int | None] = lambda job: None
        self._snap = JobSnapshot(id=self.id, kind=kind, status="queued", name=name, run_id=run_id, device=device,
                                 controls=controls, spec=spec, created=time.time(), updated=time.time(), owner=owner,
                                 executor=executor)
        self.finished = threading.Event()

    # ---------------------------------------------------------------- reading
    def snapshot(self) -> JobSnapshot:
        snap = self._snap
        if snap.status == "queued":
            return replace(snap, position=self._position(self),
                           waiting_for=tuple(j.id for j in self.depends if not j.finished.is_set()))
        return snap

    @property
    def status(self) -> str:
        return self._snap.status

    def publish(self, **changes: Any) -> JobSnapshot:
        with self._cond:
            if self._metrics and len(self._metrics) != len(self._snap.metrics):
                changes.setdefault("metrics", tuple(self._metrics))
            self._snap = replace(self._snap, updated=time.time(), **changes)
            return self._snap

    # ---------------------------------------------------------------- Recorder
    def progress(self, done: float, total: float, message: str = "") -> None:
        rate, elapsed = self._rate.add(done)
        eta = (total - done) / rate if rate > 0 and total else None
        self.publish(iteration=done, total=total, its_per_s=rate, eta_s=eta, elapsed_s=elapsed, message=message)

    def metrics(self, row: dict[str, Any]) -> None:
        with self._cond:
            self._metrics.append(dict(row))

    def images(self, images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]) -> None:
        self.publish(images=images, labels=labels, class_names=class_names, frame=self._snap.frame + 1)

    def detail(self, value: Any) -> None:
        """A task's own live state (plain, immutable data) for pages that know the kind."""
        self.publish(detail=value)

    def state(self, status: str) -> None:
        """Running or paused, as the controls stand now (read and published together, so a pause or resume
        arriving in between is never shown wrongly)."""
        with self._cond:
            self.publish(status="paused" if self._paused and not self._stop else "running")

    # ---------------------------------------------------------------- Control
    def request(self, *, stop: bool | None = None, paused: bool | None = None, step: bool = False,
                shutdown: bool = False) -> None:
        with self._cond:
            if shutdown:  # the server is going down: stop, and say so (the run continues after the restart)
                self._shutdown, stop = True, True
            if stop is not None:
                self._stop = stop
            if paused and not self._paused:  # a new pause: held only once the task says it holds for this one
                self._pauses += 1
                self._holding = False
            if paused is not None:
                self._paused = paused
            if step:
                self._steps += 1
            self.publish(stopping=self._stop and self._snap.status in ("running", "paused"),
                         pausing=self._paused and not self._stop and not self._holding and self.started)
            self._cond.notify_all()

    def wait_turn(self, before_hold: Callable[[], None] | None = None) -> bool:
        with self._cond:
            announced = None
            while self._paused and not self._stop and self._steps == 0:
                if not self._holding:  # a new hold, or a new pause (Resume and Pause) while holding
                    if announced is None and before_hold is not None:
                        before_hold()  # the iteration held at is published first
                    announced = self._holding = True
                    self.publish(pausing=False)  # the iteration in flight is over: paused for real
                self._cond.wait(0.5)
            self._holding = False
            if self._stop:
                return False
            if self._paused:
                self._steps -= 1
            return True

    @property
    def holding(self) -> bool:
        """True while the worker waits in pause: nothing changes until resume, step or stop."""
        return self._holding

    @property
    def paused_requested(self) -> bool:
        return self._paused

    @property
    def pauses(self) -> int:
        return self._pauses

    @property
    def stop_requested(self) -> bool:
        return self._stop

    @property
    def shutdown_requested(self) -> bool:
        return self._shutdown


MAX_JOBS_VARIABLE = "DDSTUDIO_MAX_JOBS"
DEFAULT_MAX_JOBS = 20


class JobLimitError(RuntimeError):
    """The server's limit on queued and running jobs is reached."""


def max_active_jobs() -> int:
    """The limit on queued + running jobs: DDSTUDIO_MAX_JOBS, else 20."""
    raw = os.environ.get(MAX_JOBS_VARIABLE, "").strip()
    try:
        return max(1, int(raw)) if raw else DEFAULT_MAX_JOBS
    except ValueError:
        raise ValueError(f"{MAX_JOBS_VARIABLE} must be a whole number, not {raw!r}") from None


class JobManager:
    """Queues jobs per device type and runs up to `slots[device]` of them at once on its executor."""

    def __init__(self, store: Store | None = None, slots: dict[str, int] | None = None,
                 threads: int | None = None, executor: Executor | None = None, max_active: int | None = None,
                 executors: dict[str, Executor] | None = None) -> None:
        self.store = store or Store()
        self.max_active = max_active if max_active is not None else max_active_jobs()
        self.slots = {"cpu": cpu_slots(), "cuda": 1, "mps": 1, **(slots or {})}
        self.threads = threads or job_threads(self.slots["cpu"])
        self.executor = executor or ThreadExecutor()  # the default; others are chosen per submission by name
        self.local = self.executor if not getattr(self.executor, "remote", False) else ThreadExecutor()
        self.executors: dict[str, Executor] = {self.local.name: self.local, self.executor.name: self.executor,
                                               **(executors or {})}
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._order: list[str] = []
        self._closed = False
        self.interrupted = self.store.mark_interrupted()
        self._warm_up = threading.Thread(target=_warm_up, daemon=True, name="ddjobs-warmup")
        self._warm_up.start()

    # ---------------------------------------------------------------- submitting
    def add_executor(self, executor: Executor) -> None:
        """Make an executor available to submissions by its name (e.g. a Ray cluster connected later)."""
        with self._lock:
            self.executors[executor.name] = executor

    def submit(self, spec: Any, *, name: str | None = None, start_paused: bool = False, data: Any = None,
               owner: str | None = None, executor: str | None = None) -> Job:
        """Validate and queue a task spec; a stored result makes the job done at once (reused), and an
        identical active submission returns the job already there. `executor` names where it runs (default: the
        manager's executor); a kind that is not portable, or a coordinator, runs in this process whatever it says."""
        task = task_for(spec)
        with self._lock:
            if self._closed:
                raise RuntimeError("the job manager is shut down")
            chosen = self.executors.get(executor or self.executor.name)
        if chosen is None:
            raise ValueError(f"no executor {executor!r} here (available: {', '.join(sorted(self.executors))})")
        if task.coordinator or (chosen.remote and not task.portable):
            chosen = self.local
        # Everything that can refuse the submission runs before `prepare` writes anything.
        for requirement in task.requires(spec):  # an artefact nothing can make
            if self.store.get_artefact(requirement.key()) is None:
                producer_of(requirement.kind)
        device = resolve_device(getattr(spec, "device", "auto")).type  # e.g. cuda asked for on a CPU-only host
        if name is not None:
            name = check_name(name)
        with self._lock:
            active = sum(1 for j in self._jobs.values() if j.status in ACTIVE_JOB)
        if active >= self.max_active:  # 25 clicks must not queue 25 runs on a shared classroom server
            raise JobLimitError(f"This server already has {active} jobs queued or running (its limit is "
                                f"{self.max_active}, set by {MAX_JOBS_VARIABLE}). Wait for one to finish, or stop one "
                                "in the jobs panel.")
        prepared = task.prepare(spec, self.store)
        try:
            with self._lock:
                if prepared.key is not None:
                    for job in self._jobs.values():  # the same work in flight, or already done on this server
                        if job.key == prepared.key and (job.status in ACTIVE_JOB or
                                                        (prepared.reused is not None and job.status == "done")):
                            return job
            job = Job(task.kind, prepared.spec, name or prepared.name, device, prepared.run_id, task.controls,
                      prepared.key, owner, chosen.name)
            job.data, job.prepared = data, prepared
            if name and prepared.run_id:
                self.store.rename_run(prepared.run_id, name)
            if prepared.reused is not None:
                job.publish(status="done", result=prepared.reused, reused=True, iteration=1, total=1)
                job.finished.set()
                with self._lock:
                    self._jobs[job.id] = job
                    self._order.append(job.id)
                return job
            for requirement in task.requires(prepared.spec):
                if self.store.get_artefact(requirement.key()) is None:
                    producer = producer_of(requirement.kind)
                    job.depends.append(self.submit(producer.spec_for(requirement, job.device), data=data, owner=owner,
                                                   executor=chosen.name))
            if start_paused and "pause" in task.controls:
                job.request(paused=True)
            return self._enqueue(job)
        except BaseException:
            task.release(prepared, self.store, "Could not be queued.")
            raise

    def _enqueue(self, job: Job) -> Job:
        with self._lock:
            if self._closed:
                raise RuntimeError("the job manager is shut down")
            job._position = self._position
            self._jobs[job.id] = job
            self._order.append(job.id)
            self._schedule()
        return job

    # ---------------------------------------------------------------- control
    def pause(self, job_id: str) -> None:
        job = self._controllable(job_id, "pause")
        job.request(paused=True)
        if job.status == "running":
            job.publish(status="paused")
            if job.run_id and job.kind == "distill":  # only while the run is still running (not already saved 'done')
                self.store.update_run_if(job.run_id, "running", status="paused")

    def resume(self, job_id: str) -> None:
        job = self._controllable(job_id, "pause")
        job.request(paused=False)
        if job.status == "paused":
            job.publish(status="running")
            if job.run_id and job.kind == "distill":
                self.store.update_run_if(job.run_id, "paused", status="running")

    def step(self, job_id: str) -> None:
        """One more unit of work while paused (pauses a running job first)."""
        job = self._controllable(job_id, "step")
        if not job.paused_requested:
            self.pause(job_id)
        job.request(step=True)

    def stop(self, job_id: str) -> None:
        """A running job ends now (a distillation keeps its set, resumable); a queued one is cancelled."""
        job = self._require(job_id)
        with self._lock:
            if job.status == "queued" and not job.started:
                job.request(stop=True)
                job.publish(status="cancelled", message="Cancelled before it started")
                job.finished.set()
                if job.prepared is not None:
                    TASKS.get(job.kind).release(job.prepared, self.store, "Cancelled before it started.")
                cancelled = True
            else:
                cancelled = False
        if cancelled:
            self._schedule()  # jobs that waited on this one fail now, others may start
            return
        job.request(stop=True)

    cancel = stop

    # ---------------------------------------------------------------- reading
    def jobs(self, active: bool = False, kind: str | None = None) -> list[Job]:
        with self._lock:
            out = [self._jobs[i] for i in self._order]
        return [j for j in out if (not active or j.status in ACTIVE_JOB) and (kind is None or j.kind == kind)]

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def job_for_run(self, run_id: str, kind: str = "distill") -> Job | None:
        """The newest job of `kind` working on this run."""
        with self._lock:
            for job_id in reversed(self._order):
                job = self._jobs[job_id]
                if job.run_id == run_id and job.kind == kind:
                    return job
        return None

    def wait(self, job_id: str, timeout: float | None = None) -> JobSnapshot:
        job = self._require(job_id)
        if not job.finished.wait(timeout):
            raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
        return job.snapshot()

    def shutdown(self, wait: float = 0.0, keep_pending: bool = False) -> None:
        """Stop every job. With `keep_pending` (the server going down: SIGTERM, Ctrl-C) nothing is lost: each
        running distillation saves its set and checkpoint at its current iteration, and every active job is
        written to the store's pending list, which the next JobManager on this store submits again."""
        with self._lock:
            self._closed = True
            jobs = list(self._jobs.values())
        active = [j for j in jobs if j.status in ACTIVE_JOB]
        if keep_pending:
            # artefact jobs are required again by the jobs that need them; a coordinator (a sweep) is submitted again
            # and adopts what its earlier attempt left (ddcore/tasks/sweep.Coordinator)
            self.store.save_pending([_pending_entry(j) for j in active
                                     if not TASKS.get(j.kind).produces or TASKS.get(j.kind).coordinator])
            for job in active:  # queued ones are not released: their runs stay resumable
                if job.kind == "distill" and job.run_id and not job.started:
                    self.store.update_run(job.run_id, status="interrupted", message="Queued when the server was "
                                          "shut down; it is queued again when the server starts.")
                job.request(shutdown=True)
                if not job.started:  # nothing to wait for: it is written down to be queued again
                    job.publish(status="interrupted", message="Server shut down; queued again at the next start.")
                    job.finished.set()
        else:
            for job in active:
                self.stop(job.id)
        deadline = time.monotonic() + wait
        for job in jobs:
            job.finished.wait(max(0.0, deadline - time.monotonic()))
        # a process that exits while this thread is still inside torch's imports can abort (rc 134: the CLI's
        # `sweep --estimate` returned within a second of starting it)
        self._warm_up.join(max(0.0, deadline - time.monotonic()))
        for executor in {id(e): e for e in self.executors.values()}.values():
            if executor is not self.local and executor is not self.executor:
                executor.shutdown(0.0)

    def restore_pending(self) -> list[str]:
        """Submit again what a clean shutdown left pending; returns one line per job (what came back, or why
        not). Artefact jobs are not listed: the jobs that need them require them again."""
        report = []
        entries = self.store.take_pending()
        coordinates = [e for e in entries if e.get("kind") in TASKS and TASKS.get(e["kind"]).coordinator]
        # coordinators last: their cells' resumed jobs are queued before a sweep looks for them
        for entry in [e for e in entries if e not in coordinates] + coordinates:
            try:
                if entry.get("run_id"):
                    from ..tasks.distill import resume_spec

                    spec = resume_spec(self.store, entry["run_id"], entry.get("evaluate_after", True))
                else:
                    spec = spec_from_stored(entry["kind"], entry["spec"])
                job = self.submit(spec)
                report.append(f"{job.snapshot().name}: queued again")
            except Exception as e:  # a deleted run, a changed registry: say it, keep serving
                report.append(f"{entry.get('name') or entry.get('kind')}: not restored ({error_message(e)})")
        return report

    # ---------------------------------------------------------------- scheduling
    def _require(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job is None:
            raise KeyError(f"No job {job_id!r}")
        return job

    def _controllable(self, job_id: str, control: str) -> Job:
        job = self._require(job_id)
        if control not in job.snapshot().controls:
            raise ValueError(f"{TASKS.entry(job.kind).obj.title or job.kind} jobs cannot {control}")
        if job.status not in ACTIVE_JOB:
            raise ValueError(f"job {job.id} is {job.status}; only a queued, running or paused job can {control}")
        return job

    def _position(self, job: Job) -> int | None:
        """1-based place among the queued jobs of its executor and device, in the order the scheduler starts them."""
        with self._lock:
            queued = [j for j in (self._jobs[i] for i in self._fair_order()[0])
                      if j.status == "queued" and not j.started and (j.executor, j.device) == (job.executor, job.device)
                      and not TASKS.get(j.kind).coordinator]
        return queued.index(job) + 1 if job in queued else None

    def _fair_order(self) -> tuple[list[str], dict[tuple[str, str], int], dict[str | None, int]]:
        """Ids of the queued jobs in the order they may start (only those are sorted: a snapshot of a queued job asks
        for its place), the jobs running per (executor, device), and per owner.

        Fair share: among queued jobs, those whose owner has the fewest running, then the fewest started so far, go
        first, then in order of submission: one session's ten clicks do not keep everyone else's first run waiting.
        (Jobs of no owner, the CLI's and the library's, count as one owner; a coordinator only waits on other jobs.)"""
        busy: dict[tuple[str, str], int] = {}
        running_by_owner: dict[str | None, int] = {}
        served_by_owner: dict[str | None, int] = {}
        for j in self._jobs.values():
            if j.started and not TASKS.get(j.kind).coordinator:
                served_by_owner[j.owner] = served_by_owner.get(j.owner, 0) + 1
                if not j.finished.is_set():
                    busy[(j.executor, j.device)] = busy.get((j.executor, j.device), 0) + 1
                    running_by_owner[j.owner] = running_by_owner.get(j.owner, 0) + 1
        queued = [i for i in self._order if self._jobs[i].status == "queued" and not self._jobs[i].started]
        order = sorted(queued, key=lambda i: (running_by_owner.get(self._jobs[i].owner, 0),
                                              served_by_owner.get(self._jobs[i].owner, 0)))
        return order, busy, running_by_owner

    def _schedule(self) -> None:
        with self._lock:
            if self._closed:
                return
            order, busy, running_by_owner = self._fair_order()
            for job_id in order:
                job = self._jobs[job_id]
                if job.status != "queued" or job.started:
                    continue
                failed = [d for d in job.depends if d.finished.is_set() and d.status != "done"]
                if failed:
                    d = failed[0].snapshot()
                    job.publish(status="failed", message=f"needs {d.name}, which {d.status}: {d.message}".strip(": "))
                    job.finished.set()
                    if job.prepared is not None:
                        TASKS.get(job.kind).release(job.prepared, self.store, job.snapshot().message)
                    continue
                if any(not d.finished.is_set() for d in job.depends):
                    continue
                executor = self.executors[job.executor]
                if not TASKS.get(job.kind).coordinator:
                    place = (job.executor, job.device)
                    limit = executor.capacity(job.device)
                    if busy.get(place, 0) >= (limit if limit is not None else self.slots.get(job.device, 1)):
                        continue
                    busy[place] = busy.get(place, 0) + 1
                    running_by_owner[job.owner] = running_by_owner.get(job.owner, 0) + 1
                job.started = True
                executor.start(job, lambda job=job: self._work(job))

    def _work(self, job: Job) -> None:
        task = TASKS.get(job.kind)
        try:
            pin_this_thread("job")  # off the core that answers the browsers (ddcore.device), whatever the device
            if job.device == "cpu":
                set_threads(self.threads)
            job._rate = ProgressRate()  # elapsed time and rate count from the start, not from the queueing
            job.state("running")
            artefacts = {r.kind: self.store.get_artefact(r.key()) for r in task.requires(job.spec)}
            missing = [kind for kind, rec in artefacts.items() if rec is None]
            if missing:
                raise RuntimeError(f"required artefact(s) {', '.join(missing)} are not in the store")
            ctx = TaskContext(store=self.store, recorder=job, control=job, job_id=job.id, run_id=job.run_id,
                              artefacts=artefacts, data=job.data, jobs=self if task.coordinator else None,
                              owner=job.owner)  # type: ignore[arg-type]
            result = self.executors[job.executor].run(task, job.spec, ctx, job)
            status = getattr(result, "status", "done")
            message = getattr(result, "message", "") or ""
            followups: list[str] = []
            for follow in getattr(result, "followups", ()):  # never changes the outcome of the task itself
                try:
                    followups.append(self.submit(follow, data=job.data, owner=job.owner, executor=job.executor).id)
                except Exception as e:
                    message = (message + " " if message else "") + f"(a follow-up was not queued: {error_message(e)})"
            job.publish(status=status if status in JOB_STATUSES else "done", result=result,
                        followups=tuple(followups), message=message)
        except Cancelled as e:
            job.publish(status="cancelled", message=str(e))
        except BaseException as e:  # never let a job take the server down
            job.publish(status="failed", message=error_message(e))
            if job.run_id and job.kind == "distill":
                try:
                    record = self.store.get_run(job.run_id)
                    if record is not None and record.status != "failed":
                        self.store.update_run(job.run_id, status="failed", message=error_message(e))
                except Exception:
                    pass
            if not isinstance(e, Exception):
                raise
        finally:
            job.finished.set()
            self._schedule()


def _pending_entry(job: Job) -> dict[str, Any]:
    """What a restart needs to submit the job again: a distillation by its run (it resumes from the checkpoint
    the shutdown writes), anything else by its spec."""
    entry: dict[str, Any] = {"kind": job.kind, "name": job.snapshot().name}
    if job.kind == "distill" and job.run_id:
        entry.update(run_id=job.run_id, evaluate_after=bool(getattr(job.spec, "evaluate_after", True)))
    else:
        entry["spec"] = spec_to_dict(job.spec)
    return entry


def spec_from_stored(kind: str, data: dict[str, Any]) -> Any:
    """A task's spec from its to_dict() form (the task's own from_dict when it has one)."""
    spec_class = TASKS.get(kind).Spec
    from_dict = getattr(spec_class, "from_dict", None)
    return from_dict(data) if from_dict is not None else spec_from_dict(spec_class, data)


def _warm_up() -> None:
    """Pay one-time import costs (torch.optim pulls in torch._dynamo: seconds) before the first Start."""
    try:
        import torch

        from .. import runner  # noqa: F401

        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    except Exception:
        pass


def error_message(e: BaseException) -> str:
    from .relay import TaskFailed

    if isinstance(e, TaskFailed):  # already described where it was raised (another process)
        return str(e)
    text = f"{type(e).__name__}: {e}"
    frames = traceback.extract_tb(e.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {os.path.basename(last.filename)}:{last.lineno})"
    return text
