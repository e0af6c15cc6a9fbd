"""The runner and the one distillation loop (tasks.distill.distil): live images, the saved run,
checkpoints that resume exactly, stopping, NaN handling, and pickle-free checkpoint files."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ddcore.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, state_from_bytes, state_to_bytes
from ddcore.data import LoadedDataset, load_dataset
from ddcore.methods import DivergenceError
from ddcore.platform.recorder import EventControl
from ddcore.platform.store import Store
from ddcore.runner import Runner
from ddcore.tasks.distill import DistillSpec, distil


@pytest.fixture(scope="module")
def tiny() -> LoadedDataset:
    d = load_dataset("mnist")
    g = torch.Generator().manual_seed(0)
    return LoadedDataset(d.info, d.train.subset_per_class(10, g), d.test.subset_per_class(5, g), "tiny mnist")


def spec(**kw) -> DistillSpec:
    base = dict(dataset="mnist", method="dm", ipc=2, preset="paper", device="cpu", seed=5,
                overrides={"iterations": 6, "batch_real": 6}, model_kwargs={"width": 8, "depth": 2},
                checkpoint_every=2, evaluate_after=False)
    base.update(kw)
    return DistillSpec(**base)


class ListRecorder:
    """Keeps everything a task reports."""

    def __init__(self) -> None:
        self.progress_calls, self.rows, self.frames, self.states = [], [], [], []

    def progress(self, done, total, message=""):
        self.progress_calls.append((done, total))

    def metrics(self, row):
        self.rows.append(row)

    def images(self, images, labels, class_names):
        self.frames.append((images, labels))

    def state(self, status):
        self.states.append(status)


def run_to_end(runner: Runner) -> None:
    while not runner.done:
        runner.step()


def test_spec_round_trips_and_refuses_unknown_fields():
    s = spec()
    assert DistillSpec.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="no field"):
        DistillSpec.from_dict({**s.to_dict(), "bogus": 1})


def test_the_loop_reports_live_and_saves_the_run(tiny, tmp_path):
    store = Store(tmp_path)
    run_id = store.create_run(spec().stored()).id
    rec = ListRecorder()
    r, outcome = distil(spec(), tiny, store=store, run_id=run_id, recorder=rec)
    assert outcome.status == "done" and outcome.iteration == 6 and r.done and len(r.history) == 6
    assert [h["iteration"] for h in rec.rows] == [1, 2, 3, 4, 5, 6] and all("loss" in h and "time" in h for h in rec.rows)
    assert rec.progress_calls[0] == (0, 6) and rec.progress_calls[-1] == (6, 6)
    assert rec.frames[-1][0].dtype == np.uint8 and rec.frames[-1][0].shape == (20, 28, 28, 1)
    assert [row["iteration"] for row in store.read_metrics(run_id)] == [1, 2, 3, 4, 5, 6]
    assert store.load_checkpoint(run_id)["method"]["iteration"] == 6
    assert store.frame_iterations(run_id)[0] == 0 and store.frame_iterations(run_id)[-1] == 6
    saved = store.get_run(run_id)
    assert saved.status == "done" and saved.iteration == 6 and saved.total == 6 and saved.fingerprint
    assert store.load_set(run_id).meta.iteration == 6 and len(store.load_set(run_id)) == 20


def test_checkpoint_file_resume_equals_uninterrupted(tiny, tmp_path):
    straight = Runner(spec(method="dsa", overrides={"iterations": 3, "batch_real": 6, "outer_loop": 2, "inner_loop": 2}), tiny)
    run_to_end(straight)
    first = Runner(straight.spec, tiny)
    first.step()
    path = save_checkpoint(first.checkpoint(), tmp_path / "run.ckpt")
    again = Runner(straight.spec, tiny)
    again.restore(load_checkpoint(path))
    assert again.method.iteration == 1 and len(again.history) == 1
    run_to_end(again)
    final = again.result()
    assert torch.equal(final.images, straight.result().images)
    assert [h["loss"] for h in again.history] == [h["loss"] for h in straight.history]


def test_a_stop_request_ends_the_loop_with_the_set_kept(tiny, tmp_path):
    control = EventControl()
    store = Store(tmp_path)
    run_id = store.create_run(spec().stored()).id
    r, outcome = distil(spec(), tiny, store=store, run_id=run_id, control=control,
                        on_step=lambda runner, row: control.event.set() if row["iteration"] == 2 else None)
    assert r.method.iteration == 2 and not r.done and outcome.status == "stopped"
    assert store.get_run(run_id).status == "stopped" and store.load_set(run_id).meta.iteration == 2


def test_divergence_keeps_last_good_set(tiny):
    r = Runner(spec(overrides={"iterations": 20, "batch_real": 6, "lr_img": 1e6, "init": "noise"}), tiny)
    with pytest.raises(DivergenceError, match="last good"):
        for _ in range(20):
            good = r.method.images.detach().clone()
            r.step()
    kept = r.result()
    assert torch.isfinite(kept.images).all() and torch.equal(kept.images, good)
    assert r.done and "exploded" in kept.meta.notes
    with pytest.raises(RuntimeError, match="failed"):
        r.step()


def test_a_checkpoint_that_does_not_fit_the_run_is_refused_with_the_reason(tiny):
    """A well-formed checkpoint of other contents (another preset, an edited file signed again) once failed inside
    a method's load_state_dict with a bare KeyError)."""
    run = Runner(spec(method="dm", overrides={"iterations": 3}), tiny)
    run.step()
    state = run.checkpoint()
    with pytest.raises(ValueError, match="does not fit this run"):
        Runner(run.spec, tiny).restore({**state, "method": {"iteration": 1}})
    images = state["method"]["images"]
    wrong = {**state, "method": {**state["method"], "images": torch.cat([images, images])}}
    with pytest.raises(ValueError, match="checkpoint images have shape"):
        Runner(run.spec, tiny).restore(wrong)


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
