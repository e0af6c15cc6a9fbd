"""The Evaluate page in Chromium: a small cross-architecture evaluation from the controls, waited for,
then the heatmap and the accuracy-against-IPC plot checked against the store; screenshots kept."""
from __future__ import annotations

from pathlib import Path

import pytest

from ddcore.platform.store import Store
from ddcore.results import collect, latest
from tests.conftest import wait_for_app
from tests.evalkit import TINY, make_runs, tiny_preset

ARCHS = ["convnet", "mlp"]

FIGURES_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => ({
    data: (el.data || []).map(t => ({type: t.type, name: t.name, x: t.x, y: t.y, z: t.z})),
    xtype: el.layout && el.layout.xaxis ? el.layout.xaxis.type : null,
    visible: el.offsetParent !== null}))"""


def _add_option(page, label: str, text: str) -> None:
    box = page.locator("[data-testid='stMultiSelect']").filter(has_text=label)
    box.locator("input").click()
    box.locator("input").fill(text)
    page.get_by_role("option").filter(has_text=text).first.click()
    page.keyboard.press("Escape")


def _set_number(page, label: str, value: int) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    wait_for_app(page)


@pytest.mark.browser
def test_cross_architecture_evaluation_in_chromium(streamlit_server, page, artifacts_dir: Path, isolated_home) -> None:
    store = Store(isolated_home)
    run_ids = make_runs(store, prefix="E2E")  # two real MNIST IPC-1 sets: random real coreset and DM
    page.goto(f"{streamlit_server.url}/evaluate?dataset=mnist")
    wait_for_app(page)
    page.get_by_text("Synthetic sets").first.wait_for()
    # The newest run (DM) is preselected; add the other set and a second architecture.
    _add_option(page, "Synthetic sets", "E2E RANDOM")
    wait_for_app(page)
    _add_option(page, "Architectures", "mlp")
    wait_for_app(page)
    # Tiny sizes through the custom preset: 3 epochs, 300 test images, no augmentation, 1 seed.
    page.locator("[data-testid='stButtonGroup']").get_by_text("custom", exact=True).click()
    wait_for_app(page)
    _set_number(page, "Epochs", TINY["epochs"])
    _set_number(page, "Test images (0: all)", TINY["test_limit"])
    page.get_by_text("3 sets × 2 architectures = 6 evaluations").wait_for()
    page.get_by_role("button", name="Evaluate 3 sets on 2 architectures").click()
    page.get_by_text("Evaluations —").wait_for()
    page.screenshot(path=str(artifacts_dir / "evaluate-progress.png"))
    # Progress shows, then every result is stored and the page says so.
    page.get_by_text("6 evaluations: 6 already stored (reused), 0 to compute").wait_for(timeout=240_000)
    wait_for_app(page)
    page.screenshot(path=str(artifacts_dir / "evaluate-run.png"), full_page=True)

    subjects = [f"run:{i}" for i in run_ids] + ["random:mnist:1"]  # the rows' set groups
    # as the Results tab does: this preset's rows, then the newest per set and architecture
    rows = latest(r for r in collect(Store(isolated_home), dataset="mnist") if r.preset == tiny_preset())
    mine = {(r.subject, r.architecture): r for r in rows if r.subject in subjects}
    assert len(mine) == 6

    page.set_viewport_size({"width": 1400, "height": 3400})  # Streamlit scrolls inside: show all in one shot
    page.get_by_role("tab", name="Results").click()
    page.get_by_text("Cross-architecture generalisation", exact=True).wait_for()
    page.wait_for_timeout(1500)  # plotly lays out the now-visible charts
    figures = page.evaluate(FIGURES_JS)
    heat = next(f for f in figures if f["data"] and f["data"][0]["type"] == "heatmap")
    assert heat["data"][0]["x"][:2] == ARCHS
    z = [v for row in heat["data"][0]["z"] for v in row if v is not None]
    for r in mine.values():
        assert any(abs(v - r.mean) < 1e-6 for v in z), (r.label, r.architecture, r.mean, z)
    ipc = next(f for f in figures if f["xtype"] == "log" and any("(measured)" in (t["name"] or "") for t in f["data"]))
    traces = {t["name"]: t for t in ipc["data"]}
    dm = next(r for (s, a), r in mine.items() if r.method == "dm" and a == "convnet")
    assert traces["DM (measured)"]["x"] == [1] and abs(traces["DM (measured)"]["y"][0] - dm.mean) < 1e-6
    assert "DM (published)" in traces and "random real (measured)" in traces
    assert page.locator(".modebar-btn[data-title='Download plot as a PNG']").count() >= 2  # PNG export
    page.screenshot(path=str(artifacts_dir / "evaluate-results.png"), full_page=True)

    page.get_by_role("tab", name="Published numbers").click()
    page.get_by_text("published rows").first.wait_for()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(artifacts_dir / "evaluate-published.png"), full_page=True)
    page.get_by_role("tab", name="Export").click()
    page.get_by_text("Markdown summary").wait_for()
    page.screenshot(path=str(artifacts_dir / "evaluate-export.png"), full_page=True)
