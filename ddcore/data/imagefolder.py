"""ImageFolder-style trees (`train/<class>/*`, optional `test/<class>/*`) from a directory or a zip."""
from __future__ import annotations

import hashlib
import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..paths import cache_dir
from .errors import DatasetCorruptError, DatasetNotFoundError
from .formats import decode_image, safe_zip_members

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MAX_FOLDER_BYTES = 2 << 30


@dataclass
class ImageTree:
    class_names: list[str]
    splits: dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (uint8 N×C×H×W, int64 labels)


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _list_entries(path: Path) -> list[tuple[str, str, str]]:
    """(split, class, member) for every image found as .../{train,test}/<class>/<file>."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = [i.filename for i in safe_zip_members(zf)]
    elif path.is_dir():
        names = [str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()]
    else:
        raise DatasetNotFoundError(f"{path} is neither a folder nor a zip file")
    found = []
    for name in names:
        parts = Path(name).parts
        if len(parts) >= 3 and parts[-3].lower() in ("train", "test") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
            found.append((parts[-3].lower(), parts[-2], name))
    return found


def read_image_tree(path: Path, image_size: int, channels: int, class_names: list[str] | None = None,
                    use_cache: bool = True) -> ImageTree:
    """Decode every image of the tree (cached on disk by file identity), classes sorted by name unless given."""
    path = Path(path)
    if not path.exists():
        raise DatasetNotFoundError(f"{path} does not exist")
    key = _cache_key(path, image_size, channels, class_names)
    cached = cache_dir() / f"tree-{key}.npz"
    if use_cache and cached.exists():
        try:
            return _load_cached(cached)
        except (OSError, ValueError, KeyError):
            cached.unlink(missing_ok=True)
    entries = _list_entries(path)
    if not any(split == "train" for split, _, _ in entries):
        raise DatasetNotFoundError(
            f"{path} holds no images under train/<class>/ "
            "(expected train/<class>/<image>, optional test/<class>/<image>)")
    names = list(class_names) if class_names else sorted({c for s, c, _ in entries if s == "train"}, key=_natural_key)
    index = {c: i for i, c in enumerate(names)}
    unknown = sorted({c for _, c, _ in entries} - set(index))
    if unknown:
        raise DatasetCorruptError(f"{path}: classes {unknown[:5]} appear in test/ but not in train/")
    tree = ImageTree(names, {})
    for split in ("train", "test"):
        members = sorted(((index[c], m) for s, c, m in entries if s == split), key=lambda t: (t[0], _natural_key(t[1])))
        if members:
            images = _decode_all(path, [m for _, m in members], image_size, channels)
            tree.splits[split] = (images, np.array([c for c, _ in members], dtype=np.int64))
    if use_cache:
        _save_cached(cached, tree)
    return tree


def _decode_all(path: Path, members: list[str], size: int, channels: int) -> np.ndarray:
    out = np.empty((len(members), channels, size, size), dtype=np.uint8)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            blobs = [zf.read(m) for m in members]
    else:
        total = sum((path / m).stat().st_size for m in members)
        if total > MAX_FOLDER_BYTES:
            raise DatasetCorruptError(f"{path}: {total / 2**30:.1f} GiB of images; the limit is 2 GiB")
        blobs = [(path / m).read_bytes() for m in members]

    def work(i: int) -> None:
        try:
            out[i] = decode_image(blobs[i], size, channels)
        except DatasetCorruptError:
            raise
        except Exception as e:  # Pillow raises many kinds
            raise DatasetCorruptError(f"{path}: cannot decode '{members[i]}': {e}") from e

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(work, range(len(members)), chunksize=512))
    return out


def _cache_key(path: Path, size: int, channels: int, class_names: list[str] | None) -> str:
    st = path.stat()
    ident = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{size}|{channels}|{class_names}"
    return hashlib.sha256(ident.encode()).hexdigest()[:24]


def _save_cached(target: Path, tree: ImageTree) -> None:
    arrays = {"class_names": np.array(tree.class_names, dtype=np.str_)}
    for split, (images, labels) in tree.splits.items():
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    tmp = target.with_suffix(".tmp.npz")
    try:
        np.savez(tmp, **arrays)
        tmp.replace(target)
    except OSError:
        tmp.unlink(missing_ok=True)  # a read-only cache only costs speed


def _load_cached(target: Path) -> ImageTree:
    with np.load(target, allow_pickle=False) as z:
        tree = ImageTree([str(c) for c in z["class_names"]], {})
        for split in ("train", "test"):
            if f"{split}_images" in z:
                tree.splits[split] = (z[f"{split}_images"], z[f"{split}_labels"])
    return tree
