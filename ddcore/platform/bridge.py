"""The bridge: the one engine module the UI imports for jobs, runs, evaluations and artefacts.

Pages hold one `Studio` per server (app/state.py caches it) and call it; they never reach into the
queue or the store. Specs and records are re-exported so a page needs nothing else from the platform.

    studio = Studio(home)
    job = studio.submit(DistillSpec(...), data=loaded)          # or EvalSpec(Subject.run(id), ...)
    view = studio.run_view(run_id)        # this run now: live from its job, else stored
    studio.pause(job_id) / resume / step / stop; studio.resume_run(run_id)
    studio.evaluation_state(spec)         # stored result, or the job computing it, or nothing
    studio.cluster(); studio.connect_cluster("127.0.0.1:6379")   # where sweeps run (RAY_ADDRESS connects at start)
    studio.sweep_estimate(SweepSpec(...)); studio.sweeps()
"""
from __future__ import annotations

import atexit
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..board import BoardRow, board_table, build_board
from ..continual import PRESETS as CONTINUAL_PRESETS
from ..continual import estimate_seconds as continual_estimate
from ..device import available_devices, pin_this_thread, resolve_device
from ..estimates import cpu_estimate
from ..multiformation import decode_uint8
from ..nas import BUDGETS as NAS_BUDGETS
from ..nas import GRIDS as NAS_GRIDS
from ..nas import Grid as NasGrid
from ..nas import estimate_seconds as nas_estimate
from ..paths import home_dir as default_home
from ..paths import home_path
from ..playground import DEFAULT_LR as PLAYGROUND_DEFAULT_LR
from ..playground import PLAYGROUND_METHODS, Playground, PlaygroundFrame, PlaygroundSpec
from ..playground import requirements as playground_requirements
from ..privacy.attacks import ATTACK_TITLES, ATTACKS
from ..privacy.study import TARGET_KINDS, PrivacyResult, TargetResult
from ..results import (
    EvalDetail,
    ResultRow,
    collect,
    compare_published,
    custom_preset,
    detail,
    family_of,
    latest,
    published_architecture,
    set_labels,
)
from ..synthetic import SyntheticSet, SyntheticSetFileError, make_grid
from ..tasks.continual import ContinualSpec
from ..tasks.distill import DistillSpec, resume_spec
from ..tasks.evaluate import EvalSpec, prepare_spec, random_baseline
from ..tasks.nas import NasSpec
from ..tasks.privacy import BASELINES as PRIVACY_BASELINES
from ..tasks.privacy import PRESETS as PRIVACY_PRESETS
from ..tasks.privacy import PrivacySpec
from ..tasks.privacy import estimate_seconds as privacy_estimate
from ..tasks.sweep import MAX_CELLS as SWEEP_MAX_CELLS
from ..tasks.sweep import CellState, SweepEstimate, SweepResult, SweepSpec, cells_table, estimate_sweep, summary_table
from .process_executor import ProcessExecutor, processes_enabled, warm_workers
from .queue import ACTIVE_JOB, Job, JobManager, JobSnapshot, cpu_slots, job_threads
from .records import RUN_STATUSES, ArtefactRecord, EvaluationRecord, RunRecord, Subject
from .store import Store

MAX_SET_UPLOAD_BYTES = 64 << 20
SWITCH_INTERVAL_S = 0.0002

__all__ = ["ACTIVE_JOB", "ArtefactRecord", "ATTACK_TITLES", "ATTACKS", "available_devices", "board_table", "BoardRow",
           "build_board", "collect", "compare_published", "continual_estimate", "CONTINUAL_PRESETS",
           "ContinualSpec", "cpu_estimate", "custom_preset", "decode_uint8", "default_home", "detail", "DistillSpec", "EvalDetail",
           "EvalSpec", "EvalState", "EvaluationRecord", "family_of", "home_path", "JobSnapshot", "latest",
           "make_grid", "MAX_SET_UPLOAD_BYTES", "membership_subset", "NAS_BUDGETS", "nas_estimate", "NAS_GRIDS",
           "NasGrid", "NasSpec", "pin_this_thread", "Playground", "PLAYGROUND_DEFAULT_LR",
           "PLAYGROUND_METHODS", "PlaygroundFrame", "PlaygroundSpec", "preset_seeds", "PRIVACY_BASELINES",
           "privacy_estimate", "PRIVACY_PRESETS", "PrivacyResult", "PrivacySpec", "published_architecture", "random_baseline",
           "ResultRow", "RUN_STATUSES", "RunRecord", "runs_on_cpu", "RunView", "set_labels", "Studio", "StudyState",
           "Subject", "SyntheticSet", "SyntheticSetFileError", "TARGET_KINDS", "TargetResult", "CellState",
           "ClusterInfo", "cells_table", "SWEEP_MAX_CELLS", "SweepEstimate", "SweepResult", "SweepSpec", "summary_table"]


def runs_on_cpu(device: str) -> bool:
    """Whether a job asking for `device` ('auto', 'cpu', 'cuda', ...) would run on this machine's CPU."""
    try:
        return resolve_device(device).type == "cpu"
    except (ValueError, RuntimeError):
        return True


@dataclass(frozen=True)
class RunView:
    """A run as the pages show it now: live from its job when one is active, else from the store."""

    record: RunRecord
    job: JobSnapshot | None
    status: str
    live: bool
    iteration: int
    total: int
    images: np.ndarray | None  # uint8 N×H×W×C
    labels: np.ndarray | None
    image_iteration: int | None  # the iteration the images belong to
    metrics: tuple[dict[str, Any], ...]
    problem: str | None = None  # a stored file that could not be read (the page says so and shows what it can)

    @property
    def paused(self) -> bool:
        return self.status == "paused"


@dataclass(frozen=True)
class EvalState:
    """Where one evaluation stands: its stored result (of exactly this content), or its job."""

    spec: EvalSpec | None  # None: the subject cannot be evaluated yet (no set)
    stored: EvaluationRecord | None
    job: JobSnapshot | None
    problem: str = ""

    @property
    def busy(self) -> bool:
        return self.stored is None and self.job is not None and self.job.active


@dataclass(frozen=True)
class StudyState:
    """Where one study stands: its stored result (for exactly this spec and content), or its job."""

    spec: Any  # the validated spec; None when it was refused (problem says why)
    stored: Any
    job: JobSnapshot | None
    problem: str = ""

    @property
    def busy(self) -> bool:
        return self.stored is None and self.job is not None and self.job.active


@dataclass(frozen=True)
class ClusterInfo:
    """Where sweep cells run: a connected Ray cluster (address, nodes), or this machine (address None)."""

    address: str | None
    nodes: tuple[dict[str, Any], ...] = ()
    jobs_at_once: int = 1
    problem: str = ""  # why RAY_ADDRESS (or the last Connect) did not connect

    @property
    def connected(self) -> bool:
        return self.address is not None


class Studio:
    """One per server: the job queue and the store behind the pages."""

    def __init__(self, home: str | Path | None = None) -> None:
        # A job thread runs thousands of small torch ops per iteration, each giving up the GIL and waiting to get it
        # back; while page threads hold it, every wait could last the whole switch interval (5 ms by default): a
        # DM run fell from 1.5 to 0.03 it/s with three tabs watching (benchmarks/results/load.md).
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.store = Store(home)
        # Jobs run in worker processes (their own interpreter lock: 20 watching sessions slowed an in-process job to
        # 23% of its speed, benchmarks/results/load.md); DDSTUDIO_JOB_PROCESSES=0 keeps them on threads here.
        executor = ProcessExecutor(job_threads(cpu_slots()), prestart=warm_workers()) if processes_enabled() else None
        self.manager = JobManager(self.store, executor=executor)
        self.home = str(self.store.root)
        # a clean stop (SIGTERM, Ctrl-C: Streamlit ends its loop, then atexit runs) saves running runs where they
        # are and lists every active job; the next server on this store queues them again
        atexit.register(self.close)
        self.restored = self.manager.restore_pending()
        self._cluster_problem = ""
        self._connecting = threading.Lock()
        from .ray_executor import cluster_address

        if cluster_address():  # RAY_ADDRESS: the Studio's sweeps run on that cluster
            try:
                self.connect_cluster(cluster_address() or "")
            except (ConnectionError, RuntimeError, ValueError) as e:
                self._cluster_problem = f"RAY_ADDRESS is set but the cluster could not be used: {e}"

    # ------------------------------------------------------------------ where sweeps run
    def connect_cluster(self, address: str) -> ClusterInfo:
        """Connect this server to a Ray cluster (once per process: Ray joins one cluster); sweeps then run there."""
        from .ray_executor import RayExecutor, check_address

        address = check_address(address)
        with self._connecting:  # two sessions pressing Connect at once make one executor
            current = self.manager.executors.get("ray")
            if current is not None:
                if getattr(current, "address", None) != address:
                    raise RuntimeError(f"this server is already connected to the cluster at {current.address}; "
                                       "restart it to use another")
                return self.cluster()
            self.manager.add_executor(RayExecutor(address))
            self._cluster_problem = ""
        return self.cluster()

    def cluster(self) -> ClusterInfo:
        executor = self.manager.executors.get("ray")
        if executor is None:
            return ClusterInfo(None, (), self.manager.slots.get("cpu", 1), self._cluster_problem)
        try:
            nodes = tuple(executor.nodes())
            at_once = executor.capacity("cpu") or 1
        except Exception as e:  # the cluster went away: said on the page, the local executor still works
            return ClusterInfo(executor.address, (), 0, f"the cluster does not answer: {e}")
        return ClusterInfo(executor.address, nodes, at_once)

    def sweep_estimate(self, spec: SweepSpec) -> SweepEstimate:
        """The sweep's cost from this store's measurements, spread over the jobs that would run at once."""
        info = self.cluster()
        at_once = info.jobs_at_once if (spec.executor != "local" and info.connected) else self.manager.slots.get("cpu", 1)
        return estimate_sweep(spec, self.store, parallel=max(1, at_once))

    def sweeps(self) -> list[SweepResult]:
        """Stored sweeps, newest first."""
        return self.studies("sweep")

    def close(self, wait: float = 20.0) -> None:
        """Shut the queue down without losing work (see JobManager.shutdown(keep_pending=True))."""
        self.manager.shutdown(wait=wait, keep_pending=True)
        self.manager.executor.shutdown()

    # ------------------------------------------------------------------ jobs
    def submit(self, spec: Any, *, name: str | None = None, data: Any = None, start_paused: bool = False,
               owner: str | None = None) -> Job:
        """Queue a job; `owner` (a browser session) shares the queue's slots fairly between those who submit."""
        return self.manager.submit(spec, name=name, data=data, start_paused=start_paused, owner=owner)

    def resume_run(self, run_id: str, data: Any = None, owner: str | None = None) -> Job:
        current = self.manager.job_for_run(run_id)
        if current is not None and current.status in ACTIVE_JOB:
            return current
        return self.manager.submit(resume_spec(self.store, run_id), data=data, owner=owner)

    def pause(self, job_id: str) -> None:
        self.manager.pause(job_id)

    def resume(self, job_id: str) -> None:
        self.manager.resume(job_id)

    def step(self, job_id: str) -> None:
        self.manager.step(job_id)

    def stop(self, job_id: str) -> None:
        self.manager.stop(job_id)

    def jobs(self, active: bool = False, kind: str | None = None) -> list[JobSnapshot]:
        """Snapshots, oldest first, one per job (named after their run as it is called now)."""
        out = []
        records: dict[str, RunRecord | None] = {}
        for job in self.manager.jobs(active=active, kind=kind):
            snap = job.snapshot()
            if snap.run_id:
                if snap.run_id not in records:
                    records[snap.run_id] = self.store.get_run(snap.run_id)
                record = records[snap.run_id]
                if record is None:
                    name = f"{snap.name} (run deleted)"
                elif snap.kind == "evaluate":
                    name = f"Evaluate {record.name} on {snap.spec.architecture} ({snap.spec.preset})"
                else:
                    name = record.name
                snap = _renamed(snap, name)
            out.append(snap)
        return out

    def job(self, job_id: str) -> JobSnapshot | None:
        job = self.manager.get(job_id)
        return job.snapshot() if job is not None else None

    def active_job_for_run(self, run_id: str) -> JobSnapshot | None:
        job = self.manager.job_for_run(run_id)
        return job.snapshot() if job is not None and job.status in ACTIVE_JOB else None

    def any_active(self, kind: str | None = None) -> bool:
        return bool(self.manager.jobs(active=True, kind=kind))

    # ------------------------------------------------------------------ runs
    def runs(self, **filters: Any) -> list[RunRecord]:
        return self.store.list_runs(**filters)

    def run(self, run_id: str) -> RunRecord | None:
        return self.store.get_run(run_id)

    def rename_run(self, run_id: str, name: str) -> None:
        self.store.rename_run(run_id, name)

    def delete_run(self, run_id: str) -> None:
        """Refused while any job (its distillation or an evaluation of it) is queued or running."""
        busy = [j for j in self.manager.jobs(active=True) if j.run_id == run_id]
        if busy:
            what = "the run" if any(j.kind == "distill" for j in busy) else "its evaluation"
            raise RuntimeError(f"Stop {what} before deleting it")
        self.store.delete_run(run_id, stale_ok=True)  # no job of ours works on it: an 'active' row is stale

    def playground(self, spec: PlaygroundSpec) -> Playground:
        """A 2-D playground for one session (ddcore/playground.py): stepped by the page itself, not a job. Artefacts
        its method needs (MTT's experts on the points, seconds to make) are made once and kept in this store."""
        from ..data import load_dataset
        from ..tasks import resolve_artefacts

        needed = playground_requirements(spec)
        artefacts = resolve_artefacts(needed, self.store, "cpu", data=load_dataset(spec.dataset)) if needed else None
        return Playground(spec, artefacts)

    def import_set(self, data: bytes, filename: str) -> RunRecord:
        """A set file from a user as a finished run (Gallery, Compare, Evaluate see it). It is checked whole
        first: size, format, checksum, contents, and that it fits a dataset this Studio has; a refused file leaves
        nothing behind (SyntheticSetFileError or ValueError says why)."""
        from ..data import get_dataset_info
        from ..evaluation.api import check_set
        from ..names import check_name
        from ..tasks.base import check_seed

        if len(data) > MAX_SET_UPLOAD_BYTES:
            raise SyntheticSetFileError(f"the file is {len(data) / 2**20:.1f} MB; set files up to "
                                        f"{MAX_SET_UPLOAD_BYTES >> 20} MB can be imported")
        if not data:
            raise SyntheticSetFileError("the file is empty")
        synthetic = SyntheticSet.from_bytes(data, "the uploaded file")
        meta = synthetic.meta
        try:
            info = get_dataset_info(meta.dataset)
        except LookupError as e:
            raise ValueError(f"the set is of dataset {meta.dataset!r}, which this Studio does not have") from e
        check_set(synthetic.images, synthetic.labels, info)
        name = check_name(Path(filename).stem or "imported set", what="The set's name", max_length=120)
        spec = {"dataset": info.name, "method": meta.method, "ipc": int(meta.ipc), "architecture": meta.architecture,
                "preset": "imported", "seed": check_seed(int(meta.seed or 0), "The set's seed"), "imported_from": name}
        record = self.store.create_run(spec, name=f"{name} (imported)", status="done")
        try:
            self.store.save_set(record.id, synthetic)
            self.store.update_run(record.id, iteration=int(meta.iteration), total=int(meta.iteration))
        except BaseException:
            self.store.delete_run(record.id, stale_ok=True)
            raise
        return self.store.get_run(record.id)

    # a run's files
    def run_set(self, run_id: str) -> SyntheticSet | None:
        """The run's stored set (None until it has one); a damaged file raises SyntheticSetFileError."""
        return self.store.load_set(run_id)

    def run_set_bytes(self, run_id: str) -> bytes:
        return self.store.set_path(run_id).read_bytes()

    def run_folder(self, run_id: str) -> Path:
        return self.store.run_dir(run_id)

    def run_metrics(self, run_id: str) -> list[dict[str, Any]]:
        return self.store.read_metrics(run_id)

    def run_frames(self, run_id: str) -> list[int]:
        """Iterations of the stored snapshots (the timelapse)."""
        return self.store.frame_iterations(run_id)

    def run_frame(self, run_id: str, iteration: int) -> tuple[np.ndarray, np.ndarray]:
        return self.store.load_frame(run_id, iteration)

    def run_frame_version(self, run_id: str, iteration: int) -> tuple[int, int] | None:
        """What identifies a stored snapshot's contents (None: there is none), to cache what is drawn from it."""
        return self.store.frame_version(run_id, iteration)

    def latest_images(self, run_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        """uint8 images and labels of the run's set, else of its newest snapshot, else None."""
        try:
            stored = self.store.load_set(run_id)
        except (SyntheticSetFileError, OSError):
            stored = None
        if stored is not None:
            return stored.to_uint8(), stored.hard_labels().numpy()
        frames = self.store.frame_iterations(run_id)
        try:
            return self.store.load_frame(run_id, frames[-1]) if frames else None
        except OSError:  # thinned or deleted between listing and reading
            return None

    def run_view(self, run_id: str) -> RunView | None:
        record = self.store.get_run(run_id)
        if record is None:
            return None
        job = self.manager.job_for_run(run_id)
        snap = job.snapshot() if job is not None else None
        live = snap is not None and snap.active
        status = snap.status if live else record.status
        if snap is not None and not live and record.active and snap.status in ("failed", "stopped", "interrupted"):
            # the job ended but could not say so in the index (a full or read-only store): its word stands
            status = snap.status
            record = replace(record, status=snap.status, message=snap.message or record.message)
        iteration = int(snap.iteration) if live and snap is not None else record.iteration
        total = int(snap.total or record.total) if live and snap is not None else record.total
        images = labels = None
        image_iteration = problem = None
        if snap is not None and snap.images is not None and (live or snap.updated >= record.updated - 5):
            images, labels, image_iteration = snap.images, snap.labels, int(snap.iteration)
        else:
            try:
                stored = self.store.load_set(run_id)
            except (SyntheticSetFileError, OSError) as e:
                stored, problem = None, f"The stored set cannot be read ({e}); showing the newest snapshot instead."
            if stored is not None:
                images, labels = stored.to_uint8(), stored.hard_labels().numpy()
                image_iteration = stored.meta.iteration
            else:
                frames = self.store.frame_iterations(run_id)
                if frames:
                    try:
                        images, labels = self.store.load_frame(run_id, frames[-1])
                        image_iteration = frames[-1]
                    except OSError as e:  # thinned between listing and reading, or damaged
                        problem = problem or f"The newest snapshot cannot be read ({e})."
        if live and snap is not None and snap.metrics:
            # a resumed job holds the rows since its resume: the stored ones before them come first
            first = snap.metrics[0].get("iteration", 1)
            earlier = [r for r in self.store.read_metrics(run_id) if r.get("iteration", 0) < first] if first > 1 else []
            metrics = tuple(earlier) + tuple(snap.metrics)
        else:
            metrics = tuple(self.store.read_metrics(run_id))
        return RunView(record, snap, status, live, iteration, total, images, labels, image_iteration, metrics,
                       problem)

    # ------------------------------------------------------------------ evaluations
    def evaluation_state(self, spec: EvalSpec) -> EvalState:
        """The stored result for the subject's current content, else the job computing it (if any)."""
        try:
            prepared, _ = prepare_spec(spec, self.store)
        except (FileNotFoundError, KeyError, ValueError) as e:
            return EvalState(None, None, None, str(e))
        key = prepared.key()
        stored = self.store.get_evaluation(key)
        job = next((j.snapshot() for j in reversed(self.manager.jobs(kind="evaluate")) if j.key == key), None)
        return EvalState(prepared, stored, job)

    def evaluations(self, run_id: str) -> list[EvaluationRecord]:
        return self.store.run_evaluations(run_id)

    def results(self, dataset: str | None = None) -> list[ResultRow]:
        """Every stored evaluation as a flat row (ddcore.results.collect)."""
        return collect(self.store, dataset)

    # ------------------------------------------------------------------ studies
    def study_state(self, spec: Any) -> "StudyState":
        """A study (privacy, continual, nas, ...): its stored result for exactly this spec, else its job."""
        from ..tasks import task_for

        task = task_for(spec)
        try:
            prepared = task.prepare(spec, self.store)
        except (FileNotFoundError, KeyError, LookupError, ValueError) as e:
            return StudyState(None, None, None, str(e))
        job = next((j.snapshot() for j in reversed(self.manager.jobs(kind=task.kind)) if j.key == prepared.key), None)
        return StudyState(prepared.spec, prepared.reused, job)

    def runs_on_subset(self, dataset: str, subset: dict[str, Any]) -> list[RunRecord]:
        """Runs with a stored set that saw exactly this part of the training set (e.g. a split's members)."""
        return [r for r in self.store.list_runs(dataset=dataset) if r.fingerprint and r.spec.get("subset") == subset]

    def studies(self, kind: str) -> list[Any]:
        """Every stored study of a task kind (its typed results), newest first."""
        from ..tasks import TASKS

        task = TASKS.get(kind)
        out = []
        for record in self.store.list_artefacts(task.produces):
            try:
                out.append(task.load_artefact(record, self.store))
            except (OSError, ValueError, KeyError):  # a damaged folder: listed nowhere rather than failing the page
                continue
        return out

    # ------------------------------------------------------------------ artefacts
    def artefacts(self, kind: str | None = None) -> list[tuple[ArtefactRecord, list[RunRecord]]]:
        """Every stored artefact with the runs that used it."""
        out = []
        for a in self.store.list_artefacts(kind):
            runs = [r for r in (self.store.get_run(i) for i in self.store.artefact_dependents(a.key)) if r]
            out.append((a, runs))
        return out

    def delete_artefact(self, key: str, force: bool = False) -> None:
        self.store.delete_artefact(key, force=force)


def membership_subset(dataset: str, pool_per_class: int, seed: int) -> dict[str, Any]:
    """The `DistillSpec.subset` of a run that sees the members of this privacy split only."""
    from ..data.subsets import MembershipSplit

    return MembershipSplit(dataset, int(pool_per_class), int(seed)).subset()


def trained_like(method: str, dataset: str | None = None, preset: str = "quick", ipc: int = 10,
                 eval_preset: str = "quick") -> dict[str, Any]:
    """Evaluation options that train a baseline the way `method`'s sets on `dataset` are trained (EvalSpec.options):
    its augmentation (unless `eval_preset` fixes one for every set), optimiser, ConvNet norm, and ZCA space where its
    `preset` whitens that dataset at that IPC."""
    from ..evaluation.protocol import fixes_augmentation
    from ..evaluation.protocol import trained_like as options

    return options(method, dataset, preset, ipc, fixed_augmentation=fixes_augmentation(eval_preset))


def preset_seeds(preset: str) -> int:
    """How many networks an evaluation preset trains by default (quick: 1, paper: 5)."""
    from ..evaluation.protocol import get_preset

    return int(get_preset(preset).num_seeds)


def _renamed(snap: JobSnapshot, name: str | None) -> JobSnapshot:
    return snap if not name or name == snap.name else replace(snap, name=name)
