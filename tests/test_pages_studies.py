"""The Continual learning and Architecture search pages (AppTest): an empty store, a tiny study started from the
controls as a job, its figures (numbers read back against the stored study, every one captioned), and reopening
without recomputation."""
from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


@pytest.fixture
def home(tmp_path, monkeypatch):
    root = tmp_path / "studies-home"
    root.mkdir()
    monkeypatch.setenv("DDCORE_HOME", str(root))
    yield root
    from app.state import _studio_for

    _studio_for(str(root)).manager.shutdown(wait=30)


def _open(page: str, **state) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=120)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _studio(home):
    from app.state import _studio_for

    return _studio_for(str(home))


def _figures(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def test_both_pages_with_an_empty_store(home) -> None:
    for page, title in (("continual.py", "Continual learning"), ("nas.py", "Architecture search")):
        at = _open(page)
        assert [t.value for t in at.title] == [title]
        assert any("No stored study yet" in i.value for i in at.info)
        assert "Cost estimate" in _captions(at) and not at.get("plotly_chart")
    assert _studio(home).studies("continual") == [] and _studio(home).studies("nas") == []


def test_a_bad_link_is_said_and_the_defaults_shown(home) -> None:
    at = AppTest.from_file(str(ROOT / "pages" / "continual.py"), default_timeout=120)
    at.query_params.update({"ipc": "-5", "steps": "999", "methods": "<b>x</b>", "orders": "abc"})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    warned = " ".join(w.value for w in at.warning)
    for param in ("ipc", "steps", "methods", "orders"):
        assert f"This link's {param}=" in warned, warned
    assert "<b>" not in warned  # the typed text is escaped
    assert at.session_state["cl_ipc"] == 10 and at.session_state["cl_orders"] == 3
    assert at.session_state["cl_methods"] == ["random", "herding", "dm"]


def _wait_for_study(home, kind: str) -> None:
    studio = _studio(home)
    jobs = studio.jobs(kind=kind)
    assert jobs, f"no {kind} job was started"
    snap = studio.manager.wait(jobs[-1].id, 240)
    assert snap.status == "done", snap.message


CL = dict(cl_methods=["random"], cl_ipc=1, cl_steps=2, cl_orders=2, cl_preset="tiny", cl_device="cpu")


@pytest.mark.slow  # a real study end to end (seconds to tens of seconds on 2 cores)
def test_continual_study_from_the_page(home) -> None:
    at = _open("continual.py", **CL)
    assert "Cost estimate on this machine's CPU" in _captions(at)
    at.button(key="cl_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    _wait_for_study(home, "continual")
    at = _open("continual.py", **CL)
    result = _studio(home).studies("continual")[0]
    figures = _figures(at)
    assert len(figures) == 3  # accuracy, forgetting, cost
    line = next(t for t in figures[0]["data"] if t.get("name") == "random")
    assert np.allclose(line["y"], result.accuracy[0].mean(0))
    captions = _captions(at)
    assert "2 class orders (seeds 0, 1)" in captions and "tiny preset" in captions  # what, preset, seeds
    assert captions.count("preset") >= 4 and at.get("image")  # every figure and the memory grid are captioned
    assert at.button(key="cl_start").disabled  # stored: nothing to recompute
    jobs = len(_studio(home).jobs(kind="continual"))
    at = _open("continual.py", **CL)  # reopening reads the store
    assert len(_studio(home).jobs(kind="continual")) == jobs and len(_figures(at)) == 3


NAS = dict(nas_widths=[32, 64], nas_depths=[1], nas_norms=["instancenorm", "none"], nas_activations=["relu"],
           nas_poolings=["avgpooling"], nas_budget="tiny", nas_device="cpu")


@pytest.mark.slow  # a real study end to end (seconds to tens of seconds on 2 cores)
def test_nas_study_from_the_page(home) -> None:
    at = _open("nas.py", **NAS)
    assert "4 architectures × 1 proxy" in _captions(at)
    at.button(key="nas_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    _wait_for_study(home, "nas")
    at = _open("nas.py", **NAS)
    result = _studio(home).studies("nas")[0]
    scatter, corr, time = _figures(at)
    assert scatter["data"][0]["text"] == result.architectures  # hover names the architecture
    assert np.allclose(scatter["data"][0]["y"], result.proxy_accuracy[0])
    assert np.allclose(corr["data"][0]["y"], [c["spearman"] for c in result.correlations])
    assert np.isclose(time["data"][0]["y"][0], result.whole_seconds.sum())
    captions = _captions(at)
    assert "tiny budget" in captions and "bootstrap" in captions and "seed 0" in captions
    assert at.button(key="nas_start").disabled
    # a study of another proxy reuses the stored whole-data accuracies (said before it starts)
    at = _open("nas.py", **NAS, nas_random=False, nas_herding=True)
    assert "whole-data accuracies stored, reused" in _captions(at)


def test_picking_a_grid_sets_its_options_and_an_edit_says_so(home) -> None:
    """The grid picker applies at once (the estimate follows it; it once waited for a 'Use this grid' press), an
    edited option is named as such, and one click goes back to the named grid."""
    from ddcore.platform.bridge import NAS_GRIDS

    at = _open("nas.py")
    quick = len(NAS_GRIDS["quick"])
    assert f"{quick} architectures" in _captions(at)
    at.selectbox(key="nas_grid_name").set_value("dc720").run()
    assert "720 architectures" in _captions(at) and at.session_state["nas_depths"] == list(NAS_GRIDS["dc720"].depths)
    assert not any("edited" in e.label for e in at.expander)
    at.multiselect(key="nas_depths").set_value(list(NAS_GRIDS["dc720"].depths)[:1]).run()
    assert any("edited" in e.label for e in at.expander) and "720 architectures" not in _captions(at)
    at.button(key="nas_use_grid").click().run()
    assert "720 architectures" in _captions(at) and not any("edited" in e.label for e in at.expander)


def test_a_run_name_in_a_proxy_label_stays_text() -> None:
    """A proxy's label holds its run's name (user text): plotly renders a few HTML tags, so the figures escape it."""
    from app import study_plots
    from ddcore.nas import NasResult, correlations

    whole, proxy = np.array([60.0, 70.0, 80.0]), np.array([[30.0, 20.0, 50.0]])
    label = "DM (run <a href='https://x'>me</a>, IPC 1)"
    rows = [c.to_dict() for c in correlations(label, proxy[0], whole, reps=20)]
    result = NasResult("mnist", 1, "tiny", {}, ["a", "b", "c"], [label], ["run:x:y"], [10], [1.0], whole, np.ones(3), proxy,
                       np.ones((1, 3)), rows, whole_images=300)
    for plot in (study_plots.nas_scatter(result), study_plots.nas_correlations(result), study_plots.nas_time(result)):
        text = json.dumps(plot.figure.to_plotly_json()["data"])
        assert "<a href" not in text and "&lt;a href" in text
        assert plot.caption
