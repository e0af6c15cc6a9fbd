"""Datasets a user brings: a zip of class folders, checked, kept inside the store and registered by name.

Why a registered name (`upload-<slug>-<hash>`) rather than a path: every page, spec and stored run refers to
datasets by name, so an uploaded one behaves like MNIST everywhere (its class names, shape and normalisation
come from its `info.json`). Nothing is trusted before it is checked: the archive's size, entry paths and
links, expansion ratio, entry count, every image's header (pixels, mode) before any decoding, the number of
classes and of images per class. A refused upload leaves nothing behind.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..atomic import write_atomic
from ..names import check_name
from ..paths import home_dir
from .errors import DatasetCorruptError, DatasetNotFoundError
from .formats import safe_zip_members
from .imagefolder import IMAGE_SUFFIXES, read_image_tree
from .info import DatasetInfo

PREFIX = "upload-"
MAX_UPLOAD_BYTES = 64 << 20  # a zip of a few thousand small images; the UI states the limits
MAX_ENTRIES = 20_000
MAX_EXPANDED_BYTES = 512 << 20
MAX_TOTAL_PIXELS = 200_000_000  # summed over every image, read from headers before anything is decoded
MAX_CLASSES = 100
MIN_PER_CLASS = 2
IMAGE_SIZE = 32  # images are resized to 32 × 32, the size the Studio's networks take
LIMITS_TEXT = (f"a .zip up to {MAX_UPLOAD_BYTES >> 20} MB holding train/<class>/<image> (optional test/<class>/"
               f"<image>), 2 to {MAX_CLASSES} classes of at least {MIN_PER_CLASS} images, at most {MAX_ENTRIES:,} "
               f"files and {MAX_TOTAL_PIXELS // 1_000_000} million pixels in all; PNG, JPEG, BMP, GIF, WebP or TIFF "
               f"in any mode; images are resized to {IMAGE_SIZE} × {IMAGE_SIZE}")


class UploadError(DatasetCorruptError):
    """An upload that is refused; the message says what is wrong and what is accepted."""


@dataclass(frozen=True)
class UploadRecord:
    name: str  # the dataset name: upload-<slug>-<hash>
    display_name: str
    class_names: tuple[str, ...]
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train_images: int
    test_images: int
    sha256: str

    def info(self) -> DatasetInfo:
        return DatasetInfo(self.name, self.display_name, self.channels, IMAGE_SIZE, len(self.class_names),
                           self.class_names, self.mean, self.std,
                           f"Uploaded: {self.train_images:,} training and {self.test_images:,} test images")


def uploads_dir() -> Path:
    return home_dir() / "uploads"


def archive_path(name: str) -> Path:
    return uploads_dir() / name / "data.zip"


def list_uploads() -> list[UploadRecord]:
    """Every valid upload in the current store (a damaged record is skipped, never fatal)."""
    out = []
    folder = uploads_dir()
    for info_file in sorted(folder.glob(f"{PREFIX}*/info.json")) if folder.is_dir() else []:
        try:
            data = json.loads(info_file.read_text())
            record = UploadRecord(**{**data, "class_names": tuple(data["class_names"]), "mean": tuple(data["mean"]),
                                     "std": tuple(data["std"])})
        except (OSError, ValueError, TypeError, KeyError):
            continue
        if record.name == info_file.parent.name and archive_path(record.name).is_file():
            out.append(record)
    return out


def find_upload(name: str) -> UploadRecord | None:
    return next((u for u in list_uploads() if u.name == name), None)


def _slug(filename: str) -> str:
    stem = Path(filename).stem.lower()
    return re.sub(r"[^a-z0-9]+", "-", stem).strip("-")[:40] or "dataset"


def _check_archive(data: bytes) -> bool:
    """Refuse a bad archive (UploadError); returns whether every image is grey (from the same header pass)."""
    if not data:
        raise UploadError("the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(f"the file is {len(data) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES >> 20} MB")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise UploadError("the file is not a zip archive (expected train/<class>/<image> inside a .zip)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = safe_zip_members(zf, max_files=MAX_ENTRIES, max_total_bytes=MAX_EXPANDED_BYTES)
            return _check_headers(zf, members)
    except zipfile.BadZipFile as e:
        raise UploadError(f"the zip is damaged: {e}") from e
    except DatasetCorruptError as e:
        raise UploadError(str(e)) from e


GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def _check_headers(zf: zipfile.ZipFile, members: list[zipfile.ZipInfo]) -> bool:
    """Sizes and modes from each image's header (Pillow reads no pixel data here): a pixel-count bomb is
    refused before any image is decoded. Returns whether every image is grey."""
    from PIL import Image, UnidentifiedImageError

    total, grey = 0, True
    for info in members:
        if Path(info.filename).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        try:
            with zf.open(info) as raw, Image.open(io.BytesIO(raw.read(min(info.file_size, 8 << 20)))) as im:
                total += im.width * im.height
                grey = grey and im.mode in GREY_MODES
        except UnidentifiedImageError as e:  # Pillow's message names an in-memory buffer, not the file
            raise UploadError(f"'{info.filename}' is not a readable image (not a format Pillow decodes, or damaged)") from e
        except Image.DecompressionBombError as e:
            raise UploadError(f"'{info.filename}' has too many pixels to be decoded safely; resize it first") from e
        except (OSError, ValueError) as e:
            raise UploadError(f"'{info.filename}' is not a readable image ({e})") from e
        if total > MAX_TOTAL_PIXELS:
            raise UploadError(f"the images hold more than {MAX_TOTAL_PIXELS // 1_000_000} million pixels in all; "
                              "resize them first")
    return grey


def import_zip(data: bytes, filename: str, channels: int | None = None) -> UploadRecord:
    """Check an uploaded zip, keep it in the store and return its record; UploadError says why it is refused."""
    display = check_name(Path(filename).stem or "dataset", what="The dataset name", max_length=80)
    all_grey = _check_archive(data)
    digest = hashlib.sha256(data).hexdigest()
    name = f"{PREFIX}{_slug(filename)}-{digest[:8]}"
    existing = find_upload(name)
    if existing is not None:  # the same file again: nothing to do
        return existing
    folder = uploads_dir() / name
    staging = uploads_dir() / f".staging-{digest[:16]}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        archive = write_atomic(staging / "data.zip", data)
        record = _describe(archive, name, display, digest, channels or (1 if all_grey else 3))
        write_atomic(staging / "info.json", json.dumps(asdict(record), indent=1))
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    register(record)
    return record


def _describe(archive: Path, name: str, display: str, digest: str, channels: int) -> UploadRecord:
    try:
        tree = read_image_tree(archive, IMAGE_SIZE, channels, use_cache=False)
    except (DatasetNotFoundError, DatasetCorruptError) as e:  # its message names the staging copy, not the upload
        raise UploadError(str(e).replace(str(archive), "the zip")) from e
    names = tuple(tree.class_names)
    if not 2 <= len(names) <= MAX_CLASSES:
        raise UploadError(f"the zip has {len(names)} class folder(s) under train/; 2 to {MAX_CLASSES} are needed")
    for class_name in names:
        try:
            check_name(class_name, what="A class folder's name", max_length=80)
        except ValueError as e:
            raise UploadError(str(e)) from e
    images, labels = tree.splits["train"]
    counts = np.bincount(labels, minlength=len(names))
    thin = [names[c] for c in range(len(names)) if counts[c] < MIN_PER_CLASS]
    if thin:
        raise UploadError(f"class(es) {', '.join(repr(t) for t in thin[:5])} have fewer than {MIN_PER_CLASS} "
                          "training images")
    test = tree.splits.get("test")
    test_count = len(test[1]) if test is not None else int(sum(round(c * 0.2) if c > 1 else 0 for c in counts))
    floats = images.reshape(images.shape[0], channels, -1).astype(np.float64) / 255.0
    return UploadRecord(name=name, display_name=display, class_names=names, channels=channels,
                        mean=tuple(float(v) for v in floats.mean(axis=(0, 2))),
                        std=tuple(max(float(v), 1e-3) for v in floats.std(axis=(0, 2))),
                        train_images=int(len(labels)) - (0 if test is not None else test_count),
                        test_images=int(test_count), sha256=digest)


def delete_upload(name: str) -> None:
    if not name.startswith(PREFIX) or "/" in name or name.startswith("."):
        raise ValueError(f"{name!r} is not an uploaded dataset")
    shutil.rmtree(uploads_dir() / name, ignore_errors=True)
    from .loader import DATASETS

    if name in DATASETS.names():
        DATASETS.remove(name)


def register(record: UploadRecord) -> None:
    """Make the upload a dataset name in this process (the loader reads its archive on demand)."""
    from .loader import DATASETS

    if record.name not in DATASETS.names():
        DATASETS.add(record.name, record.info(), record.info().description)


def register_all() -> list[str]:
    """Register every upload of the current store, and forget those of another (DDCORE_HOME can change within
    a process); called whenever the dataset list is read."""
    from .loader import DATASETS

    records = list_uploads()
    current = {r.name for r in records}
    for name in [n for n in DATASETS.names() if n.startswith(PREFIX) and n not in current]:
        DATASETS.remove(name)
    for record in records:
        register(record)
    return sorted(current)
