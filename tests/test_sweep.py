"""Sweeps on this machine's executor: the grid checked before anything is queued, cells run as ordinary jobs,
cancel, reuse, and the cost estimate from the store's own measurements."""
from __future__ import annotations

import dataclasses
import time

import pytest

from ddcore.data import get_dataset_info
from ddcore.estimates import cpu_estimate
from ddcore.platform.queue import JobManager
from ddcore.platform.store import Store
from ddcore.tasks.sweep import MAX_CELLS, SweepSpec, estimate_sweep

TINY_EVAL = dict(eval_seeds=1, eval_options={"epochs_no_aug": 3, "epochs_aug": 3, "test_limit": 300})


def own_augmentation(dataset: str, method: str) -> str:
    from ddcore.evaluation.protocol import get_preset

    return get_preset("quick").resolve(dataset, "convnet", method).augmentation


def _tiny(**changes) -> SweepSpec:
    base = dict(datasets=("mnist",), methods=("dm",), ipcs=(1,), seeds=(0,), overrides={"iterations": 3}, **TINY_EVAL)
    return SweepSpec(**{**base, **changes})


@pytest.mark.parametrize("changes, message", [
    (dict(methods=()), "at least one of methods"),
    (dict(ipcs=(1, 1)), "lists a value twice"),
    (dict(methods=("nope",)), "nope"),
    (dict(datasets=("imagenet-99",)), "imagenet-99"),
    (dict(ipcs=(0,)), "IPC must be"),
    (dict(executor="slurm"), "executor is one of"),
    (dict(eval_architectures=("notanet",)), "notanet"),
    (dict(eval_options={"epochz": 3}), "epochz"),
    (dict(eval_seeds=0), "evaluation seeds"),
    (dict(seeds=tuple(range(MAX_CELLS + 1))), "at most"),
])
def test_a_bad_grid_is_refused_before_anything_is_queued(tmp_path, changes, message):
    store = Store(tmp_path / "s")
    manager = JobManager(store)
    with pytest.raises((ValueError, KeyError, LookupError), match=message):
        manager.submit(_tiny(**changes))
    assert manager.jobs() == [] and store.list_runs() == []
    manager.shutdown()


def test_a_custom_preset_with_a_fixed_augmentation_trains_the_baseline_with_it_too():
    """DD-Ranking's rule: the random baseline is trained as the set is. Under 'quick' a DM set gets DSA, so does its
    baseline; a custom preset that fixes the augmentation fixes it for both (the set has no option to override)."""
    from ddcore.evaluation.protocol import custom_preset_name
    from ddcore.tasks.sweep import Cell, eval_specs

    cell = Cell("mnist", "dm", 1, "quick", 0)
    quick = {which: e for which, _, e in eval_specs(_tiny(eval_options={}), cell, "r1")}
    assert quick["baseline"].options.get("augmentation") == "dsa" and quick["set"].options == {}
    fixed = custom_preset_name(3, 300, "none")
    custom = {which: e for which, _, e in eval_specs(_tiny(eval_preset=fixed, eval_options={}), cell, "r1")}
    assert custom["set"].preset == custom["baseline"].preset == fixed
    assert "augmentation" not in custom["baseline"].options and custom["set"].options == {}
    dc = {w: e for w, _, e in eval_specs(_tiny(eval_preset=fixed, eval_options={}), Cell("mnist", "dc", 1, "quick", 0),
                                         "r2")}
    assert dc["baseline"].options == custom["baseline"].options == {}  # then DM's and DC's baselines are one evaluation
    auto = custom_preset_name(3, 300, "auto")  # 'auto': each set's own augmentation, so the baseline keeps DM's
    assert {w: e for w, _, e in eval_specs(_tiny(eval_preset=auto, eval_options={}), cell, "r1")}[
        "baseline"].options.get("augmentation") == "dsa"
    overridden = {w: e for w, _, e in eval_specs(_tiny(eval_preset=fixed, eval_options={"augmentation": "auto"}), cell,
                                                 "r1")}  # an option that puts 'auto' back: each set's own again
    assert overridden["set"].options == {"augmentation": "auto"}  # the set: DM's own, DSA
    assert overridden["baseline"].options.get("augmentation") == "dsa"  # the baseline: DM's too, not random's own


def test_asking_for_a_cluster_that_is_not_connected_says_so(tmp_path):
    manager = JobManager(Store(tmp_path / "s"))
    snap = manager.wait(manager.submit(_tiny(executor="ray")).id, 60)
    assert snap.status == "failed" and "not connected" in snap.message
    manager.shutdown()


def test_a_sweep_runs_every_cell_and_its_evaluations_into_the_store(tmp_path):
    store = Store(tmp_path / "s")
    manager = JobManager(store)
    spec = _tiny(methods=("dm", "random"), seeds=(0, 1))
    estimate = estimate_sweep(spec, store)
    # nothing measured in this store yet: distillation from the CPU table this repo's benchmark recorded (DM's quick
    # seconds per iteration, times the 3 iterations asked for, twice; random real's selection), evaluations unknown
    mnist = get_dataset_info("mnist")
    dm, random = cpu_estimate("dm", mnist, 1, 3, "quick"), cpu_estimate("random", mnist, 1, 1, "quick")
    assert dm is not None and random is not None
    assert estimate.distillations_s == pytest.approx(2 * (dm.seconds + random.seconds))
    assert estimate.from_table == ("DM mnist IPC 1 quick", "RANDOM mnist IPC 1 quick")
    assert estimate_sweep(dataclasses.replace(spec, executor="ray"), store).distillations_s is None  # not this CPU
    assert estimate.total_s is None and "evaluation of mnist IPC 1 on convnet (quick)" in estimate.unknown
    assert not any("DM" in u for u in estimate.unknown)
    job = manager.submit(spec)
    seen = []
    while not job.finished.is_set():
        detail = job.snapshot().detail
        if detail:
            seen.append(tuple(c.status for c in detail))
        time.sleep(0.1)
    snap = job.snapshot()
    assert snap.status == "done", snap.message
    cells = snap.result.cells
    assert len(cells) == 4 and all(c.status == "done" for c in cells)
    assert all(c.accuracy[0][0] == "convnet" and 0 <= c.accuracy[0][1] <= 100 for c in cells)
    assert any("distilling" in s for s in seen) and any("evaluating" in s or "done" in s for s in seen)
    runs = store.list_runs()
    assert sorted((r.method, r.seed) for r in runs) == [("dm", 0), ("dm", 1), ("random", 0), ("random", 1)]
    # one random-real baseline per seed and recipe, trained the way the cell's method's sets are (DD-Ranking's rule):
    # DM's with DSA, random's by its own protocol
    assert len({c.baseline for c in cells if c.cell.seed == 0}) == 2
    baselines = store.list_evaluations(kind="random")
    assert len(baselines) == 4
    assert sorted(e.result.config["augmentation"] for e in baselines if e.subject.seed == 0) == \
        sorted([own_augmentation("mnist", "dm"), own_augmentation("mnist", "random")])
    later = JobManager(store)  # the same grid after a restart: the stored sweep, nothing recomputed
    again = later.submit(spec)
    assert again.snapshot().reused and again.snapshot().result.cells == cells and len(store.list_runs()) == 4
    later.shutdown()
    measured = estimate_sweep(spec, store, parallel=2)
    assert measured.unknown == () and measured.total_s and measured.wall_s == pytest.approx(measured.total_s / 2)
    manager.shutdown()


def test_stopping_a_sweep_stops_its_jobs_and_keeps_what_finished(tmp_path):
    store = Store(tmp_path / "s")
    manager = JobManager(store)
    job = manager.submit(_tiny(seeds=(0, 1, 2, 3), overrides={"iterations": 400}))
    deadline = time.time() + 120
    while time.time() < deadline and not any(c.status == "distilling" and c.progress > 0
                                             for c in (job.snapshot().detail or ())):
        time.sleep(0.1)
    manager.stop(job.id)
    snap = manager.wait(job.id, 120)
    assert snap.status == "cancelled"
    assert all(c.status == "cancelled" for c in snap.detail)
    for child in manager.jobs():
        assert not child.snapshot().active
    statuses = {r.status for r in store.list_runs()}
    assert statuses <= {"stopped", "cancelled", "done"} and "stopped" in statuses  # a started set is kept, resumable
    assert not store.list_artefacts("sweep")  # no table is stored for a sweep that did not finish
    manager.shutdown()


def test_a_sweep_cut_by_a_server_shutdown_comes_back_and_adopts_its_runs(tmp_path):
    """A clean shutdown (SIGTERM) mid-sweep: at the next start the sweep is queued again, its started cells go on
    from their checkpoints and finished ones are adopted; no cell is distilled twice."""
    store = Store(tmp_path / "s")
    manager = JobManager(store)
    # 20 DM iterations of a width-32 ConvNet on 16 real images per class (~0.1 s each here), evaluated on the same
    # width: the shutdown, asked for at the first progress, cuts cell 0 mid-way (the default width and 64 real images
    # made this test 54 s of the suite)
    spec = _tiny(seeds=(0, 1), overrides={"iterations": 20, "batch_real": 16, "net_width": 32},
                 eval_architectures=("convnetw32",), device="cpu")  # a GPU would finish before the first poll
    job = manager.submit(spec)
    deadline = time.time() + 120
    while time.time() < deadline and not any(c.status == "distilling" and c.progress > 0
                                             for c in (job.snapshot().detail or ())):
        time.sleep(0.05)
    manager.shutdown(wait=30, keep_pending=True)
    assert len(store.list_runs()) >= 1 and not store.list_artefacts("sweep")
    cut = [r for r in store.list_runs() if r.status == "interrupted" and 0 < r.iteration < 20]
    assert cut, [(r.status, r.iteration) for r in store.list_runs()]  # a started cell the restart must go on with
    later = JobManager(store)
    report = later.restore_pending()
    assert any("queued again" in line for line in report), report
    sweep = next(j for j in later.jobs() if j.kind == "sweep")
    done = later.wait(sweep.id, 300)
    assert done.status == "done", done.message
    runs = store.list_runs()
    assert sorted(r.seed for r in runs) == [0, 1] and all(r.status == "done" for r in runs)  # none made twice
    assert all(c.status == "done" and c.accuracy for c in done.result.cells)
    later.shutdown()
