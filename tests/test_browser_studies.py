"""The Continual learning and Architecture search pages in Chromium: a tiny study started from the controls as a
background job, its progress, then its captioned figures; a reload shows the stored study without recomputing."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import wait_for_app

FIGURES_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => ({
    data: (el.data || []).map(t => ({type: t.type, name: t.name, x: t.x, y: t.y, text: t.text}))}))"""


PLOTTED_JS = """() => { const plots = Array.from(document.querySelectorAll('.js-plotly-plot'));
    return plots.length >= 3 && plots.every(el => el.data && el.data.length > 0); }"""


def _set_number(page, label: str, value: int) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    wait_for_app(page)


def _start_and_wait(page, done_text: str, artifacts_dir: Path, name: str) -> None:
    page.get_by_text("Cost estimate on this machine's CPU").first.wait_for()
    page.get_by_role("button", name="Start the study").click()
    page.wait_for_timeout(1500)
    page.screenshot(path=str(artifacts_dir / f"{name}-progress.png"))
    page.get_by_text(done_text).first.wait_for(timeout=240_000)
    wait_for_app(page)
    page.wait_for_function(PLOTTED_JS, timeout=60_000)  # plotly has drawn all three charts (slow on a busy machine)


@pytest.mark.browser
def test_continual_study_in_chromium(streamlit_server, page, artifacts_dir: Path) -> None:
    page.goto(f"{streamlit_server.url}/continual?dataset=mnist&methods=random,dm")
    wait_for_app(page)
    _set_number(page, "IPC (memory images per class)", 1)
    _set_number(page, "Steps", 2)
    _set_number(page, "Class orders (seeds)", 2)
    page.locator("[data-testid='stButtonGroup']").get_by_text("tiny", exact=True).click()
    wait_for_app(page)
    _start_and_wait(page, "After the last step:", artifacts_dir, "continual")
    figures = page.evaluate(FIGURES_JS)
    lines = {t["name"] for t in figures[0]["data"] if t["name"] and "range" not in t["name"]}
    assert lines == {"random", "dm"} and len(figures) == 3
    assert page.get_by_text("2 class orders (seeds 0, 1)").count() >= 1
    page.screenshot(path=str(artifacts_dir / "continual-results.png"), full_page=True)
    page.reload()  # stored: shown at once, nothing to start
    wait_for_app(page)
    page.get_by_text("After the last step:").first.wait_for()
    assert page.get_by_role("button", name="Start the study").is_disabled()


@pytest.mark.browser
def test_nas_study_in_chromium(streamlit_server, page, artifacts_dir: Path) -> None:
    page.goto(f"{streamlit_server.url}/nas?dataset=mnist")
    wait_for_app(page)
    page.locator("[data-testid='stButtonGroup']").get_by_text("tiny", exact=True).click()
    wait_for_app(page)
    page.get_by_text("12 architectures × 1 proxy").first.wait_for()
    _start_and_wait(page, "Proxy against whole-data accuracy", artifacts_dir, "nas")
    figures = page.evaluate(FIGURES_JS)
    scatter = figures[0]["data"][0]
    assert len(scatter["text"]) == 12 and scatter["text"][0].startswith("ConvNet-W32-D2")  # hover names the architecture
    assert len(figures) == 3
    page.screenshot(path=str(artifacts_dir / "nas-results.png"), full_page=True)
    page.reload()
    wait_for_app(page)
    page.get_by_text("Time saved").first.wait_for()
    assert page.get_by_role("button", name="Start the study").is_disabled()
