"""Continual learning (ddcore/continual.py, ddcore/tasks/continual.py): class orders, the memory's rules, the fresh
learner's diet, and the stored study, on tiny sizes with real data and real networks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import tests.tiny_method  # noqa: F401  (registers 'tinypull', a real but network-free distillation method)
from ddcore.continual import Memory, MemoryRuleError, class_order, fingerprint, split_steps
from ddcore.data import load_dataset
from ddcore.platform.bridge import ContinualSpec, Studio


def test_class_orders_differ_by_seed_and_follow_the_reference() -> None:
    orders = [class_order(10, s) for s in range(5)]
    assert all(sorted(o) == list(range(10)) for o in orders)
    assert len({tuple(o) for o in orders}) == 5  # every seed its own order
    np.random.seed(0)  # CL_DM.py: np.random.seed(seed_cl); np.random.permutation(num_classes)
    assert orders[0] == np.random.permutation(10).tolist() == [2, 8, 4, 9, 1, 6, 7, 3, 0, 5]
    assert class_order(10, 3) == orders[3]  # deterministic


def test_steps_split_the_order_and_refuse_impossible_sizes() -> None:
    order = class_order(10, 0)
    assert split_steps(order, 5) == [order[0:2], order[2:4], order[4:6], order[6:8], order[8:10]]
    assert [len(p) for p in split_steps(order, 3)] == [4, 3, 3]  # every class arrives
    with pytest.raises(ValueError, match="at least 11 classes"):
        split_steps(order, 11)
    with pytest.raises(ValueError, match="at least 1"):
        split_steps(order, 0)


def test_the_memory_keeps_its_budget_and_only_classes_that_arrived() -> None:
    memory = Memory(ipc=2)
    image = torch.zeros(1, 1, 4, 4)
    memory.arrive([3, 7])
    memory.add(image.repeat(3, 1, 1, 1), torch.tensor([3, 3, 7]))
    with pytest.raises(MemoryRuleError, match="at most 2 images per class"):
        memory.add(image, torch.tensor([3]))
    with pytest.raises(MemoryRuleError, match="have not arrived"):
        memory.add(image, torch.tensor([5]))
    with pytest.raises(MemoryRuleError, match="arrived already"):
        memory.arrive([7])
    memory.add(image, torch.tensor([7]))
    assert memory.counts() == {3: 2, 7: 2} and len(memory) == 4 == memory.budget
    with pytest.raises(ValueError, match="at least 1"):
        Memory(0)


def test_a_dataset_restricted_to_some_classes() -> None:
    data = load_dataset("mnist")
    sub = data.only_classes([7, 2])
    assert sub.info.num_classes == 2 and sub.info.class_names == ("7", "2") and sub.info.name == "mnist"
    assert sub.train.class_counts() == [data.train.class_counts()[7], data.train.class_counts()[2]]
    assert torch.equal(sub.train.images[sub.train.class_indices[0][:5]], data.train.images[data.train.class_indices[7][:5]])
    assert sub.source != data.source
    with pytest.raises(ValueError, match="classes 0..9"):
        data.only_classes([10])
    with pytest.raises(ValueError, match="distinct"):
        data.only_classes([1, 1])


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    s = Studio(tmp_path_factory.mktemp("continual-home"))
    yield s
    s.manager.shutdown(wait=30)


@pytest.fixture(scope="module")
def study(studio):
    """2 memories (random real images; a distillation of each step's classes) × 2 class orders × 3 steps, IPC 2, with
    the fine-tuned learner: seconds. Its learners are ConvNets of width 32: nothing here depends on their accuracy,
    and the default width 128 took ~16x the arithmetic (41 s of the suite, most of it testing 24 networks)."""
    spec = ContinualSpec("mnist", ("random", "tinypull"), ipc=2, steps=3, orders=2, preset="tiny", finetune=True,
                         architecture="convnetw32", device="cpu")
    job = studio.submit(spec)
    snap = studio.manager.wait(job.id, 240)
    assert snap.status == "done", snap.message
    return spec, snap.result


@pytest.mark.slow  # a real study end to end (seconds to tens of seconds on 2 cores)
def test_the_memory_never_exceeds_its_budget_nor_holds_a_class_before_it_arrives(study) -> None:
    _, r = study
    for m in range(len(r.methods)):
        for o in range(len(r.seeds)):
            labels, steps = r.memory_labels[m, o], r.memory_step[m, o]
            for s in range(r.steps):
                arrived = {c for part in r.step_classes[o][: s + 1] for c in part}
                held = labels[steps <= s]
                assert set(held.tolist()) <= arrived
                assert all((held == c).sum() <= r.ipc for c in arrived)  # IPC per class seen
                assert len(held) <= r.ipc * len(arrived)
                # each step's images come from that step's classes only
                assert set(labels[steps == s].tolist()) == set(r.step_classes[o][s])


@pytest.mark.slow  # a real study end to end (seconds to tens of seconds on 2 cores)
def test_class_orders_are_recorded_and_differ(study) -> None:
    _, r = study
    assert r.seeds == [0, 1] and r.class_orders == [class_order(10, 0), class_order(10, 1)]
    assert r.class_orders[0] != r.class_orders[1]
    assert r.step_classes[1] == split_steps(r.class_orders[1], 3)


@pytest.mark.slow  # a real study end to end (seconds to tens of seconds on 2 cores)
def test_the_fresh_learner_at_step_k_sees_only_the_memory(study) -> None:
    _, r = study
    for m in range(len(r.methods)):
        for o in range(len(r.seeds)):
            for s in range(r.steps):
                seen = sum(len(p) for p in r.step_classes[o][: s + 1])
                assert r.learner_images[m, o, s] == r.ipc * seen  # exactly the memory's images, nothing else
                assert r.learner_fingerprints[m][o][s] == r.memory_fingerprints[m][o][s]
                # it is tested on the seen classes only: the others have no accuracy at this step
                tested = ~np.isnan(r.class_accuracy[m, o, s])
                assert set(np.flatnonzero(tested).tolist()) == {c for p in r.step_classes[o][: s + 1] for c in p}
    assert np.isfinite(r.accuracy).all() and ((0 <= r.accuracy) & (r.accuracy <= 100)).all()


@pytest.mark.slow  # a real study end to end (seconds to tens of seconds on 2 cores)
def test_forgetting_and_the_fine_tuned_learner(study) -> None:
    _, r = study
    assert r.finetuned and r.finetune_accuracy.shape == r.accuracy.shape
    f = r.forgetting("random", finetune=True)
    assert f.shape == (2, 10) and (np.nan_to_num(f) >= 0).all()
    for o in range(2):  # a class that arrived in the last step has nothing to forget yet
        assert all(f[o, c] == 0 for c in r.step_classes[o][-1])
    assert r.cost("random")["learner_s"] > 0 and r.final("random")[0] == pytest.approx(r.accuracy[0, :, -1].mean())


@pytest.mark.slow  # a real study end to end (seconds to tens of seconds on 2 cores)
def test_the_study_is_stored_reopened_and_not_recomputed(studio, study) -> None:
    spec, r = study
    again = Studio(studio.home)  # a new server on the same home
    try:
        state = again.study_state(spec)
        assert state.stored is not None and state.stored.key == r.key
        assert np.array_equal(state.stored.memory_images, r.memory_images)
        job = again.submit(spec)
        assert job.snapshot().reused
        assert [s.key for s in again.studies("continual")] == [r.key]
    finally:
        again.manager.shutdown()


@pytest.mark.parametrize("changes, message", [
    ({"ipc": 0}, "IPC must be at least 1"), ({"steps": 11}, "between 1 and the number of classes"),
    ({"methods": ("randm",)}, "Did you mean: random"), ({"methods": ()}, "at least one memory method"),
    ({"orders": 0}, "class orders must be between"), ({"preset": "fast"}, "Unknown continual-learning preset"),
    ({"dataset": "mnst"}, "Did you mean"),
])
def test_bad_input_is_refused_and_nothing_is_stored(studio, changes, message) -> None:
    base = dict(dataset="mnist", methods=("random",), ipc=1, steps=2, orders=1, preset="tiny", device="cpu")
    spec = ContinualSpec(**{**base, **changes})
    before = len(studio.studies("continual"))
    state = studio.study_state(spec)
    assert state.spec is None and message in state.problem
    with pytest.raises((ValueError, LookupError)):
        studio.submit(spec)
    assert len(studio.studies("continual")) == before


def test_fingerprints_tell_sets_apart() -> None:
    a = torch.zeros(2, 1, 2, 2)
    assert fingerprint(a, torch.tensor([0, 1])) != fingerprint(a, torch.tensor([1, 0]))


@pytest.mark.slow  # a real study end to end (seconds to tens of seconds on 2 cores)
def test_any_image_folder_with_enough_classes(studio, tmp_path) -> None:
    """A folder dataset (train/<class>/*.png, test/<class>/*.png) in 2 steps of 2 classes; too many steps are refused."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 3)):
        for k, name in enumerate(("ant", "bee", "cat", "dog")):
            folder = tmp_path / "shapes" / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = np.clip(rng.normal(60 * k, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    spec = ContinualSpec("folder", ("random",), ipc=2, steps=2, orders=1, preset="tiny", data_root=str(tmp_path / "shapes"),
                         device="cpu")
    snap = studio.manager.wait(studio.submit(spec).id, 120)
    assert snap.status == "done", snap.message
    r = snap.result
    assert r.class_names == ["ant", "bee", "cat", "dog"] and r.memory_labels.shape == (1, 1, 8)
    assert [len(p) for p in r.step_classes[0]] == [2, 2]
    assert "between 1 and the number of classes (4)" in studio.study_state(ContinualSpec(
        "folder", ("random",), ipc=2, steps=5, data_root=str(tmp_path / "shapes"), device="cpu")).problem
    assert "the smallest class of this folder has 6" in studio.study_state(ContinualSpec(
        "folder", ("random",), ipc=7, steps=2, data_root=str(tmp_path / "shapes"), device="cpu")).problem
