"""The Privacy page (AppTest): an empty store, a tiny study started from the page as a job, its figures drawn
from the stored result (numbers read back), reopening without recomputation, and bad settings refused."""
from __future__ import annotations

import json
import time

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest_kit import opened


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("privacy-page")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DDCORE_HOME", str(root))
        yield root
        from app.state import _studio_for

        _studio_for(str(root)).manager.shutdown(wait=30)


def _open(**state) -> AppTest:
    return opened("privacy.py", **state)


def _tiny(at: AppTest) -> AppTest:
    at.selectbox(key="pv_preset").set_value("tiny").run()
    at.multiselect(key="pv_baselines").set_value(["members", "random", "dpsgd"]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_page_with_an_empty_store_explains_and_estimates(home) -> None:
    at = _open()
    assert any("No privacy study" in i.value for i in at.info)
    assert any("Estimated cost" in c.value for c in at.caption)
    assert at.button(key="pv_start")
    assert "membership inference" in at.expander[0].markdown[0].value.lower()
    # the quick preset's sizes are in the widgets; the tiny preset replaces them
    assert at.number_input(key="pv_shadows").value == 8
    _tiny(at)
    assert at.number_input(key="pv_shadows").value == 2 and at.number_input(key="pv_pool_per_class").value == 10


def test_bad_settings_are_refused_on_the_page(home) -> None:
    at = _tiny(_open())
    at.number_input(key="pv_ipc").set_value(9).run()
    assert any("IPC must be between 1 and the 5 members" in e.value for e in at.error)
    assert "pv_start" not in [b.key for b in at.button]  # nothing to start
    at.multiselect(key="pv_attacks").set_value([]).run()
    assert any("at least one attack" in e.value or "IPC must be" in e.value for e in at.error)


def test_a_study_started_on_the_page_is_stored_and_shown_again(home) -> None:
    from app.state import _studio_for

    at = _tiny(_open())
    at.button(key="pv_start").click().run()
    studio = _studio_for(str(home))
    jobs = studio.jobs(kind="privacy")
    assert len(jobs) == 1
    studio.manager.wait(jobs[0].id, 300)
    deadline = time.time() + 60
    while any(j.active for j in studio.jobs()) and time.time() < deadline:
        time.sleep(0.2)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("This study is stored" in s.value for s in at.success)
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(charts) == 3  # ROC, AUC/TPR bars, trade-off
    result = studio.jobs(kind="privacy")[0].result
    roc = charts[0]["data"]
    assert [t["name"] for t in roc[1:]] == [t.label for t in result.targets]
    bars = charts[1]["data"][0]
    assert bars["x"] == pytest.approx([t.attacks["loss"].auc.value for t in result.targets])
    trade = charts[2]["data"]
    assert [d["y"][0] for d in trade] == pytest.approx([t.test_accuracy for t in result.targets])
    assert any("ε = 8" in (d.get("text") or [""])[0] for d in trade)
    assert any("bootstrap" in c.value for c in at.caption)
    # the neighbour gallery compares each synthetic image with members and non-members
    assert any("closer to a member" in m.value for m in at.markdown)

    # reopening: the stored result, no new job
    again = _tiny(_open())
    assert any("This study is stored" in s.value for s in again.success)
    assert len(studio.jobs(kind="privacy")) == 1
    # settings without a stored study still show the stored one, chosen from a list
    other = _tiny(_open())
    other.number_input(key="pv_split_seed").set_value(3).run()
    assert other.selectbox(key="pv_shown") is not None and len(other.get("plotly_chart")) == 3
