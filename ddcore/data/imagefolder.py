"""ImageFolder-style trees (`train/<class>/*`, optional `test/<class>/*`) from a directory or a zip."""
from __future__ import annotations

import hashlib
import os
import re
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import UnidentifiedImageError

from ..atomic import atomic_path
from ..paths import cache_dir
from .errors import DatasetCorruptError, DatasetNotFoundError
from .formats import decode_image, readable_size, safe_zip_members

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MAX_FOLDER_BYTES = 2 << 30
MAX_IMAGE_BYTES = 64 << 20  # one image file; read whole into memory (per decoding thread) before it is decoded
LARGE_IMAGE_BYTES = 16 << 10  # mean compressed size from which decoding uses threads (see _decode_all)


@dataclass
class ImageTree:
    class_names: list[str]
    splits: dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (uint8 N×C×H×W, int64 labels)


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _folder_files(path: Path) -> list[Path]:
    """Every file under `path`, not following a link out of it: a symlinked file or folder that resolves outside
    the dataset folder is skipped (it could name /etc/... or another user's files)."""
    root = path.resolve()
    found = []
    for folder, _dirs, files in os.walk(path, followlinks=False):
        for name in files:
            p = Path(folder) / name
            if p.is_symlink() and not p.resolve().is_relative_to(root):
                continue
            if p.is_file():
                found.append(p)
    return found


def _list_entries(path: Path) -> list[tuple[str, str, str]]:
    """(split, class, member) for every image found as .../{train,test}/<class>/<file>."""
    if zipfile.is_zipfile(path):
        with _open_zip(path) as zf:
            names = [i.filename for i in safe_zip_members(zf)]
    elif path.is_dir():
        names = [str(p.relative_to(path)) for p in _folder_files(path)]
    else:
        raise DatasetNotFoundError(f"{path} is neither a folder nor a zip file")
    found = []
    for name in names:
        parts = Path(name).parts
        if any(part.startswith(".") or part == "__MACOSX" for part in parts):
            continue  # macOS's __MACOSX/._name resource forks, .DS_Store and other hidden files are not images
        if len(parts) >= 3 and parts[-3].lower() in ("train", "test") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
            found.append((parts[-3].lower(), parts[-2], name))
    return found


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError) as e:
        raise DatasetCorruptError(f"{path} is not a readable zip file: {e}") from e


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
            tree = _load_cached(cached)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # a damaged cache costs a decode
            cached.unlink(missing_ok=True)
        else:  # a cache written before today's class-name rules meets them too
            tree.class_names = _fit_names(tree.class_names, path)
            return tree
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
    tree = ImageTree(_fit_names(names, path), {})
    for split in ("train", "test"):
        members = sorted(((index[c], m) for s, c, m in entries if s == split), key=lambda t: (t[0], _natural_key(t[1])))
        if members:
            images = _decode_all(path, [m for _, m in members], image_size, channels)
            tree.splits[split] = (images, np.array([c for c, _ in members], dtype=np.int64))
    if use_cache:
        _save_cached(cached, tree)
    return tree


def _fit_names(names: list[str], path: Path) -> list[str]:
    """Class names a set file can hold (ddcore.synthetic's limits): a longer folder name is shortened with '…'
    (numbered if two would meet), and more classes than a set may have (or fewer than two) are refused here,
    before any decoding, rather than leaving an unloadable or meaningless set after a distillation."""
    from ..synthetic import MAX_CLASS_NAME, MAX_CLASSES

    if len(names) > MAX_CLASSES:
        raise DatasetCorruptError(f"{path}: {len(names)} class folders; a dataset may have at most {MAX_CLASSES}")
    if len(names) < 2:  # one class trains every network to 100 % and distils nothing
        raise DatasetCorruptError(f"{path}: only the class folder {names[0]!r} under train/; a dataset needs at least "
                                  "two (train/<class>/<image>, one folder per class)")
    out: list[str] = []
    for name in names:
        fitted = name if len(name) <= MAX_CLASS_NAME else name[:MAX_CLASS_NAME - 1] + "…"
        k = 2
        while fitted in out:
            tail = f"… ({k})"
            fitted, k = name[:MAX_CLASS_NAME - len(tail)] + tail, k + 1
        out.append(fitted)
    return out


def _decode_all(path: Path, members: list[str], size: int, channels: int) -> np.ndarray:
    """Decode member by member, so memory holds the decoded array and a few compressed files, never the whole
    expanded archive (a zip just under the bomb guard once took 2.5 GB before its refusal).

    Small files decode in one thread: Pillow holds the GIL for most of a 32×32 JPEG, so threads only contend
    (CIFAR-10's 60,000 JPEGs took 23 s with four threads and one future per file, 8 s in one thread). Large
    images release it while decoding and resizing, so they get a few threads, each on a contiguous chunk."""
    out = np.empty((len(members), channels, size, size), dtype=np.uint8)
    is_zip = zipfile.is_zipfile(path)
    shared = _open_zip(path) if is_zip else None  # reading a zip's directory costs ~0.7 s at 60,000 entries: once
    try:
        sizes = [shared.getinfo(m).file_size for m in members] if shared is not None else \
            [(path / m).stat().st_size for m in members]
        for member, n in zip(members, sizes):
            if n > MAX_IMAGE_BYTES:
                raise DatasetCorruptError(f"{path}: '{member}' is {readable_size(n)}; one image file may be at most "
                                          f"{readable_size(MAX_IMAGE_BYTES)}")
        if shared is not None:
            total = sum(shared.getinfo(m).compress_size for m in members)
        else:
            total = sum(sizes)
            if total > MAX_FOLDER_BYTES:
                raise DatasetCorruptError(f"{path}: {total / 2**30:.1f} GiB of images; the limit is 2 GiB")
        threads = 1 if total < LARGE_IMAGE_BYTES * len(members) else min(4, _usable_cores())
        if threads == 1:
            _decode_range(path, shared, members, range(len(members)), out, size, channels)
            return out
    finally:
        if shared is not None:
            shared.close()
    step = -(-len(members) // threads)

    def work(chunk: range) -> None:
        handle = _open_zip(path) if is_zip else None  # one handle per thread: a ZipFile is not safe to share
        try:
            _decode_range(path, handle, members, chunk, out, size, channels)
        finally:
            if handle is not None:
                handle.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(work, [range(s, min(s + step, len(members))) for s in range(0, len(members), step)]))
    return out


def _usable_cores() -> int:
    """Cores this process may run on (a server pins its jobs' threads; os.cpu_count() would ignore that)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _decode_range(path: Path, zf: zipfile.ZipFile | None, members: list[str], chunk: range, out: np.ndarray,
                  size: int, channels: int) -> None:
    for i in chunk:
        try:
            data = zf.read(members[i]) if zf is not None else (path / members[i]).read_bytes()
            out[i] = decode_image(data, size, channels)
        except DatasetCorruptError:
            raise
        except (zipfile.BadZipFile, EOFError, zlib.error) as e:
            raise DatasetCorruptError(f"{path}: '{members[i]}' is damaged in the zip ({e})") from e
        except UnidentifiedImageError as e:  # its message names an in-memory buffer, not the file
            raise DatasetCorruptError(f"{path}: '{members[i]}' is not an image Pillow can read") from e
        except Exception as e:  # Pillow raises many kinds
            raise DatasetCorruptError(f"{path}: cannot decode '{members[i]}': {e}") from e


def _cache_key(path: Path, size: int, channels: int, class_names: list[str] | None) -> str:
    """Identity of the tree's contents: for a folder every file's path, size and mtime (a folder's own mtime
    misses edits inside class folders), for a zip the file's."""
    st = path.stat()
    ident = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{size}|{channels}|{class_names}"
    h = hashlib.sha256(ident.encode())
    if path.is_dir():
        for p in sorted(_folder_files(path)):
            fs = p.stat()
            h.update(f"{p.relative_to(path)}|{fs.st_size}|{fs.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def _save_cached(target: Path, tree: ImageTree) -> None:
    arrays = {"class_names": np.array(tree.class_names, dtype=np.str_)}
    for split, (images, labels) in tree.splits.items():
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    try:
        with atomic_path(target, ".tmp.npz") as tmp:
            np.savez(tmp, **arrays)
    except OSError:
        pass  # a read-only cache only costs speed


def _load_cached(target: Path) -> ImageTree:
    with np.load(target, allow_pickle=False) as z:
        tree = ImageTree([str(c) for c in z["class_names"]], {})
        for split in ("train", "test"):
            if f"{split}_images" in z:
                tree.splits[split] = (z[f"{split}_images"], z[f"{split}_labels"])
    return tree
