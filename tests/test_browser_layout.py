"""Layout in headless Chromium: the Distill page's synthetic grid fits its column and stays clear of the loss
chart at common widths (a 10-per-row MNIST grid once overflowed its column and the chart was drawn over it),
and no image is stretched past its own pixels.

Its own server and home: one finished 'tinypull' run (MNIST, IPC 10) made in this process; the server only
reads the stored set, snapshots and metrics, so it needs no knowledge of the test method.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import StreamlitServer, wait_for_app

WIDTHS = [(1280, 720), (1400, 1000), (420, 900)]


@pytest.fixture(scope="module")
def layout_server(tmp_path_factory):
    import tests.tiny_method  # noqa: F401  (registers 'tinypull')
    from ddcore.platform.queue import JobManager
    from ddcore.platform.store import Store
    from ddcore.tasks.distill import DistillSpec

    home = tmp_path_factory.mktemp("layout-home")
    manager = JobManager(Store(home))
    job = manager.submit(DistillSpec(dataset="mnist", method="tinypull", ipc=10, overrides={"iterations": 4},
                                         device="cpu", evaluate_after=False))
    run_id = manager.wait(job.id, 120).run_id
    manager.shutdown()
    assert Store(home).read_metrics(run_id), "the loss chart needs metrics"
    server = StreamlitServer(home)
    yield server, run_id
    server.stop()


BOXES = """() => {
  const rect = e => { const b = e.getBoundingClientRect(); return {l: b.left, t: b.top, r: b.right, b: b.bottom}; };
  const grid = [...document.querySelectorAll("[data-testid='stImage']")]
      .find(e => e.innerText.includes('Synthetic set at iteration'));
  const img = grid.querySelector('img');
  const chart = document.querySelector('.js-plotly-plot');
  const images = [...document.querySelectorAll("[data-testid='stImage'] img")].map(i => ({
      img: rect(i), natural: i.naturalWidth,
      col: rect(i.closest("[data-testid='stColumn']") || i.closest("[data-testid='stMainBlockContainer']"))}));
  return {img: rect(img), natural: img.naturalWidth, chart: chart && rect(chart),
          col: rect(grid.closest("[data-testid='stColumn']")), images: images, viewport: window.innerWidth};
}"""


def _overlap(a: dict, b: dict) -> float:
    return max(0.0, min(a["r"], b["r"]) - max(a["l"], b["l"])) * max(0.0, min(a["b"], b["b"]) - max(a["t"], b["t"]))


@pytest.mark.browser
@pytest.mark.parametrize("width,height", WIDTHS, ids=[f"{w}x{h}" for w, h in WIDTHS])
def test_distill_grid_fits_its_column_beside_the_chart(layout_server, browser, artifacts_dir: Path, width: int,
                                                       height: int) -> None:
    server, run_id = layout_server
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{server.url}/distill?run={run_id}")
        wait_for_app(page)
        page.get_by_text("Synthetic set at iteration", exact=False).first.wait_for()
        page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()  # plotly draws once on screen
        page.locator(".js-plotly-plot").first.wait_for()
        page.wait_for_function("() => [...document.querySelectorAll(\"[data-testid='stImage'] img\")]"
                               ".every(i => i.complete && i.naturalWidth > 0)")
        wait_for_app(page)
        boxes = page.evaluate(BOXES)
        img, col, chart = boxes["img"], boxes["col"], boxes["chart"]
        tol = 1.0
        assert img["l"] >= col["l"] - tol and img["r"] <= col["r"] + tol, (width, boxes)  # within its column
        assert chart is not None and _overlap(img, chart) <= tol, (width, boxes)  # not under the chart
        # Scaled to the column, not shrunk past it: as wide as the column allows, up to its own pixels.
        assert img["r"] - img["l"] >= min(boxes["natural"], col["r"] - col["l"]) - 2, (width, boxes)
        for other in boxes["images"]:  # every image on the page stays inside its column and the window ...
            assert other["img"]["r"] <= other["col"]["r"] + tol and other["img"]["r"] <= boxes["viewport"] + tol, \
                (width, other)
            # ... and is never stretched past its own pixels (blurred), e.g. to the width of its caption
            assert other["img"]["r"] - other["img"]["l"] <= other["natural"] + tol, (width, other)
        page.screenshot(path=str(artifacts_dir / f"layout-distill-{width}.png"))
    finally:
        context.close()
