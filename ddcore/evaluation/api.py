"""evaluate(): train fresh networks on a set and test them."""
from __future__ import annotations

import hashlib
import numbers
import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..data import LoadedDataset, get_dataset_info, load_dataset
from ..data.info import DatasetInfo, canonical_name
from ..device import resolve_device
from ..models import create_model
from ..multiformation import decode, decode_labels, set_factor
from ..synthetic import SyntheticSet
from .protocol import EvalConfig, get_preset
from .result import EvalResult, EvaluationCancelled, library_versions, mean_std
from .trainer import ProgressFn, StopFn, confusion_matrix, predict, train_group

SetLike = SyntheticSet | tuple[torch.Tensor, torch.Tensor]


@dataclass
class _Prepared:
    images: torch.Tensor
    labels: torch.Tensor
    dataset: str
    method: str
    ipc: int | None
    lr: float | None
    zca: bool
    set_id: str


def set_fingerprint(images: torch.Tensor, labels: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in (images, labels):
        t = t.detach().cpu().contiguous()
        h.update(str(t.dtype).encode() + str(list(t.shape)).encode())
        h.update(t.float().numpy().tobytes() if t.is_floating_point() else t.numpy().tobytes())
    return h.hexdigest()[:12]


def _prepare(data: SetLike, dataset: str | None, method: str | None, lr: float | None) -> _Prepared:
    if isinstance(data, SyntheticSet):
        meta = data.meta
        ds = canonical_name(dataset or meta.dataset)
        images, labels = data.images, data.labels
        factor = set_factor(meta.config)
        if factor > 1:  # multi-formation (IDC): networks train on the decoded images; the IPC stays the stored one
            images, labels = decode(images.float(), factor), decode_labels(labels, factor)
        zca = bool((meta.config or {}).get("zca", False))
        return _Prepared(images, labels, ds, method or meta.method, meta.ipc, lr if lr is not None else data.lr, zca,
                         f"{ds}-{method or meta.method}-ipc{meta.ipc}-{set_fingerprint(images, labels)}")
    if isinstance(data, (tuple, list)) and len(data) == 2:
        if dataset is None:
            raise ValueError("evaluating raw tensors needs dataset=<name> (the test set and class count come from it)")
        images, labels = data
        if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
            raise TypeError("expected (images, labels) tensors")
        ds = canonical_name(dataset)
        hard = labels if labels.ndim == 1 else labels.argmax(1)
        counts = torch.bincount(hard.long().cpu()) if len(hard) else torch.zeros(0)
        ipc = int(counts.max()) if len(counts) and bool((counts == counts.max()).all()) else None
        return _Prepared(images.detach().float(), labels.detach(), ds, method or "tensors", ipc, lr, False,
                         f"{ds}-{method or 'tensors'}-{set_fingerprint(images, labels)}")
    raise TypeError(f"evaluate() takes a SyntheticSet or an (images, labels) pair, not {type(data).__name__}")


def in_pixel_space(prep: _Prepared, data: LoadedDataset, zca_space: bool) -> tuple[torch.Tensor, bool]:
    """(the set's images as evaluation trains on them, whether that is ZCA space): a set distilled in ZCA space stays
    as it is; a raw set asked into it (zca_space: random real trained like a ZCA method's sets) is whitened with the
    dataset's ZCA. The test images follow the returned flag (test_tensors)."""
    images = prep.images.float()
    if zca_space and not prep.zca:
        from ..zca import dataset_zca

        return dataset_zca(data).apply(images), True
    return images, prep.zca


MAX_PIXEL_MAGNITUDE = 1000.0  # normalised units: distilled pixels stray past [0, 1] (2.7% of a DM set), not this far


def check_set(images: torch.Tensor, labels: torch.Tensor, info: DatasetInfo) -> None:
    """Refuse a set that cannot be evaluated on this dataset, saying what does not match."""
    expected = (info.channels, info.image_size, info.image_size)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise ValueError(f"the set's images have shape {tuple(images.shape)}; {info.name} needs N×{expected[0]}×"
                         f"{expected[1]}×{expected[2]}")
    if images.shape[0] == 0:
        raise ValueError("the set is empty")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    if labels.ndim == 2:
        if labels.shape[1] != info.num_classes:
            raise ValueError(f"soft labels have {labels.shape[1]} classes; {info.name} has {info.num_classes}")
    elif labels.ndim == 1:
        if labels.is_floating_point():
            raise ValueError("hard labels must be integer class ids")
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= info.num_classes:
            raise ValueError(f"labels range over [{lo}, {hi}]; {info.name} has classes 0..{info.num_classes - 1}")
    else:
        raise ValueError("labels must be (N,) class ids or (N, K) soft labels")
    if not torch.isfinite(images).all():
        raise ValueError("the set's images contain NaN or infinite values")
    if labels.is_floating_point() and not torch.isfinite(labels).all():
        raise ValueError("the set's soft labels contain NaN or infinite values")
    peak = float(images.abs().max())
    if peak > MAX_PIXEL_MAGNITUDE:
        raise ValueError(f"the set's pixels reach {peak:.3g} in normalised units, where real images span about ±3: "
                         "networks trained on them learn nothing (the distillation that made it diverged; a smaller "
                         "image learning rate, lr_img, avoids that)")


# ---------------------------------------------------------------------- test data, prepared once
_TEST_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def test_tensors(data: LoadedDataset, device: torch.device, limit: int | None = None,
                 zca: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised test images and labels on device; `limit` takes a fixed class-balanced subset
    (generator seed 0), so every quick evaluation of a dataset sees the same images. Cached per test split (two
    subsets of one source, as tests and subset studies make, are told apart by their tensors)."""
    key = (data.info.name, data.source, len(data.test), data.test.images.data_ptr(), str(device), limit, zca)
    if key in _TEST_CACHE:
        return _TEST_CACHE[key]
    split = data.test
    if limit is not None and limit < len(split):
        g = torch.Generator().manual_seed(0)
        per = max(1, limit // data.info.num_classes)
        idx = torch.cat([ix[torch.randperm(len(ix), generator=g)[:per]] for ix in split.class_indices])
        idx = idx.sort().values
        images_u8, labels = split.images[idx], split.labels[idx]
    else:
        images_u8, labels = split.images, split.labels
    images = data.normalize(images_u8)
    if zca:
        from ..zca import dataset_zca

        images = dataset_zca(data).apply(images)
    value = (images.to(device), labels.to(device))
    if len(_TEST_CACHE) > 8:
        _TEST_CACHE.clear()
    _TEST_CACHE[key] = value
    return value


MAX_SEEDS = 1_000  # networks per evaluation: more is a typo, not a study (each trains for minutes on a CPU)


def _seed_list(seeds: int | Sequence[int] | None, default: int) -> list[int]:
    """0..K-1 for an int K, or the given seeds: whole numbers from 0 (not a string's characters, not 1.5)."""
    if seeds is None:
        return list(range(default))
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        if not 1 <= seeds <= MAX_SEEDS:
            raise ValueError(f"seeds is a number of networks from 1 to {MAX_SEEDS:,}, or a list of seeds; not {seeds}")
        return list(range(int(seeds)))
    if isinstance(seeds, (str, bytes, float, bool)) or not hasattr(seeds, "__iter__"):
        raise ValueError(f"seeds is a number of networks or a list of whole-number seeds, not {seeds!r}")
    out = list(seeds)
    if not 1 <= len(out) <= MAX_SEEDS:
        raise ValueError(f"a list of 1 to {MAX_SEEDS:,} seeds, not {len(out)}")
    if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or not 0 <= s < 2**31 for s in out):
        raise ValueError(f"seeds are whole numbers from 0 to 2**31 - 1, not {out!r:.80}")
    return [int(s) for s in out]


def evaluate(data: SetLike, architecture: str = "convnet", preset: str | EvalConfig | None = "quick",
             seeds: int | Sequence[int] | None = None, device: str | torch.device = "auto",
             progress: ProgressFn | None = None, should_stop: StopFn | None = None, *,
             dataset: str | None = None, method: str | None = None, lr: float | None = None,
             model_kwargs: dict[str, Any] | None = None, test_data: LoadedDataset | None = None,
             **overrides: Any) -> EvalResult:
    """Train fresh `architecture` networks (one per seed) on the set and test them on the test set.

    data: a SyntheticSet, or an (images normalised N×C×H×W, labels (N,) or (N, K)) pair with dataset=.
    preset: 'quick', 'paper' or an EvalConfig; keyword overrides change single fields (epochs=...).
    seeds: an int K (seeds 0..K-1) or explicit seeds; default the preset's num_seeds.
    progress(dict) is called about 100 times per seed group; should_stop() is polled every pass and
    raises EvaluationCancelled.
    """
    wall = time.perf_counter()
    if not isinstance(architecture, str):  # ['convnet', 'mlp'] failed deep inside as "'list' has no attribute strip"
        raise ValueError(f"architecture is one model name such as 'convnet' (one call per architecture), not "
                         f"{architecture!r:.80}")
    if test_data is not None and not isinstance(test_data, LoadedDataset):
        raise ValueError("test_data is a loaded dataset (ddcore.data.load_dataset(...)), not "
                         f"{type(test_data).__name__}")
    config = get_preset(preset)
    if overrides:
        config = config.with_(**overrides)
    prep = _prepare(data, dataset, method, lr)
    info = test_data.info if test_data is not None else get_dataset_info(prep.dataset)
    check_set(prep.images, prep.labels, info)
    dev = resolve_device(device)
    seed_list = _seed_list(seeds, config.num_seeds)
    resolved = config.resolve(info.name, architecture, prep.method, prep.lr)
    kwargs = dict(model_kwargs or {})
    if architecture == "convnet":  # the method's own evaluation network (FRePo: no normalisation), unless asked
        if resolved.convnet_norm and "norm" not in kwargs:
            kwargs["norm"] = resolved.convnet_norm
        resolved.convnet_norm = str(kwargs.get("norm", ""))
    create_model(architecture, info.channels, info.num_classes, info.image_size, **kwargs)  # fail fast on bad names

    def build():
        return create_model(architecture, info.channels, info.num_classes, info.image_size, **kwargs)

    loaded = test_data if test_data is not None else load_dataset(info.name)
    train_x, zca = in_pixel_space(prep, loaded, bool(config.zca_space))
    resolved.extra.update(zca=zca, soft_labels=bool(prep.labels.ndim == 2))  # the set's own protocol, recorded
    test_x, test_y = test_tensors(loaded, dev, resolved.test_limit, zca)

    if should_stop is not None and should_stop():
        raise EvaluationCancelled("evaluation cancelled before it started")
    outcome = train_group(build, seed_list, train_x, prep.labels, resolved, dev, info.num_classes,
                          progress, should_stop)
    t_test = time.perf_counter()
    if progress is not None:
        progress({"stage": "test", "fraction": 1.0, "seeds": seed_list, "test_images": int(test_x.shape[0])})
    preds = predict(outcome.group, test_x, chunk=2000 if dev.type != "cpu" else 500, should_stop=should_stop)
    accs = [100.0 * float((p == test_y).float().mean()) for p in preds]
    # over every network: summed confusion counts, so per-class accuracy is the mean over seeds
    conf = sum(confusion_matrix(p.cpu(), test_y.cpu(), info.num_classes) for p in preds)
    per_class = (100.0 * conf.diag().float() / conf.sum(1).clamp_min(1).float()).tolist()
    test_time = time.perf_counter() - t_test
    mean, std = mean_std(accs)
    return EvalResult(set_id=prep.set_id, dataset=info.name, method=prep.method, ipc=prep.ipc,
                      num_images=int(prep.images.shape[0]), architecture=architecture, preset=config.name,
                      config=resolved.to_dict(), seeds=seed_list, accuracies=accs, mean=mean, std=std,
                      wall_time_s=round(time.perf_counter() - wall, 3), train_time_s=round(outcome.train_time_s, 3),
                      test_time_s=round(test_time, 3), device=_device_name(dev), versions=library_versions(),
                      test_images=int(test_x.shape[0]), curves=outcome.curves, per_class_accuracy=per_class,
                      confusion=conf.tolist(), class_names=list(info.class_names), model_kwargs=kwargs,
                      class_stats_over="all seeds")


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    n = torch.get_num_threads()
    return f"{dev.type} ({n} thread{'s' if n != 1 else ''})"
