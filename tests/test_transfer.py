"""Store slices: a job's inputs packed from one store into another, and only what it changed packed back."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import torch

from ddcore.platform.records import Subject
from ddcore.platform.store import Store
from ddcore.platform.transfer import pack_changes, pack_slice, store_rows, unpack_slice
from ddcore.synthetic import SetMeta, SyntheticSet


def _set(ipc: int = 2, seed: int = 0) -> SyntheticSet:
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(10 * ipc, 1, 8, 8, generator=g)
    labels = torch.arange(10).repeat_interleave(ipc)
    meta = SetMeta(dataset="mnist", method="dm", ipc=ipc, class_names=[str(i) for i in range(10)], mean=[0.5],
                   std=[0.5], iteration=3)
    return SyntheticSet(images, labels, meta)


def _run(store: Store, name: str = "a run") -> str:
    record = store.create_run({"dataset": "mnist", "method": "dm", "ipc": 2}, name=name, status="done")
    store.save_set(record.id, _set())
    store.append_metrics(record.id, [{"iteration": 1, "loss": 0.5}])
    store.add_frame(record.id, 1, np.zeros((20, 8, 8, 1), np.uint8), np.arange(20) % 10)
    return record.id


def test_a_run_and_an_artefact_travel_whole_to_another_store(tmp_path):
    source, target = Store(tmp_path / "a"), Store(tmp_path / "b")
    run_id = _run(source)
    folder = source.artefact_dir("k1")
    folder.mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"\x01" * 1000)
    source.put_artefact("k1", "expert-trajectories", "experts", {"n": 2})
    summary = unpack_slice(target, pack_slice(source, run_ids=[run_id], artefact_keys=["k1"]))
    assert summary.runs == (run_id,) and summary.artefacts == ("k1",)
    copied = target.get_run(run_id)
    assert copied is not None and copied.name == "a run" and copied.fingerprint == source.get_run(run_id).fingerprint
    assert torch.equal(target.load_set(run_id).images, source.load_set(run_id).images)
    assert target.read_metrics(run_id) == [{"iteration": 1, "loss": 0.5}]
    assert target.frame_iterations(run_id) == [1]
    assert (target.artefact_dir("k1") / "weights.bin").read_bytes() == b"\x01" * 1000
    assert target.get_artefact("k1").size_bytes == 1000


def test_only_what_a_task_changed_comes_back(tmp_path):
    """The evaluation a worker saved comes back; the run it only read does not (a concurrent rename here wins)."""
    home, worker = Store(tmp_path / "home"), Store(tmp_path / "worker")
    run_id = _run(home)
    unpack_slice(worker, pack_slice(home, run_ids=[run_id]))
    before = store_rows(worker)
    from ddcore.evaluation.result import EvalResult

    result = EvalResult(set_id="x", dataset="mnist", method="dm", ipc=2, num_images=20, architecture="convnet",
                        preset="quick", config={}, seeds=[0], accuracies=[50.0], mean=50.0, std=0.0, wall_time_s=1.0,
                        train_time_s=1.0, test_time_s=0.1, device="cpu", versions={}, test_images=100)
    record = worker.get_run(run_id)
    worker.save_evaluation("e1", Subject.run(run_id, "mnist", record.fingerprint, 3, 2), "convnet", "quick", 1, result)
    back = pack_changes(worker, before)
    home.rename_run(run_id, "renamed here meanwhile")
    summary = unpack_slice(home, back)
    assert summary.runs == () and summary.evaluations == ("e1",)
    assert home.get_run(run_id).name == "renamed here meanwhile"
    assert home.get_evaluation("e1").result.mean == 50.0
    assert home.get_run(run_id).accuracy == 50.0


def test_a_changed_run_replaces_its_folder_whole(tmp_path):
    """Frames the worker thinned out are gone here too; the run's row is the worker's."""
    home, worker = Store(tmp_path / "home"), Store(tmp_path / "worker")
    run_id = _run(home)
    unpack_slice(worker, pack_slice(home, run_ids=[run_id]))
    before = store_rows(worker)
    worker.drop_frames(run_id, [1])
    worker.add_frame(run_id, 8, np.ones((20, 8, 8, 1), np.uint8), np.arange(20) % 10)
    worker.update_run(run_id, status="done", iteration=8, total=8)
    unpack_slice(home, pack_changes(worker, before))
    assert home.frame_iterations(run_id) == [8]
    assert home.get_run(run_id).iteration == 8
    assert not list(home.runs_dir.glob(".*"))  # no staging folders left behind


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


EMPTY_INDEX = json.dumps({"runs": [], "evaluations": [], "artefacts": [], "artefact_uses": []}).encode()


@pytest.mark.parametrize("name", ["runs/../../escape.txt", "/etc/passwd", "runs/x", "elsewhere/a/b.txt",
                                  "runs/.hidden/file", "artefacts/bad key!/file"])
def test_a_slice_cannot_write_outside_runs_and_artefacts(tmp_path, name):
    store = Store(tmp_path / "s")
    with pytest.raises(ValueError):
        unpack_slice(store, _zip({"slice.json": EMPTY_INDEX, name: b"x"}))
    assert not (tmp_path / "escape.txt").exists()


def test_a_slice_with_unknown_tables_is_refused(tmp_path):
    store = Store(tmp_path / "s")
    with pytest.raises(ValueError, match="unknown tables"):
        unpack_slice(store, _zip({"slice.json": json.dumps({"users": []}).encode()}))


def test_a_slice_holding_a_symbolic_link_is_refused_before_anything_is_written(tmp_path):
    store = Store(tmp_path / "s")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("slice.json", EMPTY_INDEX)
        zf.writestr("runs/r1/set.safetensors", b"x")
        link = zipfile.ZipInfo("runs/r1/escape")
        link.external_attr = (0o120777 << 16)  # a symlink's mode, as `zip --symlinks` stores it
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(ValueError, match="symbolic link"):
        unpack_slice(store, buffer.getvalue())
    assert not store.run_dir("r1").exists()
