"""The privacy study end to end on tiny sizes: shadow models as an artefact made first and reused, targets of
every kind, the result stored and served again, and bad input refused before anything is stored."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ddcore.data import load_dataset
from ddcore.data.subsets import MembershipSplit
from ddcore.platform.bridge import Studio
from ddcore.tasks.distill import DistillSpec, distil
from ddcore.tasks.privacy import PrivacySpec, estimate_seconds, plan
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    s = Studio(tmp_path_factory.mktemp("privacy-home"))
    yield s
    s.manager.shutdown(wait=10)


def tiny(**changes) -> PrivacySpec:
    """The tiny preset on MNIST with width-32 ConvNets as targets and shadow models: nothing here depends on their
    accuracy, and the default width 128 took ~16x the arithmetic (the study was 50 s of the suite)."""
    return PrivacySpec.preset("tiny", **{"dataset": "mnist", "architecture": "convnetw32", **changes})


def test_a_tiny_study_runs_every_target_and_is_served_again(studio) -> None:
    spec = tiny()
    job = studio.submit(spec)
    snap = job.snapshot()
    assert snap.waiting_for, "the shadow models are made first, by their own job"
    shadow_job = studio.job(snap.waiting_for[0])
    assert shadow_job is not None and shadow_job.kind == "shadow-models"
    done = studio.manager.wait(job.id, 300)
    assert done.status == "done", done.message
    result = done.result
    kinds = {t.id: t.kind for t in result.targets}
    assert kinds == {"members": "members", "dm-real": "distilled", "dm-noise": "distilled", "random": "random",
                     "herding": "herding", "dpsgd-eps8": "dpsgd"}
    assert result.split == {"members": 50, "non_members": 50, "pool_per_class": 10, "seed": 0}
    for target in result.targets:
        assert 0 <= target.test_accuracy <= 100 and target.train_s > 0
        assert set(target.attacks) == set(spec.attacks)
        for measures in target.attacks.values():
            assert measures.members == measures.non_members == 50
            assert 0 <= measures.auc.low <= measures.auc.value <= measures.auc.high <= 1
        fpr, tpr = result.roc(target.id, "loss")
        assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1 and (np.diff(fpr) >= 0).all()
    assert result.target("dpsgd-eps8").epsilon <= 8.0 + 1e-6
    assert {t.images for t in result.targets if t.kind in ("distilled", "random", "herding")} == {10}
    # the distilled sets were made from the members only, stored as runs, and their neighbours measured
    for tid in ("dm-real", "dm-noise"):
        run = studio.run(result.target(tid).run_id)
        assert run is not None and run.spec["subset"] == MembershipSplit("mnist", 10, 0).subset()
        assert run.spec["overrides"]["batch_real"] == 5  # the real batch the 5 members of a class give, in its key
        images, distances = result.neighbour_images(tid, "pixel", "member")
        assert images.shape[:2] == (10, 2) and (np.diff(distances, axis=1) >= 0).all()
    assert 0 <= result.neighbours["dm-real"]["closer_to_member_pixel"] <= 1

    # reopening: the stored study, without recomputation; a second study on the split reuses the shadows
    state = studio.study_state(spec)
    assert state.stored is not None and state.stored.key == result.key
    assert studio.submit(spec).id == job.id  # this server: the same job
    reopened = Studio(studio.home)  # another server on the same home: served from the store
    try:
        assert reopened.submit(spec).snapshot().reused
    finally:
        reopened.manager.shutdown()
    other = studio.submit(tiny(methods=(), baselines=("members",), attacks=("lira-online",)))
    assert not other.snapshot().waiting_for
    assert studio.manager.wait(other.id, 120).status == "done"
    assert len(studio.artefacts("shadow-models")) == 1
    assert len(studio.studies("privacy")) == 2


def test_a_stored_run_is_attacked_only_if_it_saw_the_members_alone(studio) -> None:
    mnist = load_dataset("mnist")
    store = studio.store

    def stored_run(subset: dict) -> str:
        spec = DistillSpec("mnist", "dm", 1, overrides={"iterations": 2}, subset=subset, evaluate_after=False,
                           architecture="convnetw32")
        record = store.create_run(spec.stored(), status="queued")
        distil(spec, mnist, store=store, run_id=record.id)
        return record.id

    whole = stored_run({})
    other_split = stored_run(MembershipSplit("mnist", 10, seed=5).subset())
    members_only = stored_run(MembershipSplit("mnist", 10, seed=0).subset())
    base = tiny(methods=(), baselines=(), attacks=("loss",))
    for run_id in (whole, other_split):
        before = len(studio.studies("privacy"))
        with pytest.raises(ValueError, match="leak by construction"):
            studio.submit(tiny(methods=(), runs=(run_id,), attacks=("loss",)))
        assert len(studio.studies("privacy")) == before
        assert "leak by construction" in studio.study_state(
            tiny(methods=(), runs=(run_id,), attacks=("loss",))).problem
    job = studio.submit(PrivacySpec(**{**base.to_dict(), "runs": (members_only,)}))
    done = studio.manager.wait(job.id, 120)
    assert done.status == "done", done.message
    assert [t.run_id for t in done.result.targets] == [members_only]


@pytest.mark.parametrize("changes, message", [
    ({"dataset": "mnsit"}, "Did you mean"),
    ({"methods": ("dmm",)}, "Did you mean"),
    ({"methods": ("herding",)}, "selects real images"),
    ({"attacks": ("lira",)}, "unknown attack"),
    ({"baselines": ("everything",)}, "unknown baseline"),
    ({"ipc": 6}, "IPC must be between 1 and the 5 members"),
    ({"pool_per_class": 1}, "at least 2 images per class"),
    ({"shadows": 1}, "2 to 512 shadow models"),
    ({"epsilons": (0.0,)}, "privacy budgets"),
    ({"runs": ("nope",)}, "No run"),
])
def test_bad_studies_are_refused_with_a_clear_message(studio, changes, message) -> None:
    spec = tiny(**changes)
    with pytest.raises((ValueError, KeyError, LookupError), match=message):
        studio.submit(spec)
    assert message.split()[0].lower() in studio.study_state(spec).problem.lower() or message == "Did you mean"


def test_the_estimate_grows_with_the_study() -> None:
    small, large = estimate_seconds(PrivacySpec.preset("quick")), estimate_seconds(PrivacySpec.preset("paper", "cifar10"))
    assert 60 < small["study"] < 3600 and large["study"] > 10 * small["study"] and large["shadows"] > small["shadows"]


def test_the_estimate_prices_the_recorded_quick_study_within_half_again() -> None:
    """The stage rates against the study benchmarks/results recorded: each priced stage (and the shadow models) within
    a factor 1.5 of what it took, so a user is not told 3 minutes for 15."""
    import dataclasses

    recorded = json.loads((ROOT / "benchmarks/results/privacy-quick-mnist-2026-12-03.json").read_text())
    fields = {f.name for f in dataclasses.fields(PrivacySpec)}
    spec = PrivacySpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in recorded["spec"].items() if k in fields})
    priced = dict(plan(spec))
    took = {t["label"]: t["train_s"] for t in recorded["targets"]}
    pairs = [(priced["Members target"], took["Members (all real)"]),
             (priced["Random subset target"], took["Random subset, 10 per class"]),
             (priced["DP-SGD at ε = 1"], took["DP-SGD, ε = 1"]),
             (estimate_seconds(spec)["shadows"], recorded["shadows"]["seconds"])]
    for estimate, measured in pairs:
        assert measured / 1.5 < estimate < measured * 1.5, (estimate, measured)


def test_the_cli_runs_a_study_and_refuses_bad_input(tmp_path, monkeypatch) -> None:
    from tests.test_cli import ddcore_here

    monkeypatch.setenv("DDCORE_HOME", str(tmp_path / "home"))
    out = subprocess.run([sys.executable, "-m", "ddcore", "privacy", "--preset", "tiny", "--methods", "--baselines",
                          "members", "random", "--attacks", "loss", "confidence", "--set", "architecture=convnetw32",
                          "--json", str(tmp_path / "r.json"), "--quiet"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Loss threshold" in out.stdout and "Random subset, 1 per class" in out.stdout
    stored = json.loads((tmp_path / "r.json").read_text())
    assert [t["id"] for t in stored["targets"]] == ["members", "random"]
    assert stored["spec"]["architecture"] == "convnetw32"
    bad = ddcore_here("privacy", "--preset", "tiny", "--ipc", "0")
    assert bad.returncode == 2 and "IPC must be between" in bad.stderr
