"""The experts task: expert trajectories on the real data, stored as an artefact that trajectory matching needs.

Made once per (dataset, architecture, experts, epochs, lr, batch, augmentation, ZCA, images per class, seed) by a
job of its own with progress, and reused by every MTT, TESLA and DATM run that names the same training; a run
with another ZCA setting (or any other difference) gets other experts. One safetensors file per expert holds
its (epochs + 1) x P flattened parameters; they are read lazily, one epoch at a time.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..experts import expert_data
from ..methods.base import Requirement
from ..methods.trajectory import ARTEFACT_KIND, expert_requirement
from . import register_task
from .base import SOURCE_FIELDS, Cancelled, Prepared, Task, TaskContext, data_source, spec_to_dict

if TYPE_CHECKING:
    from ..platform.records import ArtefactRecord
    from ..platform.store import Store

@dataclass(frozen=True)
class ExpertsSpec:
    kind: ClassVar[str] = "experts"
    dataset: str
    architecture: str = "convnet"
    experts: int = 100
    epochs: int = 50
    lr: float = 0.01
    batch: int = 256
    augmentation: str = "color_crop_cutout_flip_scale_rotate"  # a DSA strategy, or 'none'
    zca: bool = False
    per_class: int | None = None
    seed: int = 0
    device: str = "auto"
    mode: str = "auto"  # vmap | loop | auto
    # DatasetInfo.data_source: an image folder's (the data these experts must see, and where it is), or the
    # embedded subset's variant
    fingerprint: str | None = None
    data_root: str | None = None
    image_size: int | None = None
    channels: int | None = None
    variant: str | None = None

    def requirement(self) -> Requirement:
        return expert_requirement(self.dataset, self.architecture, self.experts, self.epochs, self.lr, self.batch,
                                  self.augmentation, self.zca, self.per_class, self.seed, data_source(self))

    def to_dict(self) -> dict[str, Any]:
        return spec_to_dict(self)


class ExpertTrajectories:
    """The stored experts, read lazily: `get(expert, epoch)` is one flat parameter vector."""

    def __init__(self, folder: Any, experts: int, epochs: int, key: str = "") -> None:
        self.folder, self.experts, self.epochs, self.key = folder, int(experts), int(epochs), key

    def get(self, expert: int, epoch: int) -> torch.Tensor:
        from safetensors import safe_open

        if not (0 <= expert < self.experts and 0 <= epoch <= self.epochs):
            raise IndexError(f"expert {expert}, epoch {epoch} is outside {self.experts} experts x {self.epochs + 1} epochs")
        with safe_open(str(self.folder / f"expert_{expert:03d}.safetensors"), framework="pt") as f:
            return f.get_slice("trajectory")[epoch]

    def trajectory(self, expert: int) -> torch.Tensor:
        from safetensors.torch import load_file

        return load_file(str(self.folder / f"expert_{expert:03d}.safetensors"))["trajectory"]


@register_task
class ExpertsTask(Task):
    kind = "experts"
    title = "Expert trajectories"
    Spec = ExpertsSpec
    produces = ARTEFACT_KIND
    portable = True

    def prepare(self, spec: ExpertsSpec, store: "Store") -> Prepared:
        from ..data import get_dataset_info
        from ..models import MODELS

        get_dataset_info(spec.dataset)
        MODELS.entry(spec.architecture)
        if not 1 <= int(spec.experts) <= 1000 or not 1 <= int(spec.epochs) <= 1000:
            raise ValueError(f"experts and epochs must lie in 1..1000, not {spec.experts} and {spec.epochs}")
        return Prepared(spec, f"Train {spec.requirement().label}", key=spec.requirement().key())

    def spec_for(self, requirement: Requirement, device: str) -> ExpertsSpec:
        p = dict(requirement.params)
        return ExpertsSpec(p["dataset"], p["architecture"], p["experts"], p["epochs"], p["lr"], p["batch"],
                           p["augmentation"], p["zca"], p["per_class"], p["seed"], device,
                           **{k: p.get(k) for k in SOURCE_FIELDS})

    def run(self, spec: ExpertsSpec, ctx: TaskContext) -> "ArtefactRecord":
        from safetensors.torch import save_file

        from .. import __version__
        from ..device import resolve_device
        from ..evaluation import EvaluationCancelled
        from ..experts import ExpertPlan, train_experts
        from ..models import create_model

        data = ctx.dataset_of(spec)
        device = resolve_device(spec.device)
        images, labels = expert_data(data, spec.per_class, spec.zca, spec.seed)
        info = data.info
        requirement = spec.requirement()
        folder = ctx.store.artefact_dir(requirement.key())
        folder.mkdir(parents=True, exist_ok=True)
        plan = ExpertPlan(experts=spec.experts, epochs=spec.epochs, lr=spec.lr, batch=spec.batch,
                          dsa_strategy=spec.augmentation, seed=spec.seed, mode=spec.mode)
        start = time.perf_counter()

        def keep(k: int, trajectory: torch.Tensor) -> None:
            save_file({"trajectory": trajectory.contiguous()}, str(folder / f"expert_{k:03d}.safetensors"))

        ctx.recorder.progress(0, 100, "Training experts…")
        try:
            train_experts(images, labels, lambda: create_model(spec.architecture, info.channels, info.num_classes,
                                                               info.image_size), plan, device,
                          progress=lambda f: ctx.recorder.progress(round(100 * f, 1), 100),
                          should_stop=lambda: ctx.control.stop_requested, on_expert=keep)
        except EvaluationCancelled as e:
            raise Cancelled("Expert training stopped") from e
        seconds = time.perf_counter() - start
        ctx.recorder.progress(100, 100, f"{spec.experts} experts in {seconds:.0f} s")
        return ctx.store.put_artefact(requirement.key(), ARTEFACT_KIND, requirement.label,
                                      {**dict(requirement.params), "seconds": round(seconds, 2)},
                                      producer={"job": ctx.job_id, "kind": self.kind, "spec": spec.to_dict()},
                                      inputs=(f"dataset:{spec.dataset}:{data.source}",), code_version=__version__)

    def load_artefact(self, record: "ArtefactRecord", store: "Store") -> ExpertTrajectories:
        p = record.params
        return ExpertTrajectories(store.artefact_dir(record.key), p["experts"], p["epochs"], record.key)
