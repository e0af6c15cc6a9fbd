"""Sets leave as the tensors the field's code loads: images.pt / labels.pt / lr.pt, unclipped and unquantised,
read back with torch.load(weights_only=True) exactly; from the CLI and from the engine."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import torch

from ddcore.synthetic import SetMeta, SyntheticSet
from tests.test_cli import ddcore


def _set(lr: float | None = 0.0123) -> SyntheticSet:
    meta = SetMeta(dataset="mnist", method="mtt", ipc=1, class_names=[str(c) for c in range(10)], mean=[0.1307],
                   std=[0.3081], config={"zca": False})
    images = torch.randn(10, 1, 28, 28) * 4  # far outside the [0, 1] pixel range once unnormalised
    return SyntheticSet(images, torch.softmax(torch.randn(10, 10), 1), meta, lr=lr)


def _read(data: bytes) -> dict[str, object]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        out = {n: torch.load(io.BytesIO(zf.read(n)), weights_only=True) for n in zf.namelist() if n.endswith(".pt")}
        out["meta"] = json.loads(zf.read("meta.json"))
    return out


def test_tensors_round_trip_exactly_and_unclipped() -> None:
    s = _set()
    back = _read(s.to_torch_zip())
    assert torch.equal(back["images.pt"], s.images) and torch.equal(back["labels.pt"], s.labels)
    assert abs(float(back["lr.pt"]) - 0.0123) < 1e-8 and back["meta"]["dataset"] == "mnist"
    unit = back["images.pt"] * 0.3081 + 0.1307
    assert (unit < 0).any() and (unit > 1).any()  # nothing clipped
    assert "lr.pt" not in _read(_set(lr=None).to_torch_zip())


def test_cli_export_writes_the_zip_and_keeps_an_existing_one(tmp_path: Path) -> None:
    path = _set().save(tmp_path / "s.ddset")
    out = tmp_path / "t.zip"
    assert ddcore("export", str(path), "--out", str(out)).returncode == 0
    assert torch.equal(_read(out.read_bytes())["images.pt"], SyntheticSet.load(path).images)
    again = ddcore("export", str(path), "--out", str(out))
    assert again.returncode == 2 and "--overwrite" in again.stderr
    kept = path.read_bytes()
    over_itself = ddcore("export", str(path), "--out", str(path), "--overwrite")  # once replaced the set by the zip
    assert over_itself.returncode == 2 and "the set file itself" in over_itself.stderr and path.read_bytes() == kept
