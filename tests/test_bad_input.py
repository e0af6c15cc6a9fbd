"""Bad input the engine and the CLI meet: crafted and tampered set files, diverging runs, damaged or hostile
dataset folders and zips. Each gets a clear message, no traceback and no partial state (docs/reliability.md)."""
from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from ddcore.data import DatasetCorruptError, clear_cache, load_dataset
from ddcore.evaluate import evaluate
from ddcore.synthetic import SetMeta, SyntheticSet, SyntheticSetFileError, _tensor_digest
from tests.test_cli import ddcore, ddcore_here


def _set(n_classes: int = 10, ipc: int = 1, **meta) -> SyntheticSet:
    names = [str(c) for c in range(n_classes)]
    m = SetMeta(dataset="mnist", method="random", ipc=ipc, class_names=names, mean=[0.1307], std=[0.3081], **meta)
    labels = torch.arange(n_classes).repeat_interleave(ipc)
    return SyntheticSet(torch.randn(len(labels), 1, 28, 28), labels, m)


def _changed(s: SyntheticSet, **fields) -> SyntheticSet:
    """The set with fields replaced after its own checks ran, as a crafted file could hold them."""
    for name, value in fields.items():
        setattr(s, name, value)
    return s


def _rewrite_header(data: bytes, change) -> bytes:
    """The safetensors file with its JSON header edited by `change(ddstudio_dict)` (tensor bytes kept)."""
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    inner = json.loads(header["__metadata__"]["ddstudio"])
    change(inner)
    header["__metadata__"]["ddstudio"] = json.dumps(inner)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data[8 + n:]


def test_edited_metadata_fails_the_checksum() -> None:
    data = _set().to_bytes()
    assert len(SyntheticSet.from_bytes(data)) == 10
    for change in (lambda h: h["meta"].update(ipc=50), lambda h: h["meta"].update(dataset="cifar10"),
                   lambda h: h.update(lr=123.0), lambda h: h["meta"].update(iteration=10**9)):
        with pytest.raises(SyntheticSetFileError, match="checksum"):
            SyntheticSet.from_bytes(_rewrite_header(data, change))


def test_version_1_files_still_load() -> None:
    s = _set()
    tensors = {"images": s.images, "labels": s.labels}
    data = _rewrite_header(s.to_bytes(), lambda h: h.update(version=1, sha256=_tensor_digest(tensors)))
    assert torch.equal(SyntheticSet.from_bytes(data).images, s.images)


@pytest.mark.parametrize("build,why", [
    (lambda: _set(n_classes=1, ipc=1).__class__(torch.randn(1, 1, 28, 28), torch.tensor([0]),
                                                 SetMeta("mnist", "x", 1, [str(i) for i in range(5000)], [0.1], [0.3])),
     "5000 class names"),
    (lambda: SyntheticSet(torch.randn(2, 1, 28, 28), torch.full((2, 10), float("nan")), _set().meta), "soft labels"),
    (lambda: SyntheticSet(torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.int64), _set().meta), "N ≥ 1"),
    (lambda: SyntheticSet(torch.randn(10, 1, 28, 28), torch.arange(10), _set().meta, lr=float("nan")), "learning rate"),
    (lambda: SyntheticSet(torch.randn(2, 1, 28, 28), torch.tensor([0, 1]), SetMeta("mnist", "x", 1, [0, 1], [0.1], [0.3])),
     "must be text"),
    (lambda: _set(seed="zero"), "metadata 'seed'"),
    (lambda: _set(config=["a"]), "metadata 'config'"),
    (lambda: _set(elapsed_s="long"), "metadata 'elapsed_s'"),
    (lambda: _changed(_set(), labels=torch.zeros(0, dtype=torch.int64)), "labels of shape"),
])
def test_crafted_sets_are_refused_with_the_reason(build, why: str, tmp_path: Path) -> None:
    path = build().save(tmp_path / "crafted.ddset")  # saving checks nothing: a crafted file can say anything
    with pytest.raises(SyntheticSetFileError, match=why):
        SyntheticSet.load(path)
    out = ddcore_here("show", str(path))
    assert out.returncode == 2 and why.split()[-1] in out.stderr and "Traceback" not in out.stderr
    assert not path.with_suffix(".png").exists()


def test_show_keeps_an_existing_png_and_says_why(tmp_path: Path) -> None:
    path = _set().save(tmp_path / "s.ddset")
    png = path.with_suffix(".png")
    png.write_bytes(b"my own picture")
    targets = (tmp_path / "missing-folder" / "g.png", tmp_path)  # no such folder; a folder, not a file
    out, *bad_targets = (ddcore_here("show", str(path), *extra) for extra in ([], *(["--png", str(t)] for t in targets)))
    assert out.returncode == 2 and "--overwrite" in out.stderr and png.read_bytes() == b"my own picture"
    for out in bad_targets:
        assert out.returncode == 2 and out.stderr.startswith("error:") and "Traceback" not in out.stderr
    out = ddcore("show", str(path), "--overwrite", "--scale", "1")
    assert out.returncode == 0, out.stderr
    assert Image.open(png).size == (32, 10 * 30 + 2)


def test_a_diverging_cli_run_saves_its_last_good_set(tmp_path: Path) -> None:
    out_file = tmp_path / "dm.ddset"
    out = ddcore("distill", "--dataset", "mnist", "--method", "dm", "--ipc", "1", "--iterations", "3",
                 "--set", "lr_img=1e6", "--no-store", "--quiet", "--out", str(out_file))
    assert out.returncode == 2, out.stderr
    assert "last good set (iteration 0) is saved" in out.stderr and "Traceback" not in out.stderr
    kept = SyntheticSet.load(out_file)
    assert kept.meta.iteration == 0 and float(kept.images.abs().max()) < 10


def test_evaluation_refuses_exploded_pixels_and_nan_soft_labels() -> None:
    s = _set()
    with pytest.raises(ValueError, match="pixels reach 1e\\+10"):
        evaluate((s.images * 0 + 1e10, s.labels), dataset="mnist", preset="quick", epochs=1, test_limit=100)
    soft = torch.full((10, 10), float("nan"))
    with pytest.raises(ValueError, match="soft labels contain NaN"):
        evaluate((s.images, soft), dataset="mnist", preset="quick", epochs=1, test_limit=100)


def _png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (8, 8), value).save(buf, format="PNG")
    return buf.getvalue()


def _tree(root: Path, value: int = 0) -> None:
    for cls in ("a", "b"):
        (root / "train" / cls).mkdir(parents=True, exist_ok=True)
        for k in range(5):
            (root / "train" / cls / f"{k}.png").write_bytes(_png(value))


def test_folder_cache_follows_edits_inside_class_folders(tmp_path: Path) -> None:
    _tree(tmp_path, 0)
    first = load_dataset("folder", root=tmp_path, image_size=8, channels=1)
    assert int(first.train.images.max()) == 0
    clear_cache()  # the process cache; the disk cache must notice the change by itself
    stamp = os.stat(tmp_path / "train" / "a").st_mtime_ns
    (tmp_path / "train" / "a" / "0.png").write_bytes(_png(255))  # same names, new contents
    os.utime(tmp_path / "train" / "a", ns=(stamp, stamp))
    again = load_dataset("folder", root=tmp_path, image_size=8, channels=1)
    assert float(torch.as_tensor(again.train.images).float().max()) > 0


def test_folder_symlinks_leading_outside_are_not_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "data", tmp_path / "private"
    _tree(root)
    outside.mkdir()
    (outside / "secret.png").write_bytes(_png(200))
    (root / "train" / "a" / "link.png").symlink_to(outside / "secret.png")
    (root / "train" / "c").symlink_to(outside, target_is_directory=True)
    data = load_dataset("folder", root=root, image_size=8, channels=1)
    assert data.info.class_names == ("a", "b")
    assert len(data.train) + len(data.test) == 10 and float(torch.as_tensor(data.train.images).float().max()) == 0


def test_zip_with_a_bad_crc_or_a_symlink_entry_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad-crc.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for k in range(4):
            zf.writestr(f"train/a/{k}.png", _png(k))
            zf.writestr(f"train/b/{k}.png", _png(k + 10))
    raw = bytearray(path.read_bytes())
    at = raw.find(b"IDAT") + 6  # a byte inside the first stored PNG: its CRC no longer matches
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetCorruptError, match="damaged in the zip|Bad CRC|cannot decode"):
        load_dataset("folder", root=path, image_size=8, channels=1)
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        zf.writestr("train/a/0.png", _png(0))
        info = zipfile.ZipInfo("train/b/0.png")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DatasetCorruptError, match="symbolic link"):
        load_dataset("folder", root=link, image_size=8, channels=1)


def test_a_zip_is_decoded_member_by_member_not_expanded_whole(tmp_path: Path) -> None:
    """Peak Python memory while loading stays far below the archive's expanded size (it once held every member
    at once: a 9 MB zip just under the bomb guard took the CLI to 2.5 GB)."""
    import tracemalloc

    import numpy as np

    rng = np.random.default_rng(0)
    path = tmp_path / "noise.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for k in range(160):  # incompressible 128×128 RGB noise: ~48 kB each, ~7.7 MB in all
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(buf, format="PNG")
            zf.writestr(f"train/{'ab'[k % 2]}/{k}.png", buf.getvalue())
    expanded = sum(i.file_size for i in zipfile.ZipFile(path).infolist())
    tracemalloc.start()
    try:
        data = load_dataset("folder", root=path, image_size=16, channels=3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(data.train) + len(data.test) == 160
    assert peak < expanded / 2, f"peak {peak / 1e6:.1f} MB for {expanded / 1e6:.1f} MB of members"


def test_a_zip_made_on_a_mac_loads_without_its_resource_forks(tmp_path: Path) -> None:
    """macOS's Compress adds __MACOSX/…/._name.png (AppleDouble, not PNG) and .DS_Store beside every image; they
    once made the whole zip fail to decode."""
    path = tmp_path / "mac.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for cls in ("a", "b"):
            for k in range(3):
                zf.writestr(f"set/train/{cls}/{k}.png", _png(40 * k))
                zf.writestr(f"__MACOSX/set/train/{cls}/._{k}.png", b"\x00\x05\x16\x07 AppleDouble")
            zf.writestr(f"set/train/{cls}/.DS_Store", b"Bud1")
            zf.writestr(f"set/train/{cls}/.hidden.png", b"not a png")
    data = load_dataset("folder", root=path, image_size=8, channels=1)
    assert data.info.class_names == ("a", "b") and len(data.train) + len(data.test) == 6


def test_an_undecodable_or_oversized_image_is_named_plainly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ddcore.data import imagefolder

    _tree(tmp_path / "junk")
    (tmp_path / "junk" / "train" / "a" / "3.png").write_bytes(b"GIF? no, just text")
    with pytest.raises(DatasetCorruptError) as caught:
        load_dataset("folder", root=tmp_path / "junk", image_size=8, channels=1)
    assert "'train/a/3.png' is not an image Pillow can read" in str(caught.value)
    assert "BytesIO" not in str(caught.value)
    # one image file over the per-file cap is refused before it is read into memory, in a folder and in a zip
    monkeypatch.setattr(imagefolder, "MAX_IMAGE_BYTES", 100)
    _tree(tmp_path / "big")
    (tmp_path / "big" / "train" / "b" / "4.png").write_bytes(_png(1) + b"\0" * 100)  # trailing bytes: still a PNG
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for file in sorted((tmp_path / "big").rglob("*.png")):
            zf.write(file, str(file.relative_to(tmp_path / "big")))
    for root in (tmp_path / "big", path):
        clear_cache()
        with pytest.raises(DatasetCorruptError, match=r"'train/b/4.png' is 1\d\d bytes; one image file may be at most 100 bytes"):
            load_dataset("folder", root=root, image_size=8, channels=1)


def test_a_damaged_decode_cache_is_rebuilt(tmp_path: Path) -> None:
    from ddcore.paths import cache_dir

    _tree(tmp_path / "t", 7)
    before = set(cache_dir().glob("tree-*.npz"))
    first = load_dataset("folder", root=tmp_path / "t", image_size=8, channels=1)
    (made,) = set(cache_dir().glob("tree-*.npz")) - before
    made.write_bytes(made.read_bytes()[: made.stat().st_size // 2])  # truncated, as by a full disk
    clear_cache()
    again = load_dataset("folder", root=tmp_path / "t", image_size=8, channels=1)
    assert torch.equal(again.train.images, first.train.images)


def test_metadata_naming_a_tensor_the_file_lacks_is_refused(tmp_path: Path) -> None:
    data = _rewrite_header(_set().to_bytes(), lambda inner: inner["shapes"].update(extra=[1]))
    with pytest.raises(SyntheticSetFileError, match="extra has shape none"):
        SyntheticSet.from_bytes(data)
    data = _rewrite_header(_set().to_bytes(), lambda inner: inner.update(shapes=[1, 2]))
    with pytest.raises(SyntheticSetFileError, match="expected shape"):
        SyntheticSet.from_bytes(data)


def test_show_prints_control_characters_from_a_set_as_escapes(tmp_path: Path) -> None:
    names = ["\x1b]0;pwned\x07", "\x1b[2J"] + [str(c) for c in range(2, 10)]
    s = _set(notes="x")
    s.meta.class_names, s.meta.method = names, "dm\x1b[31m"
    out = ddcore("show", str(s.save(tmp_path / "s.ddset")), "--png", str(tmp_path / "g.png"))
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\\x1b[2J" in out.stdout and "dm\\x1b[31m" in out.stdout


def test_long_and_many_class_folders_still_make_a_loadable_set(tmp_path: Path) -> None:
    from ddcore.synthetic import MAX_CLASS_NAME

    stem = "a-very-long-class-name-" * 10  # 230 characters; two folders differ only after the limit
    for cls in (stem + "one", stem + "two", "short"):
        (tmp_path / "t" / "train" / cls).mkdir(parents=True)
        for k in range(2):
            (tmp_path / "t" / "train" / cls / f"{k}.png").write_bytes(_png(50 * k))
    data = load_dataset("folder", root=tmp_path / "t", image_size=8, channels=1)
    names = data.info.class_names
    assert len(set(names)) == 3 and max(map(len, names)) <= MAX_CLASS_NAME and names[2] == "short"
    meta = SetMeta.for_dataset(data.info, "random", 2)
    saved = SyntheticSet(data.normalize(data.train.images), data.train.labels, meta).save(tmp_path / "s.ddset")
    assert SyntheticSet.load(saved).meta.class_names == list(names)
    for k in range(1001):  # more classes than a set may hold: refused before decoding, with the number
        (tmp_path / "many" / "train" / f"c{k}").mkdir(parents=True)
        (tmp_path / "many" / "train" / f"c{k}" / "0.png").write_bytes(_png(1))
    with pytest.raises(DatasetCorruptError, match="1001 class folders; a dataset may have at most 1000"):
        load_dataset("folder", root=tmp_path / "many", image_size=8, channels=1)


def test_a_folder_with_one_class_is_refused(tmp_path: Path) -> None:
    """It once distilled and evaluated at 100 %, a number that means nothing."""
    (tmp_path / "train" / "only").mkdir(parents=True)
    for k in range(4):
        (tmp_path / "train" / "only" / f"{k}.png").write_bytes(_png(k))
    with pytest.raises(DatasetCorruptError, match="only the class folder 'only'.*at least two"):
        load_dataset("folder", root=tmp_path, image_size=8, channels=1)
