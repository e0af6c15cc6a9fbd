"""Networks trained on real data: the whole-dataset reference accuracy and feature extractors.

Why cached: training on a whole dataset is the most expensive thing the studio does (minutes per
epoch on a CPU), and its answer never changes for a (dataset, architecture, protocol), so it is
computed once and kept as JSON (the EvalResult) plus safetensors weights under
ddcore.paths.cache_dir()/reference/. Herding and k-center reuse the trained weights as their
embedding (the DC paper's coreset baselines use features of a network trained on the data).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..atomic import atomic_path
from ..data import LoadedDataset, load_dataset
from ..data.info import canonical_name
from ..device import resolve_device
from ..models import create_model
from ..paths import cache_dir
from .api import _device_name, test_tensors
from .protocol import EvalConfig
from .result import EvalResult, library_versions, mean_std
from .trainer import ProgressFn, StopFn, confusion_matrix, predict, train_group


@dataclass(frozen=True)
class RealTraining:
    """How a network is trained on real images (no decay for short runs: one pass is all we can afford on CPU)."""

    name: str
    epochs: int
    per_class: int | None = None  # None: the whole training set
    lr: float = 0.01
    decay: bool = True
    seed: int = 0
    test_limit: int | None = None  # None: the full test set; feature networks test on a subset (cheaper)

    def config(self) -> EvalConfig:
        return EvalConfig(name=self.name, epochs=self.epochs, extra_final_epoch=False, lr=self.lr,
                          lr_decay_epoch=(self.epochs // 2 if self.decay and self.epochs > 1 else -1),
                          augmentation="none", num_seeds=1, curve_points=50)

    def key(self, dataset: str, architecture: str) -> str:
        sub = "all" if self.per_class is None else f"{self.per_class}pc"
        test = "" if self.test_limit is None else f"-t{self.test_limit}"
        return f"{canonical_name(dataset)}-{architecture}-{self.name}-e{self.epochs}-{sub}-s{self.seed}{test}"


# 'paper': our choice for the whole-dataset number (the DC/DSA/DM papers do not state their
# whole-data schedule in the code); 'quick': one epoch, what a 2-core CPU can do in minutes.
REFERENCE_PRESETS: dict[str, RealTraining] = {
    "paper": RealTraining("paper", epochs=50),
    "quick": RealTraining("quick", epochs=1, decay=False),
}


def _folder() -> Path:
    path = cache_dir() / "reference"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _training(preset: str | RealTraining) -> RealTraining:
    if isinstance(preset, RealTraining):
        return preset
    if preset not in REFERENCE_PRESETS:
        raise ValueError(f"Unknown reference preset '{preset}'. Choose one of: {', '.join(REFERENCE_PRESETS)}")
    return REFERENCE_PRESETS[preset]


def _same_data(record: EvalResult, data: LoadedDataset, plan: RealTraining) -> bool:
    """Whether a cached record was trained on `data`: the image counts match, and where counts cannot tell the
    embedded subset from the full data (a few images per class of a dataset that has a subset), the data key it
    recorded does too (records from before it was recorded are retrained: a small network, seconds to a minute)."""
    from ..data import has_subset

    if (record.num_images, record.test_images) != _image_counts(data, plan):
        return False
    if plan.per_class is not None and has_subset(data.info.name):
        return record.config.get("data_key") == data.info.data_key
    return True


def _image_counts(data: LoadedDataset, plan: RealTraining) -> tuple[int, int]:
    """The (training, test) image counts a network of `plan` sees on `data` (as below and in `test_tensors`)."""
    train = data.train.class_counts()
    n_train = sum(train) if plan.per_class is None else sum(min(plan.per_class, n) for n in train)
    n_test = len(data.test)
    if plan.test_limit is not None and plan.test_limit < n_test:
        per = max(1, plan.test_limit // data.info.num_classes)
        n_test = sum(min(per, len(ix)) for ix in data.test.class_indices)
    return int(n_train), int(n_test)


def train_on_real(dataset: str, architecture: str = "convnet", preset: str | RealTraining = "quick",
                  device: str | torch.device = "auto", data: LoadedDataset | None = None,
                  progress: ProgressFn | None = None, should_stop: StopFn | None = None,
                  compute: bool = True) -> tuple[nn.Module, EvalResult] | None:
    """A network trained on (a class-balanced part of) the real training set, with its test record.
    Cached on disk; compute=False returns None instead of training on a miss."""
    plan = _training(preset)
    data = data or load_dataset(dataset)
    info = data.info
    key = plan.key(info.data_key, architecture)  # an image folder's digest too: every folder is called 'folder'
    folder = _folder()
    weights_file, record_file = folder / f"{key}.safetensors", folder / f"{key}.percent.json"  # records in percent
    dev = resolve_device(device)
    net = create_model(architecture, info.channels, info.num_classes, info.image_size)
    if weights_file.exists() and record_file.exists():
        try:
            net.load_state_dict(load_file(str(weights_file)))
            record = EvalResult.load(record_file)
            if _same_data(record, data, plan):
                return net.to(dev).eval(), record
            # else trained on other data of this name (the embedded subset, before its key said so): retrain
        except (OSError, ValueError, RuntimeError, json.JSONDecodeError):
            pass  # a damaged cache costs a retrain, never a crash
    if not compute:
        return None
    wall = time.perf_counter()
    split = data.train
    if plan.per_class is not None:
        g = torch.Generator().manual_seed(plan.seed)
        idx = torch.cat([split.sample_class(c, min(plan.per_class, n), g) for c, n in enumerate(split.class_counts())])
        images_u8, labels = split.images[idx], split.labels[idx]
    else:
        images_u8, labels = split.images, split.labels
    images = data.normalize(images_u8)
    resolved = plan.config().resolve(info.name, architecture)

    def build():
        return create_model(architecture, info.channels, info.num_classes, info.image_size)

    outcome = train_group(build, [plan.seed], images, labels, resolved, dev, info.num_classes, progress, should_stop,
                          stage="reference")
    test_x, test_y = test_tensors(data, dev, plan.test_limit)
    t = time.perf_counter()
    pred = predict(outcome.group, test_x, chunk=2000 if dev.type != "cpu" else 500, should_stop=should_stop)[0]
    conf = confusion_matrix(pred.cpu(), test_y.cpu(), info.num_classes)
    acc = 100.0 * float((pred == test_y).float().mean())
    mean, std = mean_std([acc])
    record = EvalResult(set_id=f"{info.name}-whole" + ("" if plan.per_class is None else f"-{plan.per_class}pc"),
                        dataset=info.name, method="whole dataset", ipc=None, num_images=int(images.shape[0]),
                        architecture=architecture, preset=f"reference-{plan.name}",
                        config={**resolved.to_dict(), "data_key": info.data_key},
                        seeds=[plan.seed], accuracies=[acc], mean=mean, std=std,
                        wall_time_s=round(time.perf_counter() - wall, 3), train_time_s=round(outcome.train_time_s, 3),
                        test_time_s=round(time.perf_counter() - t, 3), device=_device_name(dev),
                        versions=library_versions(), test_images=int(test_x.shape[0]), curves=outcome.curves,
                        per_class_accuracy=(100.0 * conf.diag().float() / conf.sum(1).clamp_min(1).float()).tolist(),
                        confusion=conf.tolist(), class_names=list(info.class_names))
    trained = outcome.group.module(0).cpu()
    try:
        with atomic_path(weights_file) as tmp:  # another job may be filling the same entry
            save_file({k: v.detach().contiguous() for k, v in trained.state_dict().items()}, str(tmp))
        record.save(record_file)
    except OSError:
        pass
    return trained.to(dev).eval(), record

