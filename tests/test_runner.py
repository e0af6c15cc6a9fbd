"""The runner: snapshots, checkpoints that resume exactly, NaN handling, and pickle-free checkpoint files."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from ddcore.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, state_from_bytes, state_to_bytes
from ddcore.data import LoadedDataset, load_dataset
from ddcore.methods import DivergenceError
from ddcore.runner import Runner, RunSpec, Snapshot


@pytest.fixture(scope="module")
def tiny() -> LoadedDataset:
    d = load_dataset("mnist")
    g = torch.Generator().manual_seed(0)
    return LoadedDataset(d.info, d.train.subset_per_class(10, g), d.test.subset_per_class(5, g), "tiny mnist")


def spec(**kw) -> RunSpec:
    base = dict(dataset="mnist", method="dm", ipc=2, preset="paper", device="cpu", seed=5,
                overrides={"iterations": 6, "batch_real": 6}, model_kwargs={"width": 8, "depth": 2},
                snapshot_every_s=0.0, checkpoint_every=2)
    base.update(kw)
    return RunSpec(**base)


def test_spec_round_trips_and_refuses_unknown_fields():
    s = spec()
    assert RunSpec.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="no field"):
        RunSpec.from_dict({**s.to_dict(), "bogus": 1})


def test_snapshots_history_checkpoints(tiny):
    snaps: list[Snapshot] = []
    ckpts: list[dict] = []
    r = Runner(spec(), tiny, on_snapshot=snaps.append, on_checkpoint=ckpts.append)
    result = r.run()
    assert r.done and r.method.iteration == 6 and len(r.history) == 6
    assert [h["iteration"] for h in r.history] == [1, 2, 3, 4, 5, 6] and all("loss" in h and "time" in h for h in r.history)
    assert snaps[0].iteration == 0 and snaps[-1].iteration == 6 and snaps[-1].eta_s == 0
    assert snaps[-1].images.dtype == np.uint8 and snaps[-1].images.shape == (20, 28, 28, 1)
    assert [c["method"]["iteration"] for c in ckpts] == [2, 4, 6]
    assert result.meta.iteration == 6 and len(result) == 20


def test_checkpoint_file_resume_equals_uninterrupted(tiny, tmp_path):
    straight = Runner(spec(method="dsa", overrides={"iterations": 3, "batch_real": 6, "outer_loop": 2, "inner_loop": 2}), tiny)
    straight.run()
    first = Runner(straight.spec, tiny)
    first.step()
    path = save_checkpoint(first.checkpoint(), tmp_path / "run.ckpt")
    again = Runner(straight.spec, tiny)
    again.restore(load_checkpoint(path))
    assert again.method.iteration == 1 and len(again.history) == 1
    final = again.run()
    assert torch.equal(final.images, straight.result().images)
    assert [h["loss"] for h in again.history] == [h["loss"] for h in straight.history]


def test_stop_event_stops(tiny):
    stop = threading.Event()
    r = Runner(spec(), tiny)
    r.run(stop, progress=lambda row: stop.set() if row["iteration"] == 2 else None)
    assert r.method.iteration == 2 and not r.done


def test_divergence_keeps_last_good_set(tiny):
    r = Runner(spec(overrides={"iterations": 20, "batch_real": 6, "lr_img": 1e30, "init": "noise"}), tiny)
    with pytest.raises(DivergenceError, match="last good"):
        for _ in range(20):
            good = r.method.images.detach().clone()
            r.step()
    kept = r.result()
    assert torch.isfinite(kept.images).all() and torch.equal(kept.images, good)
    assert r.done and "exploded" in kept.meta.notes
    with pytest.raises(RuntimeError, match="failed"):
        r.step()


def test_checkpoint_format_round_trip_and_tamper_detection(tmp_path):
    opt_state = {"state": {0: {"momentum_buffer": torch.arange(6.0).view(2, 3)}, 1: {"momentum_buffer": None}},
                 "param_groups": [{"lr": 0.1, "momentum": 0.5, "params": [0, 1], "nesterov": False}]}
    state = {"method": {"images": torch.randn(2, 1, 3, 3), "iteration": 7, "lr": None, "optimizer": opt_state},
             "history": [{"iteration": 1, "loss": float("nan")}], "shape": (2, 3), "arr": np.arange(4)}
    back = state_from_bytes(state_to_bytes(state))
    assert torch.equal(back["method"]["images"], state["method"]["images"])
    assert back["method"]["optimizer"]["state"][0]["momentum_buffer"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert back["method"]["optimizer"]["state"][1]["momentum_buffer"] is None
    assert back["method"]["optimizer"]["param_groups"] == opt_state["param_groups"]
    assert back["shape"] == (2, 3) and np.isnan(back["history"][0]["loss"]) and back["arr"].tolist() == [0, 1, 2, 3]
    data = state_to_bytes(state)
    with pytest.raises(CheckpointError, match="truncated|corrupt"):
        state_from_bytes(data[: len(data) // 2])
    tampered = bytearray(data)
    tampered[-3] ^= 0xFF  # a tensor byte
    with pytest.raises(CheckpointError, match="altered"):
        state_from_bytes(bytes(tampered))
    path = save_checkpoint(state, tmp_path / "x.ckpt")
    assert load_checkpoint(path)["method"]["iteration"] == 7
