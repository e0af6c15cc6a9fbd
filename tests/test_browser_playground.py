"""The 2-D playground in headless Chromium against the live server: Play moves the points and redraws the boundary
many times a second, Pause holds it, Step advances one iteration, the keyboard works, and the URL reproduces the
view. (The frame rate on this CPU is measured in benchmarks/live.py, not asserted here.)"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.conftest import wait_for_app

COUNT_FRAMES = """() => { window.__frames = new Set(); window.__srcs = new Set();
  new MutationObserver(() => {
    for (const el of document.querySelectorAll('[data-testid="stMarkdownContainer"] p'))
      if (el.innerText.startsWith('Iteration')) window.__frames.add(el.innerText);
    const img = document.querySelector('[data-testid="stImage"] img'); if (img) window.__srcs.add(img.src);
  }).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true}); }"""


def iteration(page) -> int:
    text = page.get_by_text(re.compile(r"^Iteration [\d,]+")).first.inner_text()
    return int(re.search(r"Iteration ([\d,]+)", text).group(1).replace(",", ""))


@pytest.mark.browser
def test_playground_plays_pauses_steps_and_keeps_its_url(streamlit_server, page, artifacts_dir: Path) -> None:
    page.goto(f"{streamlit_server.url}/playground?dataset=circles&method=dm&ppc=2&seed=1")
    wait_for_app(page)
    page.get_by_text(re.compile(r"^Iteration 0")).first.wait_for(timeout=90_000)
    page.evaluate(COUNT_FRAMES)
    page.get_by_role("button", name=re.compile("Play")).click()
    time.sleep(4)
    frames, srcs = page.evaluate("() => [window.__frames.size, window.__srcs.size]")
    assert frames >= 4 and srcs >= 4, (frames, srcs)  # the points moved and the picture was redrawn
    page.screenshot(path=str(artifacts_dir / "playground-playing.png"))
    page.get_by_role("button", name=re.compile("Pause")).click()
    page.get_by_role("button", name=re.compile("Play")).wait_for(timeout=10_000)
    time.sleep(0.5)
    held = iteration(page)
    time.sleep(1.0)
    assert iteration(page) == held  # paused
    page.get_by_role("button", name=re.compile("Step")).click()
    page.get_by_text(re.compile(rf"^Iteration {held + 1:,}\b")).first.wait_for(timeout=10_000)
    page.locator("body").press("ArrowRight")  # the keyboard: → steps
    page.get_by_text(re.compile(rf"^Iteration {held + 2:,}\b")).first.wait_for(timeout=10_000)
    page.locator("body").press("Space")  # Space plays
    page.get_by_role("button", name=re.compile("Pause")).wait_for(timeout=10_000)
    assert "dataset=circles" in page.url and "ppc=2" in page.url and "seed=1" in page.url
