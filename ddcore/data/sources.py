"""Where each dataset may be found, as layouts probed in a root folder.

A layout's probe returns a loader when its files are present (nothing is read yet),
or None; `expected` names the files for the not-found message.
"""
from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import checksums
from .errors import DatasetCorruptError
from .formats import read_cifar_binary, read_cifar_python, read_idx, read_svhn_mat
from .imagefolder import read_image_tree

Arrays = dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (uint8 images N×C×H×W, int64 labels)
Loader = Callable[[], Arrays]


@dataclass(frozen=True)
class Layout:
    name: str
    expected: str  # human description of the files, relative to a root
    probe: Callable[[Path], Loader | None]


IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_layout(folder: str, md5s: dict[str, str]) -> Layout:
    """torchvision's MNIST-style layout: <root>/<folder>/raw/*-ubyte[.gz] (the bare root works too)."""

    def probe(root: Path) -> Loader | None:
        for d in (root / folder / "raw", root / folder, root):
            files = {}
            for stem in IDX_STEMS:
                for candidate in (d / f"{stem}.gz", d / stem):
                    if candidate.is_file():
                        files[stem] = candidate
                        break
            if len(files) == len(IDX_STEMS):
                return lambda files=files: _load_idx(files, md5s)
        return None

    return Layout(f"{folder} IDX files", f"{folder}/raw/{{{', '.join(s + '.gz' for s in IDX_STEMS)}}}", probe)


def _load_idx(files: dict[str, Path], md5s: dict[str, str]) -> Arrays:
    for path in files.values():
        checksums.verify_md5(path, md5s.get(path.name))
    out: Arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(files[f"{prefix}-images-idx3-ubyte"])
        labels = read_idx(files[f"{prefix}-labels-idx1-ubyte"]).astype(np.int64)
        if images.shape[0] != labels.shape[0]:
            raise DatasetCorruptError(f"{prefix}: {images.shape[0]} images but {labels.shape[0]} labels")
        out[split] = (images[:, None], labels)
    return out


def cifar10_layouts() -> list[Layout]:
    def bin_probe(root: Path) -> Loader | None:
        d = root / "cifar-10-batches-bin"
        files = [d / f"data_batch_{i}.bin" for i in range(1, 6)] + [d / "test_batch.bin"]
        if not all(f.is_file() for f in files):
            return None

        def load() -> Arrays:
            parts = [read_cifar_binary(f, 1, 0) for f in files[:5]]
            return {"train": (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])),
                    "test": read_cifar_binary(files[5], 1, 0)}
        return load

    def py_probe(root: Path) -> Loader | None:
        d = root / "cifar-10-batches-py"
        names = list(checksums.CIFAR10_PY_MD5)
        if not all((d / n).is_file() for n in names):
            return None

        def load() -> Arrays:
            for n in names:
                checksums.verify_md5(d / n, checksums.CIFAR10_PY_MD5[n])
            parts = [read_cifar_python(d / n, b"labels") for n in names[:5]]
            return {"train": (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])),
                    "test": read_cifar_python(d / "test_batch", b"labels")}
        return load

    return [
        Layout("CIFAR-10 binary batches", "cifar-10-batches-bin/{data_batch_1..5.bin, test_batch.bin}", bin_probe),
        Layout("CIFAR-10 python batches (torchvision)", "cifar-10-batches-py/{data_batch_1..5, test_batch}", py_probe),
        jpeg_zip_layout("cifar10-jpg.zip", "cifar10"),
    ]


def jpeg_zip_layout(filename: str, dataset: str) -> Layout:
    """An image tree zip such as cifar10-jpg.zip: train/<class>/NNNN.jpg and test/<class>/NNNN.jpg."""
    from .info import BUILTIN_INFOS

    info = BUILTIN_INFOS[dataset]

    def probe(root: Path) -> Loader | None:
        path = root / filename
        if not path.is_file():
            return None

        def load() -> Arrays:
            tree = read_image_tree(path, info.image_size, info.channels, class_names=list(info.class_names))
            if "test" not in tree.splits:
                raise DatasetCorruptError(f"{path} has no test/<class>/ images")
            return tree.splits
        return load

    return Layout(f"{filename} (JPEG tree)", f"{filename} with train/<class>/*.jpg and test/<class>/*.jpg", probe)


def cifar100_layouts() -> list[Layout]:
    def bin_probe(root: Path) -> Loader | None:
        d = root / "cifar-100-binary"
        if not ((d / "train.bin").is_file() and (d / "test.bin").is_file()):
            return None
        return lambda: {"train": read_cifar_binary(d / "train.bin", 2, 1),
                        "test": read_cifar_binary(d / "test.bin", 2, 1)}

    def py_probe(root: Path) -> Loader | None:
        d = root / "cifar-100-python"
        if not ((d / "train").is_file() and (d / "test").is_file()):
            return None

        def load() -> Arrays:
            for n, md5 in checksums.CIFAR100_PY_MD5.items():
                checksums.verify_md5(d / n, md5)
            return {"train": read_cifar_python(d / "train", b"fine_labels"),
                    "test": read_cifar_python(d / "test", b"fine_labels")}
        return load

    return [Layout("CIFAR-100 binary", "cifar-100-binary/{train.bin, test.bin}", bin_probe),
            Layout("CIFAR-100 python (torchvision)", "cifar-100-python/{train, test}", py_probe)]


def svhn_layouts() -> list[Layout]:
    def probe(root: Path) -> Loader | None:
        for d in (root / "svhn", root / "SVHN", root):
            if (d / "train_32x32.mat").is_file() and (d / "test_32x32.mat").is_file():
                def load(d: Path = d) -> Arrays:
                    out = {}
                    for split in ("train", "test"):
                        f = d / f"{split}_32x32.mat"
                        checksums.verify_md5(f, checksums.SVHN_MD5[f.name])
                        out[split] = read_svhn_mat(f)
                    return out
                return load
        return None

    return [Layout("SVHN .mat files", "svhn/{train_32x32.mat, test_32x32.mat} (torchvision layout: the root itself)",
                   probe)]


# ---------------------------------------------------------------- torchvision download
DOWNLOAD_HOSTS = {"mnist": "ossci-datasets.s3.amazonaws.com",
                  "fashionmnist": "fashion-mnist.s3-website.eu-central-1.amazonaws.com",
                  "cifar10": "www.cs.toronto.edu", "cifar100": "www.cs.toronto.edu", "svhn": "ufldl.stanford.edu"}


def network_reachable(host: str, timeout: float = 3.0) -> bool:
    """True when a TCP connection to host:443 opens within the timeout (DNS included)."""
    result: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return bool(result and result[0])


def torchvision_download(dataset: str, target: Path) -> None:
    """Fetch with torchvision into `target` (a writable cache folder, never a user's data root)."""
    import torchvision.datasets as tvd

    target.mkdir(parents=True, exist_ok=True)
    if dataset == "mnist":
        for train in (True, False):
            tvd.MNIST(str(target), train=train, download=True)
    elif dataset == "fashionmnist":
        for train in (True, False):
            tvd.FashionMNIST(str(target), train=train, download=True)
    elif dataset == "cifar10":
        tvd.CIFAR10(str(target), download=True)
    elif dataset == "cifar100":
        tvd.CIFAR100(str(target), download=True)
    elif dataset == "svhn":
        for split in ("train", "test"):
            tvd.SVHN(str(target / "svhn"), split=split, download=True)
    else:
        raise ValueError(f"no torchvision download for {dataset}")


LAYOUTS: dict[str, list[Layout]] = {
    "mnist": [idx_layout("MNIST", checksums.MNIST_MD5)],
    "fashionmnist": [idx_layout("FashionMNIST", checksums.FASHIONMNIST_MD5)],
    "cifar10": cifar10_layouts(),
    "cifar100": cifar100_layouts(),
    "svhn": svhn_layouts(),
}

# The embedded default under assets/: full MNIST, and a class-balanced CIFAR-10 JPEG subset.
EMBEDDED: dict[str, Layout] = {
    "mnist": idx_layout("MNIST", checksums.MNIST_MD5),
    "cifar10": jpeg_zip_layout("cifar10-subset.zip", "cifar10"),
}
