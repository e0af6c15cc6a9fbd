"""SyntheticSet: round trip without pickle, tampered and truncated files, PNG exports."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ddcore.data import get_dataset_info
from ddcore.synthetic import SetMeta, SyntheticSet, SyntheticSetFileError


def make_set(dataset: str = "cifar10", ipc: int = 2, soft: bool = False, lr: float | None = None) -> SyntheticSet:
    info = get_dataset_info(dataset)
    g = torch.Generator().manual_seed(0)
    images = torch.randn(info.num_classes * ipc, *info.shape, generator=g)
    labels = torch.arange(info.num_classes).repeat_interleave(ipc)
    if soft:
        labels = torch.softmax(torch.randn(len(labels), info.num_classes, generator=g), 1)
    meta = SetMeta.for_dataset(info, "dm", ipc, config={"lr_img": 1.0}, seed=3, iteration=7)
    return SyntheticSet(images, labels, meta, lr)


@pytest.mark.parametrize("soft,lr", [(False, None), (True, 0.0123)])
def test_round_trip_keeps_everything(tmp_path: Path, soft: bool, lr: float | None) -> None:
    s = make_set(soft=soft, lr=lr)
    loaded = SyntheticSet.load(s.save(tmp_path / "a.ddset"))
    assert torch.equal(loaded.images, s.images) and torch.equal(loaded.labels, s.labels)
    assert loaded.lr == lr and loaded.meta == s.meta and loaded.soft_labels == soft
    assert not any(tmp_path.glob("*.tmp"))


def test_truncated_file_fails_clearly(tmp_path: Path) -> None:
    data = make_set().to_bytes()
    for cut in (4, 100, len(data) - 10):
        with pytest.raises(SyntheticSetFileError, match="truncated|not a readable"):
            SyntheticSet.from_bytes(data[:cut])


def test_tampered_pixels_fail_the_checksum() -> None:
    data = bytearray(make_set().to_bytes())
    data[-50] ^= 0xFF  # flip bits inside the image tensor
    with pytest.raises(SyntheticSetFileError, match="checksum"):
        SyntheticSet.from_bytes(bytes(data))


def test_wrong_shape_in_metadata_fails() -> None:
    from safetensors.torch import save

    s = make_set()
    header = {"format": "ddstudio.syntheticset", "version": 1, "lr": None, "meta": s.meta.__dict__,
              "shapes": {"images": [99, 3, 32, 32], "labels": [20]}, "sha256": "x"}
    blob = save({"images": s.images, "labels": s.labels}, metadata={"ddstudio": json.dumps(header)})
    with pytest.raises(SyntheticSetFileError, match="shape"):
        SyntheticSet.from_bytes(blob)


def test_other_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SyntheticSetFileError):
        SyntheticSet.from_bytes(b"\x80\x04\x95" + b"pickle-ish bytes" * 10)
    with pytest.raises(FileNotFoundError):
        SyntheticSet.load(tmp_path / "missing.ddset")


def test_constructor_validates_shapes() -> None:
    info = get_dataset_info("mnist")
    meta = SetMeta.for_dataset(info, "random", 1)
    with pytest.raises(ValueError, match="channels"):
        SyntheticSet(torch.zeros(10, 3, 28, 28), torch.arange(10), meta)
    with pytest.raises(ValueError, match="labels"):
        SyntheticSet(torch.zeros(10, 1, 28, 28), torch.arange(9), meta)


def test_png_grid_has_one_row_per_class_and_denormalises() -> None:
    info = get_dataset_info("mnist")
    ipc = 3
    # images whose de-normalised value is exactly class/10 → the grid row c is uniformly c*25.5
    unit = torch.arange(10).repeat_interleave(ipc).float().div(10).view(-1, 1, 1, 1).expand(-1, 1, 28, 28)
    images = (unit - info.mean[0]) / info.std[0]
    s = SyntheticSet(images, torch.arange(10).repeat_interleave(ipc), SetMeta.for_dataset(info, "random", ipc))
    grid = np.asarray(Image.open(io.BytesIO(s.to_png_grid(pad=2))))
    assert grid.shape == (10 * 30 + 2, ipc * 30 + 2)
    for c in range(10):
        assert abs(int(grid[2 + c * 30 + 14, 2 + 14]) - round(c * 25.5)) <= 1


def test_png_zip_holds_one_png_per_image_named_by_class() -> None:
    s = make_set(ipc=2)
    with zipfile.ZipFile(io.BytesIO(s.to_png_zip())) as zf:
        pngs = [n for n in zf.namelist() if n.endswith(".png")]
        assert len(pngs) == 20 and "000_airplane/0000.png" in pngs and "009_truck/0001.png" in pngs
        img = Image.open(io.BytesIO(zf.read("003_cat/0001.png")))
        assert img.size == (32, 32) and img.mode == "RGB"
        expected = s.to_uint8()[s.class_rows()[3][1]]
        assert np.array_equal(np.asarray(img), expected)
