"""The architecture-search proxy study (ddcore/nas.py) and its reusable part, the whole-data accuracies.

The whole-data accuracies of a grid are the expensive half and do not depend on the proxies, so they are an
artefact of their own ('nas-whole-data', one per dataset, grid and budget): the first study makes them in a
job of their own (its own progress), every later study of the same grid reuses them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..device import resolve_device
from ..methods.base import Requirement
from ..nas import Grid, NasResult, WholeResult
from . import register_task
from .base import Cancelled, TaskContext, check_same_data, check_whole_number, spec_to_dict
from .study import StudyTask, mark_variants

if TYPE_CHECKING:
    from ..platform.store import Store

WHOLE_KIND = "nas-whole-data"
STUDY_KIND = "nas-study"
DEFAULT = Grid()

MAX_ARCHITECTURES = 720  # the DC paper's search space (ddcore.nas GRIDS['dc720'])


@dataclass(frozen=True)
class NasWholeSpec:
    """Train every architecture of a grid on the whole data under a budget."""

    kind: ClassVar[str] = "nas-whole"
    dataset: str
    widths: tuple[int, ...] = DEFAULT.widths
    depths: tuple[int, ...] = DEFAULT.depths
    norms: tuple[str, ...] = DEFAULT.norms
    activations: tuple[str, ...] = DEFAULT.activations
    poolings: tuple[str, ...] = DEFAULT.poolings
    budget: str = "quick"
    data_root: str | None = None
    device: str = "auto"

    def grid(self) -> Grid:
        return Grid(tuple(int(w) for w in self.widths), tuple(int(d) for d in self.depths), tuple(self.norms),
                    tuple(self.activations), tuple(self.poolings))

    def to_dict(self) -> dict[str, Any]:
        return spec_to_dict(self)


@dataclass(frozen=True)
class NasSpec:
    """One study: which proxies, which grid, which budget. A proxy is 'run:<id>' (a stored set) or a coreset
    method made here at `ipc` ('random', 'herding', 'kcenter')."""

    kind: ClassVar[str] = "nas"
    dataset: str
    proxies: tuple[str, ...] = ("random",)
    ipc: int = 10
    widths: tuple[int, ...] = DEFAULT.widths
    depths: tuple[int, ...] = DEFAULT.depths
    norms: tuple[str, ...] = DEFAULT.norms
    activations: tuple[str, ...] = DEFAULT.activations
    poolings: tuple[str, ...] = DEFAULT.poolings
    budget: str = "quick"
    top_k: tuple[int, ...] = (5, 10)
    bootstrap: int = 1000
    data_root: str | None = None
    device: str = "auto"

    def grid(self) -> Grid:
        return NasWholeSpec(self.dataset, self.widths, self.depths, self.norms, self.activations, self.poolings).grid()

    def whole_spec(self) -> NasWholeSpec:
        return NasWholeSpec(self.dataset, self.widths, self.depths, self.norms, self.activations, self.poolings,
                            self.budget, self.data_root, self.device)

    def to_dict(self) -> dict[str, Any]:
        return spec_to_dict(self)


def _dataset(name: str, data_root: str | None) -> Any:
    """The info requirements are planned with: a folder's own (read), else the one this machine would load."""
    from ..data import load_dataset, local_info
    from ..data.info import canonical_name

    name = canonical_name(name)
    if name == "folder":
        if not data_root:
            raise ValueError("the 'folder' dataset needs data_root (a folder or zip of train/<class>/images)")
        return load_dataset("folder", data_root).info
    return local_info(name, data_root)


def whole_requirement(spec: NasWholeSpec) -> Requirement:
    from ..nas import get_budget

    info = _dataset(spec.dataset, spec.data_root)
    grid = spec.grid()  # validates the options
    budget = get_budget(spec.budget)
    return mark_variants(Requirement.from_dict(
        WHOLE_KIND, {"dataset": info.name, "data_root": spec.data_root, "budget": budget.name, **grid.to_dict()},
        label=f"Whole-data accuracies: {info.display_name}, {len(grid)} ConvNets ({budget.name} budget)"))


@register_task
class NasWholeTask(StudyTask):
    kind = "nas-whole"
    title = "Whole-data accuracies"
    Spec = NasWholeSpec
    produces = WHOLE_KIND
    Result = WholeResult

    def identity(self, spec: NasWholeSpec, store: "Store") -> tuple[NasWholeSpec, Requirement]:
        return spec, whole_requirement(spec)

    def spec_for(self, requirement: Requirement, device: str) -> NasWholeSpec:
        p = dict(requirement.params)
        return NasWholeSpec(p["dataset"], tuple(p["widths"]), tuple(p["depths"]), tuple(p["norms"]), tuple(p["activations"]),
                            tuple(p["poolings"]), p["budget"], p["data_root"], device)

    def run(self, spec: NasWholeSpec, ctx: TaskContext) -> WholeResult:
        from ..evaluation.api import _device_name
        from ..nas import Stopped, get_budget, train_architecture, whole_training_set

        data = ctx.dataset(spec.dataset, spec.data_root)
        budget = get_budget(spec.budget)
        archs = spec.grid().architectures()
        images, labels = whole_training_set(data, budget.whole_per_class)
        config = budget.whole_config()
        accs, secs = [], []
        for i, arch in enumerate(archs):
            ctx.recorder.progress(i, len(archs), f"{arch.name} on {len(labels):,} images")
            try:
                out = train_architecture(images, labels, data, arch, config, budget.seeds, spec.device,
                                         lambda f, i=i: ctx.recorder.progress(round(i + f, 3), len(archs), ""),
                                         lambda: ctx.control.stop_requested)
            except Stopped as e:
                raise Cancelled(f"Whole-data training stopped: {e}") from e
            accs.append(out.accuracy)
            secs.append(out.seconds)
        ctx.recorder.progress(len(archs), len(archs), "done")
        result = WholeResult(data.info.name, budget.name, spec.grid().to_dict(), [a.name for a in archs], np.asarray(accs),
                             np.asarray(secs), int(len(labels)), config.to_dict(), _device_name(resolve_device(spec.device)))
        return self.save(ctx, spec, result, inputs=(f"dataset:{data.info.name}:{data.source}",))


def _coresets() -> list[str]:
    from ..methods import METHODS

    return [e.name for e in METHODS.entries() if getattr(e.obj, "family", "") == "coreset"]


def resolve_proxies(spec: NasSpec, store: "Store") -> tuple[str, ...]:
    """The proxies as the identity names them: a stored run with the fingerprint of its set (so a run that went on
    is another study), a coreset method by name."""
    out = []
    for raw in spec.proxies:
        name = str(raw).strip()
        if name.lower().startswith("run:"):
            run_id = name.split(":")[1]
            record = store.get_run(run_id)
            if record is None:
                raise KeyError(f"No run {run_id!r} in the store to use as a proxy")
            if record.dataset != _dataset(spec.dataset, spec.data_root).name:
                raise ValueError(f"run {record.name!r} is a {record.dataset} set; this study is on {spec.dataset}")
            if not record.fingerprint:
                raise FileNotFoundError(f"run {record.name!r} has no stored set yet")
            check_same_data(store, record, spec.dataset, spec.data_root)
            out.append(f"run:{record.id}:{record.fingerprint}")
        elif name.lower() in _coresets():
            out.append(name.lower())
        else:
            raise ValueError(f"proxy '{name}' is neither 'run:<id>' (a stored set; distil one first) nor a coreset "
                             f"made here ({', '.join(_coresets())})")
    if not out:
        raise ValueError("choose at least one proxy")
    if len(set(out)) != len(out):
        raise ValueError("each proxy once")
    return tuple(out)


@register_task
class NasTask(StudyTask):
    kind = "nas"
    title = "Architecture-search proxy"
    Spec = NasSpec
    produces = STUDY_KIND
    Result = NasResult

    def identity(self, spec: NasSpec, store: "Store") -> tuple[NasSpec, Requirement]:
        from ..nas import get_budget
        from .distill import MAX_IPC

        info = _dataset(spec.dataset, spec.data_root)
        check_whole_number(spec.ipc, "IPC", 1, MAX_IPC)
        grid = spec.grid()
        if not 3 <= len(grid) <= MAX_ARCHITECTURES:
            raise ValueError(f"a rank correlation needs 3 to {MAX_ARCHITECTURES} architectures (the DC paper's space); "
                             f"this grid has {len(grid):,}")
        get_budget(spec.budget)
        check_whole_number(spec.bootstrap, "bootstrap", 10, 100_000)  # fewer resamples give no interval (NaN)
        for k in spec.top_k:
            check_whole_number(k, "top k", 1, MAX_ARCHITECTURES)
        proxies = resolve_proxies(spec, store)
        spec = NasSpec(info.name, proxies, int(spec.ipc), *(tuple(v) for v in grid.to_dict().values()), spec.budget,
                       tuple(sorted({int(k) for k in spec.top_k})), int(spec.bootstrap), spec.data_root, spec.device)
        params = {k: v for k, v in spec.to_dict().items() if k != "device"}
        return spec, Requirement.from_dict(STUDY_KIND, params,
                                           label=f"Architecture search: {info.display_name}, {len(grid)} ConvNets, "
                                                 f"{len(proxies)} prox{'y' if len(proxies) == 1 else 'ies'} ({spec.budget})")

    def requires(self, spec: NasSpec) -> tuple[Requirement, ...]:
        from ..methods import make_config, method_class

        info = _dataset(spec.dataset, spec.data_root)
        out = {whole_requirement(spec.whole_spec()).key(): whole_requirement(spec.whole_spec())}
        for p in spec.proxies:
            name = str(p).strip().lower()
            if name in _coresets():
                config = make_config(name, info, int(spec.ipc), "quick")
                for r in method_class(name).requires(info, int(spec.ipc), config, "convnet"):
                    out.setdefault(r.key(), r)
        return tuple(out.values())

    def run(self, spec: NasSpec, ctx: TaskContext) -> NasResult:
        from ..evaluation.api import _device_name, set_fingerprint
        from ..evaluation.result import library_versions
        from ..nas import Stopped, correlations, get_budget, train_architecture
        from . import producer_of

        wall = time.perf_counter()
        data = ctx.dataset(spec.dataset, spec.data_root)
        budget = get_budget(spec.budget)
        loaded = {kind: producer_of(kind).load_artefact(record, ctx.store) for kind, record in ctx.artefacts.items()}
        whole: WholeResult = loaded.pop(WHOLE_KIND)
        archs = spec.grid().architectures()
        if whole.architectures != [a.name for a in archs]:
            raise RuntimeError("the stored whole-data accuracies are of another grid")
        total = len(spec.proxies) * (len(archs) + 1)
        done = 0
        labels, sizes, make_s, sets = [], [], [], []
        for proxy in spec.proxies:
            ctx.recorder.progress(done, total, f"Preparing proxy {proxy}")
            images, lab, label, seconds = self._proxy(proxy, spec, data, ctx, loaded)
            if proxy.startswith("run:") and set_fingerprint(images, lab) != proxy.split(":")[2]:
                raise RuntimeError(f"the images of {label} changed since this study was queued; start it again")
            sets.append((images, lab))
            labels.append(label)
            sizes.append(int(len(lab)))
            make_s.append(seconds)
            done += 1
        acc = np.zeros((len(sets), len(archs)))
        secs = np.zeros((len(sets), len(archs)))
        for p, (images, lab) in enumerate(sets):
            for a, arch in enumerate(archs):
                ctx.recorder.progress(done, total, f"{labels[p]} · {arch.name}")
                try:
                    out = train_architecture(images, lab, data, arch, budget.proxy, budget.seeds, spec.device,
                                             lambda f, base=done: ctx.recorder.progress(round(base + f, 3), total, ""),
                                             lambda: ctx.control.stop_requested)
                except Stopped as e:
                    raise Cancelled(f"Architecture-search study stopped: {e}") from e
                acc[p, a], secs[p, a] = out.accuracy, out.seconds
                done += 1
        rows = [c.to_dict() for p, label in enumerate(labels)
                for c in correlations(label, acc[p], whole.accuracy, spec.top_k, spec.bootstrap)]
        ctx.recorder.progress(total, total, "done")
        config = budget.proxy.resolve(data.info.name, "convnet").to_dict()
        result = NasResult(data.info.name, spec.ipc, budget.name, spec.grid().to_dict(), [a.name for a in archs], labels,
                           list(spec.proxies), sizes, make_s, whole.accuracy, whole.seconds, acc, secs, rows,
                           whole_images=whole.images, whole_key=whole.key, config=config,
                           device=_device_name(resolve_device(spec.device)), bootstrap=spec.bootstrap,
                           versions=library_versions(), wall_time_s=round(time.perf_counter() - wall, 3), notes=budget.note)
        inputs = (f"dataset:{data.info.name}:{data.source}", *(r.key for r in ctx.artefacts.values()),
                  *(f"run:{p.split(':')[1]}" for p in spec.proxies if p.startswith("run:")))
        return self.save(ctx, spec, result, inputs=inputs)

    def _proxy(self, proxy: str, spec: NasSpec, data: Any, ctx: TaskContext,
               artefacts: dict[str, Any]) -> tuple[Any, Any, str, float]:
        """(images, labels, label, seconds it took to make) of one proxy."""
        if proxy.startswith("run:"):
            run_id = proxy.split(":")[1]
            record = ctx.store.get_run(run_id)
            synthetic = ctx.store.load_set(run_id)
            if record is None or synthetic is None:
                raise FileNotFoundError(f"run {run_id} or its set was deleted")
            title = record.method.upper() if record.method in ("dc", "dm", "dsa") else record.method
            label = f"{title} IPC {record.ipc} (run {record.name})"
            return synthetic.images.float(), synthetic.hard_labels(), label, float(record.elapsed_s)
        from ..continual import MemorySpec
        from ..runner import Runner

        start = time.perf_counter()
        runner = Runner(MemorySpec(data.info.name, proxy, int(spec.ipc), "quick", 0, spec.device), data, artefacts=artefacts)
        while not runner.done:
            runner.step()
        s = runner.result()
        title = "random real" if proxy == "random" else proxy
        return s.images.float(), s.hard_labels(), f"{title} (IPC {spec.ipc})", time.perf_counter() - start
