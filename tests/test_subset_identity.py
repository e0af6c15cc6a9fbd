"""Without a data root, CIFAR-10 comes from the embedded subset (500 train / 100 test images per class): what is
made from it (its ZCA, expert trajectories, feature and shadow networks, evaluations, studies) must not serve the
full data once that arrives under a data root. Before the variant mark, all of it was keyed by the name 'cifar10'
alone, so a user who started on the subset kept subset-fitted artefacts and results after adding the full data."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ddcore.data import load_dataset, loader, local_info, local_variant
from ddcore.data.info import BUILTIN_INFOS
from ddcore.data.split import LoadedDataset
from ddcore.methods.trajectory import expert_requirement
from ddcore.paths import REPO_DIR
from ddcore.platform.records import Subject
from ddcore.platform.store import Store
from ddcore.tasks.base import TaskContext
from ddcore.tasks.distill import DistillSpec, requirements
from ddcore.tasks.evaluate import EvalSpec, prepare_spec
from ddcore.tasks.experts import ExpertsSpec
from ddcore.tasks.privacy import PrivacySpec
from ddcore.tasks.study import mark_variants

SHARED = REPO_DIR.parent / "shared" / "datasets"
FULL = pytest.mark.skipif(not (SHARED / "cifar10-jpg.zip").is_file(), reason="needs the full CIFAR-10 zip")


@pytest.fixture
def subset_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """This machine as a new user's: no data root, no downloads, so CIFAR-10 is the embedded subset."""
    monkeypatch.setattr(loader, "default_data_roots", lambda: [])
    monkeypatch.setenv("DDCORE_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def full_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "default_data_roots", lambda: [SHARED])


def _subset() -> LoadedDataset:
    return load_dataset("cifar10", roots=[])


def test_the_subset_is_marked_and_keyed_apart_and_mnist_is_not() -> None:
    data = _subset()
    assert data.info.variant == "subset" and data.info.data_key == "cifar10-subset"
    assert data.info.data_source == {"variant": "subset"}
    assert data.info == BUILTIN_INFOS["cifar10"]  # the same dataset for every check of shape and classes
    assert BUILTIN_INFOS["cifar10"].data_key == "cifar10" and BUILTIN_INFOS["cifar10"].data_source == {}
    mnist = load_dataset("mnist", roots=[])  # the embedded MNIST is the whole dataset: nothing to mark
    assert mnist.info.variant is None and mnist.info.data_key == "mnist"


def test_a_run_planned_without_data_asks_for_the_subsets_experts(subset_only: None) -> None:
    assert local_variant("cifar10") == "subset" and local_variant("mnist") is None
    spec = DistillSpec(dataset="cifar10", method="mtt", ipc=1, preset="quick")
    (planned,) = requirements(spec)  # the queue's path: no data at hand
    (at_hand,) = requirements(spec, _subset().info)  # the CLI's path: the loaded data
    assert planned == at_hand and planned.as_dict()["variant"] == "subset"
    assert "(embedded subset)" in planned.label
    p = planned.as_dict()
    full = expert_requirement("cifar10", "convnet", p["experts"], p["epochs"], p["lr"], p["batch"], p["augmentation"],
                              p["zca"], p["per_class"], p["seed"])
    assert full.key() != planned.key()  # the full data's experts are other experts
    herding = DistillSpec(dataset="cifar10", method="herding", ipc=1, preset="quick")
    assert requirements(herding)[0].as_dict()["variant"] == "subset"


@FULL
def test_with_the_full_data_the_keys_stay_as_they_were_stored(full_data: None) -> None:
    assert local_variant("cifar10") is None and local_info("cifar10").data_key == "cifar10"
    (planned,) = requirements(DistillSpec(dataset="cifar10", method="mtt", ipc=1, preset="quick"))
    assert "variant" not in planned.as_dict() and "embedded" not in planned.label
    assert PrivacySpec(dataset="cifar10").shadow_requirement().as_dict().get("variant") is None


def test_an_artefact_task_refuses_the_other_variant(tmp_path: Path) -> None:
    """A job planned for the full data must not train on the subset and store the result under the full key (or the
    reverse): the data on the machine changed between planning and running."""
    store = Store(tmp_path / "store")
    try:
        ctx = TaskContext(store, recorder=None, control=None, data=_subset())  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="planned for the full data of CIFAR-10.*submit it again"):
            ctx.dataset_of(ExpertsSpec("cifar10"))
        assert ctx.dataset_of(ExpertsSpec("cifar10", variant="subset")).info.variant == "subset"
    finally:
        store.close()


@FULL
def test_an_evaluation_on_the_subset_is_not_served_for_the_full_data(subset_only: None, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path / "store")
    try:
        on_subset, _ = prepare_spec(EvalSpec(Subject.whole("cifar10"), seeds=1), store)
        assert on_subset.subject.variant == "subset" and "embedded subset" in on_subset.subject.label
        monkeypatch.setattr(loader, "default_data_roots", lambda: [SHARED])  # the full data has arrived
        on_full, _ = prepare_spec(EvalSpec(Subject.whole("cifar10"), seeds=1), store)
        assert on_full.subject.variant is None and on_full.key() != on_subset.key()
        assert on_full.subject.group != on_subset.subject.group  # their own rows on the results pages
    finally:
        store.close()


def test_studies_and_shadow_models_of_the_subset_are_kept_apart(subset_only: None) -> None:
    from ddcore.methods.base import Requirement

    study = Requirement.from_dict("privacy-study", {"dataset": "cifar10", "ipc": 1}, label="Privacy")
    marked = mark_variants(study)
    assert dict(marked.as_dict()["data_variants"]) == {"cifar10": "subset"} and marked.key() != study.key()
    assert mark_variants(marked) == marked  # once
    sweep = Requirement.from_dict("sweep", {"datasets": ("mnist", "cifar10")})
    assert dict(mark_variants(sweep).as_dict()["data_variants"]) == {"cifar10": "subset"}
    assert mark_variants(Requirement.from_dict("privacy-study", {"dataset": "mnist"})).as_dict().get("data_variants") \
        is None
    assert PrivacySpec(dataset="cifar10").shadow_requirement().as_dict()["variant"] == "subset"


def test_a_zca_file_fitted_on_other_data_of_the_name_is_refitted(tmp_path: Path) -> None:
    """ZCA files written before the key said which data (no record of what they were fitted on), or fitted on other
    data, are fitted again rather than served."""
    from ddcore.zca import ZCA, clear_zca_cache, get_zca

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, 12, generator=g), torch.randn(64, 12, generator=g) + 3.0
    ZCA.fit(a).save(tmp_path / "zca-cifar10-eps0.1.safetensors")  # an old file: no 'fitted_on'
    clear_zca_cache()
    calls: list[str] = []

    def fit_b() -> torch.Tensor:
        calls.append("b")
        return b

    got = get_zca("cifar10", fit_b, cache_dir=tmp_path, fitted_on="cifar10: 64 training images")
    assert calls == ["b"] and torch.allclose(got.mean, b.mean(0).to(got.mean.dtype), atol=1e-5)
    clear_zca_cache()
    again = get_zca("cifar10", fit_b, cache_dir=tmp_path, fitted_on="cifar10: 64 training images")
    assert calls == ["b"] and torch.equal(again.mean, got.mean)  # now recorded: read back, not refitted
    clear_zca_cache()
    get_zca("cifar10", fit_b, cache_dir=tmp_path, fitted_on="cifar10: 50000 training images")
    assert calls == ["b", "b"]


def test_a_cached_real_network_of_other_data_of_the_name_is_not_served(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """train_on_real's disk cache, filled under a name by other images (the subset, before its key said so), is
    trained again: the image counts it recorded do not match."""
    from ddcore.evaluation.reference import RealTraining, train_on_real

    monkeypatch.setenv("DDCORE_CACHE", str(tmp_path / "cache"))
    mnist = load_dataset("mnist", roots=[])
    few = LoadedDataset(mnist.info, mnist.train, mnist.test.subset_per_class(50), mnist.source)
    plan = RealTraining(name="variant-test", epochs=1, per_class=10, decay=False, test_limit=None)
    _, first = train_on_real("mnist", "convnet", plan, "cpu", data=few)
    assert first.test_images == 500
    served = train_on_real("mnist", "convnet", plan, "cpu", data=mnist, compute=False)
    assert served is None  # 500 test images recorded, 10,000 here: not this data's network
    assert train_on_real("mnist", "convnet", plan, "cpu", data=few, compute=False) is not None


def test_a_runs_results_on_the_subset_and_on_the_full_data_are_two_labelled_rows(tmp_path: Path) -> None:
    """The Evaluate page's rows: a run evaluated before and after the full data arrived shows both, the subset's
    labelled, rather than the newer silently replacing the older under one label."""
    from ddcore.results import collect, set_labels
    from ddcore.synthetic import SetMeta, SyntheticSet
    from tests.evalkit import stored_result

    store = Store(tmp_path / "store")
    try:
        run = store.create_run({"dataset": "cifar10", "method": "dm", "ipc": 1})
        meta = SetMeta(dataset="cifar10", method="dm", ipc=1, class_names=list(BUILTIN_INFOS["cifar10"].class_names),
                       mean=list(BUILTIN_INFOS["cifar10"].mean), std=list(BUILTIN_INFOS["cifar10"].std))
        store.save_set(run.id, SyntheticSet(torch.randn(10, 3, 32, 32), torch.arange(10), meta))
        fingerprint = store.get_run(run.id).fingerprint
        for variant, mean in (("subset", 30.0), (None, 40.0)):
            subject = Subject("run", "cifar10", run.id, 1, 0, fingerprint, 0, variant)
            spec = EvalSpec(subject, seeds=1)
            store.save_evaluation(spec.key(), subject, "convnet", "quick", 1, stored_result(mean, 0.0, [mean], "cifar10"))
        rows = collect(store, "cifar10")
        labels = set_labels(rows)
        assert len(rows) == 2 and len(set(labels.values())) == 2
        by_mean = {r.mean: labels[r.subject] for r in rows}
        assert by_mean[30.0] == "DM · IPC 1 (embedded subset)" and by_mean[40.0] == "DM · IPC 1"
    finally:
        store.close()


def test_the_board_keeps_the_subsets_row_apart_with_its_own_baseline() -> None:
    from ddcore.board import board_table, build_board
    from ddcore.results import ResultRow

    def row(kind: str, subject: str, mean: float, variant: str | None) -> ResultRow:
        return ResultRow(key=subject, subject=subject, kind=kind, label=subject, method="dm" if kind == "run" else kind,
                         dataset="cifar10", ipc=1, architecture="convnet", train_architecture="convnet", preset="quick",
                         n_seeds=2, mean=mean, std=1.0, accuracies=[mean - 1, mean + 1], variant=variant)

    rows = [row("run", "run:a:subset", 30.0, "subset"), row("run", "run:b", 40.0, None),
            row("random", "random:cifar10:1:subset", 20.0, "subset"), row("random", "random:cifar10:1", 25.0, None)]
    full, subset = build_board(rows, preset="quick")
    assert (full.variant, full.ours.mean, full.random.mean) == (None, 40.0, 25.0)
    assert (subset.variant, subset.ours.mean, subset.random.mean) == ("subset", 30.0, 20.0)
    assert [r["dataset"] for r in board_table([full, subset])] == ["cifar10", "cifar10 (embedded subset)"]


@FULL
def test_the_data_this_process_holds_decides_and_an_explicit_root_is_never_the_subset(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A data root added while a server runs: its plans follow the data it holds until it is restarted, so plans
    and data never split."""
    monkeypatch.setattr(loader, "default_data_roots", lambda: [])
    loader.clear_cache()
    try:
        assert load_dataset("cifar10").info.variant == "subset"
        monkeypatch.setattr(loader, "default_data_roots", lambda: [SHARED])  # the full data arrives
        assert local_variant("cifar10") == "subset"  # what this process holds
        loader.clear_cache()  # a restart
        assert local_variant("cifar10") is None
        assert local_variant("cifar10", root=SHARED) is None and local_info("cifar10", SHARED).data_key == "cifar10"
    finally:
        loader.clear_cache()


@FULL
def test_an_earlier_download_is_used_offline_as_planned(subset_only: None, tmp_path: Path) -> None:
    """`available` and the plans counted a download in the cache, but the loader only looked there after trying
    the network: offline it loaded the subset while the plans said full data."""
    downloads = tmp_path / "cache" / "downloads"
    downloads.mkdir(parents=True)
    (downloads / "cifar10-jpg.zip").symlink_to(SHARED / "cifar10-jpg.zip")
    loader.clear_cache()
    try:
        assert local_variant("cifar10") is None
        data = load_dataset("cifar10")
        assert data.info.variant is None and "download" in data.source and len(data.train) == 50_000
    finally:
        loader.clear_cache()


def test_jobs_planned_for_one_variant_refuse_the_other_when_they_run(subset_only: None, tmp_path: Path) -> None:
    """Planned in one process for the full data, run in one that holds the subset (a worker started before the data
    root was added): the evaluation and the distillation check the data they actually load against their plan."""
    from dataclasses import replace

    from ddcore.platform.recorder import EventControl, NullRecorder
    from ddcore.tasks.distill import DistillTask
    from ddcore.tasks.evaluate import EvaluateTask

    loader.clear_cache()
    store = Store(tmp_path / "store")
    try:
        assert load_dataset("cifar10").info.variant == "subset"  # what this process holds
        on_subset, _ = prepare_spec(EvalSpec(Subject.whole("cifar10"), seeds=1, preset="custom-e1-t100-none"), store)
        planned = replace(on_subset, subject=replace(on_subset.subject, variant=None))  # as the other process planned
        with pytest.raises(RuntimeError, match="no longer the data this evaluation was queued for"):
            EvaluateTask().run(planned, TaskContext(store, NullRecorder(), EventControl()))
        spec = DistillSpec(dataset="cifar10", method="herding", ipc=1, preset="quick", run_id="r1")
        (need,) = requirements(spec, BUILTIN_INFOS["cifar10"])  # the full data's network, as planned there
        record = store.put_artefact(need.key(), need.kind, need.label, need.as_dict())
        ctx = TaskContext(store, NullRecorder(), EventControl(), artefacts={need.kind: record})
        with pytest.raises(ValueError, match="planned for other CIFAR-10 data"):
            DistillTask().run(spec, ctx)
    finally:
        store.close()
        loader.clear_cache()


def test_an_old_feature_network_record_without_its_data_is_trained_again(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Herding's network (a few images per class, a test limit): the subset and the full data give the same image
    counts, so a record from before the data key was recorded cannot be told apart and is not served."""
    import json
    import shutil

    from ddcore.evaluation.reference import RealTraining, train_on_real

    monkeypatch.setenv("DDCORE_CACHE", str(tmp_path / "cache"))
    subset = _subset()
    as_full = LoadedDataset(BUILTIN_INFOS["cifar10"], subset.train, subset.test, "stand-in for the full data")
    plan = RealTraining(name="variant-test", epochs=1, per_class=5, decay=False, test_limit=100)
    train_on_real("cifar10", "convnet", plan, "cpu", data=subset)
    folder = tmp_path / "cache" / "reference"
    made = plan.key("cifar10-subset", "convnet")
    old = plan.key("cifar10", "convnet")  # where the code before the variant put the subset's network
    shutil.copy(folder / f"{made}.safetensors", folder / f"{old}.safetensors")
    record = json.loads((folder / f"{made}.percent.json").read_text())
    record["config"].pop("data_key")
    (folder / f"{old}.percent.json").write_text(json.dumps(record))
    assert train_on_real("cifar10", "convnet", plan, "cpu", data=as_full, compute=False) is None
    assert train_on_real("cifar10", "convnet", plan, "cpu", data=subset, compute=False) is not None
    _, fresh = train_on_real("cifar10", "convnet", plan, "cpu", data=as_full)
    assert fresh.config["data_key"] == "cifar10"
    assert train_on_real("cifar10", "convnet", plan, "cpu", data=as_full, compute=False) is not None


def test_a_store_written_before_the_variant_gives_the_subsets_things_their_keys(subset_only: None,
                                                                               tmp_path: Path) -> None:
    """Opening a version-2 store: artefacts and studies whose recorded source is the embedded subset move to the keys
    the planner now asks for the subset (their stored params carry extras, such as the experts' seconds); one whose
    subset key is taken already is retired; evaluations tested on the subset's 1,000 images get their own key and
    label; what came from the full data or the embedded (whole) MNIST keeps its key."""
    import sqlite3

    from ddcore.evaluation.result import EvalResult
    from ddcore.methods.base import Requirement
    from tests.evalkit import stored_result

    subset_source = "dataset:cifar10:embedded default: CIFAR-10 subset, 500 train / 100 test per class (assets/)"
    experts = expert_requirement("cifar10", "convnet", 3, 8, 0.01, 256, "none", True, 100, 0)
    full = expert_requirement("cifar10", "convnet", 3, 9, 0.01, 256, "none", True, 100, 0)
    on_mnist = expert_requirement("mnist", "convnet", 3, 8, 0.01, 256, "none", False, 100, 0)
    study = Requirement.from_dict("privacy-study", {"dataset": "cifar10", "ipc": 1, "methods": ["dm"]})
    twice = Requirement.from_dict("privacy-study", {"dataset": "cifar10", "ipc": 2, "methods": ["dm"]})
    store = Store(tmp_path / "store")
    try:
        rows = ((experts, subset_source), (full, "dataset:cifar10:cifar10-jpg zip in /data"),
                (on_mnist, "dataset:mnist:embedded default (assets/)"), (study, subset_source), (twice, subset_source),
                (mark_variants(twice), subset_source))  # made since 8eb678d beside the unmarked one
        for need, source in rows:
            store.artefact_dir(need.key()).mkdir(parents=True)
            (store.artefact_dir(need.key()) / "expert_000.safetensors").write_bytes(need.key().encode())
            extras = {"seconds": 12.5} if need.kind == "expert-trajectories" else {}  # as ExpertsTask stores them
            store.put_artefact(need.key(), need.kind, need.label or need.kind, {**need.as_dict(), **extras},
                               inputs=(source,))
        store.add_artefact_use(experts.key(), "run-1")

        def result(tested: int, **config) -> EvalResult:
            r = stored_result(30.0, 0.0, [30.0], "cifar10")
            return EvalResult.from_dict({**r.to_dict(), "test_images": tested, "config": config})

        subjects = {name: Subject.random("cifar10", 1, 0, name) for name in ("a", "b", "c", "d")}
        store.save_evaluation("e-subset", subjects["a"], "convnet", "quick", 1, result(1000, test_limit=2000))
        store.save_evaluation("e-full", subjects["b"], "convnet", "quick", 1, result(2000, test_limit=2000))
        store.save_evaluation("krr-full", subjects["c"], "convnet_krr", "quick", 1, result(2000))  # no test_limit
        store.save_evaluation("krr-subset", subjects["d"], "convnet_krr", "quick", 1, result(1000))
    finally:
        store.close()
    db = sqlite3.connect(tmp_path / "store" / "studio.sqlite3")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()

    store = Store(tmp_path / "store")
    try:
        planned = expert_requirement("cifar10", "convnet", 3, 8, 0.01, 256, "none", True, 100, 0, {"variant": "subset"})
        record = store.get_artefact(planned.key())  # the key a subset MTT run asks for now
        assert store.get_artefact(experts.key()) is None and record is not None
        assert (store.artefact_dir(planned.key()) / "expert_000.safetensors").read_bytes() == experts.key().encode()
        assert "(embedded subset)" in record.name
        uses = sqlite3.connect(tmp_path / "store" / "studio.sqlite3").execute("SELECT artefact FROM artefact_uses")
        assert [u[0] for u in uses.fetchall()] == [planned.key()]
        assert store.get_artefact(mark_variants(study).key()) is not None and store.get_artefact(study.key()) is None
        # the marked one made since stays; the unmarked one is retired where nothing asks for it
        kept = store.get_artefact(mark_variants(twice).key())
        assert kept is not None and (store.artefact_dir(kept.key) / "expert_000.safetensors").read_bytes() == \
            mark_variants(twice).key().encode()
        assert store.get_artefact(twice.key()) is None and store.get_artefact(f"{twice.key()}-subset") is not None
        assert store.get_artefact(full.key()) is not None and store.get_artefact(on_mnist.key()) is not None
        assert store.get_evaluation("e-subset") is None
        assert store.get_evaluation("e-subset-subset").subject.variant == "subset"
        assert store.get_evaluation("krr-subset-subset").subject.variant == "subset"
        assert store.get_evaluation("e-full").subject.variant is None
        assert store.get_evaluation("krr-full").subject.variant is None  # its limit, 2,000, is the quick preset's
    finally:
        store.close()


@FULL
def test_a_set_remembers_it_came_from_the_subset_and_studies_of_the_full_data_refuse_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A privacy study's members are drawn from the data it loads: a set distilled from the subset's members never
    saw the full data's, so attacking it there would report a leak (or none) about other images."""
    from ddcore.synthetic import SyntheticSet
    from ddcore.tasks.base import check_same_data

    store = Store(tmp_path / "store")
    try:
        run = store.create_run({"dataset": "cifar10", "method": "random", "ipc": 1})
        spec = DistillSpec(dataset="cifar10", method="random", ipc=1, device="cpu")
        from ddcore.tasks.distill import distil

        distil(spec, _subset(), store=store, run_id=run.id)
        made = store.load_set(run.id)
        assert made.meta.variant == "subset"
        made.save(tmp_path / "s.ddset")
        assert SyntheticSet.load(tmp_path / "s.ddset").meta.variant == "subset"
        assert made.meta.config["data_variant"] == "subset"  # in the config: earlier versions read the file too
        later = made.meta.to_dict() | {"a_field_from_a_later_version": 1}
        assert made.meta.__class__.from_dict(later) == made.meta  # and this version reads a later one's
        record = store.get_run(run.id)
        monkeypatch.setattr(loader, "default_data_roots", lambda: [])
        loader.clear_cache()
        check_same_data(store, record, "cifar10")  # a study on the subset may read it
        monkeypatch.setattr(loader, "default_data_roots", lambda: [SHARED])
        with pytest.raises(ValueError, match="distilled from the embedded subset of cifar10, and this study uses the "
                                             "full data"):
            check_same_data(store, record, "cifar10")
        older = store.create_run({"dataset": "cifar10", "method": "random", "ipc": 1})  # a set without the record
        store.save_set(older.id, SyntheticSet(made.images, made.labels, made.meta.__class__.from_dict(
            {**made.meta.to_dict(), "config": {}})))
        monkeypatch.setattr(loader, "default_data_roots", lambda: [])
        check_same_data(store, store.get_run(older.id), "cifar10")  # on the subset, as it most likely was: allowed
    finally:
        store.close()
        loader.clear_cache()
