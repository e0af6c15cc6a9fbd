"""The continual-learning study: class-incremental steps with a memory per method (ddcore/continual.py),
run as one job and stored as one study, so reopening the page shows it without recomputation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..continual import ContinualOutcome
from ..methods.base import Requirement
from . import register_task
from .base import Cancelled, TaskContext, spec_to_dict
from .study import StudyTask

if TYPE_CHECKING:
    from ..platform.store import Store

ARTEFACT_KIND = "continual-study"
MAX_ORDERS = 20


@dataclass(frozen=True)
class ContinualSpec:
    """One class-incremental study: which memories, how many steps and class orders, how much work."""

    kind: ClassVar[str] = "continual"
    dataset: str
    methods: tuple[str, ...] = ("random", "herding", "dm")
    ipc: int = 10
    steps: int = 5
    orders: int = 3  # class orders: seeds 0 .. orders-1
    preset: str = "quick"
    finetune: bool = False  # also a network fine-tuned step to step with the memory replayed
    architecture: str = "convnet"
    data_root: str | None = None  # for the 'folder' dataset
    device: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        return spec_to_dict(self)


def check(spec: ContinualSpec) -> ContinualSpec:
    """Refuse what cannot be run (unknown names, IPC 0, more steps than classes, ...) before anything is stored."""
    from ..continual import get_preset
    from ..data import get_dataset_info, load_dataset
    from ..data.info import canonical_name
    from ..methods import METHODS, method_class
    from ..models import MODELS

    dataset = canonical_name(spec.dataset)
    info = get_dataset_info(dataset)
    if dataset == "folder":
        if not spec.data_root:
            raise ValueError("the 'folder' dataset needs data_root (a folder or zip of train/<class>/images)")
        data = load_dataset("folder", spec.data_root)
        info = data.info
        smallest = min(data.train.class_counts())
        if int(spec.ipc) > smallest:
            raise ValueError(f"IPC {spec.ipc} needs at least {spec.ipc} training images per class; the smallest class of "
                             f"this folder has {smallest}")
    methods = tuple(str(m).strip().lower() for m in spec.methods)
    if not methods:
        raise ValueError("choose at least one memory method")
    if len(set(methods)) != len(methods):
        raise ValueError(f"each memory method once, not {', '.join(methods)}")
    preset = get_preset(spec.preset)
    for m in methods:
        METHODS.entry(m)  # unknown names fail with close matches
        method_class(m).check_preset(preset.method_preset)
    MODELS.entry(spec.architecture)
    if int(spec.ipc) < 1:
        raise ValueError(f"IPC must be at least 1, not {spec.ipc}")
    if not 1 <= int(spec.steps) <= info.num_classes:
        raise ValueError(f"steps must be between 1 and the number of classes ({info.num_classes}), not {spec.steps}")
    if not 1 <= int(spec.orders) <= MAX_ORDERS:
        raise ValueError(f"class orders must be between 1 and {MAX_ORDERS}, not {spec.orders}")
    return ContinualSpec(dataset, methods, int(spec.ipc), int(spec.steps), int(spec.orders), spec.preset, bool(spec.finetune),
                         spec.architecture, spec.data_root, spec.device)


def study_label(spec: ContinualSpec) -> str:
    from ..data import get_dataset_info

    name = get_dataset_info(spec.dataset).display_name
    tuned = ", fine-tuned learner too" if spec.finetune else ""
    return (f"Continual learning: {name}, {spec.steps} steps, IPC {spec.ipc}, {'/'.join(spec.methods)}, "
            f"{spec.orders} class order(s), {spec.preset}{tuned}")


@register_task
class ContinualTask(StudyTask):
    kind = "continual"
    title = "Continual learning"
    Spec = ContinualSpec
    produces = ARTEFACT_KIND
    Result = ContinualOutcome

    def identity(self, spec: ContinualSpec, store: "Store") -> tuple[ContinualSpec, Requirement]:
        spec = check(spec)
        params = {k: v for k, v in spec.to_dict().items() if k != "device"}
        return spec, Requirement.from_dict(ARTEFACT_KIND, params, label=study_label(spec))

    def requires(self, spec: ContinualSpec) -> tuple[Requirement, ...]:
        """What the memory methods need first (herding's trained feature network), once each."""
        from ..continual import get_preset
        from ..data import local_info
        from ..methods import make_config, method_class

        spec = check(spec)
        info = local_info(spec.dataset, spec.data_root)  # with the embedded subset's variant where that is loaded
        if info.name == "folder":  # the folder's own classes and fingerprint, not the registry's placeholder
            from ..data import load_dataset

            info = load_dataset("folder", spec.data_root).info
        preset = get_preset(spec.preset).method_preset
        out: dict[str, Requirement] = {}
        for m in spec.methods:
            config = make_config(m, info, spec.ipc, preset)
            for r in method_class(m).requires(info, spec.ipc, config, spec.architecture):
                out.setdefault(r.key(), r)
        return tuple(out.values())

    def run(self, spec: ContinualSpec, ctx: TaskContext) -> ContinualOutcome:
        from ..continual import Stopped, get_preset, run_continual, units
        from . import producer_of

        data = ctx.dataset(spec.dataset, spec.data_root)
        artefacts = {kind: producer_of(kind).load_artefact(record, ctx.store) for kind, record in ctx.artefacts.items()}
        total = units(len(spec.methods), spec.orders, spec.steps, spec.finetune)
        ctx.recorder.progress(0, total, "Starting…")
        try:
            outcome = run_continual(data, spec.methods, spec.ipc, spec.steps, range(spec.orders), get_preset(spec.preset),
                                    architecture=spec.architecture, device=spec.device, artefacts=artefacts,
                                    finetune=spec.finetune,
                                    progress=lambda done, message: ctx.recorder.progress(round(done, 3), total, message),
                                    should_stop=lambda: ctx.control.stop_requested)
        except Stopped as e:
            raise Cancelled(f"Continual-learning study stopped: {e}") from e
        inputs = (f"dataset:{spec.dataset}:{data.source}", *(r.key for r in ctx.artefacts.values()))
        return self.save(ctx, spec, outcome, inputs=inputs)
