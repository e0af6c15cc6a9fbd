"""The distill task: condense a dataset with one method into a stored run, live.

`distil()` is the one loop that drives a method: the job queue (through DistillTask), the CLI and the
benchmarks call it, each with its own Recorder / Control, and with or without a store run to save into.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..methods.base import DivergenceError, StepInterrupted
from ..platform.recorder import Control, EventControl, NullRecorder, Recorder, RunRecorder
from . import register_task
from .base import Prepared, Requirement, Task, TaskContext, check_seed, check_whole_number, spec_from_dict, spec_to_dict

if TYPE_CHECKING:
    from ..data import DatasetInfo, LoadedDataset
    from ..platform.store import Store
    from ..runner import Runner

PUBLISH_EVERY_S = 0.25  # how often a running job refreshes its live images (each costs a copy)


@dataclass(frozen=True)
class DistillSpec:
    """Everything that defines a distillation run; plain data (to_dict / from_dict)."""

    kind: ClassVar[str] = "distill"
    dataset: str
    method: str
    ipc: int
    preset: str = "quick"
    overrides: dict[str, Any] = field(default_factory=dict)  # method config fields, e.g. {"iterations": 200}
    architecture: str = "convnet"
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. {"width": 64}
    subset: dict[str, Any] = field(default_factory=dict)  # the part of the training set it sees (data/subsets.py)
    seed: int = 0
    device: str = "auto"
    data_root: str | None = None
    checkpoint_every: int = 50  # iterations
    eval_every: int | None = None  # iterations; a quick one-seed evaluation into the metrics
    eval_preset: str = "quick"
    evaluate_after: bool = True  # when done: evaluate the set and the random-real baseline
    run_id: str | None = None  # continue this stored run from its last checkpoint

    def to_dict(self) -> dict[str, Any]:
        return spec_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DistillSpec":
        return spec_from_dict(cls, d)

    def stored(self) -> dict[str, Any]:
        """What a run record keeps (not where it runs from)."""
        return {k: v for k, v in self.to_dict().items() if k not in ("run_id", "evaluate_after")}


@dataclass(frozen=True)
class DistillResult:
    run_id: str | None
    status: str  # done | stopped
    iteration: int
    message: str = ""
    followups: tuple[Any, ...] = ()  # specs the queue submits next (the evaluations of the set)


MAX_IPC = 10_000  # and at most the smallest class's training images (runner.check_ipc, once the data is loaded)


def validate(spec: DistillSpec) -> None:
    """Refuse bad input before anything is stored: unknown names, IPC < 1, a preset the method lacks."""
    from ..data import get_dataset_info
    from ..data.subsets import check_subset
    from ..methods import make_config
    from ..models import MODELS

    info = get_dataset_info(spec.dataset)
    check_subset(spec.dataset, spec.subset)
    check_whole_number(spec.ipc, "IPC", 1, MAX_IPC)
    check_seed(spec.seed)
    MODELS.entry(spec.architecture)
    make_config(spec.method, info, int(spec.ipc), spec.preset, **(spec.overrides or {}))


def _stopped(control: Control) -> str:
    """'interrupted' when the server is shutting down (the run is saved and continues after the restart), else
    'stopped' (by the user, or a time budget)."""
    return "interrupted" if getattr(control, "shutdown_requested", False) else "stopped"


def requirements(spec: DistillSpec, info: "DatasetInfo | None" = None) -> tuple[Requirement, ...]:
    """The artefacts the run needs; `info` is the loaded data's where there is data at hand (an image folder's
    classes and fingerprint are only known once it is read), else the one this machine would load (the embedded
    subset's artefacts are not the full data's)."""
    from ..data import local_info
    from ..methods import make_config, method_class

    validate(spec)
    info = info or local_info(spec.dataset, spec.data_root)
    config = make_config(spec.method, info, int(spec.ipc), spec.preset, **(spec.overrides or {}))
    return tuple(method_class(spec.method).requires(info, int(spec.ipc), config, spec.architecture))


def distil(spec: DistillSpec, data: "LoadedDataset", *, store: "Store | None" = None, run_id: str | None = None,
           recorder: Recorder | None = None, control: Control | None = None,
           resume_state: dict[str, Any] | None = None, artefacts: dict[str, Any] | None = None,
           on_step: Any = None) -> tuple["Runner", DistillResult]:
    """Step the method until done or stopped, reporting live and saving into `store`'s run `run_id` if given.
    A method's failure is saved (status 'failed', the last good set kept) and raised."""
    from ..data.subsets import restrict
    from ..runner import Runner

    data = restrict(data, spec.subset)
    recorder = recorder or NullRecorder()
    control = control or EventControl()
    if artefacts is None:  # called without the queue (CLI, benchmarks): make or load what the method needs here
        needed = requirements(spec, data.info)
        if needed:
            from ..platform.store import Store
            from . import resolve_artefacts

            artefacts = resolve_artefacts(needed, store or Store(), spec.device, data, recorder, control)
    runner = Runner(spec, data, artefacts=artefacts)
    runner.method.should_stop = lambda: control.stop_requested
    if resume_state is not None:
        runner.restore(resume_state)
    saver = RunRecorder(store, run_id, spec.checkpoint_every) if store is not None and run_id else None
    if saver is not None:
        saver.start(runner, resumed=resume_state is not None, paused=control.paused_requested)
    names = tuple(runner.method.info.class_names)

    def publish() -> None:
        snap = runner.snapshot()
        recorder.progress(snap.iteration, snap.total)
        recorder.images(snap.images, np.asarray(snap.labels), names)

    publish()
    last_publish = time.monotonic()
    paused_at_start = [False]

    def inside_iteration(fraction: float) -> None:
        """A long iteration's safe point: progress and images now and then; a stop, or a pause asked for since the
        iteration began (a Step while paused runs whole), ends it here and the method puts back its start."""
        nonlocal last_publish
        if control.stop_requested or (control.paused_requested and not paused_at_start[0]):
            raise StepInterrupted("stopped or paused during the iteration")
        now = time.monotonic()
        if now - last_publish >= PUBLISH_EVERY_S:
            m = runner.method
            now_set = m.synthetic()
            recorder.progress(m.iteration + min(max(fraction, 0.0), 0.999), m.total_iterations)
            recorder.images(now_set.to_uint8(), now_set.hard_labels().numpy(), names)
            last_publish = now

    runner.method.on_progress = inside_iteration
    status = "done"
    try:
        while not runner.done:
            was_paused = control.paused_requested
            if not control.wait_turn(before_hold=publish):
                status = _stopped(control)
                break
            if was_paused:
                recorder.state("paused" if control.paused_requested else "running")
            paused_at_start[0] = control.paused_requested
            try:
                row = runner.step()
            except StepInterrupted:  # a long iteration saw a stop or pause request: nothing of it was kept
                if control.stop_requested:
                    status = _stopped(control)
                    break
                recorder.state("paused")
                publish()  # the images as the iteration found them; Resume repeats it from its start
                continue
            recorder.metrics(row)
            if saver is not None:
                saver.step(runner, row)
            if on_step is not None:
                on_step(runner, row)
            now = time.monotonic()
            if control.paused_requested or now - last_publish >= PUBLISH_EVERY_S or runner.done:
                publish()
                last_publish = now
    except BaseException as e:  # a failure is saved as failed; Ctrl-C or a shutdown as stopped (resumable)
        if isinstance(e, DivergenceError):
            e.runner = runner  # its set is the last good one: a caller without a store (the CLI) saves it
        if saver is not None:
            if isinstance(e, Exception):
                saver.finish(runner, "failed", f"{type(e).__name__}: {e}")
            else:
                saver.finish(runner, "stopped", "Interrupted; resume it to continue from the last iteration.")
        raise
    message = ""
    if saver is not None:
        status, message = saver.finish(runner, status)
    publish()
    followups: tuple[Any, ...] = ()
    if status == "done" and spec.evaluate_after and run_id:
        from ..platform.records import Subject
        from .evaluate import EvalSpec, random_baseline

        followups = (EvalSpec(Subject.run(run_id, spec.dataset), architecture=spec.architecture, device=spec.device),
                     random_baseline(spec.dataset, spec.ipc, spec.seed, spec.method, spec.preset,
                                     architecture=spec.architecture, device=spec.device))
    return runner, DistillResult(run_id, status, runner.method.iteration, message, followups)


@register_task
class DistillTask(Task):
    kind = "distill"
    title = "Distillation"
    Spec = DistillSpec
    controls = frozenset({"pause", "step", "stop"})
    portable = True  # reads its run (a resume: the checkpoint) and its required artefacts

    def prepare(self, spec: DistillSpec, store: "Store") -> Prepared:
        if isinstance(spec, dict):
            spec = DistillSpec.from_dict(spec)
        if spec.run_id is None:
            validate(spec)
            record = store.create_run(spec.stored(), status="queued")
            spec = DistillSpec.from_dict({**spec.to_dict(), "run_id": record.id})
            return Prepared(spec, record.name, run_id=record.id, key=f"run:{record.id}")
        record = store.get_run(spec.run_id)
        if record is None:
            raise KeyError(f"No run {spec.run_id!r} in the store")
        if not record.resumable:
            raise ValueError(f"Run {record.name!r} is {record.status}; only stopped, interrupted or failed runs "
                             "resume")
        store.update_run(record.id, status="queued", message="")
        return Prepared(spec, record.name, run_id=record.id, key=f"run:{record.id}", previous_status=record.status)

    def release(self, prepared: Prepared, store: "Store", reason: str) -> None:
        """A new run that never started is 'cancelled'; a resume that never started goes back to what it was
        (stopped, interrupted or failed), so it can still be resumed."""
        if prepared.run_id is None or store.get_run(prepared.run_id) is None:
            return
        if prepared.previous_status is None:
            store.update_run(prepared.run_id, status="cancelled", message=reason)
        else:
            store.update_run(prepared.run_id, status=prepared.previous_status)

    def requires(self, spec: DistillSpec) -> tuple[Requirement, ...]:
        return requirements(spec)

    def run(self, spec: DistillSpec, ctx: TaskContext) -> DistillResult:
        data = ctx.dataset(spec.dataset, spec.data_root)
        assert spec.run_id is not None
        resume = ctx.store.load_checkpoint(spec.run_id)  # None for a new run
        from . import producer_of

        if ctx.artefacts:  # made for the data planned with: the data here must be that data (subset or full)
            from ..data.subsets import restrict

            wanted = {r.key() for r in requirements(spec, restrict(data, spec.subset).info)}
            if wanted != {record.key for record in ctx.artefacts.values()}:
                raise ValueError(f"this run was planned for other {data.info.display_name} data than this machine now "
                                 f"loads ({data.source}); restart the Studio if you added data while it ran, then "
                                 "start the run again")
        artefacts = {kind: producer_of(kind).load_artefact(record, ctx.store) for kind, record in ctx.artefacts.items()}
        for record in ctx.artefacts.values():
            ctx.store.add_artefact_use(record.key, spec.run_id)
        if ctx.control.stop_requested:
            ctx.store.update_run(spec.run_id, status="stopped", message="Stopped before it started.")
            return DistillResult(spec.run_id, "stopped", 0, "Stopped before it started.")
        _, result = distil(spec, data, store=ctx.store, run_id=spec.run_id, recorder=ctx.recorder,
                           control=ctx.control, resume_state=resume, artefacts=artefacts)
        return result


def resume_spec(store: "Store", run_id: str, evaluate_after: bool = True) -> DistillSpec:
    """The spec that continues a stored run from its last checkpoint."""
    record = store.get_run(run_id)
    if record is None:
        raise KeyError(f"No run {run_id!r} in the store")
    stored = {k: v for k, v in record.spec.items() if k not in LEGACY_FIELDS}
    missing = [k for k in ("dataset", "method", "ipc") if k not in stored]
    if missing:  # a damaged row reads as an empty spec (Store._spec_of)
        raise ValueError(f"run {run_id} has lost its settings ({', '.join(missing)} missing); it cannot be resumed, "
                         "only started again")
    return DistillSpec.from_dict({**stored, "run_id": run_id, "evaluate_after": evaluate_after})


LEGACY_FIELDS = ("snapshot_every_s",)  # stored by the first release; the live view now has its own rate
