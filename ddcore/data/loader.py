"""`load_dataset`: find a dataset in the sources, in order, and hold it in memory (cached per process)."""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np
import torch

from ..paths import ASSETS_DIR, cache_dir, default_data_roots
from ..registry import Registry
from . import points
from .errors import DatasetCorruptError, DatasetNotFoundError
from .imagefolder import read_image_tree
from .info import BUILTIN_INFOS, EMBEDDED_SUBSET, DatasetInfo, canonical_name
from .sources import DOWNLOAD_HOSTS, EMBEDDED, LAYOUTS, Arrays, network_reachable, torchvision_download
from .split import ImageSplit, LoadedDataset

UPLOAD_PREFIX = "upload-"  # ddcore/data/uploads.py

DATASETS: Registry[DatasetInfo] = Registry("dataset")
for _info in BUILTIN_INFOS.values():
    DATASETS.add(_info.name, _info, _info.description)
DATASETS.add("folder", BUILTIN_INFOS["cifar10"].with_changes(
    name="folder", display_name="Image folder", num_classes=1, class_names=("class",),
    description="Any ImageFolder-style directory or zip: train/<class>/*, optional test/<class>/*."),
    "Any ImageFolder-style directory or zip: train/<class>/*, optional test/<class>/*.")
for _info in points.infos():
    DATASETS.add(_info.name, _info, _info.description, points=True)

_CACHE: dict[tuple, LoadedDataset] = {}
_LOCK = threading.Lock()


def list_datasets() -> list[str]:
    """Built-in datasets, 'folder', then the current store's uploads."""
    from .uploads import register_all

    register_all()
    return DATASETS.names()


def get_dataset_info(name: str) -> DatasetInfo:
    key = canonical_name(name)
    if key.startswith(UPLOAD_PREFIX) and key not in DATASETS.names():
        from .uploads import register_all

        register_all()
    return DATASETS.get(key)


def load_dataset(name: str, root: str | os.PathLike | None = None, *, roots: list | None = None,
                 download: bool | None = None, embedded: bool = True, image_size: int | None = None,
                 channels: int | None = None, test_fraction: float = 0.2) -> LoadedDataset:
    """Load a dataset into memory as uint8 tensors.

    Sources, in order: `root` if given (only that root); otherwise `roots` if given, else $DDCORE_DATA and
    ../shared/datasets;
    then torchvision's download into the cache when the network allows (download=None: try when reachable
    and DDCORE_OFFLINE is unset); then the embedded default in assets/. `folder` takes `root` as the folder
    or zip, with `image_size`/`channels` (default 32 / 3) and a test split carved from train if it has none.
    """
    key_name = canonical_name(name)
    get_dataset_info(key_name)  # unknown names fail here with close matches
    search = None if roots is None else tuple(str(Path(r).resolve()) for r in roots)
    key = (key_name, str(Path(root).resolve()) if root else None, search, download, embedded, image_size, channels,
           test_fraction)  # with every default, `_default_key(key_name)`
    with _LOCK:
        if key not in _CACHE:
            if key_name == "folder":
                _CACHE[key] = _load_folder(root, image_size or 32, channels or 3, test_fraction)
            elif key_name.startswith(points.PREFIX):
                _CACHE[key] = _build(get_dataset_info(key_name), points.generate(key_name[len(points.PREFIX):]),
                                     "generated points (ddcore/data/points.py)")
            elif key_name.startswith(UPLOAD_PREFIX):
                from .uploads import IMAGE_SIZE, archive_path

                info = get_dataset_info(key_name)
                _CACHE[key] = _load_folder(archive_path(key_name), IMAGE_SIZE, info.channels, test_fraction, info)
            else:
                _CACHE[key] = _load_builtin(key_name, Path(root) if root else None,
                                            None if roots is None else [Path(r) for r in roots], download, embedded)
        return _CACHE[key]


def available(name: str) -> bool:
    """Whether `load_dataset(name)` would find the data here without downloading: a built-in dataset whose files
    are under a data root or embedded in assets/, or an upload. Cheap: it probes file layouts, decodes nothing.
    Pages offer only these, so no one picks a dataset and meets a missing-files message."""
    key = canonical_name(name)
    if key.startswith(UPLOAD_PREFIX):
        return key in list_datasets()
    if key.startswith(points.PREFIX):
        return key in DATASETS.names()
    if key not in BUILTIN_INFOS:
        return False
    if any(layout.probe(r) is not None for r in default_data_roots() for layout in LAYOUTS[key]):
        return True
    if any(layout.probe(cache_dir() / "downloads") is not None for layout in LAYOUTS[key]):
        return True
    return key in EMBEDDED and EMBEDDED[key].probe(ASSETS_DIR) is not None


def subset_note(name: str) -> str:
    """What pages say beside results measured on the embedded subset of `name` (its rows are marked 'subset')."""
    if name == "mnist":  # the embedded MNIST is the whole dataset
        return ""
    return (f"These results use the embedded {BUILTIN_INFOS[name].display_name} subset (500 training and 100 test "
            "images per class, from JPEGs), not the full dataset the published numbers come from; put the full data "
            "under a data root (DDCORE_DATA) to compare like with like.")


def local_variant(name: str, root: str | os.PathLike | None = None) -> str | None:
    """The `DatasetInfo.variant` that `load_dataset(name, root)` gives on this machine: 'subset' when no data root,
    earlier download or new download has a built-in dataset and the embedded subset stands in, else None. The data
    this process already holds decides where there is some (so a data root added while a server runs does not split
    its plans from its data); otherwise it probes file layouts, decoding nothing, in `_load_builtin`'s order. Jobs
    planned before their data is loaded key their artefacts by it."""
    key = canonical_name(name)
    if root or not has_subset(key):
        return None  # an explicit root is the only place looked
    held = _CACHE.get(_default_key(key))
    if held is not None:
        return held.info.variant
    if any(layout.probe(r) is not None for r in default_data_roots() for layout in LAYOUTS[key]):
        return None
    if any(layout.probe(cache_dir() / "downloads") is not None for layout in LAYOUTS[key]):
        return None
    if _would_download(key):
        return None
    return EMBEDDED_SUBSET if EMBEDDED[key].probe(ASSETS_DIR) is not None else None


def has_subset(name: str) -> bool:
    """Whether `name` may be loaded from an embedded subset (CIFAR-10; the embedded MNIST is the whole dataset)."""
    key = canonical_name(name)
    return key in EMBEDDED and key in BUILTIN_INFOS and key != "mnist"


_REACHABLE: dict[str, bool] = {}  # host -> reachable, probed once per process (a probe can take seconds)


def _would_download(name: str) -> bool:
    """Whether `load_dataset(name)` would try torchvision's download (online, DDCORE_OFFLINE unset)."""
    if os.environ.get("DDCORE_OFFLINE"):
        return False
    host = DOWNLOAD_HOSTS[name]
    if host not in _REACHABLE:
        _REACHABLE[host] = network_reachable(host)
    return _REACHABLE[host]


def _default_key(name: str) -> tuple:
    """`load_dataset`'s cache key for `name` loaded with every default (no root, the default search)."""
    return (name, None, None, None, True, None, None, 0.2)


def local_info(name: str, root: str | os.PathLike | None = None) -> DatasetInfo:
    """`get_dataset_info(name)` with the variant `load_dataset(name, root)` would give here (`local_variant`): what
    requirements are planned with when no data is at hand."""
    info = get_dataset_info(name)
    variant = local_variant(info.name, root)
    return info.with_changes(extra={**info.extra, "variant": variant}) if variant else info


def data_note(name: str) -> str:
    """What pages say beside published numbers when this machine would load a dataset from the embedded subset (no
    data root or download has it). Cheap: it probes file layouts, decodes nothing."""
    return subset_note(canonical_name(name)) if local_variant(name) else ""


def available_datasets() -> list[str]:
    """The image datasets this machine has (in registry order), uploads included; 'folder' needs a path, and the
    points of the 2-D playground (`point_datasets`) are not images, so neither is here."""
    return [d for d in list_datasets() if d != "folder" and not d.startswith(points.PREFIX) and available(d)]


def point_datasets() -> list[str]:
    """The toy datasets of points in the plane (ddcore/data/points.py): always available, they are generated."""
    return [d for d in DATASETS.names() if d.startswith(points.PREFIX)]


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


def _load_builtin(name: str, root: Path | None, search: list[Path] | None, download: bool | None,
                  embedded: bool) -> LoadedDataset:
    info = BUILTIN_INFOS[name]
    roots = [root] if root is not None else (default_data_roots() if search is None else search)
    for r in roots:
        for layout in LAYOUTS[name]:
            loader = layout.probe(r)
            if loader is not None:
                return _build(info, loader(), f"{layout.name} in {r}")
    if root is not None:
        raise DatasetNotFoundError(_not_found_message(info, [root], tried_download=False, tried_embedded=False))
    for layout in LAYOUTS[name]:  # an earlier download serves offline too (`available` counts it)
        loader = layout.probe(cache_dir() / "downloads")
        if loader is not None:
            return _build(info, loader(), f"torchvision download in {cache_dir() / 'downloads'}")
    tried_download = False
    if download is not False and not os.environ.get("DDCORE_OFFLINE") and network_reachable(DOWNLOAD_HOSTS[name]):
        tried_download = True
        target = cache_dir() / "downloads"
        try:
            torchvision_download(name, target)
            for layout in LAYOUTS[name]:
                loader = layout.probe(target)
                if loader is not None:
                    return _build(info, loader(), f"torchvision download in {target}")
        except (OSError, RuntimeError) as e:  # network errors surface as either
            tried_download = f"failed: {e}"  # type: ignore[assignment]
    if embedded and name in EMBEDDED:
        loader = EMBEDDED[name].probe(ASSETS_DIR)
        if loader is not None:
            desc = "embedded default (assets/)" if name == "mnist" else \
                "embedded default: CIFAR-10 subset, 500 train / 100 test per class, JPEG-derived (assets/)"
            marked = info if name == "mnist" else info.with_changes(extra={**info.extra, "variant": EMBEDDED_SUBSET})
            loaded = _build(marked, loader(), desc)
            loaded.note = subset_note(name)
            return loaded
    raise DatasetNotFoundError(_not_found_message(info, roots, tried_download, embedded and name in EMBEDDED))


def _not_found_message(info: DatasetInfo, roots: list[Path], tried_download, tried_embedded: bool) -> str:
    places = ", ".join(str(r) for r in roots) or "(no root: pass root=... or set DDCORE_DATA)"
    expected = "; or ".join(layout.expected for layout in LAYOUTS[info.name])
    lines = [f"{info.display_name} was not found. Looked in: {places}.",
             f"Expected, inside a root folder: {expected}."]
    if tried_download is True or isinstance(tried_download, str):
        outcome = tried_download if isinstance(tried_download, str) else "did not provide it"
        lines.append(f"torchvision download {outcome}.")
    else:
        lines.append("torchvision download was not attempted (offline, or download=False).")
    if tried_embedded:
        lines.append(f"The embedded default in {ASSETS_DIR} is missing too.")
    lines.append(f"Get it from {info.homepage} (or run online once so torchvision downloads it), then pass the "
                 "folder that contains it as root=... or in the DDCORE_DATA environment variable.")
    return " ".join(lines)


def _build(info: DatasetInfo, arrays: Arrays, source: str) -> LoadedDataset:
    splits = {}
    for split in ("train", "test"):
        if split not in arrays:
            raise DatasetCorruptError(f"{info.display_name}: the {split} split is missing ({source})")
        images, labels = arrays[split]
        if tuple(images.shape[1:]) != info.shape:
            raise DatasetCorruptError(
                f"{info.display_name}: images have shape {images.shape[1:]}, expected {info.shape}")
        splits[split] = ImageSplit(torch.from_numpy(np.array(images, dtype=np.uint8, copy=True)),
                                   torch.from_numpy(np.asarray(labels, dtype=np.int64)), info.num_classes)
    return LoadedDataset(info, splits["train"], splits["test"], source)


def _fingerprint(class_names, *splits: tuple[np.ndarray, np.ndarray]) -> str:
    """16 hex digits of SHA-256 over the class names and every split's pixels and labels (about 0.1 s per
    50,000 CIFAR-sized images)."""
    digest = hashlib.sha256("\n".join(class_names).encode())
    for images, labels in splits:
        for array in (images, labels):
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def _load_folder(root, image_size: int, channels: int, test_fraction: float,
                 known: DatasetInfo | None = None) -> LoadedDataset:
    if root is None:
        raise DatasetNotFoundError("The 'folder' dataset needs root=<folder or zip> holding train/<class>/<image> "
                                   "(and optionally test/<class>/<image>).")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    if not 8 <= image_size <= 256:
        raise ValueError(f"image_size must be between 8 and 256, not {image_size}")
    path = Path(root)
    tree = read_image_tree(path, image_size, channels)
    images, labels = tree.splits["train"]
    if "test" in tree.splits:
        test = tree.splits["test"]
    else:  # carve a class-stratified test split, deterministically
        rng = np.random.default_rng(0)
        test_mask = np.zeros(len(labels), dtype=bool)
        for c in range(len(tree.class_names)):
            idx = np.flatnonzero(labels == c)
            n_test = int(round(len(idx) * test_fraction)) if len(idx) > 1 else 0
            test_mask[rng.permutation(idx)[:n_test]] = True
        test = (images[test_mask], labels[test_mask])
        images, labels = images[~test_mask], labels[~test_mask]
    floats = images.reshape(images.shape[0], channels, -1).astype(np.float64) / 255.0
    mean = tuple(float(v) for v in floats.mean(axis=(0, 2)))
    std = tuple(max(float(v), 1e-3) for v in floats.std(axis=(0, 2)))
    info = DatasetInfo("folder", path.stem, channels, image_size, len(tree.class_names), tuple(tree.class_names),
                       mean, std, f"Image folder {path.name}",
                       extra={"fingerprint": _fingerprint(tree.class_names, (images, labels), test),
                              "root": str(path.resolve())})
    if known is not None:  # an upload: its registered name and numbers (computed the same way when it came in)
        if tuple(tree.class_names) != known.class_names:
            raise DatasetCorruptError(f"{known.display_name}: its archive no longer matches its record")
        info = known
    return _build(info, {"train": (images, labels), "test": test}, f"image folder {path}")
