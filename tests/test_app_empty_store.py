"""What a new user sees first: every page through the real entry point (app/main.py and st.navigation),
starting from an empty store; the Gallery's links to other pages resolve; Compare takes first runs at IPC 1."""
from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from app.navigation import PAGES
from ddcore.platform.store import Store
from tests.conftest import ROOT


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    """A fresh, empty DDCORE_HOME (the session's home holds other tests' runs); app/state.py keys the job
    manager by home, so the pages get a manager and store of their own."""
    home = tmp_path / "ddhome-empty"
    home.mkdir()
    monkeypatch.setenv("DDCORE_HOME", str(home))
    yield home
    from app.state import _studio_for

    _studio_for(str(home)).manager.shutdown(wait=30)


def app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120)


def rel(page_file: str) -> str:
    """A page's path relative to the entry point's folder (what AppTest.switch_page wants)."""
    return os.path.relpath(ROOT / "pages" / page_file, ROOT / "app")


def no_exception(at: AppTest, where: str) -> None:
    assert not at.exception, f"{where}: " + "\n".join(e.value for e in at.exception)


def test_every_page_renders_with_an_empty_store(empty_home) -> None:
    at = app().run()
    no_exception(at, "home")
    pages = [p for ps in PAGES.values() for p in ps]
    assert {p.file for p in pages} >= {"home.py", "distill.py", "gallery.py", "compare.py", "evaluate.py"}
    for p in pages:
        at.switch_page(rel(p.file)).run()
        no_exception(at, p.file)
        assert [t.value for t in at.title][:1] == [p.title if p.file != "home.py" else "DD Studio"], p.file
        if p.file == "gallery.py":
            assert any("No runs stored yet" in i.value for i in at.info)
            assert at.get("page_link"), "the Gallery links to Distill"
        if p.file == "compare.py":
            assert any("No finished runs yet" in i.value for i in at.info)
        if p.file == "evaluate.py":  # the published numbers with nothing of ours: no columns of "None"
            published = [d.value for d in at.dataframe if "mean" in d.value.columns]
            assert published and "ours_mean" not in published[0].columns and len(published[0]) > 0
        if p.file == "distill.py":  # with no run to show, Start and the method's explanation beside the settings
            assert at.button(key="distill_start_here") and at.latex
    assert Store(empty_home).list_runs() == []  # looking around creates nothing


def test_gallery_resume_switches_to_distill(empty_home) -> None:
    """Resume in the Gallery's run view goes to the Distill page (st.switch_page with the app's own page)."""
    import tests.tiny_method  # noqa: F401  (registers 'tinypull')
    from ddcore.tasks.distill import DistillSpec

    spec = DistillSpec(dataset="mnist", method="tinypull", ipc=2, overrides={"iterations": 3}, device="cpu")
    record = Store(empty_home).create_run(spec.stored(), status="stopped")
    at = app().run()
    at.switch_page(rel("gallery.py"))
    at.query_params["run"] = record.id
    at.run()
    no_exception(at, "gallery run view")
    at.button(key="gallery_resume").click().run()
    no_exception(at, "after Resume")
    assert [t.value for t in at.title][:1] == ["Distill"]
    assert at.session_state["distill_run"] == record.id


def test_compare_two_ipc1_runs(empty_home) -> None:
    """Two IPC 1 runs (the smallest sets a new user makes): Compare shows them (its per-class slider from 1 to 1
    raised StreamlitInvalidMinMaxError)."""
    import tests.tiny_method  # noqa: F401
    from ddcore.platform.queue import JobManager
    from ddcore.tasks.distill import DistillSpec

    manager = JobManager(Store(empty_home))
    try:
        ids = [manager.wait(manager.submit(DistillSpec(dataset="mnist", method="tinypull", ipc=1, seed=seed,
                                                       overrides={"iterations": 2}, device="cpu",
                                                       evaluate_after=False)).id, 120).run_id for seed in (0, 1)]
    finally:
        manager.shutdown()
    at = app().run()
    at.switch_page(rel("compare.py"))
    at.query_params["runs"] = ",".join(ids)
    at.run()
    no_exception(at, "compare")
    assert len(at.get("image")) == 1 and any("One image per class" in c.value for c in at.caption)
