"""Build the embedded default data in assets/ from ../shared/datasets (run once; the result is committed).

- assets/MNIST/raw/*.gz: the four official MNIST files, copied byte for byte (checksums verified).
- assets/cifar10-subset.zip: the first 500 train and 100 test images per class of cifar10-jpg.zip,
  JPEG bytes kept as they are (no re-encoding), same train/<class>/NNNN.jpg layout.
"""
from __future__ import annotations

import argparse
import shutil
import zipfile
from pathlib import Path

from ddcore.data import checksums
from ddcore.data.sources import IDX_STEMS
from ddcore.paths import ASSETS_DIR, REPO_DIR


def build(shared: Path, out: Path, train_per_class: int, test_per_class: int) -> None:
    raw = out / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for stem in IDX_STEMS:
        src = shared / "MNIST" / "raw" / f"{stem}.gz"
        checksums.verify_md5(src, checksums.MNIST_MD5[src.name])
        shutil.copyfile(src, raw / src.name)
    src_zip = shared / "cifar10-jpg.zip"
    limits = {"train": train_per_class, "test": test_per_class}
    with zipfile.ZipFile(src_zip) as zin, zipfile.ZipFile(out / "cifar10-subset.zip", "w", zipfile.ZIP_STORED) as zout:
        for info in sorted(zin.infolist(), key=lambda i: i.filename):
            parts = Path(info.filename).parts
            if info.is_dir() or len(parts) != 3 or parts[0] not in limits:
                continue
            if int(Path(parts[2]).stem) < limits[parts[0]]:
                zinfo = zipfile.ZipInfo(info.filename, date_time=(2020, 1, 1, 0, 0, 0))
                zout.writestr(zinfo, zin.read(info))
        zout.comment = f"CIFAR-10 subset ({train_per_class}/{test_per_class} per class) of {src_zip.name}".encode()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=REPO_DIR.parent / "shared" / "datasets")
    parser.add_argument("--out", type=Path, default=ASSETS_DIR)
    parser.add_argument("--train-per-class", type=int, default=500)
    parser.add_argument("--test-per-class", type=int, default=100)
    args = parser.parse_args()
    build(args.shared, args.out, args.train_per_class, args.test_per_class)
