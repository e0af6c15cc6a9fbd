"""The sweep task: a grid of distillations and their evaluations, run as ordinary jobs, with one table.

Why: a published table is methods × datasets × IPCs × seeds, each set evaluated on several networks
beside random real images of the same IPC. A sweep expands that grid into distill jobs and, as each set
is made, evaluate jobs (on every evaluation architecture, and the same-protocol random-real baseline);
the runs and evaluations land in the store like any others, so the Gallery, Compare, Evaluate and Board
pages show them. The sweep only coordinates (`coordinator = True`): its cells run on the queue's
executors, on this machine or on a Ray cluster (`executor`).

    spec = SweepSpec(datasets=("mnist",), methods=("dm", "dc"), ipcs=(1, 10), seeds=(0, 1, 2))
    estimate_sweep(spec, store, parallel=2)     # before starting: seconds, from this store's own runs
    job = manager.submit(spec)                  # job.snapshot().detail: the cells as they stand
"""
from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

from ..methods.base import Requirement
from . import register_task
from .base import Cancelled, Resources, TaskContext, spec_from_dict, spec_to_dict
from .study import StudyTask

if TYPE_CHECKING:
    from ..platform.records import ArtefactRecord
    from ..platform.store import Store

MAX_CELLS = 500
POLL_S = 0.5
STOP_WAIT_S = 120.0
EXECUTOR_CHOICES = ("auto", "local", "ray")


@dataclass(frozen=True)
class SweepSpec:
    """A grid: every dataset × method × IPC × preset × seed is one cell (one distillation), evaluated on each
    of `eval_architectures` with `eval_preset`, beside random real images of the same IPC and seed."""

    kind: ClassVar[str] = "sweep"
    datasets: tuple[str, ...]
    methods: tuple[str, ...]
    ipcs: tuple[int, ...]
    seeds: tuple[int, ...] = (0,)
    presets: tuple[str, ...] = ("quick",)
    eval_architectures: tuple[str, ...] = ("convnet",)
    eval_preset: str = "quick"
    eval_seeds: int | None = None  # None: the evaluation preset's number of seeds
    eval_options: dict[str, Any] = field(default_factory=dict)  # EvalConfig overrides, e.g. {"epochs_no_aug": 5}
    overrides: dict[str, Any] = field(default_factory=dict)  # method config fields for every cell (e.g. iterations)
    baseline: bool = True  # also evaluate random real images of each cell's IPC and seed the same way
    label: str = ""  # the sweep's name; two sweeps with the same grid and label are the same sweep (reused)
    device: str = "auto"
    executor: str = "auto"  # where the cells run: 'local', 'ray' (a connected cluster), 'auto' (ray if connected)
    max_in_flight: int = 0  # distillations queued at once (0: what the executor runs at once, plus one)

    def __post_init__(self) -> None:  # lists from JSON, the CLI or a page become tuples
        for name in ("datasets", "methods", "ipcs", "seeds", "presets", "eval_architectures"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, (str, int)) else tuple(value))

    def to_dict(self) -> dict[str, Any]:
        return spec_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SweepSpec":
        return spec_from_dict(cls, data)

    def cells(self) -> list["Cell"]:
        return [Cell(d, m, int(i), p, int(s)) for d, m, i, p, s in
                itertools.product(self.datasets, self.methods, self.ipcs, self.presets, self.seeds)]


@dataclass(frozen=True)
class Cell:
    dataset: str
    method: str
    ipc: int
    preset: str
    seed: int

    @property
    def label(self) -> str:
        return f"{self.method.upper()} · {self.dataset} · IPC {self.ipc} · {self.preset} · seed {self.seed}"


@dataclass(frozen=True)
class CellState:
    """One cell as it stands: the distillation's run and progress, then each evaluation's accuracy (percent)."""

    cell: Cell
    status: str = "waiting"  # waiting | distilling | evaluating | done | failed | cancelled
    progress: float = 0.0  # 0..1 over the distillation and its evaluations
    run_id: str | None = None
    job_id: str | None = None
    accuracy: tuple[tuple[str, float, float], ...] = ()  # (architecture, mean, std)
    baseline: tuple[tuple[str, float, float], ...] = ()  # random real images, same IPC, seed and protocol
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**spec_to_dict(self.cell), "status": self.status, "progress": self.progress, "run_id": self.run_id,
                "accuracy": [list(a) for a in self.accuracy], "baseline": [list(b) for b in self.baseline],
                "message": self.message}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CellState":
        cell = Cell(d["dataset"], d["method"], int(d["ipc"]), d["preset"], int(d["seed"]))
        return cls(cell, d["status"], float(d["progress"]), d.get("run_id"), None,
                   tuple((a, float(m), float(s)) for a, m, s in d.get("accuracy", [])),
                   tuple((a, float(m), float(s)) for a, m, s in d.get("baseline", [])), d.get("message", ""))


@dataclass(frozen=True)
class SweepResult:
    cells: tuple[CellState, ...]
    wall_s: float
    executor: str
    nodes: int = 1
    key: str = ""
    name: str = ""
    created: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"cells": [c.to_dict() for c in self.cells], "wall_s": self.wall_s, "executor": self.executor,
                "nodes": self.nodes}

    def arrays(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_stored(cls, data: dict[str, Any], arrays: dict[str, Any], record: "ArtefactRecord") -> "SweepResult":
        return cls(tuple(CellState.from_dict(c) for c in data["cells"]), float(data["wall_s"]), data["executor"],
                   int(data.get("nodes", 1)), record.key, record.name, float(record.created))

    def summary(self) -> list[dict[str, Any]]:
        return summary_table(self.cells)


def _pm(mean: float | None, std: float | None) -> str | None:
    return None if mean is None else f"{mean:.1f} ± {std or 0.0:.1f}"


def cells_table(cells: Any) -> list[dict[str, Any]]:
    """One row per cell: where it stands, its run, and each network's accuracy beside random real (percent)."""
    rows = []
    for state in cells:
        c = state.cell
        row: dict[str, Any] = {"dataset": c.dataset, "method": c.method, "ipc": c.ipc, "preset": c.preset,
                               "seed": c.seed, "status": state.status, "progress": round(100 * state.progress),
                               "run": state.run_id or ""}
        base = {a: m for a, m, _ in state.baseline}
        for arch, mean, std in state.accuracy:
            row[f"{arch} (%)"] = _pm(mean, std)
            if arch in base:
                row[f"random {arch} (%)"] = round(base[arch], 2)
                row[f"gain on {arch}"] = round(mean - base[arch], 2)
        row["note"] = state.message
        rows.append(row)
    return rows


def summary_table(cells: Any) -> list[dict[str, Any]]:
    """The published table's shape: method × dataset × IPC × preset, mean ± std over seeds (each seed's set
    counted once), random real at the same IPC trained the same way, and the gain over it, per network."""
    groups: dict[tuple[str, str, int, str], list[CellState]] = {}
    for state in cells:
        c = state.cell
        groups.setdefault((c.dataset, c.method, c.ipc, c.preset), []).append(state)
    rows = []
    for (dataset, method, ipc, preset), states in groups.items():
        archs = list(dict.fromkeys(a for s in states for a, _, _ in s.accuracy))
        row: dict[str, Any] = {"dataset": dataset, "method": method, "ipc": ipc, "preset": preset,
                               "seeds done": sum(s.status == "done" for s in states), "seeds": len(states)}
        for arch in archs:
            ours = [m for s in states for a, m, _ in s.accuracy if a == arch]
            rand = [m for s in states for a, m, _ in s.baseline if a == arch]
            row[f"{arch} (%)"] = _pm(statistics.fmean(ours), statistics.pstdev(ours)) if ours else None
            row[f"random {arch} (%)"] = _pm(statistics.fmean(rand), statistics.pstdev(rand)) if rand else None
            row[f"gain on {arch}"] = round(statistics.fmean(ours) - statistics.fmean(rand), 2) if ours and rand else None
        rows.append(row)
    return rows


def validate(spec: SweepSpec) -> SweepSpec:
    """Every name and number of the grid, before anything is queued."""
    from ..evaluation.protocol import get_preset
    from ..models import MODELS
    from .distill import validate as validate_distill
    from .evaluate import krr_base

    for name in ("datasets", "methods", "ipcs", "seeds", "presets", "eval_architectures"):
        if not getattr(spec, name):
            raise ValueError(f"a sweep needs at least one of {name.replace('_', ' ')}")
        if len(set(getattr(spec, name))) != len(getattr(spec, name)):
            raise ValueError(f"{name.replace('_', ' ')} lists a value twice: {list(getattr(spec, name))}")
    cells = spec.cells()
    if len(cells) > MAX_CELLS:
        raise ValueError(f"this grid has {len(cells):,} cells; a sweep takes at most {MAX_CELLS}")
    if spec.executor not in EXECUTOR_CHOICES:
        raise ValueError(f"executor is one of {', '.join(EXECUTOR_CHOICES)}, not {spec.executor!r}")
    if spec.eval_seeds is not None and not 1 <= int(spec.eval_seeds) <= 20:
        raise ValueError(f"evaluation seeds must lie in 1..20, not {spec.eval_seeds}")
    config = get_preset(spec.eval_preset)
    if spec.eval_options:
        config.with_(**spec.eval_options)
    for arch in spec.eval_architectures:
        MODELS.entry(krr_base(arch) or arch)
    seen: set[tuple[str, str, int, str]] = set()
    for c in cells:  # one check per distinct configuration (seeds do not change validity)
        if (c.dataset, c.method, c.ipc, c.preset) not in seen:
            seen.add((c.dataset, c.method, c.ipc, c.preset))
            validate_distill(distill_spec(spec, c))
    return spec


ADOPTABLE = ("done", "running", "paused", "queued", "interrupted", "stopped")  # run statuses a cell can go on from


def distill_spec(spec: SweepSpec, cell: Cell) -> Any:
    from .distill import DistillSpec

    return DistillSpec(cell.dataset, cell.method, cell.ipc, preset=cell.preset, overrides=dict(spec.overrides),
                       seed=cell.seed, device=spec.device, evaluate_after=False)


def eval_specs(spec: SweepSpec, cell: Cell, run_id: str) -> list[tuple[str, str, Any]]:
    """(which, architecture, EvalSpec) for a finished cell: its set on each architecture, then the baseline."""
    from ..evaluation.protocol import fixes_augmentation, trained_like
    from ..platform.records import Subject
    from .evaluate import EvalSpec

    like = trained_like(cell.method, cell.dataset, cell.preset, cell.ipc,
                        fixed_augmentation=fixes_augmentation(spec.eval_preset, spec.eval_options))
    # an explicit 'auto' means each set's own augmentation; the baseline's own is the method's, already in `like`
    extra = {k: v for k, v in spec.eval_options.items() if (k, str(v).strip().lower()) != ("augmentation", "auto")}
    out = []
    for arch in spec.eval_architectures:
        out.append(("set", arch, EvalSpec(Subject.run(run_id, cell.dataset), arch, spec.eval_preset, spec.eval_seeds,
                                          spec.device, dict(spec.eval_options))))
        if spec.baseline:  # random real trained the way this method's sets are (DD-Ranking's rule)
            out.append(("baseline", arch, EvalSpec(Subject.random(cell.dataset, cell.ipc, cell.seed), arch,
                                                   spec.eval_preset, spec.eval_seeds, spec.device,
                                                   {**like, **extra})))
    return out


# ---------------------------------------------------------------------- cost before starting
@dataclass(frozen=True)
class SweepEstimate:
    cells: int
    distillations_s: float | None  # summed over cells; None where some configuration has no measurement
    evaluations_s: float | None
    parallel: int
    unknown: tuple[str, ...] = ()  # configurations nothing was measured for (said, not guessed)
    evaluations: int = 0
    from_table: tuple[str, ...] = ()  # distillations timed by this repo's CPU benchmark, not by this store

    @property
    def total_s(self) -> float | None:
        if self.distillations_s is None or self.evaluations_s is None:
            return None
        return self.distillations_s + self.evaluations_s

    @property
    def wall_s(self) -> float | None:
        """Total work over the jobs that run at once (an even spread: a lower bound when cells differ in cost)."""
        return None if self.total_s is None else self.total_s / max(1, self.parallel)


def estimate_sweep(spec: SweepSpec, store: "Store", parallel: int = 1) -> SweepEstimate:
    """The sweep's cost from what this store has measured: seconds per iteration of earlier runs of the same
    method, dataset, IPC and preset (else, for jobs on this machine's CPU, the preset's CPU table in
    ddcore/estimates.py), and the wall time of earlier evaluations on the same dataset, IPC, architecture and
    preset. Configurations with neither are named, not guessed."""
    from ..data import get_dataset_info
    from ..device import resolve_device
    from ..estimates import cpu_estimate
    from ..evaluation.protocol import get_preset
    from ..methods import make_config

    protocol = get_preset(spec.eval_preset).with_(**spec.eval_options)
    seeds = int(spec.eval_seeds or protocol.num_seeds)
    expected_epochs = {protocol.epochs} if protocol.epochs is not None else {protocol.epochs_no_aug, protocol.epochs_aug}
    # one pass over the store's runs and evaluations, indexed by what a cell looks up (the page reruns this on
    # every widget change, and a store holds thousands of rows)
    speeds: dict[tuple, list[float]] = {}
    for r in store.list_runs(status="done"):
        if r.iteration and r.elapsed_s:
            speeds.setdefault((r.method, r.dataset, r.ipc, r.preset), []).append(r.elapsed_s / r.iteration)
    eval_seconds: dict[tuple, list[float]] = {}
    for e in store.list_evaluations():
        if (e.preset == spec.eval_preset and e.result.config.get("epochs") in expected_epochs
                and e.result.config.get("test_limit") == protocol.test_limit):
            key = (e.subject.dataset, e.subject.ipc, e.architecture)
            eval_seconds.setdefault(key, []).append(e.result.wall_time_s / max(1, len(e.result.seeds)))
    unknown: list[str] = []
    from_table: list[str] = []
    # the benchmark's table times one core of this kind of CPU: not a GPU, nor a cluster's machines
    try:
        on_this_cpu = spec.executor != "ray" and resolve_device(spec.device).type == "cpu"
    except (ValueError, RuntimeError):  # a device this machine lacks: its jobs fail before they cost anything
        on_this_cpu = False
    distill_s: float | None = 0.0
    eval_s: float | None = 0.0
    count_evals = 0
    baselines: set[tuple] = set()
    for cell in spec.cells():
        info = get_dataset_info(cell.dataset)
        iterations = int(make_config(cell.method, info, cell.ipc, cell.preset, **spec.overrides).iterations)
        measured = speeds.get((cell.method, cell.dataset, cell.ipc, cell.preset))
        cell_s = statistics.median(measured) * iterations if measured else None
        label = f"{cell.method.upper()} {cell.dataset} IPC {cell.ipc} {cell.preset}"
        if cell_s is None and on_this_cpu:  # nothing run here yet: the CPU table of this repo's benchmarks
            table = cpu_estimate(cell.method, info, cell.ipc, iterations, cell.preset)
            if table is not None:
                cell_s = table.seconds
                from_table.append(label)
        if cell_s is None:
            unknown.append(label)
            distill_s = None
        elif distill_s is not None:
            distill_s += cell_s
        for which, arch, job_spec in eval_specs(spec, cell, "estimate"):
            if which == "baseline":  # one per dataset, IPC, seed and recipe: shared by the methods trained alike
                shared = (cell.dataset, cell.ipc, cell.seed, arch, tuple(sorted(job_spec.options.items())))
                if shared in baselines:
                    continue
                baselines.add(shared)
            count_evals += 1
            per_seed = eval_seconds.get((cell.dataset, cell.ipc, arch))
            if not per_seed:
                unknown.append(f"evaluation of {cell.dataset} IPC {cell.ipc} on {arch} ({spec.eval_preset})")
                eval_s = None
            elif eval_s is not None:
                eval_s += statistics.median(per_seed) * seeds
    return SweepEstimate(len(spec.cells()), distill_s, eval_s, max(1, parallel), tuple(dict.fromkeys(unknown)),
                         count_evals, tuple(dict.fromkeys(from_table)))


# ---------------------------------------------------------------------- the task
@register_task
class SweepTask(StudyTask):
    kind = "sweep"
    title = "Sweep"
    Spec = SweepSpec
    produces = "sweep"
    Result = SweepResult
    coordinator = True

    def identity(self, spec: SweepSpec, store: "Store") -> tuple[SweepSpec, Requirement]:
        if isinstance(spec, dict):
            spec = SweepSpec.from_dict(spec)
        spec = validate(spec)
        params = {k: v for k, v in spec.to_dict().items() if k not in ("device", "executor", "max_in_flight")}
        n = len(spec.cells())
        label = spec.label or f"Sweep of {n} cell{'s' * (n != 1)}: {', '.join(m.upper() for m in spec.methods)} on " \
                              f"{', '.join(spec.datasets)}, IPC {', '.join(map(str, spec.ipcs))}"
        return spec, Requirement.from_dict(self.produces, params, label=label)

    def resources(self, spec: SweepSpec) -> Resources:
        return Resources(cpus=0.0)

    def run(self, spec: SweepSpec, ctx: TaskContext) -> SweepResult:
        return self.save(ctx, spec, Coordinator(spec, ctx).run())


class Coordinator:
    """Queues the cells' jobs a few at a time, follows them, and publishes the cells (ctx.recorder.detail)."""

    def __init__(self, spec: SweepSpec, ctx: TaskContext) -> None:
        if ctx.jobs is None:
            raise RuntimeError("a sweep runs through the job queue (JobManager.submit), which hands it the queue")
        self.spec, self.ctx, self.jobs = spec, ctx, ctx.jobs
        self.executor = self._executor_name()
        self.cells = {c: CellState(c) for c in spec.cells()}
        self._earlier = self._earlier_runs()
        self.evals: dict[Cell, list[tuple[str, str, str]]] = {}  # cell -> (which, architecture, job id)

    def _executor_name(self) -> str:
        names = set(self.jobs.executors)
        if self.spec.executor == "local":
            return self.jobs.local.name
        if self.spec.executor == "ray":
            if "ray" not in names:
                raise RuntimeError("this sweep asks for the Ray cluster, but the Studio is not connected to one (set "
                                   "RAY_ADDRESS, or connect on the Sweeps page)")
            return "ray"
        return "ray" if "ray" in names else self.jobs.executor.name

    def _window(self) -> int:
        if self.spec.max_in_flight:
            return int(self.spec.max_in_flight)
        capacity = self.jobs.executors[self.executor].capacity("cpu")
        return (capacity if capacity is not None else self.jobs.slots.get("cpu", 1)) + 1

    def run(self) -> SweepResult:
        start = time.monotonic()
        waiting = list(self.cells)
        try:
            while True:
                if self.ctx.control.stop_requested:
                    raise Cancelled("Sweep stopped; the cells already done stay in the store")
                running = [c for c, s in self.cells.items() if s.status == "distilling"]
                while waiting and len(running) < self._window():
                    if not self._start(waiting[0]):
                        break
                    running.append(waiting.pop(0))
                for cell, state in list(self.cells.items()):
                    if state.status in ("distilling", "evaluating"):
                        self._follow(cell, state)
                self._publish()
                if not waiting and all(s.status in ("done", "failed", "cancelled") for s in self.cells.values()):
                    break
                time.sleep(POLL_S)
        except BaseException:
            if not self.ctx.control.shutdown_requested:  # on a server shutdown its jobs are kept to come back
                self._stop_children()
            raise
        try:
            nodes = len(getattr(self.jobs.executors[self.executor], "nodes", lambda: [None])())
        except Exception:  # a cluster that stopped answering at the very end: the table is still stored
            nodes = 0
        return SweepResult(tuple(self.cells.values()), time.monotonic() - start, self.executor, nodes)

    def _submit(self, spec: Any, dataset: str) -> Any:
        """Queue a cell's job; an uploaded dataset lives in this Studio's store, so its cells always run here."""
        from ..data.uploads import PREFIX as UPLOADED

        executor = self.jobs.local.name if dataset.startswith(UPLOADED) else self.executor
        return self.jobs.submit(spec, owner=self.ctx.owner, executor=executor)

    def _earlier_runs(self) -> dict[Cell, str]:
        """Per cell, the newest stored run of exactly its distillation (an earlier attempt of the sweep, before a
        server restart or a stop): one pass over the store when the sweep starts."""
        fields = ("dataset", "method", "ipc", "preset", "seed", "overrides", "architecture")
        wanted = {tuple(repr(distill_spec(self.spec, c).to_dict().get(k)) for k in fields): c for c in self.cells}
        found: dict[Cell, str] = {}
        for record in self.ctx.store.list_runs():  # newest first
            cell = wanted.get(tuple(repr(record.spec.get(k)) for k in fields))
            if cell is not None and cell not in found and record.status in ADOPTABLE:
                found[cell] = record.id
        return found

    def _earlier_run(self, cell: Cell) -> Any:
        """That run as it is now, if it finished or can go on: adopted instead of starting the cell again."""
        run_id = self._earlier.get(cell)
        record = self.ctx.store.get_run(run_id) if run_id else None
        return record if record is not None and record.status in ADOPTABLE else None

    def _start(self, cell: Cell) -> bool:
        """Queue the cell's distillation, or adopt an earlier attempt's run (finished, running after a restart, or
        resumable); False when the queue is full (the cell waits for the next look)."""
        from ..platform.queue import JobLimitError
        from .distill import resume_spec

        earlier = self._earlier_run(cell)
        resume = None
        if earlier is not None:
            job = self.jobs.job_for_run(earlier.id)
            if job is not None and job.snapshot().active:  # e.g. resumed by this server's restart
                self.cells[cell] = replace(self.cells[cell], status="distilling", job_id=job.id, run_id=earlier.id)
                return True
            if earlier.status == "done":
                self.cells[cell] = replace(self.cells[cell], status="distilling", job_id=None, run_id=earlier.id,
                                           message="adopted a finished run")
                return True
            if earlier.status in ("interrupted", "stopped"):  # saved with a checkpoint: it goes on from there
                resume = earlier.id
        try:
            spec = resume_spec(self.ctx.store, resume, False) if resume else distill_spec(self.spec, cell)
            job = self._submit(spec, cell.dataset)
        except JobLimitError as e:
            self.cells[cell] = replace(self.cells[cell], message=f"waits: {e}")
            return False
        except Exception as e:
            self.cells[cell] = replace(self.cells[cell], status="failed", message=str(e))
            return True
        self.cells[cell] = replace(self.cells[cell], status="distilling", job_id=job.id, run_id=job.run_id)
        return True

    def _follow(self, cell: Cell, state: CellState) -> None:
        n_evals = len(self.spec.eval_architectures) * (2 if self.spec.baseline else 1)
        if state.status == "distilling":
            snap = self.jobs.get(state.job_id).snapshot() if state.job_id else None  # None: an adopted finished run
            if snap is None:
                pass
            elif snap.status in ("queued", "running", "paused"):
                self.cells[cell] = replace(state, progress=snap.progress / (1 + n_evals), message=snap.where)
                return
            elif snap.status != "done":
                self.cells[cell] = replace(state, status="failed" if snap.status == "failed" else "cancelled",
                                           message=snap.message or snap.status)
                return
            try:
                self.evals[cell] = [(which, arch, self._submit(spec, cell.dataset).id)
                                    for which, arch, spec in eval_specs(self.spec, cell, str(state.run_id))]
            except Exception as e:  # a limit on queued jobs: try again at the next look
                self.evals.pop(cell, None)
                self.cells[cell] = replace(state, message=f"evaluations wait: {e}")
                return
            state = replace(state, status="evaluating", progress=1 / (1 + n_evals), message="")
        finished, accuracy, baseline, problems = 0, [], [], []
        for which, arch, job_id in self.evals.get(cell, []):
            snap = self.jobs.get(job_id).snapshot()
            if snap.active:
                continue
            finished += 1
            if snap.status == "done" and snap.accuracy is not None:
                (accuracy if which == "set" else baseline).append((arch, float(snap.accuracy),
                                                                   float(snap.accuracy_std or 0.0)))
            else:
                problems.append(f"{which} on {arch}: {snap.message or snap.status}")
        done = finished == len(self.evals.get(cell, []))
        status = ("failed" if problems else "done") if done else "evaluating"
        self.cells[cell] = replace(state, status=status, progress=(1 + finished) / (1 + n_evals),
                                   accuracy=tuple(accuracy), baseline=tuple(baseline), message="; ".join(problems))

    def _publish(self) -> None:
        states = tuple(self.cells.values())
        finished = sum(s.status in ("done", "failed", "cancelled") for s in states)
        self.ctx.recorder.detail(states)
        self.ctx.recorder.progress(round(sum(s.progress for s in states), 3), len(states),
                                   f"{finished} of {len(states)} cells finished")

    def _stop_children(self) -> None:
        ids = [s.job_id for s in self.cells.values() if s.job_id] + \
              [job_id for evals in self.evals.values() for _, _, job_id in evals]
        stopping = []
        for job_id in ids:
            job = self.jobs.get(job_id)
            if job is not None and job.snapshot().active:
                try:
                    self.jobs.stop(job_id)
                    stopping.append(job)
                except Exception:
                    pass
        deadline = time.monotonic() + STOP_WAIT_S  # the sweep ends when its jobs have (a set is saved as it stops)
        for job in stopping:
            job.finished.wait(max(0.0, deadline - time.monotonic()))
        for cell, state in self.cells.items():
            if state.status not in ("done", "failed"):
                self.cells[cell] = replace(state, status="cancelled")
        self._publish()
