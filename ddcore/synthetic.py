"""SyntheticSet: the distilled images, their labels, an optional learned lr, and where they came from.

Files are pickle-free: one safetensors file holds the tensors and, in its string metadata, the JSON
metadata plus a SHA-256 of the tensor bytes, so truncation and tampering are both detected.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import time
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .atomic import write_atomic
from .data.info import DatasetInfo

FORMAT_VERSION = 2  # 2: the checksum covers the metadata and lr too (1: the tensors only; still read)
MAX_SET_FILE_BYTES = 512 << 20
MAX_CLASSES = 1000  # the most any dataset the Studio loads may have (ImageNet-1k)
MAX_CLASS_NAME = 200
MAX_SIDE = 512  # image height and width
MAX_GRID_PIXELS = 100_000_000  # a drawn grid; beyond it 'show' and the pages refuse rather than run out of memory


class SyntheticSetFileError(ValueError):
    """A set file that is truncated, tampered with, or of the wrong shape."""


DATA_VARIANT = "data_variant"  # SetMeta.config's key for DatasetInfo.variant


@dataclass
class SetMeta:
    dataset: str
    method: str
    ipc: int
    class_names: list[str]
    mean: list[float]
    std: list[float]
    config: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    iteration: int = 0
    elapsed_s: float = 0.0
    device: str = "cpu"
    architecture: str = "convnet"
    created: float = field(default_factory=time.time)
    notes: str = ""

    @classmethod
    def for_dataset(cls, info: DatasetInfo, method: str, ipc: int, **kwargs: Any) -> "SetMeta":
        if info.variant:  # in the config, which every version reads, so the file stays readable everywhere
            kwargs["config"] = {**kwargs.get("config", {}), DATA_VARIANT: info.variant}
        return cls(dataset=info.name, method=method, ipc=ipc, class_names=list(info.class_names),
                   mean=list(info.mean), std=list(info.std), **kwargs)

    @property
    def variant(self) -> str | None:
        """'subset' when the set was made from the embedded subset of its dataset (DatasetInfo.variant); None for
        the full data, and for sets written before this was recorded."""
        value = self.config.get(DATA_VARIANT)
        return value if isinstance(value, str) else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SetMeta":
        """Read from a file; fields a later version added are left out, so its sets still load here."""
        if not isinstance(data, dict):
            raise TypeError(f"metadata is {type(data).__name__}, not a mapping")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class SyntheticSet:
    images: torch.Tensor  # float32 N×C×H×W, normalised with meta.mean/std
    labels: torch.Tensor  # int64 (N,) hard labels, or float (N, K) soft labels
    meta: SetMeta
    lr: float | None = None  # learned learning rate (MTT/TESLA-style), if any

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"images must be N×C×H×W, got shape {tuple(self.images.shape)}")
        if self.labels.shape[0] != self.images.shape[0]:
            raise ValueError(f"{self.images.shape[0]} images but {self.labels.shape[0]} labels")
        if self.labels.ndim not in (1, 2):
            raise ValueError("labels must be (N,) class ids or (N, K) soft labels")
        if self.images.shape[1] != len(self.meta.mean):
            raise ValueError(f"images have {self.images.shape[1]} channels; metadata has {len(self.meta.mean)}")
        if self.labels.ndim == 2 and self.labels.shape[1] != self.num_classes:
            raise ValueError(f"soft labels have {self.labels.shape[1]} columns for {self.num_classes} classes")

    # ------------------------------------------------------------------ views
    @property
    def num_classes(self) -> int:
        return len(self.meta.class_names)

    @property
    def soft_labels(self) -> bool:
        return self.labels.ndim == 2

    def hard_labels(self) -> torch.Tensor:
        return self.labels.argmax(1) if self.soft_labels else self.labels

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def to_unit(self) -> torch.Tensor:
        """Images de-normalised to [0, 1] (clamped) for display and export."""
        mean = torch.tensor(self.meta.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(self.meta.std, dtype=torch.float32).view(1, -1, 1, 1)
        return (self.images.detach().float().cpu() * std + mean).clamp(0, 1)

    def to_uint8(self) -> np.ndarray:
        """N×H×W×C uint8 images."""
        return (self.to_unit() * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()

    def class_rows(self) -> list[list[int]]:
        """Indices of the images of each class, in order (rows of the grid)."""
        hard = self.hard_labels().cpu()
        return [torch.nonzero(hard == c).flatten().tolist() for c in range(self.num_classes)]

    # ------------------------------------------------------------------ files
    def to_bytes(self) -> bytes:
        tensors = {"images": self.images.detach().cpu().float().contiguous(),
                   "labels": self.labels.detach().cpu().contiguous()}
        meta = {"format": "ddstudio.syntheticset", "version": FORMAT_VERSION, "lr": self.lr,
                "meta": self.meta.to_dict(), "shapes": {k: list(v.shape) for k, v in tensors.items()}}
        meta["sha256"] = _content_digest(tensors, meta)
        return st_save(tensors, metadata={"ddstudio": json.dumps(meta)})

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, self.to_bytes())  # a crash or a full disk never leaves half a file under the real name
        return path

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "set file") -> "SyntheticSet":
        if len(data) > MAX_SET_FILE_BYTES:
            raise SyntheticSetFileError(f"{name} is {len(data) >> 20} MiB; the limit is {MAX_SET_FILE_BYTES >> 20} MiB")
        try:
            tensors = st_load(data)
            header = _read_header(data)
        except (SafetensorError, ValueError, OSError, json.JSONDecodeError) as e:
            raise SyntheticSetFileError(
                f"{name} is not a readable DD Studio set file (truncated or corrupt): {e}") from e
        if header.get("format") != "ddstudio.syntheticset":
            raise SyntheticSetFileError(f"{name} is a safetensors file but not a DD Studio synthetic set")
        if set(tensors) != {"images", "labels"}:
            raise SyntheticSetFileError(f"{name} holds tensors {sorted(tensors)}; expected images and labels")
        for key, shape in header.get("shapes", {}).items():
            if key not in tensors or list(tensors[key].shape) != shape:
                raise SyntheticSetFileError(
                    f"{name}: {key} has shape {list(tensors[key].shape) if key in tensors else 'none'}, metadata "
                    f"says {shape}")
        version = header.get("version")
        digest = _tensor_digest(tensors) if version == 1 else _content_digest(tensors, header)
        if digest != header.get("sha256"):
            raise SyntheticSetFileError(f"{name}: the contents do not match the file's checksum (the file was altered)")
        try:
            meta = SetMeta.from_dict(header["meta"])
            _check_contents(tensors["images"], tensors["labels"], meta, header.get("lr"))
            return cls(tensors["images"], tensors["labels"], meta, header.get("lr"))
        except (TypeError, ValueError, KeyError, RuntimeError) as e:
            raise SyntheticSetFileError(f"{name} has inconsistent contents: {e}") from e

    @classmethod
    def load(cls, path: str | Path) -> "SyntheticSet":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No set file at {path}")
        if path.stat().st_size > MAX_SET_FILE_BYTES:
            raise SyntheticSetFileError(f"{path} is too large for a synthetic set")
        return cls.from_bytes(path.read_bytes(), str(path))

    # ------------------------------------------------------------------ export
    def grid_image(self, scale: int = 1, pad: int = 2, max_per_class: int | None = None) -> Image.Image:
        class_rows = self.class_rows()
        cols = min(max((len(r) for r in class_rows), default=1), max_per_class or 1 << 30)
        rows = len(class_rows)
        _, _, h, w = self.images.shape
        pixels = (rows * (h + pad) + pad) * (cols * (w + pad) + pad) * scale * scale
        if pixels > MAX_GRID_PIXELS:
            raise ValueError(f"a grid of {rows} classes × {cols} images at scale {scale} would have {pixels:,} pixels; "
                             f"the limit is {MAX_GRID_PIXELS:,} (try scale 1)")
        return Image.fromarray(make_grid(self.to_uint8(), self.class_rows(), pad=pad, scale=scale,
                                         max_per_row=max_per_class))

    def to_png_grid(self, scale: int = 1, pad: int = 2) -> bytes:
        buf = io.BytesIO()
        self.grid_image(scale=scale, pad=pad).save(buf, format="PNG")
        return buf.getvalue()

    def to_torch_zip(self) -> bytes:
        """The tensors the field's code loads (MTT's and DD-Ranking's `images.pt`, `labels.pt`, `lr.pt`), unclipped
        and unquantised: the images as stored (normalised with meta.mean/std, in ZCA space when the run used it;
        a PNG export clips and rounds, and 2.7% of a DM set's values lie outside [0, 1]), plus meta.json saying so.
        Each .pt holds one plain tensor, readable with torch.load(..., weights_only=True)."""
        tensors = {"images.pt": self.images.detach().cpu().float().contiguous(),
                   "labels.pt": self.labels.detach().cpu().contiguous()}
        if self.lr is not None:
            tensors["lr.pt"] = torch.tensor(float(self.lr))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, tensor in tensors.items():
                blob = io.BytesIO()
                torch.save(tensor, blob)
                zf.writestr(name, blob.getvalue())
            zf.writestr("meta.json", json.dumps({**self.meta.to_dict(), "images": "normalised (x - mean) / std per "
                                                 "channel" + (", then ZCA-whitened" if self.meta.config.get("zca")
                                                              else "") + "; not clipped",
                                                 "lr": self.lr}, indent=2, default=str))
        return buf.getvalue()

    def to_png_zip(self) -> bytes:
        """A zip of per-image PNGs named <class index>_<class name>/<n>.png, plus labels.json."""
        arrays = self.to_uint8()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for c, rows in enumerate(self.class_rows()):
                folder = f"{c:03d}_{_safe_name(self.meta.class_names[c])}"
                for n, i in enumerate(rows):
                    zf.writestr(f"{folder}/{n:04d}.png", _png_bytes(arrays[i]))
            zf.writestr("meta.json", json.dumps(self.meta.to_dict(), indent=2))
        return buf.getvalue()


def make_grid(images: np.ndarray, rows: list[list[int]], pad: int = 2, scale: int = 1,
              max_per_row: int | None = None, background: int = 255) -> np.ndarray:
    """Lay N×H×W×C uint8 images out as a grid, one row per list of indices."""
    n, h, w, c = images.shape
    cols = max((len(r) for r in rows), default=1) or 1
    if max_per_row:
        cols = min(cols, max_per_row)
    grid = np.full((len(rows) * (h + pad) + pad, cols * (w + pad) + pad, c), background, dtype=np.uint8)
    for r, idx in enumerate(rows):
        for k, i in enumerate(idx[:cols]):
            y, x = pad + r * (h + pad), pad + k * (w + pad)
            grid[y:y + h, x:x + w] = images[i]
    if scale > 1:
        grid = grid.repeat(scale, 0).repeat(scale, 1)
    return grid[..., 0] if c == 1 else grid


def _png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buf, format="PNG")
    return buf.getvalue()


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:40]


def _tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].contiguous()
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        h.update(str(list(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _content_digest(tensors: dict[str, torch.Tensor], header: dict) -> str:
    """The tensors' digest extended by everything else the file says about them (format 2)."""
    described = {k: header.get(k) for k in ("format", "version", "lr", "meta", "shapes")}
    h = hashlib.sha256(_tensor_digest(tensors).encode())
    h.update(json.dumps(described, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _check_contents(images: torch.Tensor, labels: torch.Tensor, meta: SetMeta, lr: Any) -> None:
    """What a set file must satisfy beyond its checksum, so a crafted one fails here and not by exhausting memory
    (a grid row per class name) or by training to chance (NaN soft labels)."""
    _check_meta_types(meta)
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"images have shape {list(images.shape)}; a set holds N ≥ 1 images of C×H×W")
    if not images.is_floating_point():
        raise ValueError(f"images are {images.dtype}; a set stores float pixels")
    if labels.ndim == 0 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"{images.shape[0]} images but labels of shape {list(labels.shape)}")
    if images.shape[1] not in (1, 3) or max(images.shape[2:]) > MAX_SIDE:
        raise ValueError(f"images of {images.shape[1]} channels and {images.shape[2]}×{images.shape[3]} pixels; "
                         f"1 or 3 channels and sides up to {MAX_SIDE} are supported")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or infinite values")
    n_classes = len(meta.class_names)
    if not 1 <= n_classes <= MAX_CLASSES or any(len(str(c)) > MAX_CLASS_NAME for c in meta.class_names):
        raise ValueError(f"{n_classes} class names; 1 to {MAX_CLASSES} names of up to {MAX_CLASS_NAME} characters")
    if len(meta.mean) != images.shape[1] or len(meta.std) != images.shape[1] or min(meta.std) <= 0:
        raise ValueError("the normalisation (mean, std) does not match the images' channels")
    if not 1 <= int(meta.ipc) <= images.shape[0] or int(meta.iteration) < 0:
        raise ValueError(f"IPC {meta.ipc} and iteration {meta.iteration} do not fit {images.shape[0]} images")
    if labels.ndim == 1:
        if labels.dtype != torch.int64 or labels.min() < 0 or labels.max() >= n_classes:
            raise ValueError("labels are not class ids of this dataset")
    elif labels.ndim == 2:
        if not labels.is_floating_point() or labels.shape[1] != n_classes:
            raise ValueError(f"soft labels must be N×{n_classes} floats")
        if not torch.isfinite(labels).all():
            raise ValueError("soft labels contain NaN or infinite values")
    else:
        raise ValueError("labels must be class ids (N) or soft labels (N×K)")
    if lr is not None and not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"the learned learning rate {lr!r} is not a positive number")


_META_TYPES: dict[str, tuple[type, ...]] = {
    "dataset": (str,), "method": (str,), "ipc": (int,), "class_names": (list,), "mean": (list,), "std": (list,),
    "config": (dict,), "seed": (int, type(None)), "iteration": (int,), "elapsed_s": (int, float), "device": (str,),
    "architecture": (str,), "created": (int, float), "notes": (str,)}


def _check_meta_types(meta: SetMeta) -> None:
    """Each metadata field of the type the code reading it expects (JSON could hold anything there: a class
    name that is a number once stopped `show`, a string seed the Gallery)."""
    for name, types in _META_TYPES.items():
        value = getattr(meta, name)
        if not isinstance(value, types) or isinstance(value, bool):
            raise ValueError(f"metadata '{name}' is {type(value).__name__}, not {' or '.join(t.__name__ for t in types)}")
    if not all(isinstance(c, str) for c in meta.class_names):
        raise ValueError("class names must be text")
    numbers = meta.mean + meta.std
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers):
        raise ValueError("the normalisation (mean, std) must be finite numbers")


def _read_header(data: bytes) -> dict:
    if len(data) < 8:
        raise ValueError("file too short")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        raise ValueError("header length exceeds the file")
    header = json.loads(data[8:8 + n])
    meta = header.get("__metadata__", {}).get("ddstudio") if isinstance(header, dict) else None
    if not isinstance(meta, str):
        raise ValueError("no DD Studio metadata in the file")
    inner = json.loads(meta)
    if not isinstance(inner, dict) or not isinstance(inner.get("shapes", {}), dict) or \
            not isinstance(inner.get("meta", {}), dict):
        raise ValueError("the DD Studio metadata is not a record of the expected shape")
    return inner
