"""The task contract: one kind of work (distill, evaluate, experts, privacy, ...) is one registered class.

    class MyTask(Task):
        kind = "mykind"                     # the registry name
        Spec = MySpec                       # a frozen dataclass with `kind` and `device`; validated by `prepare`
        controls = frozenset({"stop"})      # what a user may do while it runs (pause, step, stop)
        produces = None                     # or the artefact kind its jobs produce (then `artefact_key`)

        def prepare(self, spec, store) -> Prepared   # validate once at the edge; name; run record; reuse
        def requires(self, spec) -> tuple[Requirement, ...]   # artefacts needed first
        def run(self, spec, ctx) -> result            # reports through ctx.recorder, obeys ctx.control
        def resources(self, spec) -> Resources        # what one job needs on a cluster worker (CPU threads, GPUs)
        portable = False     # True: it reads only its run and its required artefacts, so an executor may run it in
                             # another process or machine against a copy of them (ddcore.platform.transfer)
        coordinator = False  # True: it only submits and watches other jobs (ctx.jobs): it takes no device slot and
                             # always runs in the submitting process

The queue (ddcore.platform.queue) is generic over these: it never names a kind.
"""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from ..data.info import FOLDER_FIELDS, SOURCE_FIELDS  # noqa: F401 (SOURCE_FIELDS: the artefact tasks import it here)
from ..methods.base import Requirement

if TYPE_CHECKING:
    from ..data import LoadedDataset
    from ..platform.recorder import Control, Recorder
    from ..platform.records import ArtefactRecord
    from ..platform.store import Store


MAX_SEED = 2**63 - 1  # the store keeps a run's seed as an SQLite integer (signed 64-bit)


def check_whole_number(value: Any, what: str, low: int, high: int) -> int:
    """`value` as an int in [low, high], or a ValueError naming the range (bools and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise ValueError(f"{what} must be a whole number from {low:,} to {high:,}, not {value!r}")
    return int(value)


def check_seed(seed: Any, what: str = "The seed") -> int:
    """A seed the store can keep and torch can use (a seed of 2**64 once ended a run's creation in an
    OverflowError)."""
    return check_whole_number(seed, what, 0, MAX_SEED)


@dataclass(frozen=True)
class Resources:
    """What one job of a task needs where it runs: whole CPU threads, and GPUs (a fraction shares one)."""

    cpus: float = 1.0
    gpus: float = 0.0

    def __post_init__(self) -> None:
        if self.cpus < 0 or self.gpus < 0:
            raise ValueError(f"resources cannot be negative (cpus={self.cpus}, gpus={self.gpus})")


class Cancelled(Exception):
    """Raised by a task that was told to stop and keeps nothing (a cancelled evaluation)."""


@dataclass(frozen=True)
class Prepared:
    """What `Task.prepare` decided about a submission."""

    spec: Any  # the validated (possibly completed) spec
    name: str
    run_id: str | None = None  # a store run the job works on
    reused: Any = None  # a stored result: the job is done at once
    key: str | None = None  # identical submissions share one job while it is active
    previous_status: str | None = None  # the stored run's status before this submission (None: a new run)


def data_source(spec: Any) -> dict[str, Any]:
    """An artefact spec's `DatasetInfo.data_source` fields as requirement parameters: an image folder's, or the
    embedded subset's variant (none for the full named datasets, so their artefacts keep the keys they were stored
    under)."""
    if getattr(spec, "fingerprint", None):
        return {k: getattr(spec, k) for k in FOLDER_FIELDS}
    return {"variant": spec.variant} if getattr(spec, "variant", None) else {}


_SET_VARIANTS: dict[tuple[str, str], str | None] = {}  # (run id, set fingerprint) -> SetMeta.variant


def check_same_data(store: "Store", record: Any, dataset: str, root: str | None = None) -> None:
    """Refuse a stored run whose set was made from the embedded subset when this machine loads the full data of
    `dataset`: a study of the full data must not read it (a privacy study's members would be other images than the
    set saw). The reverse cannot be told: sets of the full data, like sets written before the variant was recorded,
    carry none. A set's variant is read once per content (studies are polled every second while they run)."""
    from ..data import local_variant

    if record.dataset != dataset:
        return  # the caller names a dataset mismatch itself
    memo = (record.id, record.fingerprint or "")
    if memo not in _SET_VARIANTS:
        synthetic = store.load_set(record.id)
        _SET_VARIANTS[memo] = synthetic.meta.variant if synthetic is not None else None
    if _SET_VARIANTS[memo] == "subset" and local_variant(dataset, root) != "subset":
        raise ValueError(f"Run {record.name!r} was distilled from the embedded subset of {dataset}, and this study "
                         "uses the full data: distil it again here, or study it where the full data is absent")


@dataclass
class TaskContext:
    """What a running task may use: the store, its reporter and controls, and its resolved artefacts."""

    store: "Store"
    recorder: "Recorder"
    control: "Control"
    job_id: str = ""
    run_id: str | None = None
    artefacts: Mapping[str, "ArtefactRecord"] = field(default_factory=dict)
    data: "LoadedDataset | None" = None  # preloaded data handed in by the submitter (the UI has it in memory)
    jobs: Any = None  # coordinator tasks only: the queue they submit to (ddcore.platform.queue.JobManager)
    owner: str | None = None  # who submitted the job (a coordinator's own jobs are queued in that name)

    def dataset(self, name: str, root: str | None = None, fingerprint: str | None = None,
                image_size: int | None = None, channels: int | None = None, variant: str | None = None,
                check_variant: bool = False) -> "LoadedDataset":
        """The data a task works on: the preloaded data when it is the one named, else loaded (an image folder from
        `root` at `image_size` and `channels`). With a `fingerprint` (an image folder's), the data must be that very
        folder; with `check_variant`, the full data or the embedded subset as `variant` says: refused, not silently
        swapped."""
        from ..data import load_dataset

        data = self.data if self.data is not None and self.data.info.name == name else \
            load_dataset(name, root, image_size=image_size, channels=channels)
        if fingerprint is not None and data.info.fingerprint != fingerprint:
            raise ValueError(f"this artefact is for the image folder with fingerprint {fingerprint}; the data at hand "
                             f"({data.source}) is {data.info.fingerprint or 'not an image folder'}")
        if check_variant and fingerprint is None and data.info.variant != variant:
            wanted, found = (("the embedded subset", "the full data") if variant else
                             ("the full data", "the embedded subset"))
            raise ValueError(f"this job was planned for {wanted} of {data.info.display_name}, but this machine now "
                             f"loads {found} ({data.source}); restart the Studio if you added data while it ran, then submit "
                             "it again")
        return data

    def dataset_of(self, spec: Any) -> "LoadedDataset":
        """`dataset` for an artefact spec: its dataset, and its SOURCE_FIELDS (an image folder's, or the embedded
        subset's variant)."""
        return self.dataset(spec.dataset, spec.data_root, spec.fingerprint, spec.image_size, spec.channels,
                            spec.variant, check_variant=True)


class Task:
    kind: ClassVar[str] = ""
    title: ClassVar[str] = ""
    Spec: ClassVar[type] = object
    controls: ClassVar[frozenset[str]] = frozenset({"stop"})
    produces: ClassVar[str | None] = None  # artefact kind
    portable: ClassVar[bool] = False
    coordinator: ClassVar[bool] = False

    def prepare(self, spec: Any, store: "Store") -> Prepared:
        return Prepared(spec=spec, name=self.title or self.kind)

    def requires(self, spec: Any) -> tuple[Requirement, ...]:
        return ()

    def other_runs_read(self, spec: Any) -> tuple[str, ...]:
        """Stored runs a portable job reads besides its own (an executor ships them with it to another machine)."""
        return ()

    def resources(self, spec: Any) -> Resources:
        """One CPU thread, or one whole GPU when the spec asks for CUDA; kinds that need more or less override it."""
        device = str(getattr(spec, "device", "auto"))
        return Resources(cpus=1.0, gpus=1.0 if device.startswith("cuda") else 0.0)

    def release(self, prepared: Prepared, store: "Store", reason: str) -> None:
        """Undo what `prepare` wrote when the job never runs (submission failed, or cancelled while queued)."""

    def run(self, spec: Any, ctx: TaskContext) -> Any:
        raise NotImplementedError

    # artefact producers only
    def spec_for(self, requirement: Requirement, device: str) -> Any:
        """The spec of a job that produces `requirement`."""
        raise NotImplementedError(f"task {self.kind} produces no artefacts")

    def load_artefact(self, record: "ArtefactRecord", store: "Store") -> Any:
        """The object a method receives for this artefact (default: its folder)."""
        return store.artefact_dir(record.key)


def spec_to_dict(spec: Any) -> dict[str, Any]:
    return dataclasses.asdict(spec) if dataclasses.is_dataclass(spec) else dict(spec)


def spec_from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """A spec from plain data; unknown fields are refused with the known ones named."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {', '.join(unknown)}; it has {', '.join(sorted(known))}")
    return cls(**data)
