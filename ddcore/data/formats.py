"""Parsers for the on-disk formats: IDX (MNIST), CIFAR binary and python batches, SVHN .mat, image zips."""
from __future__ import annotations

import gzip
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

from .errors import DatasetCorruptError


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally .gz) as a uint8 array; the header's dims are checked against the size."""
    raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 8 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetCorruptError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims)) if dims else 0
    if len(raw) - offset != expected:
        raise DatasetCorruptError(f"{path}: header says {dims} ({expected} bytes) but holds {len(raw) - offset} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def read_cifar_binary(path: Path, label_bytes: int, label_index: int) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR binary version: records of label byte(s) + 3072 pixel bytes (no pickle)."""
    raw = np.fromfile(path, dtype=np.uint8)
    record = label_bytes + 3072
    if raw.size == 0 or raw.size % record:
        raise DatasetCorruptError(f"{path}: size {raw.size} is not a multiple of the {record}-byte CIFAR record")
    rows = raw.reshape(-1, record)
    return rows[:, label_bytes:].reshape(-1, 3, 32, 32), rows[:, label_index].astype(np.int64)


class _CifarBatchUnpickler(pickle.Unpickler):
    """Only what the official CIFAR python batches contain may be built: numpy arrays, nothing else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise DatasetCorruptError(f"refusing to load {module}.{name} from a CIFAR batch file")


def read_cifar_python(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """An official CIFAR python batch. Callers verify its MD5 first; the unpickler is restricted as well."""
    with open(path, "rb") as f:
        batch = _CifarBatchUnpickler(f, encoding="bytes").load()
    data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return data, np.asarray(batch[label_key], dtype=np.int64)


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        from scipy.io import loadmat
    except ImportError as e:  # pragma: no cover - scipy is pinned in requirements
        raise DatasetCorruptError("reading SVHN .mat files needs scipy (pip install scipy)") from e
    mat = loadmat(str(path))
    images = np.ascontiguousarray(np.transpose(mat["X"], (3, 2, 0, 1)), dtype=np.uint8)
    labels = mat["y"].astype(np.int64).reshape(-1)
    labels[labels == 10] = 0
    return images, labels


def decode_image(data: bytes, size: int, channels: int) -> np.ndarray:
    """Decode one image (guarded against decompression bombs by Pillow's limit) to C×size×size uint8."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        if im.width * im.height > 64_000_000:
            raise DatasetCorruptError(f"image of {im.width}×{im.height} pixels is too large")
        if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit or float greys: scale to 8 bits, not clip
            values = np.asarray(im, dtype=np.float64)
            top = 65535.0 if im.mode.startswith("I;16") else max(float(values.max()), 1.0)
            im = Image.fromarray(np.clip(values / top * 255.0, 0, 255).astype(np.uint8), "L")
        im = im.convert("L" if channels == 1 else "RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def safe_zip_members(zf: zipfile.ZipFile, max_files: int = 200_000,
                     max_total_bytes: int = 2 << 30) -> list[zipfile.ZipInfo]:
    """Zip entries that are plain relative paths; refuse traversal, absurd counts and zip bombs."""
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > max_files:
        raise DatasetCorruptError(f"zip holds {len(infos)} files; the limit is {max_files}")
    total = 0
    for info in infos:
        name = info.filename
        if name.startswith(("/", "\\")) or ".." in Path(name).parts or ":" in name:
            raise DatasetCorruptError(f"zip entry '{name}' has an unsafe path")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise DatasetCorruptError(f"zip entry '{name}' is a symbolic link; only plain files are accepted")
        total += info.file_size
        if info.compress_size and info.file_size / max(info.compress_size, 1) > 1000:
            ratio = info.file_size / info.compress_size
            raise DatasetCorruptError(f"zip entry '{name}' expands {ratio:.0f}× (zip bomb?)")
    if total > max_total_bytes:
        raise DatasetCorruptError(
            f"zip expands to {readable_size(total)}; the limit is {readable_size(max_total_bytes)}")
    return infos


def readable_size(n: int) -> str:
    """Bytes as a reader says them: a limit of 200 MiB once read "0 GiB"."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
