"""Uploads from the browser: a dataset zip and a set file. Every hostile or broken file in the catalogue is
refused with its reason and leaves nothing behind; good ones become a dataset name (distillable like MNIST)
or a finished run."""
from __future__ import annotations

import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ddcore.data import get_dataset_info, list_datasets, load_dataset, uploads
from ddcore.platform.bridge import Studio, SyntheticSetFileError
from ddcore.synthetic import SetMeta, SyntheticSet
from tests.apptest_kit import ok, page


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("DDCORE_HOME", str(tmp_path / "home"))
    yield tmp_path / "home"
    monkeypatch.undo()
    uploads.register_all()  # back to the session's store: its uploads only


def _image(value: int, mode: str = "RGB", size=(12, 10)) -> bytes:
    buf = io.BytesIO()
    if mode == "I;16":
        Image.fromarray(np.full(size[::-1], min(value, 255) * 256, dtype=np.uint16)).save(buf, format="PNG")
    elif mode == "P":
        Image.new("RGB", size, (value, 0, 0)).convert("P").save(buf, format="PNG")
    else:
        Image.new(mode, size, value if mode in ("L",) else (value,) * len(mode)).save(buf, format="PNG")
    return buf.getvalue()


def _zip(entries: dict[str, bytes], *, link: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def _good(classes=("cats", "dogs"), per_class: int = 4) -> bytes:
    return _zip({f"pets/train/{c}/{k}.png": _image(40 * i + k) for i, c in enumerate(classes) for k in range(per_class)})


def _leftovers(home: Path) -> list[str]:
    folder = home / "uploads"
    return [p.name for p in folder.iterdir()] if folder.is_dir() else []


@pytest.mark.parametrize("data,why", [
    (b"", "empty"),
    (b"just text, not a zip", "not a zip"),
    (_zip({"../../train/a/1.png": _image(1), "train/b/1.png": _image(2)}), "unsafe path"),
    (_zip({"/abs/train/a/1.png": _image(1), "train/b/1.png": _image(2)}), "unsafe path"),
    (_zip({"train/a/1.png": _image(1), "train/a/2.png": _image(2)}, link="train/b/1.png"), "symbolic link"),
    (_zip({"train/a/1.png": _image(1), "train/b/1.png": b"\0" * 3_000_000}), "zip bomb"),
    (_zip({"train/a/1.png": _image(1), "train/a/2.png": _image(1), "train/b/1.png": b"not an image",
           "train/b/2.png": _image(2)}), "not a readable image"),
    (_zip({"train/a/1.png": _image(1), "train/a/2.png": _image(1), "train/b/1.png": _image(2)[:40],
           "train/b/2.png": _image(2)}), "not a readable image|cannot decode"),
    (_zip({"train/a/1.png": _image(1), "train/a/2.png": _image(1),
           "train/b/big.png": _image(0, "L", (16000, 14000))}), "million pixels|too many pixels"),
    (_zip({"train/a/1.png": _image(1), "train/a/2.png": _image(0, "L", (11000, 11000)),
           "train/b/1.png": _image(0, "L", (11000, 11000))}), "200 million pixels in all"),
    (_zip({"train/only/1.png": _image(1), "train/only/2.png": _image(2)}), "only the class folder 'only'"),
    (_zip({"train/a/1.png": _image(1), "train/a/2.png": _image(1), "train/b/1.png": _image(2)}), "fewer than 2"),
    (_zip({f"train/c{i}/{k}.png": _image(i % 250) for i in range(101) for k in range(2)}), "101 class folder"),
    (_zip({"train/a\u202eb/1.png": _image(1), "train/a\u202eb/2.png": _image(1), "train/b/1.png": _image(2),
           "train/b/2.png": _image(2)}), "bidirectional"),
    (_zip({"a1.png": _image(1), "b1.png": _image(2)}), "^the zip holds no images under train/<class>/"),
])
def test_bad_dataset_zips_are_refused_with_the_reason(home: Path, data: bytes, why: str) -> None:
    with pytest.raises(uploads.UploadError, match=why) as refused:
        uploads.import_zip(data, "mine.zip")
    # the reason speaks of the user's file: no server paths, no Python object reprs
    assert str(home) not in str(refused.value) and "staging" not in str(refused.value)
    assert " object at 0x" not in str(refused.value)
    assert _leftovers(home) == [] and not any(n.startswith(uploads.PREFIX) for n in list_datasets())


def test_a_good_zip_becomes_a_dataset_in_mixed_modes(home: Path) -> None:
    entries = {f"train/{c}/{k}.png": _image(60 * i + 10 * k, mode) for i, (c, mode) in
               enumerate((("grey", "L"), ("rgb", "RGB"), ("rgba", "RGBA"), ("palette", "P"), ("deep", "I;16")))
               for k in range(5)}
    entries["train/caf\u00e9/1.png"] = entries["train/caf\u00e9/2.png"] = _image(200)  # non-ASCII names
    record = uploads.import_zip(_zip(entries), "My Zoo.zip")
    assert record.display_name == "My Zoo" and record.name.startswith("upload-my-zoo-")
    assert len(record.class_names) == 6 and "café" in record.class_names and record.channels == 3
    assert record.name in list_datasets() and get_dataset_info(record.name).class_names == record.class_names
    assert uploads.archive_path(record.name).resolve().is_relative_to(home.resolve())  # kept inside the store
    assert all(ch.isalnum() or ch == "-" for ch in record.name)
    data = load_dataset(record.name)
    assert data.info.name == record.name and len(data.train) + len(data.test) == 27
    deep = record.class_names.index("deep")
    pixels = data.train.images[data.train.labels == deep]
    assert 0 < int(pixels.float().mean()) < 255  # 16-bit greys scaled to 8 bits, not clipped white
    assert uploads.import_zip(_zip(entries), "My Zoo.zip") == record  # the same file again: nothing new
    uploads.delete_upload(record.name)
    assert record.name not in list_datasets() and _leftovers(home) == []


def test_an_uploaded_dataset_distils_and_shows_in_the_pages(home: Path) -> None:
    record = uploads.import_zip(_good(("cats", "dogs", "birds"), 5), "pets.zip")
    studio = Studio(home)
    try:
        from ddcore.tasks.distill import DistillSpec

        job = studio.submit(DistillSpec(dataset=record.name, method="random", ipc=2, device="cpu",
                                        evaluate_after=False))
        assert studio.manager.wait(job.id, 60).status == "done"
        assert studio.run_set(job.run_id).meta.class_names == list(record.class_names)
    finally:
        studio.manager.shutdown(wait=10)
    at = ok(page("data.py").run())
    assert any("pets" in m.value for m in at.markdown)
    at = ok(page("gallery.py").run())
    at = ok(page("distill.py", dataset=record.name).run())
    assert at.session_state["distill_dataset"] == record.name
    # a few training images per class: the default IPC 10 is lowered to what the dataset allows, and Start is offered
    smallest = min(load_dataset(record.name).train.class_counts())
    assert smallest < 10 and at.number_input(key="distill_ipc").value == smallest
    assert any(f"Lowered to {smallest}" in c.value for c in at.caption)
    assert not at.button(key="distill_start").disabled


def _set_bytes() -> bytes:
    meta = SetMeta(dataset="mnist", method="dm", ipc=1, class_names=[str(c) for c in range(10)], mean=[0.1307],
                   std=[0.3081])
    return SyntheticSet(torch.randn(10, 1, 28, 28), torch.arange(10), meta).to_bytes()


def _set_with_seed(seed: int) -> bytes:
    meta = SetMeta(dataset="mnist", method="dm", ipc=1, class_names=[str(c) for c in range(10)], mean=[0.1307],
                   std=[0.3081], seed=seed)
    return SyntheticSet(torch.randn(10, 1, 28, 28), torch.arange(10), meta).to_bytes()


def _pickle_disguised() -> bytes:
    class Boom:
        def __reduce__(self):
            return (print, ("pickle code ran",))
    return pickle.dumps({"images": Boom()})


@pytest.mark.parametrize("data,why", [
    (b"", "empty"),
    (lambda: _set_bytes()[:300], "not a readable DD Studio set file"),
    (lambda: _set_bytes()[:-7] + b"\x00" * 7, "checksum"),
    (_pickle_disguised, "not a readable DD Studio set file"),
    (lambda: struct.pack("<Q", 2) + b"{}", "not a readable|not a DD Studio"),
    (lambda: _set_with_seed(2**64), "The set's seed must be a whole number from 0 to"),  # was an OverflowError
])
def test_bad_set_files_are_refused_and_nothing_is_stored(home: Path, data, why: str, capfd) -> None:
    studio = Studio(home)
    try:
        with pytest.raises((SyntheticSetFileError, ValueError), match=why):
            studio.import_set(data() if callable(data) else data, "x.safetensors")
        assert studio.runs() == []
        assert "pickle code ran" not in capfd.readouterr().out  # nothing in the file was executed
    finally:
        studio.manager.shutdown(wait=5)


def test_a_good_set_file_is_imported_as_a_finished_run(home: Path) -> None:
    studio = Studio(home)
    try:
        run = studio.import_set(_set_bytes(), "from-my-laptop.safetensors")
        assert run.status == "done" and run.name == "from-my-laptop (imported)" and run.method == "dm"
        assert studio.run_set(run.id).images.shape == (10, 1, 28, 28)
        foreign = SyntheticSet(torch.randn(10, 3, 32, 32), torch.arange(10),
                               SetMeta(dataset="mnist", method="dm", ipc=1, class_names=[str(c) for c in range(10)],
                                       mean=[0.1, 0.1, 0.1], std=[0.3, 0.3, 0.3])).to_bytes()
        with pytest.raises(ValueError, match="needs N×1×28×28"):
            studio.import_set(foreign, "wrong-shape.safetensors")
        assert len(studio.runs()) == 1
    finally:
        studio.manager.shutdown(wait=5)
