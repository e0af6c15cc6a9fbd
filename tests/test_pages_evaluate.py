"""The Evaluate page's controls (AppTest): start evaluations as jobs, see them stored, re-open the page
and find them again without recomputing, and the explorer/export tabs."""
from __future__ import annotations

import json
import os

import pytest
from streamlit.testing.v1 import AppTest

from ddcore.platform.records import Subject
from ddcore.platform.store import Store
from tests.apptest_kit import opened
from tests.conftest import ROOT
from tests.evalkit import TINY, key_of, make_runs, tiny_preset, wait_for_keys

PAGE = str(ROOT / "pages" / "evaluate.py")
ARCHS = ["convnet", "mlp"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory):
    """A home of its own (so the job manager and the counts here are this module's), with two stored runs."""
    root = tmp_path_factory.mktemp("evaluate-page")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DDCORE_HOME", str(root))
        run_ids = make_runs(Store(root))
        yield root, run_ids


def _open(**state) -> AppTest:
    return opened("evaluate.py", **state)


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def test_page_lists_stored_runs_and_counts_the_work(home) -> None:
    root, run_ids = home
    assert os.environ["DDCORE_HOME"] == str(root)
    at = _open()
    sets = at.multiselect(key="eval_sets_mnist")
    assert sets.value == [run_ids[-1]]  # the newest run is chosen by default
    assert sets.options == [sets.format_func(i) for i in reversed(run_ids)]  # both stored runs, newest first
    assert "2 sets × 1 architecture = 2 evaluations: 0 already stored (reused), 2 to compute" in _captions(at)
    assert any("No stored evaluations" in i.value for i in at.info)
    # the suite button fills the architectures
    at.button(key="eval_suite_btn").click().run()
    assert at.multiselect(key="eval_archs").value == ["convnet", "mlp", "lenet", "alexnet", "vgg11", "resnet18"]
    # a custom preset shows its fields and its self-describing name
    at = _open(eval_preset="custom")
    assert at.number_input(key="eval_custom_epochs").value == 20
    assert "custom-e20-t1000-none" in "\n".join(m.value for m in at.caption)


def test_evaluate_stores_and_reopening_reuses(home) -> None:
    root, run_ids = home
    subjects = [Subject.run(i) for i in run_ids] + [Subject.random("mnist", 1, 0)]
    at = _open(eval_preset="custom", eval_custom_epochs=TINY["epochs"], eval_custom_test=TINY["test_limit"],
               eval_custom_aug=TINY["augmentation"])
    at.multiselect(key="eval_sets_mnist").set_value(run_ids)
    at.multiselect(key="eval_archs").set_value(ARCHS)
    at.run()
    assert "3 sets × 2 architectures = 6 evaluations: 0 already stored (reused), 6 to compute" in _captions(at)
    at.button(key="eval_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    keys = [key_of(Store(root), s, a, tiny_preset()) for s in subjects for a in ARCHS]
    store = wait_for_keys(root, keys)
    before = {e.key: e.created for e in store.list_evaluations()}
    assert set(keys) <= set(before)

    # Re-open the page: the plots show the stored numbers, nothing is recomputed.
    at = _open(eval_preset="custom", eval_custom_epochs=TINY["epochs"], eval_custom_test=TINY["test_limit"],
               eval_custom_aug=TINY["augmentation"], eval_sets_mnist=run_ids, eval_archs=ARCHS)
    assert "6 evaluations: 6 already stored (reused), 0 to compute" in _captions(at)
    heat = next(c for c in _charts(at) if c["data"][0]["type"] == "heatmap")
    assert heat["data"][0]["x"] == ARCHS
    stored = {(e.subject, e.architecture): e.mean for e in store.list_evaluations()}
    z = [v for row in heat["data"][0]["z"] for v in row]
    assert sorted(z) == pytest.approx(sorted(stored.values()))
    at.button(key="eval_start").click().run()  # evaluating again reuses every stored result
    assert not at.exception
    after = {e.key: e.created for e in Store(root).list_evaluations()}
    assert after == before


def test_results_explorer_and_export_tabs(home) -> None:
    root, _ = home
    at = _open()
    assert at.selectbox(key="eval_view_preset_mnist").value == tiny_preset()
    assert at.selectbox(key="eval_ipc_arch_mnist").value == "convnet"
    ipc = next(c for c in _charts(at) if c.get("layout", {}).get("xaxis", {}).get("type") == "log"
               and any(t.get("name", "").endswith("(measured)") for t in c["data"]))
    names = {t["name"] for t in ipc["data"] if t.get("name")}
    assert {"DM (measured)", "random real (measured)", "DM (published)"} <= names
    # detail selector: switching the evaluation redraws per-class/confusion/curves without error
    at.selectbox(key="eval_detail_mnist").select_index(0).run()
    assert not at.exception, [e.value for e in at.exception]
    chosen = at.selectbox(key="eval_detail_mnist")
    assert chosen.value == chosen.options[0]
    label, arch = chosen.value.rsplit(" on ", 1)
    assert f"evaluated on {arch}" in _captions(at) and f"Training curves of the 1 {arch} network" in _captions(at)
    # published explorer: only rows we measured too
    at.checkbox(key="pub_only_ours").check().run()
    table = at.dataframe[0].value
    assert len(table) >= 1 and table["ours_mean"].notna().all()
    assert set(table["dataset"]) == {"mnist"}
    # export tab: CSV/JSON/markdown are offered, markdown shows the summary table
    assert "| set | convnet | mlp |" in "\n".join(c.value for c in at.code)
    labels = [b.proto.label for b in at.get("download_button")]
    assert {"Results (CSV)", "Results with full records (JSON)", "Summary (Markdown)"} <= set(labels)


def test_a_running_evaluation_shows_progress_and_cancels(home) -> None:
    root, run_ids = home
    from app.state import studio

    # The paper preset on ConvNet takes minutes on a CPU: long enough to cancel it from the page.
    at = _open(eval_preset="paper", eval_sets_mnist=run_ids[:1], eval_archs=["convnet"], eval_random=False)
    assert "1 set × 1 architecture = 1 evaluation: 0 already stored (reused), 1 to compute" in _captions(at)
    at.button(key="eval_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    cancel = [b for b in at.button if (b.key or "").startswith("eval_cancel_")]
    assert len(cancel) == 1
    job_id = cancel[0].key.removeprefix("eval_cancel_")
    assert studio().job(job_id) is not None  # the page and this test share the server's Studio
    cancel[0].click().run()
    snap = studio().manager.wait(job_id, 120)
    assert snap.status == "cancelled"
    assert not [e for e in Store(root).list_evaluations() if e.preset == "paper"]  # nothing half-done is stored
    at.run()
    assert "cancelled" in "\n".join(m.value for m in at.markdown)


def test_kernel_ridge_regression_is_offered_beside_trained_networks(home) -> None:
    """'ConvNet KRR' evaluates a set with no training (the kernel methods' second number), is stored like any
    evaluation, and is compared with the papers' KRR rows (architecture convnet_krr). Both score the preset's test
    images (here a custom preset's 300; quick's 2,000, paper's all)."""
    root, run_ids = home
    at = _open(eval_sets_mnist=run_ids[:1], eval_random=False, eval_preset="custom", eval_custom_epochs=TINY["epochs"],
               eval_custom_test=TINY["test_limit"], eval_custom_aug=TINY["augmentation"])
    arch = at.multiselect(key="eval_archs")
    assert {"ConvNet KRR (kernel)", "Wide FC network (KIP's)", "Wide ConvNet (RFAD's)"} <= set(arch.options)
    arch.set_value(["convnet_krr", "fc_wide"])
    at.run()
    at.button(key="eval_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    subject = Subject.run(run_ids[0])
    store = wait_for_keys(root, [key_of(Store(root), subject, a, tiny_preset()) for a in ("convnet_krr", "fc_wide")],
                          timeout=180)
    record = next(e for e in store.list_evaluations() if e.architecture == "convnet_krr")
    assert 0 < record.mean <= 100 and record.result.preset == "krr" and record.result.train_time_s == 0.0
    assert record.result.test_images == TINY["test_limit"]
    assert "random-feature NNGP" in record.result.config["kernel"] and record.result.device.startswith("cpu (")  # not auto
    # KIP's finite network: its own recipe, trained until it fits the set, tested on the preset's test images
    wide = next(e for e in store.list_evaluations() if e.architecture == "fc_wide")
    assert 10 < wide.mean <= 100 and wide.result.test_images == TINY["test_limit"] and wide.result.config["width"] == 1024
    assert wide.result.device.startswith("cpu (") and wide.result.class_names[:2] == ["0", "1"]
    assert max(wide.result.config["final_losses"]) < 1e-3 and "centred at initialisation" in wide.result.config["network"]
    losses = wide.result.curves["loss_0"]  # drawn like any network's training curve: the fit of the set, step by step
    assert len(losses) == 100 and losses[0] > 100 * losses[-1] and wide.result.curves["train_acc_0"][-1] == 100.0
    assert sum(map(sum, wide.result.confusion)) == TINY["test_limit"] and len(wide.result.per_class_accuracy) == 10


def test_dds_replayed_schedule_is_offered_for_dd_sets_and_their_random_baseline(home) -> None:
    """DD's own evaluation from the page: a DD set replays its learned steps, the random real baseline replays that
    set's schedule (DD-Ranking's same-protocol rule), a DM set is not replayed; both results are stored."""
    from ddcore.tasks.evaluate import EvalSpec, prepare_spec

    root, run_ids = home
    dd_run = make_runs(Store(root), ("dd",), prefix="replay")[0]
    at = _open(eval_sets_mnist=[dd_run, run_ids[-1]], eval_archs=["dd_replay"], eval_random=True, eval_preset="custom",
               eval_custom_epochs=TINY["epochs"], eval_custom_test=TINY["test_limit"], eval_custom_aug=TINY["augmentation"])
    archs = at.multiselect(key="eval_archs")
    assert "DD's learned schedule (replayed)" in [archs.format_func(a) for a in archs.options]
    assert ("3 sets × 1 architecture, DD's schedule replayed where it applies: 2 evaluations, 0 already stored "
            "(reused), 2 to compute") in _captions(at) and at.button(key="eval_start").label == "Run 2 evaluations"
    at.button(key="eval_start").click().run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    random_spec = EvalSpec(Subject.random("mnist", 1, 0), "dd_replay", tiny_preset(), options={"schedule_of": dd_run})
    keys = [key_of(Store(root), Subject.run(dd_run), "dd_replay", tiny_preset()),
            prepare_spec(random_spec, Store(root))[0].key()]
    store = wait_for_keys(root, keys, timeout=120)
    own, baseline = (store.get_evaluation(k).result for k in keys)
    dd_set = store.load_set(dd_run)
    assert own.config["steps"] == len(dd_set.meta.config["learned_step_sizes"]) == baseline.config["steps"]
    assert baseline.config["schedule_of"] == dd_run and "schedule_of" not in own.config
    assert 0 < own.mean <= 100 and own.test_images == TINY["test_limit"] == sum(map(sum, own.confusion))
    from ddcore.results import collect  # the baseline's row names whose schedule it replayed, as the DD row its run

    labels = {r.label for r in collect(store) if r.architecture == "dd_replay"}
    assert labels == {f"DD · IPC 1 · {dd_run[-4:]}", f"random real · IPC 1 · DD schedule · {dd_run[-4:]}"}, labels
    at.run()  # the Results tab details a replay: its per-class accuracy and confusion, and no empty curve chart
    at.selectbox(key="eval_view_preset_mnist").set_value(tiny_preset()).run()
    detail = at.selectbox(key="eval_detail_mnist")
    detail.set_value(next(o for o in detail.options if o.endswith(" on dd_replay"))).run()
    assert not at.exception and "No training curves stored for this evaluation." in _captions(at)
    from ddcore.tasks.evaluate import EvaluateTask  # the schedule's run travels with the job (a cluster worker's copy)

    prepared = EvaluateTask().prepare(random_spec, Store(root))
    assert prepared.run_id is None and EvaluateTask().other_runs_read(prepared.spec) == (dd_run,)
    with pytest.raises(ValueError, match="evaluates DD sets: .* is a DM set"):
        prepare_spec(EvalSpec(Subject.run(run_ids[-1]), "dd_replay", "quick"), Store(root))
    with pytest.raises(ValueError, match="at IPC 1, the random real set mnist at IPC 2"):
        prepare_spec(EvalSpec(Subject.random("mnist", 2, 0), "dd_replay", "quick", options={"schedule_of": dd_run}),
                     Store(root))
    Store(root).delete_run(dd_run)  # its baseline's row goes with it (its stored result stays, keyed to that run)
    assert not [r for r in collect(Store(root)) if r.architecture == "dd_replay"]


def test_krr_refuses_a_support_set_too_large_for_its_kernel(home) -> None:
    from ddcore.tasks.evaluate import EvalSpec, prepare_spec

    root, _ = home
    with pytest.raises(ValueError, match="whole training set"):
        prepare_spec(EvalSpec(Subject.whole("mnist"), architecture="convnet_krr"), Store(root))
    with pytest.raises(ValueError, match="5,000"):
        prepare_spec(EvalSpec(Subject.random("mnist", 600, 0), architecture="convnet_krr"), Store(root))
    assert prepare_spec(EvalSpec(Subject.random("mnist", 1, 0), architecture="convnet_krr"), Store(root))[0].seeds


def test_random_real_can_be_trained_like_a_methods_sets(home) -> None:
    """DD-Ranking's fair baseline from the page: random real trained the way FRePo's sets are (Adam on a ConvNet
    without norm), stored beside random real's own protocol and labelled so the two are told apart."""
    root, _ = home
    frepo_run = make_runs(Store(root), ("frepo",), prefix="fair")[0]
    at = _open(eval_preset="custom", eval_custom_epochs=TINY["epochs"], eval_custom_test=TINY["test_limit"],
               eval_custom_aug=TINY["augmentation"])
    at.multiselect(key="eval_sets_mnist").set_value([frepo_run])
    at.run()
    like = at.selectbox(key="eval_random_like")
    assert like.options == [like.format_func("random"), like.format_func("frepo")]
    like.set_value("frepo").run()
    at.button(key="eval_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    from ddcore.tasks.evaluate import EvalSpec, prepare_spec

    spec = EvalSpec(Subject.random("mnist", 1, 0), "convnet", tiny_preset(),
                    options={"optimizer": "adam", "convnet_norm": "none"})  # the custom preset keeps its augmentation
    key = prepare_spec(spec, Store(root))[0].key()
    store = wait_for_keys(root, [key])
    config = store.get_evaluation(key).result.config
    assert (config["optimizer"], config["convnet_norm"], config["augmentation"]) == ("adam", "none", "none")
    # a FRePo run's own evaluations are keyed by its recipe (one stored before the recipe existed is not reused)
    assert prepare_spec(EvalSpec(Subject.run(frepo_run), "convnet", "quick"), Store(root))[0].options == {
        "optimizer": "adam", "convnet_norm": "none"}
    at = _open(eval_view_preset_mnist=tiny_preset())
    labels = at.selectbox(key="eval_detail_mnist").options
    assert any(label.startswith("random real · IPC 1 · Adam, no norm") for label in labels), labels
