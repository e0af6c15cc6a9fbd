"""AppTest for the Studio pages' controls: Distill (settings, Start/Pause/Step/Resume, results, failures),
Gallery (filters, open, downloads, rename, delete) and Compare (selection from the URL)."""
from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

import tests.tiny_method  # noqa: F401  (registers 'tinypull': a fast real method for UI tests)
from ddcore.data import load_dataset
from ddcore.platform.queue import JobManager
from ddcore.platform.records import Subject
from ddcore.platform.store import Store
from ddcore.tasks.distill import DistillSpec
from tests.apptest_kit import ok, page
from tests.conftest import ROOT
from tests.evalkit import make_runs, store_result, stored_result

PAGES = ROOT / "pages"


def texts(at: AppTest) -> str:
    return " ".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.error]
                    + [i.value for i in at.info])


def image_captions(at: AppTest) -> list[str]:
    return [img.caption for el in at.get("image") for img in el.proto.imgs]


def poll(at: AppTest, until, timeout: float = 90.0, every: float = 0.3) -> AppTest:
    deadline = time.monotonic() + timeout
    while True:
        ok(at.run())
        if until(at):
            return at
        if time.monotonic() > deadline:
            raise TimeoutError(texts(at)[-800:])
        time.sleep(every)


@pytest.fixture(scope="module", autouse=True)
def own_home(tmp_path_factory):
    """This module counts runs, so it gets a store of its own (other modules' runs would leak in)."""
    import os

    before = os.environ["DDCORE_HOME"]
    os.environ["DDCORE_HOME"] = str(tmp_path_factory.mktemp("studio-pages-home"))
    yield
    os.environ["DDCORE_HOME"] = before


@pytest.fixture(scope="module")
def manager(own_home):
    m = JobManager(Store())  # the same home as the pages' manager: a second server on one store
    yield m
    m.shutdown(wait=10)


@pytest.fixture(scope="module")
def finished_runs(manager):
    """Three small finished runs (two methods' worth of settings) for the Gallery and Compare."""
    data = load_dataset("mnist")
    jobs = [manager.submit(DistillSpec(dataset="mnist", method="tinypull", ipc=ipc, seed=seed,
                                       overrides={"iterations": 4}, device="cpu", evaluate_after=False), data=data)
            for ipc, seed in ((2, 0), (3, 1), (2, 2))]
    ids = [manager.wait(j.id, 60).run_id for j in jobs]
    store_result(manager.store, Subject.run(ids[0]), stored_result(61.5, 1.2, [60.3, 62.7]))
    return ids


def test_distill_defaults_show_dm_on_mnist(manager) -> None:
    at = ok(page("distill.py").run())
    assert at.selectbox(key="distill_dataset").value == "mnist"
    assert at.selectbox(key="distill_method").value == "dm"
    assert at.number_input(key="distill_ipc").value == 10
    # The default is made for watching: the live preset, from noise; a method without it falls back to quick.
    assert at.session_state["distill_preset"] == "live" and at.session_state["distill_init"] == "noise"
    body = texts(at)
    assert "trades accuracy for something to watch" in body
    at.selectbox(key="distill_method").set_value("dc")
    ok(at.run())
    assert at.session_state["distill_preset"] == "quick" and at.session_state["distill_init"] == "real"
    at.selectbox(key="distill_method").set_value("dm")
    ok(at.run())
    at.segmented_control(key="distill_preset").set_value("quick")
    ok(at.run())
    assert at.session_state["distill_init"] == "real"  # quick starts from real images, as the paper does
    body = texts(at)
    assert "Distribution Matching" in body and "WACV 2023" in body and "arxiv.org/abs/2110.04181" in body
    assert "100 synthetic images" in body
    assert any(b.label.endswith("Start") for b in at.button)
    assert at.query_params["method"] == "dm"
    # Custom preset exposes the method's hyperparameters.
    at.session_state["distill_preset"] = "custom"
    ok(at.run())
    labels = [n.label for n in at.number_input]
    assert "iterations" in labels and "lr_img" in labels


def test_distill_url_sets_the_choices() -> None:
    at = ok(page("distill.py", dataset="fashionmnist", ipc="3").run())
    assert at.selectbox(key="distill_dataset").value == "fashionmnist"
    assert at.number_input(key="distill_ipc").value == 3
    at = ok(page("distill.py", dataset="not-a-dataset", ipc="x").run())  # bad URL values fall back to defaults
    assert at.selectbox(key="distill_dataset").value == "mnist" and at.number_input(key="distill_ipc").value == 10


def _tiny_settings(at: AppTest, **fields) -> AppTest:
    at.session_state["distill_method"] = "tinypull"
    at.session_state["distill_ipc"] = 2
    at.session_state["distill_preset"] = "custom"
    ok(at.run())
    for name, value in fields.items():
        at.number_input(key=f"distill_cfg_tinypull_{name}").set_value(value)
    return ok(at.run())


@pytest.mark.slow
def test_distill_start_pause_step_resume_finish(manager) -> None:
    from app.state import studio

    at = _tiny_settings(page("distill.py"), iterations=12, sleep_s=0.25)
    at.button(key="distill_start").click()
    ok(at.run())
    run_id = at.session_state["distill_run"]
    assert run_id and at.query_params["run"] in (run_id, [run_id])
    poll(at, lambda a: len(a.get("image")) >= 2 and len(a.get("progress")) >= 1)
    assert "What you are seeing: one row per class, its 2 synthetic images" in texts(at)
    poll(at, lambda a: any(b.label.endswith("Pause") for b in a.button))
    at.button(key="ctl_pause").click()
    poll(at, lambda a: any(b.label.endswith("Resume") for b in a.button))
    pages_manager = studio().manager
    job = pages_manager.job_for_run(run_id)
    poll(at, lambda a: job.holding)  # the iteration in flight has finished
    held = job.snapshot().iteration
    at.button(key="ctl_step").click()
    poll(at, lambda a: job.snapshot().iteration == held + 1 and job.holding)
    assert job.snapshot().status == "paused"
    at.button(key="ctl_resume").click()
    poll(at, lambda a: job.snapshot().status == "done", timeout=60)
    at = poll(at, lambda a: any(m.label == "Published" for m in a.metric))
    assert at.get("plotly_chart"), "the loss curve is drawn"
    # The quick evaluations were queued; stop them (they cost minutes) and store results to display.
    for follow in job.snapshot().followups:
        pages_manager.stop(follow)
    store = pages_manager.store
    record = store.get_run(run_id)
    store_result(store, Subject.run(run_id), stored_result(70.0, 0.0, [70.0]))
    store_result(store, Subject.random("mnist", 2, 0), stored_result(55.0, 0.0, [55.0]))
    at = poll(at, lambda a: {m.label: m.value for m in a.metric}.get("This set") == "70.0 %")
    values = {m.label: m.value for m in at.metric}
    assert values["Random real"] == "55.0 %" and "one network" in texts(at) and "± 0.0" not in texts(at)
    assert "the set at iteration 12" in texts(at)
    assert record.status == "done" and len(store.frame_iterations(run_id)) >= 2
    # The timelapse scrubs over the stored snapshots.
    slider = at.slider[0]
    assert slider.min == 1 and slider.value == slider.max  # counted from 1; at the newest snapshot
    slider.set_value(1)
    ok(at.run())
    assert any(c.startswith("Iteration 0 ") for c in image_captions(at)), image_captions(at)


def test_the_start_beside_the_press_start_box_runs_the_settings_and_the_last_run_reopens(manager) -> None:
    """With no run shown, the wide column offers Start (at 1280 x 720 the form's own is below the fold) and the
    method's explanation; it starts the settings on the left; back on an empty panel, the run is one click away."""
    at = _tiny_settings(page("distill.py"), iterations=3)
    at.button(key="distill_start_here").click()
    ok(at.run())
    run_id = at.session_state["distill_run"]
    assert run_id and not at.get("stException")
    from app.state import studio

    assert studio().run(run_id).method == "tinypull" and studio().run(run_id).ipc == 2
    job = studio().manager.job_for_run(run_id)
    poll(at, lambda a: job.snapshot().status == "done", timeout=60)  # its follow-ups are queued by then
    for follow in job.snapshot().followups:  # its quick evaluations cost minutes: not this test's subject
        studio().manager.stop(follow)
    at.session_state["distill_run"] = None  # a new visit to the page
    ok(at.run())
    last = at.button(key="open_last_run")
    assert last.label.startswith("Open the last run: ") and last.label.endswith("(done)"), last.label
    last.click()
    ok(at.run())
    assert at.session_state["distill_run"] == run_id


def test_distill_failure_is_shown_not_crashed() -> None:
    at = _tiny_settings(page("distill.py"), iterations=6, diverge_at=2)
    at.button(key="distill_start").click()
    ok(at.run())
    at = poll(at, lambda a: any("DivergenceError" in e.value for e in a.error), timeout=60)
    assert any(b.label.startswith("▶ Resume") for b in at.button)  # a failed run keeps its last good set


def test_gallery_filters_open_rename_delete(finished_runs) -> None:
    at = ok(page("gallery.py").run())
    assert "runs" in texts(at) and len(at.get("image")) >= 3
    at.selectbox(key="gallery_ipc").set_value(3)
    ok(at.run())
    assert at.query_params["ipc"] in ("3", ["3"])
    assert "1 of" in texts(at)
    at = ok(page("gallery.py", run=finished_runs[0]).run())
    assert at.subheader[0].value == "TINYPULL · MNIST · IPC 2"
    assert any(c.startswith("All 20 images") for c in image_captions(at))
    assert [b.label[:12] for b in at.get("download_button")] == ["⬇ Grid PNG", "⬇ Images (zi", "⬇ Set file (", "⬇ Tensors fo"]
    at.text_input(key=f"name_{finished_runs[0]}").set_value("Pulled digits")
    at.button[[b.label for b in at.button].index("Rename")].click()  # the form's submit button
    ok(at.run())
    assert Store().get_run(finished_runs[0]).name == "Pulled digits"
    # Delete needs the confirmation box ticked.
    victim = finished_runs[2]
    at = ok(page("gallery.py", run=victim).run())
    assert at.button(key=f"delete_{victim}").disabled
    at.checkbox(key=f"confirm_{victim}").check()
    ok(at.run())
    at.button(key=f"delete_{victim}").click()
    ok(at.run())
    assert Store().get_run(victim) is None


def test_compare_from_the_url(finished_runs) -> None:
    a, b = finished_runs[0], finished_runs[1]
    at = ok(page("compare.py", runs=f"{a},{b}").run())
    assert at.multiselect(key="compare_runs").value == [a, b]
    assert len(at.get("image")) == 1  # one aligned image: real reference + both runs
    values = [m.value for m in at.metric]
    assert "61.5 ± 1.2 %" in values and "—" in values
    at = ok(page("compare.py", runs=f"{a},does-not-exist").run())
    assert any("does-not-exist" in w.value for w in at.warning)
    assert any("at least two" in i.value for i in at.info)
    at = ok(page("compare.py", runs=f"{a},{a},{b},{a}").run())  # a hand-edited link repeating a run
    assert at.multiselect(key="compare_runs").value == [a, b]
    assert len(at.get("image")) == 1


def test_timelapse_keeps_the_chosen_snapshot_when_a_new_one_arrives(finished_runs) -> None:
    """A live run adds snapshots while someone scrubs: their position stays; at the right end it follows."""
    store = Store()
    run_id = finished_runs[1]
    at = page("distill.py", run=run_id)
    at.session_state["distill_run"] = run_id
    ok(at.run())
    first = store.frame_iterations(run_id)
    assert len(first) >= 2
    at.slider[0].set_value(1)
    ok(at.run())
    assert any(c.startswith(f"Iteration {first[0]:,} ") for c in image_captions(at))
    images, labels = store.load_frame(run_id, first[-1])
    store.add_frame(run_id, first[-1] + 100, images, labels)  # what a live run does
    ok(at.run())
    assert at.slider[0].max == len(first) + 1  # the scrubber grew ...
    assert any(c.startswith(f"Iteration {first[0]:,} ") for c in image_captions(at))  # ... and stayed put
    at.slider[0].set_value(len(first) + 1)
    ok(at.run())
    store.add_frame(run_id, first[-1] + 200, images, labels)
    ok(at.run())
    assert any(c.startswith(f"Iteration {first[-1] + 200:,} ") for c in image_captions(at))  # following the newest


def test_a_dm_set_is_shown_beside_random_real_trained_like_dm_sets(own_home) -> None:
    """DD-Ranking's rule on the Distill page: a DM set's random-real baseline is trained with DM's augmentation (DSA),
    and where random real's own protocol (DC augmentation) was measured too, both are shown; a finished run queues
    that fair baseline, not the other."""
    from ddcore.evaluation.protocol import trained_like
    from ddcore.tasks.distill import distil

    store = Store()
    run_id = make_runs(store, methods=("dm",), ipc=1)[0]
    like = trained_like("dm", "mnist")
    assert like["augmentation"] == "dsa"
    store_result(store, Subject.run(run_id), stored_result(80.0, 0.0, [80.0]))
    at = page("distill.py", run=run_id)
    at.session_state["distill_run"] = run_id
    at = poll(at, lambda a: {m.label: m.value for m in a.metric}.get("This set") == "80.0 %")
    assert {m.label: m.value for m in at.metric}["Random real"] == "—"  # the fair baseline is not measured yet
    store_result(store, Subject.random("mnist", 1, 0), stored_result(58.0, 0.0, [58.0]))  # random's own protocol
    ok(at.run())
    assert {m.label: m.value for m in at.metric}["Random real"] == "—"  # ... and is not stood in for
    store_result(store, Subject.random("mnist", 1, 0), stored_result(61.0, 0.0, [61.0]), options=like)
    ok(at.run())
    assert {m.label: m.value for m in at.metric}["Random real"] == "61.0 %"
    words = texts(at)
    assert "1 real image per class, trained like DM sets: DSA augmentation" in words and "By random real's own protocol: 58.0 %" in words
    # the evaluations a finished DM run queues: its set, and random real trained like it
    spec = DistillSpec(dataset="mnist", method="dm", ipc=1, overrides={"iterations": 1}, device="cpu")
    _, outcome = distil(spec, load_dataset("mnist"), store=store, run_id=store.create_run(spec.stored(), status="queued").id)
    assert [f.subject.kind for f in outcome.followups] == ["run", "random"]
    assert outcome.followups[1].options == like


def test_timelapse_draws_a_rewritten_snapshot_anew(finished_runs) -> None:
    """What the timelapse draws from a snapshot is shared by every tab (app/live_cache) under the snapshot's
    version: a resumed run writing that iteration again is shown as it is now, not as first drawn."""
    store = Store()
    run_id = finished_runs[1]
    at = page("distill.py", run=run_id)
    at.session_state["distill_run"] = run_id
    ok(at.run())
    newest = store.frame_iterations(run_id)[-1]

    def snapshot_urls(app: AppTest) -> dict[str, str]:  # caption -> media URL (Streamlit names media by content)
        return {img.caption: img.url for el in app.get("image") for img in el.proto.imgs
                if img.caption.startswith((f"Iteration {newest:,} ", "Synthetic '"))}

    before = snapshot_urls(ok(at.run()))
    assert len(before) == 2, before  # the whole snapshot, and its first class beside the real images
    assert snapshot_urls(ok(at.run())) == before  # drawn again, nothing changed: the same pictures
    images, labels = store.load_frame(run_id, newest)
    store.add_frame(run_id, newest, 255 - images, labels)  # the same iteration written again, other pixels
    after = snapshot_urls(ok(at.run()))
    assert after.keys() == before.keys() and all(after[k] != before[k] for k in before), (before, after)
    # The change view, shared the same way, compares the rewritten snapshot with the first one
    at.segmented_control(key="tl_mode").set_value("Change since the start")
    ok(at.run())
    assert any(c.startswith("Change from iteration 0 to ") for c in image_captions(at)), image_captions(at)
    assert "Mean change per pixel" in texts(at)


def test_distill_explains_the_method_with_its_equation_and_offers_presenter_mode() -> None:
    at = ok(page("distill.py").run())
    latex = [e.value for e in at.get("latex")] if hasattr(at, "get") else []
    assert any(r"\psi_\theta" in v for v in latex), latex  # DM's objective, as an equation
    assert "shared random augmentation" in texts(at)  # what its symbols are
    assert any(b.label == "Presenter mode" for b in at.button)
    at.button(key="enter_present").click()
    ok(at.run())
    assert at.query_params["present"] in ("1", ["1"])
    at = ok(page("distill.py", present="1").run())
    assert any(b.label == "Leave presenter mode" for b in at.button)
    assert not any(b.label == "Presenter mode" for b in at.button)
    assert any(b.label.endswith("Start") for b in at.button)  # still startable, settings folded away
    assert any("Open **Settings** and press **Start**" in i.value for i in at.info)  # and it says where Start is


def test_the_paper_preset_on_a_cpu_warns_with_its_estimated_time() -> None:
    at = ok(page("distill.py", dataset="cifar10").run())
    at.segmented_control(key="distill_preset").set_value("paper")
    ok(at.run())
    warning = " ".join(w.value for w in at.warning)
    assert "20,000 iterations" in warning and "about **" in warning and "h " in warning, warning  # DM: ~19 h
    at.selectbox(key="distill_method").set_value("mtt")
    ok(at.run())
    at.segmented_control(key="distill_preset").set_value("paper")
    ok(at.run())
    assert "no measurement to estimate from" in " ".join(w.value for w in at.warning)
    at.segmented_control(key="distill_preset").set_value("quick")
    ok(at.run())
    assert not any("paper preset" in w.value for w in at.warning)
    # a quick preset says its measured time too (MTT, IPC 10: a quarter of an hour), and warns where even that is
    # long (CAFE at IPC 10: about 24 minutes)
    said = [e.value for e in (*at.caption, *at.warning) if "on a laptop CPU" in e.value]
    assert len(said) == 1 and said[0].startswith("About **") and "measured" in said[0], said
    at.selectbox(key="distill_method").set_value("cafe")
    at.number_input(key="distill_ipc").set_value(10)
    ok(at.run())
    long = " ".join(w.value for w in at.warning if "on a laptop CPU" in w.value)
    assert long.startswith("About **") and "a smaller IPC is faster" in long, long
    at.selectbox(key="distill_arch").set_value("vgg11")  # timed on a ConvNet only: the estimate says so
    ok(at.run())
    said = [e.value for e in (*at.caption, *at.warning) if "on a laptop CPU" in e.value]
    assert len(said) == 1 and "not with your architecture" in said[0], said


def test_a_sets_quick_evaluation_says_when_it_used_the_methods_own_recipe() -> None:
    """A FRePo set's networks train as FRePo's eval.py trains them (Adam, no norm): the Distill page says so."""
    import dataclasses

    from tests.evalkit import make_runs

    store = Store()
    run_id = make_runs(store, ("frepo",), prefix="recipe")[0]
    result = dataclasses.replace(stored_result(80.0, 0.0, [80.0]), config={"optimizer": "adam", "convnet_norm": "none"})
    store_result(store, Subject.run(run_id), result)
    at = page("distill.py", run=run_id)
    at.session_state["distill_run"] = run_id
    ok(at.run())
    assert any("trained as in the FRePo paper: Adam, no normalisation" in c.value for c in at.caption)


def test_a_link_to_an_unknown_run_says_so_briefly() -> None:
    at = ok(page("distill.py", run="x" * 3000).run())
    warning = next(w.value for w in at.warning if "There is no run" in w.value)
    assert len(warning) < 120 and "…" in warning


def test_a_gallery_link_filtering_on_what_is_not_stored_says_so(finished_runs) -> None:
    at = ok(page("gallery.py", dataset="cifar10", ipc="-5", method="tinypull").run())  # the runs: MNIST, tinypull
    warned = " ".join(w.value for w in at.warning)
    assert "dataset=" in warned and "ipc=" in warned and "method=" not in warned
    assert at.session_state["gallery_dataset"] == "All" and at.session_state["gallery_ipc"] == "All"
    assert at.session_state["gallery_method"] == "tinypull"
