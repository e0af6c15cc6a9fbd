"""The Studio in headless Chromium against a live server: start DM on MNIST, watch the grid change and the
loss curve grow, pause/resume/stop, find the run in the Gallery, open a Compare view from a URL.

Measures (written to test-artifacts/studio-timings.json): Start → first refreshed frame, and the
round trip of a click (Pause → Resume button shown, and back) while the job runs. CPU timings are noisy.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.conftest import wait_for_app

TALL = {"width": 1400, "height": 2400}


def shot(page, artifacts_dir: Path, name: str) -> None:
    page.set_viewport_size(TALL)
    page.evaluate("() => { document.querySelectorAll('[data-testid=stMain], [data-testid=stAppViewContainer]')"
                  ".forEach(e => e.scrollTo(0, 0)); window.scrollTo(0, 0); }")
    time.sleep(0.6)
    page.screenshot(path=str(artifacts_dir / name), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def grid_caption(page) -> str:
    loc = page.locator("[data-testid='stImage']", has_text="Synthetic set at iteration")
    return loc.first.inner_text() if loc.count() else ""


def loss_points(page) -> int:
    return page.evaluate("() => { const p = document.querySelector('.js-plotly-plot');"
                         " return p && p.data && p.data[0] ? p.data[0].x.length : 0; }")


def wait_for(predicate, timeout: float, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError("condition not reached")


@pytest.mark.browser
def test_studio_distill_gallery_compare(streamlit_server, page, artifacts_dir: Path, isolated_home: Path) -> None:
    timings: dict[str, float] = {}
    page.goto(f"{streamlit_server.url}/distill?ipc=1")
    wait_for_app(page)
    start = page.get_by_role("button", name=re.compile("Start")).first  # the form's (the panel beside it has one too)
    start.wait_for(timeout=90_000)
    page.get_by_text("Distribution Matching", exact=False).first.wait_for()
    shot(page, artifacts_dir, "studio-distill-settings.png")

    # Start → first refreshed frame (the live grid of this run).
    t0 = time.monotonic()
    start.click()
    wait_for(lambda: "Synthetic set at iteration" in grid_caption(page), timeout=60, every=0.02)
    timings["start_to_first_frame_s"] = round(time.monotonic() - t0, 2)
    first_src = page.locator("[data-testid='stImage']", has_text="Synthetic set at iteration").locator("img").first \
        .get_attribute("src")

    # The images change and the loss curve grows as iterations complete (DM on a shared 2-core CPU: seconds each).
    wait_for(lambda: re.search(r"iteration [1-9]", grid_caption(page)), timeout=120)
    timings["start_to_iteration_1_s"] = round(time.monotonic() - t0, 2)
    wait_for(lambda: page.locator("[data-testid='stImage']", has_text="Synthetic set at iteration").locator("img")
             .first.get_attribute("src") != first_src, timeout=30)
    first_points = wait_for(lambda: loss_points(page), timeout=60)
    wait_for(lambda: loss_points(page) > first_points, timeout=120)
    shot(page, artifacts_dir, "studio-distill-running.png")

    # Pause and resume while the job runs: the click's round trip through the server.
    t1 = time.monotonic()
    page.get_by_role("button", name=re.compile("Pause")).click()
    page.get_by_role("button", name=re.compile("Resume")).wait_for(timeout=30_000)
    timings["pause_round_trip_s"] = round(time.monotonic() - t1, 2)
    page.get_by_text("paused", exact=False).first.wait_for()
    shot(page, artifacts_dir, "studio-distill-paused.png")
    t2 = time.monotonic()
    page.get_by_role("button", name=re.compile("Resume")).click()
    page.get_by_role("button", name=re.compile("Pause")).wait_for(timeout=30_000)
    timings["resume_round_trip_s"] = round(time.monotonic() - t2, 2)

    page.get_by_role("button", name=re.compile("Stop")).click()
    page.get_by_text("Stopped by the user", exact=False).first.wait_for(timeout=120_000)
    run_id = re.search(r"run=([\w-]+)", page.url).group(1)
    shot(page, artifacts_dir, "studio-distill-stopped.png")

    # The Gallery lists it; opening it shows every image and the downloads.
    page.goto(f"{streamlit_server.url}/gallery")
    wait_for_app(page)
    page.get_by_text("DM · MNIST · IPC 1", exact=False).first.wait_for(timeout=60_000)
    shot(page, artifacts_dir, "studio-gallery.png")
    page.locator("[data-testid=stButton] button", has_text="Open").first.click()
    page.get_by_text("All 10 images", exact=False).first.wait_for(timeout=60_000)
    page.get_by_text("Grid PNG").first.wait_for(timeout=30_000)
    wait_for_app(page)
    assert f"run={run_id}" in page.url
    shot(page, artifacts_dir, "studio-gallery-run.png")

    # A second run (made by another process on the same store) and a Compare view opened from a URL.
    import tests.tiny_method  # noqa: F401
    from ddcore.platform.queue import JobManager
    from ddcore.platform.store import Store
    from ddcore.tasks.distill import DistillSpec

    other = JobManager(Store(isolated_home))
    job = other.submit(DistillSpec(dataset="mnist", method="tinypull", ipc=3, overrides={"iterations": 5},
                                   device="cpu", evaluate_after=False))
    second = other.wait(job.id, 120).run_id
    other.shutdown()
    page.goto(f"{streamlit_server.url}/compare?runs={run_id},{second}")
    wait_for_app(page)
    page.get_by_text("Quick evaluation", exact=False).first.wait_for(timeout=60_000)
    img = page.locator("[data-testid='stImage'] img").first
    img.wait_for()
    box = img.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 250
    assert page.get_by_text("TINYPULL · MNIST · IPC 3", exact=False).count() >= 1
    shot(page, artifacts_dir, "studio-compare.png")

    (artifacts_dir / "studio-timings.json").write_text(json.dumps(timings, indent=2))
    print("timings", timings)
    assert timings["start_to_first_frame_s"] < 10  # the target is 3 s; a shared CPU gets generous slack here
