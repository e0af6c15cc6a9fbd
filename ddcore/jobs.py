"""Background jobs: the only bridge between the UI and the engine.

Why: distillation and evaluation take seconds to hours; Streamlit re-runs scripts on every click.
Jobs therefore run on background threads that never touch Streamlit, and every browser tab reads
their live state as plain data (``Job.snapshot()``), so jobs survive page switches, reloads and
several tabs. One ``JobManager`` per server (the app holds it with ``st.cache_resource``).

API:

    manager = JobManager(store=None, slots=None)   # store: ddcore.store.RunStore (default: home_dir())
                                                    # slots: concurrent jobs per device type, default 1 each
    job = manager.submit_distill(RunSpec(...), name=None, evaluate_after=True, start_paused=False)
    job = manager.submit_evaluation(EvalSpec(subject="run:<run_id>" | "random:<dataset>:<ipc>:<seed>",
                                             architecture="convnet", preset="quick", seeds=None))
          # a result already in the store is reused: the job is 'done' at once with snapshot().reused
    job = manager.resume_run(run_id)    # a stopped / interrupted / failed run, from its last checkpoint
    manager.pause(job_id); manager.resume(job_id); manager.step(job_id)  # step: one iteration while paused
    manager.stop(job_id)                 # running: end now, keep the set (run 'stopped', resumable);
                                         # queued: 'cancelled'.  manager.cancel is the same call.
    manager.jobs(active=False) -> list[Job]; manager.get(job_id); manager.job_for_run(run_id)
    manager.wait(job_id, timeout) -> JobSnapshot; manager.shutdown()

    snap = job.snapshot()   # JobSnapshot: plain, immutable data safe to read from any thread
    snap.status in JOB_STATUSES; snap.position (1-based place in its device's queue, None if not queued);
    snap.iteration, total, progress, its_per_s, eta_s, elapsed_s; snap.images (uint8 N×H×W×C),
    snap.labels, snap.class_names, snap.frame (increments with each new image); snap.metrics
    (tuple of per-iteration dicts with 'iteration' and 'loss'); snap.message (error text when failed);
    snap.result (evaluation record dict), snap.accuracy / snap.accuracy_std (percent), snap.followups
    (job ids of the evaluations a finished distillation queued).

Evaluation subjects: ``run:<id>`` evaluates the run's stored set; ``random:<dataset>:<ipc>:<seed>``
evaluates a random real subset with IPC images per class (the baseline a distilled set must beat).
Results land in the store under ``EvalSpec.key()`` and are listed by ``store.run_evaluations(run_id)``.
"""
from __future__ import annotations

import os
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

import numpy as np
import torch

from .data import LoadedDataset, load_dataset
from .device import resolve_device, set_threads
from .store import HistoryWriter, RunStore, accuracy_of, evaluation_key

JOB_STATUSES = ("queued", "running", "paused", "done", "stopped", "failed", "cancelled")
ACTIVE_JOB = ("queued", "running", "paused")
PUBLISH_EVERY_S = 0.25  # how often a running job refreshes its snapshot (its images cost a copy)
STORE_EVERY_S = 2.0  # how often the run's progress is written to the index


def job_threads() -> int:
    """Torch threads for jobs on CPU: all cores but one, so the server keeps answering clicks."""
    env = os.environ.get("DDCORE_JOB_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class EvalSpec:
    """What to evaluate and how; `key()` identifies the result in the store (so it is reused)."""

    subject: str  # "run:<run_id>", "random:<dataset>:<ipc>:<seed>" or "whole:<dataset>"
    architecture: str = "convnet"
    preset: str = "quick"
    seeds: int | None = None  # None: the preset's number of seeds
    device: str = "auto"
    options: dict[str, Any] = field(default_factory=dict)  # EvalConfig field overrides, e.g. {"epochs_no_aug": 5}

    def __post_init__(self) -> None:
        kind = self.subject.split(":", 1)[0]
        if kind == "run" and len(self.subject) > 4:
            return
        if kind == "whole" and len(self.subject) > 6 and self.subject.count(":") == 1:
            return
        if kind == "random":
            parts = self.subject.split(":")
            if len(parts) == 4 and parts[2].isdigit() and parts[3].lstrip("-").isdigit() and int(parts[2]) > 0:
                return
        raise ValueError(f"evaluation subject must be 'run:<id>', 'random:<dataset>:<ipc>:<seed>' or "
                         f"'whole:<dataset>', not {self.subject!r}")

    @classmethod
    def for_run(cls, run_id: str, **kwargs: Any) -> "EvalSpec":
        return cls(subject=f"run:{run_id}", **kwargs)

    @classmethod
    def random_real(cls, dataset: str, ipc: int, seed: int = 0, **kwargs: Any) -> "EvalSpec":
        return cls(subject=f"random:{dataset}:{int(ipc)}:{int(seed)}", **kwargs)

    @classmethod
    def whole(cls, dataset: str, **kwargs: Any) -> "EvalSpec":
        return cls(subject=f"whole:{dataset}", **kwargs)

    @property
    def run_id(self) -> str | None:
        return self.subject[4:] if self.subject.startswith("run:") else None

    def key(self) -> str:
        extra = {"options": self.options} if self.options else {}
        return evaluation_key(self.subject, architecture=self.architecture, preset=self.preset, seeds=self.seeds,
                              **extra)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class JobSnapshot:
    """A job's state at one moment: plain data, never mutated, cheap to hand to any reader."""

    id: str
    kind: str  # "distill" | "evaluate"
    status: str
    name: str
    run_id: str | None = None
    device: str = "cpu"
    position: int | None = None
    iteration: int = 0
    total: int = 0
    its_per_s: float = 0.0
    eta_s: float | None = None
    elapsed_s: float = 0.0
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    frame: int = 0
    metrics: tuple[dict[str, Any], ...] = ()
    message: str = ""
    result: dict[str, Any] | None = None
    reused: bool = False
    followups: tuple[str, ...] = ()
    spec: dict[str, Any] = field(default_factory=dict)
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
        return accuracy_of(self.result)[0] if self.result else None

    @property
    def accuracy_std(self) -> float | None:
        return accuracy_of(self.result)[1] if self.result else None


class JobStopped(Exception):
    """Raised inside an evaluation's should_stop path to end it early."""


class Job:
    """One unit of background work; its mutable state is behind a lock, readers get snapshots."""

    _counter = 0
    _counter_lock = threading.Lock()

    def __init__(self, kind: str, spec: Any, name: str, device: str, run_id: str | None = None) -> None:
        with Job._counter_lock:
            Job._counter += 1
            self.id = f"{kind[0]}{Job._counter:04d}-{int(time.time()) % 100000:05d}"
        self.kind, self.spec, self.device, self.run_id = kind, spec, device, run_id
        self._cond = threading.Condition()
        self._stop = False
        self._paused = False
        self._steps = 0  # single steps requested while paused
        self._holding = False  # the worker is blocked in pause (its snapshot is final until resumed or stepped)
        self._manager_position: Callable[[Job], int | None] = lambda job: None
        self.thread: threading.Thread | None = None
        self.data: LoadedDataset | None = None
        self.resume_state: dict[str, Any] | None = None
        self.evaluate_after = False
        spec_dict = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
        self._snap = JobSnapshot(id=self.id, kind=kind, status="queued", name=name, run_id=run_id, device=device,
                                 spec=spec_dict, created=time.time(), updated=time.time())
        self._metrics: list[dict[str, Any]] = []
        self.finished = threading.Event()

    # ---------------------------------------------------------------- reading
    def snapshot(self) -> JobSnapshot:
        snap = self._snap
        if snap.status == "queued":
            return replace(snap, position=self._manager_position(self))
        return snap

    @property
    def status(self) -> str:
        return self._snap.status

    def _publish(self, **changes: Any) -> JobSnapshot:
        with self._cond:
            if "metrics" not in changes and self._metrics and len(self._metrics) != len(self._snap.metrics):
                changes["metrics"] = tuple(self._metrics)
            self._snap = replace(self._snap, updated=time.time(), **changes)
            return self._snap

    # ---------------------------------------------------------------- control (called by the manager)
    def _request(self, *, stop: bool | None = None, paused: bool | None = None, step: bool = False) -> None:
        with self._cond:
            if stop is not None:
                self._stop = stop
            if paused is not None:
                self._paused = paused
            if step:
                self._steps += 1
            self._cond.notify_all()

    def _wait_turn(self) -> bool:
        """Block while paused; True when the worker should do one more iteration, False to stop."""
        with self._cond:
            while self._paused and not self._stop and self._steps == 0:
                self._holding = True
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
    def stop_requested(self) -> bool:
        return self._stop


class JobManager:
    """Queues jobs per device type and runs up to `slots[device]` of them at once on threads."""

    def __init__(self, store: RunStore | None = None, slots: dict[str, int] | None = None,
                 threads: int | None = None) -> None:
        self.store = store or RunStore()
        self.slots = {"cpu": 1, "cuda": 1, "mps": 1, **(slots or {})}
        self.threads = threads or job_threads()
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._order: list[str] = []
        self._closed = False
        self.interrupted = self.store.mark_interrupted()
        threading.Thread(target=_warm_up, daemon=True, name="ddjobs-warmup").start()

    # ---------------------------------------------------------------- submitting
    def submit_distill(self, spec: Any, name: str | None = None, *, evaluate_after: bool = True,
                       start_paused: bool = False, data: LoadedDataset | None = None) -> Job:
        """Queue a distillation run (a ddcore.runner.RunSpec or its dict); creates the run in the store."""
        spec = _as_run_spec(spec)
        device = _device_key(spec.device)
        _validate_distill(spec)
        record = self.store.create_run(spec.to_dict(), name=name, status="queued")
        job = Job("distill", spec, record.name, device, run_id=record.id)
        job.data, job.evaluate_after = data, evaluate_after
        if start_paused:
            job._request(paused=True)
        return self._enqueue(job)

    def resume_run(self, run_id: str, *, evaluate_after: bool = True, data: LoadedDataset | None = None) -> Job:
        """Continue a stopped, interrupted or failed run from its last checkpoint (or from the start if none)."""
        record = self.store.get_run(run_id)
        if record is None:
            raise KeyError(f"No run {run_id!r} in the store")
        current = self.job_for_run(run_id)
        if current is not None and current.status in ACTIVE_JOB:
            return current
        if not record.resumable:
            raise ValueError(f"Run {record.name!r} is {record.status}; only stopped, interrupted or failed runs resume")
        spec = _as_run_spec(record.spec)
        job = Job("distill", spec, record.name, _device_key(spec.device), run_id=run_id)
        job.data, job.evaluate_after = data, evaluate_after
        job.resume_state = self.store.load_checkpoint(run_id)
        self.store.update_run(run_id, status="queued", message="")
        return self._enqueue(job)

    def submit_evaluation(self, spec: EvalSpec, name: str | None = None) -> Job:
        """Queue an evaluation; if the store already holds its result, the job is done at once (reused)."""
        if not isinstance(spec, EvalSpec):
            spec = EvalSpec(**spec)
        with self._lock:  # the same evaluation already queued or running: share it
            for job in self._jobs.values():
                if job.kind == "evaluate" and job.status in ACTIVE_JOB and job.spec.key() == spec.key():
                    return job
        if spec.run_id is not None and self.store.get_run(spec.run_id) is None:
            raise KeyError(f"No run {spec.run_id!r} to evaluate")
        job = Job("evaluate", spec, name or _eval_name(spec, self.store), _device_key(spec.device), run_id=spec.run_id)
        stored = self.store.get_evaluation(spec.key())
        if stored is not None:
            job._publish(status="done", result=stored.record, reused=True, iteration=1, total=1)
            job.finished.set()
            with self._lock:
                self._jobs[job.id] = job
                self._order.append(job.id)
            return job
        return self._enqueue(job)

    def _enqueue(self, job: Job) -> Job:
        with self._lock:
            if self._closed:
                raise RuntimeError("the job manager is shut down")
            job._manager_position = self._position
            self._jobs[job.id] = job
            self._order.append(job.id)
            self._schedule()
        return job

    # ---------------------------------------------------------------- control
    def pause(self, job_id: str) -> None:
        job = self._require(job_id)
        if job.kind != "distill":
            raise ValueError("Only distillation jobs can be paused")
        job._request(paused=True)
        if job.status == "running":
            job._publish(status="paused")
            if job.run_id:
                self.store.update_run(job.run_id, status="paused")

    def resume(self, job_id: str) -> None:
        job = self._require(job_id)
        job._request(paused=False)
        if job.status == "paused":
            job._publish(status="running")
            if job.run_id:
                self.store.update_run(job.run_id, status="running")

    def step(self, job_id: str) -> None:
        """Advance a paused distillation by one iteration (for teaching)."""
        job = self._require(job_id)
        if not job.paused_requested:
            raise ValueError("Step works on a paused run; pause it first")
        job._request(step=True)

    def stop(self, job_id: str) -> None:
        job = self._require(job_id)
        with self._lock:
            if job.status == "queued" and (job.thread is None):
                job._request(stop=True)
                job._publish(status="cancelled", message="Cancelled before it started")
                job.finished.set()
                if job.kind == "distill" and job.run_id:
                    self.store.update_run(job.run_id, status="cancelled", message="Cancelled before it started")
                return
        job._request(stop=True)

    cancel = stop

    # ---------------------------------------------------------------- reading
    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self, active: bool = False, kind: str | None = None) -> list[Job]:
        with self._lock:
            found = [self._jobs[i] for i in self._order]
        return [j for j in found if (not active or j.status in ACTIVE_JOB) and (kind is None or j.kind == kind)]

    def job_for_run(self, run_id: str, kind: str = "distill") -> Job | None:
        """The latest job of this kind working on a run."""
        for job in reversed(self.jobs(kind=kind)):
            if job.run_id == run_id:
                return job
        return None

    def evaluation_jobs(self, subject: str) -> list[Job]:
        return [j for j in self.jobs(kind="evaluate") if j.spec.subject == subject]

    def wait(self, job_id: str, timeout: float | None = None) -> JobSnapshot:
        job = self._require(job_id)
        if not job.finished.wait(timeout):
            raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
        return job.snapshot()

    def shutdown(self, wait: float | None = 30.0) -> None:
        """Stop everything (tests, server exit): running runs end as 'stopped' with their set saved."""
        with self._lock:
            self._closed = True
            jobs = list(self._jobs.values())
        for job in jobs:
            if job.status in ACTIVE_JOB:
                self.stop(job.id)
        if wait:
            for job in jobs:
                if job.thread is not None:
                    job.thread.join(wait)

    def _require(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job is None:
            raise KeyError(f"No job {job_id!r}")
        return job

    def _position(self, job: Job) -> int | None:
        with self._lock:
            queued = [j for j in (self._jobs[i] for i in self._order)
                      if j.status == "queued" and j.thread is None and j.device == job.device]
        return queued.index(job) + 1 if job in queued else None

    def _schedule(self) -> None:
        with self._lock:
            if self._closed:
                return
            busy: dict[str, int] = {}
            for j in self._jobs.values():
                if j.thread is not None and not j.finished.is_set():
                    busy[j.device] = busy.get(j.device, 0) + 1
            for job_id in self._order:
                job = self._jobs[job_id]
                if job.status != "queued" or job.thread is not None:
                    continue
                if busy.get(job.device, 0) >= self.slots.get(job.device, 1):
                    continue
                busy[job.device] = busy.get(job.device, 0) + 1
                target = self._run_distill if job.kind == "distill" else self._run_evaluation
                job.thread = threading.Thread(target=self._worker, args=(job, target), daemon=True,
                                              name=f"ddjob-{job.id}")
                job.thread.start()

    def _worker(self, job: Job, target: Callable[[Job], None]) -> None:
        try:
            if job.device == "cpu":
                set_threads(self.threads)
            target(job)
        except BaseException as e:  # never let a job take the server down
            message = _error_message(e)
            job._publish(status="failed", message=message)
            if job.kind == "distill" and job.run_id:
                try:
                    self.store.update_run(job.run_id, status="failed", message=message)
                except Exception:
                    pass
            if not isinstance(e, Exception):
                raise
        finally:
            job.finished.set()
            self._schedule()

    # ---------------------------------------------------------------- distillation
    def _run_distill(self, job: Job) -> None:
        from .runner import Runner

        spec, run_id, store = job.spec, job.run_id, self.store
        assert run_id is not None
        job._publish(status="paused" if job.paused_requested else "running", message="Loading data…")
        store.update_run(run_id, status="running", message="")
        data = job.data or load_dataset(spec.dataset, spec.data_root)
        if job.stop_requested:
            return self._finish_distill(job, None, "stopped")
        runner = Runner(spec, data)
        if job.resume_state is not None:
            runner.restore(job.resume_state)
            store.truncate_metrics(run_id, runner.method.iteration)
        job._metrics = list(getattr(runner, "history", []) or [])
        history = HistoryWriter(store, run_id)
        total = int(runner.method.total_iterations)
        store.update_run(run_id, total=total)

        def frame() -> tuple[np.ndarray, np.ndarray]:
            snap = runner.snapshot()
            return snap.images, snap.labels

        self._publish_runner(job, runner, message="")
        history.offer(runner.method.iteration, frame, force=runner.method.iteration == 0)
        last_publish = last_store = time.monotonic()
        last_checkpoint = runner.method.iteration
        pending: list[dict[str, Any]] = []
        status = "done"
        try:
            while not runner.done:
                was_paused = job.paused_requested
                if not job._wait_turn():
                    status = "stopped"
                    break
                if was_paused:
                    job._publish(status="paused" if job.paused_requested else "running")
                row = runner.step()
                row = {"iteration": runner.method.iteration, **{k: v for k, v in dict(row).items() if k != "iteration"}}
                job._metrics.append(row)
                pending.append(row)
                it = runner.method.iteration
                history.offer(it, frame)
                now = time.monotonic()
                if it % max(1, int(spec.checkpoint_every or 50)) == 0 and it != last_checkpoint:
                    store.append_metrics(run_id, pending)
                    pending.clear()
                    store.save_checkpoint(run_id, runner.checkpoint())
                    last_checkpoint = it
                if job.paused_requested or now - last_publish >= PUBLISH_EVERY_S or runner.done:
                    self._publish_runner(job, runner)
                    last_publish = now
                if now - last_store >= STORE_EVERY_S:
                    store.append_metrics(run_id, pending)
                    pending.clear()
                    store.update_run(run_id, iteration=it, elapsed_s=float(runner.method.elapsed_s))
                    last_store = now
        except Exception as e:
            store.append_metrics(run_id, pending)
            self._finish_distill(job, runner, "failed", _error_message(e))
            raise
        store.append_metrics(run_id, pending)
        self._finish_distill(job, runner, status)

    def _publish_runner(self, job: Job, runner: Any, **extra: Any) -> None:
        snap = runner.snapshot()
        job._publish(iteration=int(snap.iteration), total=int(snap.total), its_per_s=float(snap.its_per_s or 0.0),
                     eta_s=snap.eta_s, elapsed_s=float(snap.elapsed_s), images=snap.images,
                     labels=np.asarray(snap.labels), frame=job._snap.frame + 1,
                     class_names=tuple(runner.method.info.class_names), **extra)

    def _finish_distill(self, job: Job, runner: Any, status: str, message: str = "") -> None:
        run_id, store = job.run_id, self.store
        assert run_id is not None
        if runner is not None:
            try:
                store.save_set(run_id, runner.result())
                store.save_checkpoint(run_id, runner.checkpoint())
                it = runner.method.iteration
                if it not in store.frame_iterations(run_id):
                    snap = runner.snapshot()
                    store.add_frame(run_id, it, snap.images, snap.labels)
                self._publish_runner(job, runner)
                store.update_run(run_id, iteration=it, elapsed_s=float(runner.method.elapsed_s))
            except Exception as e:  # keep the original failure's message; note this one
                message = message or _error_message(e)
                status = "failed"
        if status == "stopped" and message == "":
            message = "Stopped by the user; resume it to continue from the last iteration."
        store.update_run(run_id, status=status, message=message)
        followups: tuple[str, ...] = ()
        if status == "done" and job.evaluate_after:
            spec = job.spec
            evals = [EvalSpec.for_run(run_id, architecture=spec.architecture, device=spec.device),
                     EvalSpec.random_real(spec.dataset, spec.ipc, spec.seed, architecture=spec.architecture,
                                          device=spec.device)]
            with self._lock:
                closed = self._closed
            if not closed:
                followups = tuple(self.submit_evaluation(e).id for e in evals)
        if status != "failed":
            job._publish(status=status, message=message, followups=followups)
        else:
            job._publish(message=message)

    # ---------------------------------------------------------------- evaluation
    def _run_evaluation(self, job: Job) -> None:
        evaluate, cancelled = _evaluator()

        spec: EvalSpec = job.spec
        job._publish(status="running", message="Preparing the set…")
        synthetic, meta = self._evaluation_subject(spec)
        start = time.monotonic()

        def progress(*args: Any, **kwargs: Any) -> None:
            done, total = _progress_fraction(args, kwargs)
            elapsed = time.monotonic() - start
            rate = done / elapsed if elapsed > 0 and done else 0.0
            eta = (total - done) / rate if rate and total else None
            job._publish(iteration=int(done), total=int(total), elapsed_s=elapsed, its_per_s=rate, eta_s=eta,
                         message="")

        kwargs: dict[str, Any] = {"preset": spec.preset, "progress": progress,
                                  "should_stop": lambda: job.stop_requested}
        if spec.seeds is not None:
            kwargs["seeds"] = spec.seeds
        if spec.device and spec.device != "auto":
            kwargs["device"] = spec.device
        try:
            record = evaluate(synthetic, spec.architecture, **_accepted_kwargs(evaluate, kwargs), **spec.options)
        except cancelled:
            record = None
        if job.stop_requested or record is None:
            job._publish(status="cancelled", message="Evaluation cancelled", elapsed_s=time.monotonic() - start)
            return
        record = record if isinstance(record, dict) else _record_to_dict(record)
        self.store.save_evaluation(spec.key(), record, subject=spec.subject, run_id=spec.run_id,
                                   dataset=meta["dataset"], ipc=meta["ipc"], architecture=spec.architecture,
                                   preset=spec.preset)
        job._publish(status="done", result=record, elapsed_s=time.monotonic() - start, message="")

    def _evaluation_subject(self, spec: EvalSpec) -> tuple[Any, dict[str, Any]]:
        if spec.run_id is not None:
            record = self.store.get_run(spec.run_id)
            synthetic = self.store.load_set(spec.run_id)
            if record is None or synthetic is None:
                raise FileNotFoundError(f"Run {spec.run_id} has no stored set to evaluate yet")
            return synthetic, {"dataset": record.dataset, "ipc": record.ipc}
        if spec.subject.startswith("whole:"):
            dataset = spec.subject.split(":", 1)[1]
            return whole_set(load_dataset(dataset)), {"dataset": dataset, "ipc": None}
        _, dataset, ipc, seed = spec.subject.split(":")
        return random_real_set(load_dataset(dataset), int(ipc), int(seed)), {"dataset": dataset, "ipc": int(ipc)}


# ---------------------------------------------------------------------- helpers
def random_real_set(data: LoadedDataset, ipc: int, seed: int = 0):
    """IPC random real training images per class, as a SyntheticSet (the baseline every method must beat)."""
    from .synthetic import SetMeta, SyntheticSet

    g = torch.Generator().manual_seed(int(seed) + 12345)
    idx = torch.cat([data.train.sample_class(c, ipc, g) for c in range(data.info.num_classes)])
    images = data.normalize(data.train.images[idx])
    labels = torch.arange(data.info.num_classes).repeat_interleave(ipc)
    meta = SetMeta.for_dataset(data.info, "random", ipc, seed=int(seed), notes="random real images (baseline)")
    return SyntheticSet(images, labels, meta)


def whole_set(data: LoadedDataset):
    """The whole training set as a SyntheticSet (the upper reference line)."""
    from .synthetic import SetMeta, SyntheticSet

    meta = SetMeta.for_dataset(data.info, "whole", 0, notes="the whole training set")
    return SyntheticSet(data.normalize(data.train.images), data.train.labels.clone(), meta)


def _evaluator() -> tuple[Callable[..., Any], type[BaseException]]:
    """ddcore.evaluation.evaluate and its cancellation exception."""
    from . import evaluation

    cancelled = getattr(evaluation, "EvaluationCancelled", None)
    if cancelled is None:
        from .evaluation.result import EvaluationCancelled as cancelled
    return evaluation.evaluate, cancelled


def _warm_up() -> None:
    """Pay one-time import costs (torch.optim pulls in torch._dynamo: seconds) before the first Start."""
    try:
        from . import runner  # noqa: F401

        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    except Exception:
        pass


def _as_run_spec(spec: Any) -> Any:
    from .runner import RunSpec

    if isinstance(spec, RunSpec):
        return spec
    if isinstance(spec, dict):
        return RunSpec.from_dict(spec)
    raise TypeError(f"expected a RunSpec or a dict, got {type(spec).__name__}")


def _validate_distill(spec: Any) -> None:
    """Refuse bad input before anything is stored: unknown method, IPC < 1, a preset the method lacks."""
    from .data import get_dataset_info
    from .methods import make_config, method_class

    cls = method_class(spec.method)
    info = get_dataset_info(spec.dataset)
    if int(spec.ipc) < 1:
        raise ValueError(f"IPC must be at least 1, not {spec.ipc}")
    make_config(cls.name, info, int(spec.ipc), spec.preset, **(spec.overrides or {}))


def _device_key(device: str) -> str:
    return resolve_device(device).type


def _eval_name(spec: EvalSpec, store: RunStore) -> str:
    if spec.run_id is not None:
        record = store.get_run(spec.run_id)
        target = record.name if record else spec.run_id
    elif spec.subject.startswith("whole:"):
        target = f"whole {spec.subject[6:]} training set"
    else:
        _, dataset, ipc, _ = spec.subject.split(":")
        target = f"random real · {dataset} · IPC {ipc}"
    return f"Evaluate {target} on {spec.architecture} ({spec.preset})"


def _progress_fraction(args: tuple, kwargs: dict) -> tuple[float, float]:
    """Accept progress(done, total), progress(fraction) or progress(dict) from the evaluator."""
    if len(args) >= 2 and all(isinstance(a, (int, float)) for a in args[:2]):
        return float(args[0]), float(args[1])
    if "done" in kwargs and "total" in kwargs:
        return float(kwargs["done"]), float(kwargs["total"])
    if args and isinstance(args[0], dict):
        d = args[0]
        if "done" in d and "total" in d:
            return float(d["done"]), float(d["total"])
        if "fraction" in d:
            return float(d["fraction"]) * 100, 100.0
    if args and isinstance(args[0], (int, float)):
        return float(args[0]) * 100 if args[0] <= 1 else float(args[0]), 100.0
    return 0.0, 0.0


def _accepted_kwargs(fn: Callable, kwargs: dict[str, Any]) -> dict[str, Any]:
    import inspect

    params = inspect.signature(fn).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}


def _record_to_dict(record: Any) -> dict[str, Any]:
    if hasattr(record, "to_dict"):
        return record.to_dict()
    from dataclasses import is_dataclass

    if is_dataclass(record):
        return asdict(record)
    return dict(record)


def _error_message(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}"
    frames = traceback.extract_tb(e.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {os.path.basename(last.filename)}:{last.lineno})"
    return text
