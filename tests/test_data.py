"""Every data source, its missing-file and corrupt-file errors, and the in-memory splits."""
from __future__ import annotations

import gzip
import io
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ddcore.data import (
    DatasetCorruptError,
    DatasetNotFoundError,
    clear_cache,
    get_dataset_info,
    list_datasets,
    load_dataset,
)
from ddcore.data.formats import _CifarBatchUnpickler, read_svhn_mat
from ddcore.paths import REPO_DIR
from ddcore.registry import UnknownNameError

SHARED = REPO_DIR.parent / "shared" / "datasets"
needs_shared = pytest.mark.skipif(not (SHARED / "MNIST").is_dir(), reason="../shared/datasets is not beside the repo")


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("DDCORE_DATA", raising=False)
    clear_cache()
    yield
    clear_cache()


def test_registry_lists_every_dataset_with_metadata() -> None:
    points = {"points-moons", "points-circles", "points-spirals", "points-blobs"}  # the playground's toys
    assert set(list_datasets()) == {"mnist", "fashionmnist", "cifar10", "cifar100", "svhn", "folder"} | points
    info = get_dataset_info("CIFAR-10")
    assert (info.channels, info.image_size, info.num_classes) == (3, 32, 10)
    assert info.class_names[0] == "airplane" and info.mean == (0.4914, 0.4822, 0.4465)
    assert get_dataset_info("cifar100").num_classes == len(get_dataset_info("cifar100").class_names) == 100
    with pytest.raises(UnknownNameError, match="Did you mean: mnist"):
        get_dataset_info("mnits")


def test_embedded_mnist_is_full_and_verified() -> None:
    data = load_dataset("mnist", roots=[], download=False)
    assert "embedded" in data.source
    assert data.train.images.shape == (60000, 1, 28, 28) and data.train.images.dtype == torch.uint8
    assert data.test.class_counts() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_embedded_cifar10_subset_is_class_balanced() -> None:
    data = load_dataset("cifar10", roots=[], download=False)
    assert "subset" in data.source and "JPEG" in data.source
    assert data.train.class_counts() == [500] * 10 and data.test.class_counts() == [100] * 10
    assert data.train.images.shape[1:] == (3, 32, 32)


def _copy_mnist(target: Path, gz: bool = True) -> Path:
    raw = target / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (REPO_DIR / "assets" / "MNIST" / "raw").glob("*.gz"):
        if gz:
            shutil.copy(f, raw / f.name)
        else:
            (raw / f.stem).write_bytes(gzip.decompress(f.read_bytes()))
    return raw


@pytest.mark.parametrize("gz", [True, False])
def test_explicit_root_in_torchvision_layout(tmp_path: Path, gz: bool) -> None:
    _copy_mnist(tmp_path, gz)
    data = load_dataset("mnist", root=tmp_path)
    assert str(tmp_path) in data.source
    assert len(data.train) == 60000 and int(data.train.labels[0]) == 5  # the first MNIST digit is a 5
    ix = data.train.sample_class(3, 16, torch.Generator().manual_seed(0))
    assert (data.train.labels[ix] == 3).all()


def test_environment_variable_root(tmp_path: Path, monkeypatch) -> None:
    _copy_mnist(tmp_path)
    monkeypatch.setenv("DDCORE_DATA", str(tmp_path))
    assert str(tmp_path) in load_dataset("mnist").source


def test_truncated_file_fails_its_checksum(tmp_path: Path) -> None:
    raw = _copy_mnist(tmp_path)
    f = raw / "train-labels-idx1-ubyte.gz"
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(DatasetCorruptError, match="checksum"):
        load_dataset("mnist", root=tmp_path)


def test_missing_dataset_names_expected_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("fashionmnist", root=tmp_path)
    msg = str(err.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path) in msg and "DDCORE_DATA" in msg
    with pytest.raises(DatasetNotFoundError, match="cifar-100-python"):
        load_dataset("cifar100", roots=[tmp_path], download=False)


def _cifar_records(n: int, label_bytes: int, seed: int = 0) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, (n, label_bytes), dtype=np.uint8)
    pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    return np.concatenate([labels, pixels], 1).tobytes(), labels, pixels


def test_cifar10_binary_layout(tmp_path: Path) -> None:
    d = tmp_path / "cifar-10-batches-bin"
    d.mkdir()
    for i in range(1, 6):
        (d / f"data_batch_{i}.bin").write_bytes(_cifar_records(4, 1, i)[0])
    blob, labels, pixels = _cifar_records(3, 1, 9)
    (d / "test_batch.bin").write_bytes(blob)
    data = load_dataset("cifar10", root=tmp_path)
    assert len(data.train) == 20 and len(data.test) == 3
    assert torch.equal(data.test.labels, torch.from_numpy(labels[:, 0].astype(np.int64)))
    assert np.array_equal(data.test.images[1].numpy().reshape(-1), pixels[1])


def test_cifar100_binary_layout_uses_fine_labels(tmp_path: Path) -> None:
    d = tmp_path / "cifar-100-binary"
    d.mkdir()
    blob, labels, _ = _cifar_records(5, 2)
    (d / "train.bin").write_bytes(blob)
    (d / "test.bin").write_bytes(blob)
    data = load_dataset("cifar100", root=tmp_path)
    assert torch.equal(data.train.labels, torch.from_numpy(labels[:, 1].astype(np.int64)))


def test_cifar_python_batches_are_never_unpickled_without_official_checksum(tmp_path: Path) -> None:
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    marker = tmp_path / "pwned"
    payload = pickle.dumps(eval, protocol=2)  # any non-array object
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        (d / name).write_bytes(payload)
    with pytest.raises(DatasetCorruptError, match="checksum"):
        load_dataset("cifar10", root=tmp_path)
    assert not marker.exists()
    with pytest.raises(DatasetCorruptError, match="refusing"):
        _CifarBatchUnpickler(io.BytesIO(payload)).load()


def _jpeg(color: tuple[int, int, int], size: int = 32) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def test_cifar10_jpeg_zip_layout(tmp_path: Path) -> None:
    info = get_dataset_info("cifar10")
    with zipfile.ZipFile(tmp_path / "cifar10-jpg.zip", "w") as zf:
        for c, name in enumerate(info.class_names):
            for split, n in (("train", 2), ("test", 1)):
                for k in range(n):
                    zf.writestr(f"{split}/{name}/{k:04d}.jpg", _jpeg((20 * c, 100, 200)))
    data = load_dataset("cifar10", root=tmp_path)
    assert data.train.class_counts() == [2] * 10 and data.test.class_counts() == [1] * 10
    red = data.train.images[data.train.class_indices[5][0], 0].float().mean().item()
    assert abs(red - 100) < 6  # class 5 was painted R=100


@needs_shared
def test_shared_cifar10_zip_is_found_by_default() -> None:
    data = load_dataset("cifar10")
    assert "cifar10-jpg.zip" in data.source and len(data.train) == 50000 and len(data.test) == 10000


def test_svhn_mat_reader_and_checksum(tmp_path: Path) -> None:
    from scipy.io import savemat

    x = np.random.default_rng(0).integers(0, 256, (32, 32, 3, 4), dtype=np.uint8)
    savemat(tmp_path / "train_32x32.mat", {"X": x, "y": np.array([[10], [1], [2], [3]])})
    images, labels = read_svhn_mat(tmp_path / "train_32x32.mat")
    assert images.shape == (4, 3, 32, 32) and labels.tolist() == [0, 1, 2, 3]
    assert np.array_equal(images[2], x[..., 2].transpose(2, 0, 1))
    shutil.copy(tmp_path / "train_32x32.mat", tmp_path / "test_32x32.mat")
    with pytest.raises(DatasetCorruptError, match="checksum"):
        load_dataset("svhn", root=tmp_path)


def _png(color, size=(20, 20), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_folder_dataset_from_directory_with_carved_test_split(tmp_path: Path) -> None:
    for cls, color in (("cats", (255, 0, 0)), ("dogs", (0, 0, 255))):
        (tmp_path / "train" / cls).mkdir(parents=True)
        for k in range(10):
            (tmp_path / "train" / cls / f"{k}.png").write_bytes(_png(color))
    data = load_dataset("folder", root=tmp_path, image_size=16, channels=1)
    assert data.info.class_names == ("cats", "dogs") and data.info.shape == (1, 16, 16)
    assert len(data.train) == 16 and len(data.test) == 4  # 20% per class carved off
    assert data.info.std[0] > 0


def test_folder_dataset_from_zip_with_test_split(tmp_path: Path) -> None:
    path = tmp_path / "set.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for split in ("train", "test"):
            for cls in ("a", "b", "c"):
                zf.writestr(f"myset/{split}/{cls}/x.png", _png((10, 20, 30), (40, 30)))
    data = load_dataset("folder", root=path)
    assert data.info.num_classes == 3 and data.info.shape == (3, 32, 32) and len(data.test) == 3


def test_large_photos_decode_in_threads_to_the_same_pixels_as_small_ones_in_one(tmp_path: Path) -> None:
    """Large files take the threaded path (each thread its own zip handle and chunk); each image must land in
    its own row, in the order of its name, exactly as a one-thread decode puts it."""
    from ddcore.data import imagefolder

    rng = np.random.default_rng(0)
    path = tmp_path / "photos.zip"
    expected = []
    with zipfile.ZipFile(path, "w") as zf:
        for k in range(9):
            pixels = rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)  # noise: ~60 KB as PNG, so "large"
            buf = io.BytesIO()
            Image.fromarray(pixels).save(buf, format="PNG")
            zf.writestr(f"train/c{k % 3}/{k}.png", buf.getvalue())
            expected.append(np.asarray(Image.fromarray(pixels).resize((32, 32), Image.BILINEAR)).transpose(2, 0, 1))
    assert path.stat().st_size > imagefolder.LARGE_IMAGE_BYTES * 9
    tree = imagefolder.read_image_tree(path, 32, 3, use_cache=False)
    images, labels = tree.splits["train"]
    order = sorted(range(9), key=lambda k: (k % 3, k))  # by class, then by name
    assert labels.tolist() == [k % 3 for k in order]
    for row, k in enumerate(order):
        assert np.array_equal(images[row], expected[k])


def test_folder_zip_with_unsafe_path_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("train/a/ok.png", _png((0, 0, 0)))
        zf.writestr("../../train/b/escape.png", _png((0, 0, 0)))
    with pytest.raises(DatasetCorruptError, match="unsafe path"):
        load_dataset("folder", root=path)


def test_folder_image_bomb_is_refused(tmp_path: Path) -> None:
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "a" / "bomb.png").write_bytes(_png(0, (12000, 12000), "L"))  # 144 Mpx, tiny file
    (tmp_path / "train" / "b").mkdir()
    (tmp_path / "train" / "b" / "fine.png").write_bytes(_png(0))
    with pytest.raises(DatasetCorruptError, match="too large|decompression bomb|cannot decode"):
        load_dataset("folder", root=tmp_path)


def test_folder_without_train_images_explains_layout(tmp_path: Path) -> None:
    (tmp_path / "random").mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"train/<class>/"):
        load_dataset("folder", root=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="needs root"):
        load_dataset("folder")


def test_offline_message_says_download_not_attempted(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DDCORE_OFFLINE", "1")
    with pytest.raises(DatasetNotFoundError, match="download was not attempted"):
        load_dataset("svhn", roots=[tmp_path])


def test_normalize_uses_dataset_statistics() -> None:
    data = load_dataset("mnist", roots=[], download=False)
    x = data.normalize(data.train.images[:2000])
    assert abs(x.mean().item()) < 0.05 and abs(x.std().item() - 1) < 0.05


def test_only_datasets_this_machine_has_are_offered() -> None:
    from ddcore.data import available, available_datasets

    assert available("mnist") and available("cifar10")  # embedded in assets/ at the least
    assert not available("cifar100") and not available("svhn")  # neither shipped nor under a data root here
    assert not available("folder") and not available("no-such-set")
    offered = available_datasets()
    assert "cifar100" not in offered and "svhn" not in offered and {"mnist", "cifar10"} <= set(offered)
    from tests.apptest_kit import ok, page

    at = ok(page("distill.py").run())
    assert list(at.selectbox(key="distill_dataset").options) == [get_dataset_info(d).display_name for d in offered]


def test_results_on_the_embedded_cifar10_subset_are_labelled(monkeypatch, tmp_path) -> None:
    """Where no data root has CIFAR-10, the embedded subset is what loads, and pages must say so beside the
    papers' full-data numbers; MNIST's embedded copy is the whole dataset, so nothing is said for it."""
    from ddcore.data import loader

    monkeypatch.setattr(loader, "default_data_roots", lambda: [])
    monkeypatch.setenv("DDCORE_CACHE", str(tmp_path))
    note = loader.data_note("cifar10")
    assert "embedded CIFAR-10 subset" in note and "500 training and 100 test" in note
    assert loader.data_note("CIFAR-10") == note and loader.data_note("mnist") == ""
    assert load_dataset("cifar10", roots=[], download=False).note == note
    monkeypatch.setattr(loader, "default_data_roots", lambda: [REPO_DIR.parent / "shared" / "datasets"])
    if (REPO_DIR.parent / "shared" / "datasets" / "cifar10-jpg.zip").is_file():
        assert loader.data_note("cifar10") == ""  # the full data is here: nothing to say


def test_a_zip_over_its_size_limit_says_both_sizes_in_readable_units(tmp_path: Path) -> None:
    from ddcore.data.formats import safe_zip_members

    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("train/a/0.png", b"\0" * 300_000)
    with zipfile.ZipFile(path) as zf, pytest.raises(DatasetCorruptError) as caught:
        safe_zip_members(zf, max_total_bytes=200 * 2**10)
    assert "zip expands to 293.0 KiB; the limit is 200.0 KiB" in str(caught.value)  # once "0.0 GiB ... 0 GiB"
