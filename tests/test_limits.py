"""Limits on what a user can ask for: the server's job limit, and settings from widgets, the CLI and URLs that
are out of range or of the wrong type. Each is refused with a message that says what is allowed, and nothing is
stored for a refused request."""
from __future__ import annotations

from pathlib import Path

import pytest

import tests.tiny_method  # noqa: F401  (registers the 'tinypull' method)
from ddcore.data import get_dataset_info, load_dataset
from ddcore.methods import make_config
from ddcore.platform.queue import JobLimitError, JobManager
from ddcore.platform.store import Store
from ddcore.runner import Runner
from ddcore.tasks.distill import DistillSpec, validate
from tests.apptest_kit import ok, page
from tests.test_cli import ddcore_here


def _slow(seed: int) -> DistillSpec:
    return DistillSpec(dataset="mnist", method="tinypull", ipc=1, seed=seed, device="cpu", evaluate_after=False,
                       overrides={"iterations": 1000, "sleep_s": 0.05})


def test_the_job_limit_refuses_more_and_stores_nothing(tmp_path: Path) -> None:
    manager = JobManager(Store(tmp_path), max_active=2)
    try:
        data = load_dataset("mnist")
        manager.submit(_slow(0), data=data)
        manager.submit(_slow(1), data=data)
        with pytest.raises(JobLimitError, match="already has 2 jobs queued or running .*DDSTUDIO_MAX_JOBS"):
            manager.submit(_slow(2), data=data)
        assert len(manager.store.list_runs()) == 2  # the refused run left no record
        manager.stop(manager.jobs()[0].id)
        manager.wait(manager.jobs()[0].id, timeout=30)
        manager.submit(_slow(3), data=data)  # a free place is usable again
    finally:
        manager.shutdown(wait=10)


@pytest.mark.parametrize("key,value,why", [
    ("iterations", 999999999999, "between 1 and 1,000,000"), ("iterations", -5, "between 1"),
    ("iterations", 0, "between 1"), ("iterations", 1.5, "whole number"), ("iterations", True, "whole number"),
    ("iterations", "10", "whole number"), ("lr_img", 1e9, "learning rate"), ("lr_img", 0, "learning rate"),
    ("lr_img", float("nan"), "finite number"), ("lr_img", "fast", "finite number"), ("batch_real", -1, "between 1"),
    ("batch_real", 0, "between 1"),
    ("init", "x" * 500, "short text"),
])
def test_out_of_range_settings_are_refused(key: str, value, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        make_config("dm", get_dataset_info("mnist"), 1, "quick", **{key: value})


@pytest.mark.parametrize("ipc", [0, -3, 10**9, 2.5, True, "10"])
def test_bad_ipc_is_refused_before_anything_starts(ipc) -> None:
    with pytest.raises(ValueError, match="IPC must be"):
        validate(DistillSpec(dataset="mnist", method="dm", ipc=ipc))


@pytest.mark.parametrize("seed", [-1, 2**63, 2**64, 1.5, True, "3"])
def test_a_seed_the_store_cannot_keep_is_refused_before_anything_starts(seed) -> None:
    with pytest.raises(ValueError, match="seed must be a whole number from 0 to"):
        validate(DistillSpec(dataset="mnist", method="dm", ipc=1, seed=seed))
    validate(DistillSpec(dataset="mnist", method="dm", ipc=1, seed=2**63 - 1))  # the largest the store keeps


def test_ipc_above_the_smallest_class_names_that_class(tmp_path: Path) -> None:
    from PIL import Image

    for cls, n in (("big", 6), ("small", 3)):
        (tmp_path / "train" / cls).mkdir(parents=True)
        for k in range(n):
            Image.new("L", (8, 8), k * 20).save(tmp_path / "train" / cls / f"{k}.png")
    data = load_dataset("folder", root=tmp_path, image_size=8, channels=1)
    smallest = min(len(ix) for ix in data.train.class_indices)
    with pytest.raises(ValueError, match=f"between 1 and {smallest} .*'small'"):
        Runner(DistillSpec(dataset="folder", method="random", ipc=smallest + 1, device="cpu"), data)


def test_cli_refuses_junk_settings_in_one_line(tmp_path: Path) -> None:
    cases = (["--set", "iterations=1.5"], ["--set", "lr_img=1e9"], ["--iterations", "-5"], ["--ipc", "0"])
    outs = [ddcore_here("distill", "--dataset", "mnist", "--method", "dm", "--no-store", "--quiet",
                        "--out", str(tmp_path / f"x{i}.ddset"), *args) for i, args in enumerate(cases)]
    for i, (args, out) in enumerate(zip(cases, outs)):
        assert out.returncode == 2 and out.stderr.strip().startswith("error:"), (args, out.stderr[-500:])
        assert "Traceback" not in out.stderr and not (tmp_path / f"x{i}.ddset").exists(), args


def test_a_link_with_an_impossible_ipc_says_so() -> None:
    at = ok(page("distill.py", ipc="100000").run())
    assert at.session_state["distill_ipc"] == 10
    assert any("ipc='100000'" in w.value and "not available" in w.value for w in at.warning), \
        [w.value for w in at.warning]
