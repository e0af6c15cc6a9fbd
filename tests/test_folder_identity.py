"""Every image folder is called 'folder': what is made from one (its ZCA, expert trajectories, a feature network)
must be keyed by its contents, so a second folder never silently gets the first one's. Before the fingerprint,
one folder's ZCA whitened another's images and MTT on folder B matched folder A's experts."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ddcore.data import load_dataset
from ddcore.data.info import BUILTIN_INFOS
from ddcore.methods import make_config, method_class
from ddcore.platform.store import Store
from ddcore.tasks import resolve_artefacts
from ddcore.tasks.distill import DistillSpec, requirements
from tests.test_cli import ddcore, ddcore_here


def _folder(root: Path, scale: int, seed: int, classes: tuple[str, ...] = ("a", "b")) -> Path:
    rng = np.random.default_rng(seed)
    for cls in classes:
        (root / "train" / cls).mkdir(parents=True, exist_ok=True)
        for k in range(6):
            buf = io.BytesIO()
            Image.fromarray((rng.random((8, 8, 3)) * scale).astype(np.uint8)).save(buf, format="PNG")
            (root / "train" / cls / f"{k}.png").write_bytes(buf.getvalue())
    return root


def test_two_folders_have_their_own_fingerprint_and_the_same_folder_keeps_it(tmp_path: Path) -> None:
    a = load_dataset("folder", root=_folder(tmp_path / "a", 40, 0), image_size=8)
    b = load_dataset("folder", root=_folder(tmp_path / "b", 200, 1), image_size=8)
    again = load_dataset("folder", root=tmp_path / "a", image_size=16)  # other size: other pixels, other key
    assert a.info.name == b.info.name == "folder"
    assert len({a.info.data_key, b.info.data_key, again.info.data_key}) == 3
    copy = load_dataset("folder", root=_folder(tmp_path / "copy", 40, 0), image_size=8)  # same pixels, other path
    assert copy.info.data_key == a.info.data_key
    assert BUILTIN_INFOS["mnist"].data_key == "mnist" and BUILTIN_INFOS["mnist"].fingerprint is None


def test_each_folder_gets_its_own_zca(tmp_path: Path) -> None:
    from ddcore.zca import clear_zca_cache, dataset_zca

    a = load_dataset("folder", root=_folder(tmp_path / "a", 40, 0), image_size=8)
    b = load_dataset("folder", root=_folder(tmp_path / "b", 200, 1), image_size=8)
    clear_zca_cache()
    za, zb = dataset_zca(a), dataset_zca(b)
    assert not torch.allclose(za.mean, zb.mean)
    assert torch.allclose(za.mean.flatten(), a.normalize(a.train.images).flatten(1).mean(0), atol=1e-4)
    assert torch.allclose(zb.mean.flatten(), b.normalize(b.train.images).flatten(1).mean(0), atol=1e-4)


@pytest.mark.parametrize("method", ["mtt", "herding"])
def test_artefacts_made_from_a_folder_are_that_folders(tmp_path: Path, method: str) -> None:
    a = load_dataset("folder", root=_folder(tmp_path / "a", 40, 0), image_size=8)
    b = load_dataset("folder", root=_folder(tmp_path / "b", 200, 1, classes=("x", "y", "z")), image_size=8)
    spec = DistillSpec(dataset="folder", method=method, ipc=1, preset="quick", device="cpu",
                       overrides={"num_experts": 1, "expert_train_epochs": 2, "max_start_epoch": 1, "expert_epochs": 1}
                       if method == "mtt" else {"embed_epochs": 1})
    need_a, need_b = requirements(spec, a.info), requirements(spec, b.info)
    assert need_a[0].key() != need_b[0].key()
    assert need_a[0].as_dict()["fingerprint"] == a.info.fingerprint
    builtin = method_class(method).requires(BUILTIN_INFOS["mnist"], 1, make_config(method, BUILTIN_INFOS["mnist"], 1,
                                                                                     "quick"), "convnet")
    assert "fingerprint" not in builtin[0].as_dict()  # the named datasets' stored artefacts keep their keys
    store = Store(tmp_path / "store")
    try:
        made_b = resolve_artefacts(need_b, store, "cpu", b)
        if method == "herding":  # the network has folder b's three classes, not the registry placeholder's one
            assert made_b["trained-network"](b.normalize(b.train.images[:2])).shape == (2, 3)
        other = Store(tmp_path / "other")
        try:
            with pytest.raises(ValueError, match="fingerprint"):  # b's artefact asked for with a's data: refused
                resolve_artefacts(need_b, other, "cpu", a)
        finally:
            other.close()
    finally:
        store.close()


def test_each_folder_gets_its_own_network_trained_on_its_real_images(tmp_path: Path) -> None:
    """train_on_real caches its network on disk by dataset name: folder B once got folder A's network and record."""
    from ddcore.evaluation.reference import RealTraining, train_on_real

    a = load_dataset("folder", root=_folder(tmp_path / "a", 40, 0), image_size=8)
    b = load_dataset("folder", root=_folder(tmp_path / "b", 200, 1), image_size=8)
    plan = RealTraining(name="identity-test", epochs=1, decay=False)
    net_a, record_a = train_on_real("folder", "convnet", plan, "cpu", data=a)
    net_b, record_b = train_on_real("folder", "convnet", plan, "cpu", data=b)
    assert any(not torch.equal(p, q) for p, q in zip(net_a.state_dict().values(), net_b.state_dict().values()))
    again_a = train_on_real("folder", "convnet", plan, "cpu", data=a, compute=False)  # a's stays cached for a
    assert again_a is not None and torch.equal(again_a[0].state_dict()["classifier.weight"],
                                               net_a.state_dict()["classifier.weight"])


def test_a_folder_set_is_evaluated_on_its_folder(tmp_path: Path) -> None:
    root = _folder(tmp_path / "a", 200, 0)
    target = tmp_path / "s.ddset"
    out = ddcore("distill", "--dataset", "folder", "--data-root", str(root), "--method", "random", "--ipc", "1",
                 "--out", str(target), "--quiet", "--eval", "--eval-seeds", "1", "--eval-preset", "custom-e2-tall-none")
    assert out.returncode == 0, out.stderr
    assert "convnet:" in out.stdout
    # the entry point is proven by the distillation above; the evaluations run the CLI's main in this process
    out = ddcore_here("evaluate", str(target), "--seeds", "1", "--preset", "custom-e2-tall-none")
    assert out.returncode == 2 and "--data-root" in out.stderr and "Traceback" not in out.stderr
    out = ddcore_here("evaluate", str(target), "--seeds", "1", "--preset", "custom-e2-tall-none", "--data-root", str(root))
    assert out.returncode == 0 and "convnet:" in out.stdout and "another mean and std" not in out.stderr, out.stderr
    other = _folder(tmp_path / "b", 40, 1)
    out = ddcore_here("evaluate", str(target), "--seeds", "1", "--preset", "custom-e2-tall-none", "--data-root", str(other))
    assert out.returncode == 0 and "another mean and std" in out.stderr


def test_a_study_on_a_folder_makes_the_folders_own_feature_network(tmp_path: Path) -> None:
    """The herding memory needs a network trained on the folder; its task found no data for 'folder' before the
    artefact carried where the folder is (DatasetInfo.data_source)."""
    root = _folder(tmp_path / "four", 200, 2, classes=("c0", "c1", "c2", "c3"))
    out = ddcore("continual", "--dataset", "folder", "--data-root", str(root), "--methods", "herding", "random",
                 "--steps", "2", "--orders", "1", "--preset", "tiny", "--ipc", "1", "--quiet")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "herding" in out.stdout and "random" in out.stdout
    data = load_dataset("folder", root=root)
    spec = DistillSpec(dataset="folder", method="herding", ipc=1, preset="quick", device="cpu")
    (need,) = requirements(spec, data.info)
    assert need.as_dict()["data_root"] == str(root.resolve()) and need.as_dict()["image_size"] == 32
