"""The Privacy page in Chromium: a tiny study from the controls, its progress, then the stored figures
(log-log ROC, bars with intervals, the trade-off) checked against the stored result; screenshots kept."""
from __future__ import annotations

from pathlib import Path

import pytest

from ddcore.platform.bridge import Studio
from tests.conftest import wait_for_app

FIGURES_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => ({
    data: (el.data || []).map(t => ({type: t.type, name: t.name, x: t.x, y: t.y, text: t.text})),
    xtype: el.layout && el.layout.xaxis ? el.layout.xaxis.type : null,
    ytype: el.layout && el.layout.yaxis ? el.layout.yaxis.type : null}))"""


@pytest.mark.browser
def test_a_privacy_study_from_the_browser(streamlit_server, page, artifacts_dir: Path, isolated_home) -> None:
    page.goto(f"{streamlit_server.url}/privacy?dataset=mnist")
    wait_for_app(page)
    page.get_by_text("Estimated cost on a 2-core laptop CPU").wait_for(timeout=60_000)
    page.screenshot(path=str(artifacts_dir / "privacy-empty.png"))
    page.locator("[data-testid='stSelectbox']").filter(has_text="Preset").click()
    page.get_by_role("option").filter(has_text="tiny:").click()
    wait_for_app(page)
    page.get_by_text("50 members; a GPU is much faster").wait_for()  # the tiny preset's sizes
    page.get_by_text("Estimated cost on a 2-core laptop CPU").wait_for()
    page.get_by_role("button", name="Start the study").click()
    page.get_by_text("This study is stored").wait_for(timeout=240_000)
    wait_for_app(page)
    page.set_viewport_size({"width": 1400, "height": 3000})
    page.wait_for_timeout(1500)
    page.screenshot(path=str(artifacts_dir / "privacy-results.png"), full_page=True)

    studio = Studio(isolated_home)
    try:
        stored = [r for r in studio.studies("privacy") if r.spec["pool_per_class"] == 10]
    finally:
        studio.manager.shutdown()
    assert len(stored) == 1
    result = stored[0]
    figures = page.evaluate(FIGURES_JS)
    roc = next(f for f in figures if f["xtype"] == "log")
    assert roc["ytype"] == "log"
    assert [t["name"] for t in roc["data"][1:]] == [t.label for t in result.targets]
    page.get_by_role("tab", name="AUC and TPR").click()
    page.wait_for_timeout(1000)
    bars = next(f for f in page.evaluate(FIGURES_JS) if f["data"] and f["data"][0]["type"] == "bar")
    assert bars["data"][0]["x"] == pytest.approx([t.attacks["loss"].auc.value for t in result.targets])
    page.get_by_role("tab", name="Nearest neighbours").click()
    page.get_by_text("closer to a member than to any non-member").wait_for()
    page.screenshot(path=str(artifacts_dir / "privacy-neighbours.png"), full_page=True)
