"""The train-network task: a network trained on (part of) the real training set, stored as an artefact.

Herding and k-center pick images in the feature space of such a network. It used to be trained inside
their first step, minutes on a CPU with no progress and no stop; as an artefact it is made once by a job
of its own (progress, stop) and reused by every run that names the same training.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..methods.base import Requirement
from ..methods.herding import ARTEFACT_KIND, network_requirement
from . import register_task
from .base import SOURCE_FIELDS, Cancelled, Prepared, Task, TaskContext, data_source, spec_to_dict

if TYPE_CHECKING:
    from torch import nn

    from ..platform.records import ArtefactRecord
    from ..platform.store import Store


@dataclass(frozen=True)
class TrainNetworkSpec:
    kind: ClassVar[str] = "train-network"
    dataset: str
    architecture: str = "convnet"
    epochs: int = 1
    per_class: int | None = None  # training images per class (None: the whole training set)
    seed: int = 0
    device: str = "auto"
    # DatasetInfo.data_source: an image folder's, or the embedded subset's variant
    fingerprint: str | None = None
    data_root: str | None = None
    image_size: int | None = None
    channels: int | None = None
    variant: str | None = None

    def requirement(self) -> Requirement:
        return network_requirement(self.dataset, self.architecture, self.epochs, self.per_class, self.seed,
                                   data_source(self))

    def to_dict(self) -> dict[str, Any]:
        return spec_to_dict(self)


@register_task
class TrainNetworkTask(Task):
    kind = "train-network"
    title = "Network training"
    Spec = TrainNetworkSpec
    produces = ARTEFACT_KIND

    def prepare(self, spec: TrainNetworkSpec, store: "Store") -> Prepared:
        from ..data import get_dataset_info
        from ..models import MODELS

        get_dataset_info(spec.dataset)
        MODELS.entry(spec.architecture)
        if int(spec.epochs) < 1:
            raise ValueError(f"epochs must be at least 1, not {spec.epochs}")
        return Prepared(spec, f"Train the feature network: {spec.requirement().label}", key=spec.requirement().key())

    def spec_for(self, requirement: Requirement, device: str) -> TrainNetworkSpec:
        p = dict(requirement.params)
        return TrainNetworkSpec(p["dataset"], p["architecture"], p["epochs"], p["per_class"], p["seed"], device,
                                **{k: p.get(k) for k in SOURCE_FIELDS})

    def run(self, spec: TrainNetworkSpec, ctx: TaskContext) -> "ArtefactRecord":
        from safetensors.torch import save_file

        from ..evaluation import EvaluationCancelled
        from ..evaluation.reference import RealTraining, train_on_real

        data = ctx.dataset_of(spec)
        plan = RealTraining(name="embed", epochs=spec.epochs, per_class=spec.per_class, decay=spec.epochs > 1,
                            seed=spec.seed, test_limit=1000)

        def progress(info: dict[str, Any]) -> None:
            if isinstance(info.get("fraction"), (int, float)):
                ctx.recorder.progress(round(100 * float(info["fraction"]), 1), 100.0)

        ctx.recorder.progress(0, 100, "Loading data…")
        try:
            out = train_on_real(spec.dataset, spec.architecture, plan, spec.device, data=data, progress=progress,
                                should_stop=lambda: ctx.control.stop_requested)
        except EvaluationCancelled as e:
            raise Cancelled("Training stopped") from e
        assert out is not None
        net, record = out
        requirement = spec.requirement()
        folder = ctx.store.artefact_dir(requirement.key())
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(folder / "weights.safetensors"))
        (folder / "training.json").write_text(record.to_json(indent=1))
        ctx.recorder.progress(100, 100, f"test accuracy {record.mean:.1f} %")
        return ctx.store.put_artefact(
            requirement.key(), ARTEFACT_KIND, requirement.label,
            {**dict(requirement.params), "shape": [data.info.channels, data.info.num_classes, data.info.image_size]},
            producer={"job": ctx.job_id, "kind": self.kind, "spec": spec.to_dict()},
            inputs=(f"dataset:{spec.dataset}:{data.source}",), code_version=_code_version())

    def load_artefact(self, record: "ArtefactRecord", store: "Store") -> "nn.Module":
        from safetensors.torch import load_file

        from ..data import get_dataset_info
        from ..models import create_model

        info = get_dataset_info(record.params["dataset"])
        # the shape it was trained with: an image folder's classes are not the registry's placeholder
        channels, classes, size = record.params.get("shape") or (info.channels, info.num_classes, info.image_size)
        net = create_model(record.params["architecture"], int(channels), int(classes), int(size))
        net.load_state_dict(load_file(str(store.artefact_dir(record.key) / "weights.safetensors")))
        net.feature_key = (info.name, record.key)  # type: ignore[attr-defined]  (features are memoised by it)
        return net.eval()


def _code_version() -> str:
    from .. import __version__

    return __version__

