"""Shared UI pieces as a new user meets them: accuracies of a single network, and the sidebar's
'Jobs on this server' after Start, Cancel, Rename and Delete (AppTest, each test in a home of its own)."""
from __future__ import annotations

import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import tests.tiny_method  # noqa: F401  (registers 'tinypull')
from app.widgets import fmt_about, fmt_accuracy
from ddcore.platform.records import Subject
from ddcore.platform.store import Store
from ddcore.tasks.distill import DistillSpec
from ddcore.tasks.evaluate import EvalSpec
from tests.apptest_kit import ok, page
from tests.evalkit import store_result, stored_result


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty home of this test's own; the pages' job manager (app/state.py, keyed by home) is shut down after."""
    root = tmp_path / "ddhome"
    root.mkdir()
    monkeypatch.setenv("DDCORE_HOME", str(root))
    yield root
    from app.state import _studio_for

    _studio_for(str(root)).manager.shutdown(wait=60)


def sidebar_text(at: AppTest) -> str:
    return "\n".join([m.value for m in at.sidebar.markdown] + [c.value for c in at.sidebar.caption])


def main_text(at: AppTest) -> str:
    return "\n".join([m.value for m in at.main.markdown] + [c.value for c in at.main.caption]
                     + [str(m.value) for m in at.main.metric])


def one_run(store: Store, ipc: int = 2, seed: int = 0) -> str:
    """A finished tinypull run, made by the pages' own job manager (so its job is on 'this server')."""
    from app.state import studio

    manager = studio().manager
    job = manager.submit(DistillSpec(dataset="mnist", method="tinypull", ipc=ipc, seed=seed,
                                     overrides={"iterations": 3}, device="cpu", evaluate_after=False))
    return manager.wait(job.id, 120).run_id


ONE_NETWORK = stored_result(90.5, 0.0, [90.5])


def save_eval(store: Store, run_id: str, result) -> EvalSpec:
    store_result(store, Subject.run(run_id), result)
    return EvalSpec(Subject.run(run_id), architecture="convnet", seeds=len(result.seeds))


# ---------------------------------------------------------------------------------------------- one network
def test_fmt_accuracy_says_one_network_instead_of_a_zero_spread() -> None:
    assert fmt_accuracy(None) == "—"
    assert fmt_accuracy(61.5) == "61.5 %"
    assert fmt_accuracy(61.5, 1.2) == "61.5 ± 1.2 %"  # the old two-argument call is unchanged
    assert fmt_accuracy(61.5, 1.2, 3) == "61.5 ± 1.2 %"
    assert fmt_accuracy(90.5, 0.0, seeds=1) == "90.5 % (one network)"
    assert fmt_accuracy(90.5, None, 1) == "90.5 % (one network)"


@pytest.mark.parametrize("seconds, text", [(None, "—"), (0.2, "1 s"), (59.6, "1 min"), (170, "2 min 50 s"),
                                           (594, "9 min 50 s"), (1433, "24 min"), (3599, "1 h 00 min"),
                                           (6120, "1 h 42 min")])
def test_fmt_about_rounds_an_estimate_to_what_it_can_claim(seconds, text) -> None:
    assert fmt_about(seconds) == text


def test_pages_show_one_network_not_plus_minus_zero(home) -> None:
    store = Store(home)
    a, b = one_run(store, seed=0), one_run(store, seed=1)
    save_eval(store, a, ONE_NETWORK)
    save_eval(store, b, stored_result(80.0, 1.5, [78.5, 81.5]))

    at = ok(page("compare.py", runs=f"{a},{b}").run())
    values = [m.value for m in at.metric]
    assert "90.5 % (one network)" in values and "80.0 ± 1.5 %" in values, values
    assert "one network" in main_text(at) and "± 0.0" not in main_text(at)

    at = ok(page("gallery.py", run=a).run())
    table = at.dataframe[0].value
    assert list(table["accuracy"]) == ["90.5 % (one network)"]

    at = page("distill.py", run=a)
    at.session_state["distill_run"] = a
    ok(at.run())
    assert {m.label: m.value for m in at.metric}["This set"] == "90.5 %"
    assert "one network" in main_text(at) and "± 0.0" not in main_text(at)

    at = ok(page("evaluate.py").run())
    details = []
    for option in at.selectbox(key="eval_detail_mnist").options:  # "One evaluation in detail", each in turn
        at.selectbox(key="eval_detail_mnist").set_value(option)
        ok(at.run())
        details.append(next(m.value for m in at.markdown if m.value.startswith("**") and " preset · " in m.value))
    assert len(details) == 2 and not any("± 0.0" in d for d in details), details
    assert any(d.startswith("**90.5 % (one network)**") for d in details), details
    assert any(d.startswith("**80.0 ± 1.5 %** over 2 seeds") for d in details), details


# ---------------------------------------------------------------------------------------------- jobs panel
def test_jobs_panel_shows_the_current_run_name_and_deleted_runs(home) -> None:
    from app.state import studio

    store = Store(home)
    run_id = one_run(store)
    old = store.get_run(run_id).name
    spec = save_eval(store, run_id, ONE_NETWORK)
    studio().submit(spec)  # reused from the store: done at once, named after the run
    at = ok(page("distill.py").run())
    assert old in sidebar_text(at)

    store.rename_run(run_id, "Pulled digits")  # what the Gallery's Rename does
    ok(at.run())
    text = sidebar_text(at)
    assert "**Pulled digits**" in text and "Evaluate Pulled digits on convnet" in text, text
    assert old not in text

    store.delete_run(run_id)  # what the Gallery's Delete does
    at = ok(page("evaluate.py").run())
    text = sidebar_text(at)
    assert "(run deleted)" in text and "Pulled digits" not in text, text


def test_evaluate_sidebar_lists_a_started_job_and_its_cancellation(home) -> None:
    """Started on the Evaluate page: the sidebar lists it in the same run (it used to be drawn before the
    button was handled, and stayed 'No jobs yet' until a reload); Cancel redraws it."""
    from app.state import studio

    # The paper preset takes minutes on a CPU: long enough to cancel it from the page.
    at = page("evaluate.py")
    at.session_state["eval_preset"] = "paper"
    ok(at.run())
    at.button(key="eval_start").click()
    ok(at.run())
    text = sidebar_text(at)
    assert "Evaluate random real · mnist · IPC 1 on convnet (paper)" in text, text
    assert "queued" in text or "running" in text, text
    cancel = [b for b in at.button if (b.key or "").startswith("eval_cancel_")]
    assert len(cancel) == 1
    job_id = cancel[0].key.removeprefix("eval_cancel_")
    cancel[0].click()
    ok(at.run())
    assert studio().manager.wait(job_id, 120).status == "cancelled"
    deadline = time.monotonic() + 30
    while "evaluate · cancelled" not in sidebar_text(at):
        assert time.monotonic() < deadline, sidebar_text(at)
        time.sleep(0.3)
        ok(at.run())


def test_a_run_name_is_shown_as_text_never_as_markup(home) -> None:
    """Links, images, emphasis, code, maths and HTML in a run's name stay literal on the pages."""
    from app.widgets import plain

    name = "[click](http://example.com) ![x](http://example.com/x.png) *b* _i_ `c` $x$ <b>bold</b>"
    assert plain(name) == (r"\[click\](http://example.com) !\[x\](http://example.com/x.png) \*b\* \_i\_ \`c\` "
                           r"\$x\$ &lt;b&gt;bold&lt;/b&gt;")
    store = Store(home)
    run_id = one_run(store)
    store.rename_run(run_id, name)
    at = ok(page("gallery.py", run=run_id).run())
    assert at.subheader[0].value == plain(name)
    at = ok(page("distill.py").run())
    assert f"**{plain(name)}**" in sidebar_text(at) and "<b>" not in sidebar_text(at)


def test_the_loss_chart_shows_a_learned_step_size_when_the_method_reports_one() -> None:
    from app.widgets import loss_figure

    rows = [{"iteration": i, "loss": 1.0 / i, "lr": 0.01 + 0.001 * i} for i in range(1, 6)]
    fig = loss_figure(rows)
    assert [t.name for t in fig.data] == ["loss", "learned step size"]
    assert list(fig.data[1].y) == [r["lr"] for r in rows] and fig.data[1].yaxis == "y2"
    assert [t.name for t in loss_figure([{"iteration": 1, "loss": 2.0}]).data] == ["loss"]  # DC, DM: no step size


def test_a_loss_spanning_decades_is_drawn_on_a_log_axis_with_whole_tick_labels() -> None:
    from app.widgets import loss_figure

    falling = loss_figure([{"iteration": i, "loss": 200.0 / (i + 1)} for i in range(60)])
    assert falling.layout.yaxis.type == "log"
    assert falling.layout.yaxis.minorloglabels == "complete"  # 50 and 20 written out, not "5" and "2"
    flat = loss_figure([{"iteration": i, "loss": 2.0 + 0.01 * i} for i in range(60)])
    assert flat.layout.yaxis.type == "linear" and flat.layout.yaxis.minorloglabels is None


def test_timelapse_gif_animates_every_snapshot_and_holds_the_last() -> None:
    import io

    from PIL import Image

    from app.widgets import timelapse_gif

    rng = np.random.default_rng(0)
    frames = [(i * 10, rng.integers(0, 255, (6, 8, 8, 1), dtype=np.uint8), np.repeat(np.arange(3), 2))
              for i in range(4)]
    gif = Image.open(io.BytesIO(timelapse_gif(frames, ["a", "b", "c"], frame_ms=100)))
    assert gif.format == "GIF" and gif.n_frames == 4 and gif.info["loop"] == 0
    durations = []
    for k in range(gif.n_frames):
        gif.seek(k)
        durations.append(gif.info["duration"])
    assert durations[:3] == [100, 100, 100] and durations[3] > 100
    with pytest.raises(ValueError):
        timelapse_gif([], ["a"])


def test_change_since_the_start_is_zero_where_nothing_moved() -> None:
    from app.widgets import change_images, moved_per_class

    start = np.zeros((4, 5, 5, 1), dtype=np.uint8)
    now = start.copy()
    now[2:] = 100  # class 1 moved by 100 grey levels everywhere, class 0 not at all
    labels = np.array([0, 0, 1, 1])
    assert moved_per_class(now, start, labels, 2) == [0.0, 100.0]
    diff = change_images(now, start)
    assert diff[:2].max() == 0 and diff[2:].min() == 200  # brightened twice
    assert change_images(np.full_like(start, 255), start).max() == 255  # clipped, not wrapped


def test_one_class_is_shown_whole_and_large_in_rows_of_five() -> None:
    from app.widgets import class_grid

    images = np.arange(30 * 28 * 28, dtype=np.uint32).reshape(30, 28, 28, 1).astype(np.uint8)
    grid, shown = class_grid(images, list(range(10)))  # IPC 10 on MNIST: two rows of five, twice the size
    assert shown == 10 and grid.shape == (2 * 60 + 4, 5 * 60 + 4, 3)
    grid, shown = class_grid(images, list(range(25)))
    assert shown == 20 and grid.shape[0] == 4 * 60 + 4  # the first 20, said in the caption
    grid, shown = class_grid(images, [3])  # IPC 1: one image, as large as allowed (6x)
    assert shown == 1 and grid.shape == (6 * 32, 6 * 32, 3)
    assert np.array_equal(grid[12:12 + 6 * 28:6, 12:12 + 6 * 28:6, 0], images[3, :, :, 0])
