"""The app shell and Home page: AppTest for the script, Playwright against a live server."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ddcore.data import load_dataset
from tests.conftest import ROOT, wait_for_app


def test_home_renders_real_samples_per_class() -> None:
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Dataset distillation" in at.markdown[0].value
    captions = " ".join(c.value for c in at.caption)
    assert "60,000 training and 10,000 test images" in captions  # full MNIST


def test_home_describes_only_methods_that_exist() -> None:
    """No promise of trajectory matching (MTT) or any method the build does not have."""
    from ddcore.methods import list_methods, method_class

    at = AppTest.from_file(str(ROOT / "pages" / "home.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    intro = at.markdown[0].value
    assert "Dataset distillation" in intro
    methods = {m: method_class(m).family for m in list_methods()}
    if "mtt" not in methods:
        assert "MTT" not in intro and "trajector" not in intro.lower(), intro
    for name, family in methods.items():
        if family in ("gradient matching", "distribution matching"):
            assert name.upper() in intro, (name, intro)
        elif family == "coreset":
            assert name in intro, (name, intro)


def test_home_switches_dataset() -> None:
    at = AppTest.from_file(str(ROOT / "pages" / "home.py"), default_timeout=120)
    at.session_state["home_dataset"] = "CIFAR-10"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    captions = " ".join(c.value for c in at.caption)
    # Full CIFAR-10 (50,000/10,000) where ../shared/datasets or DDCORE_DATA has it, else the embedded 5,000/1,000
    # subset in assets/: the caption states the counts and the source of whichever the loader used.
    data = load_dataset("cifar10")
    assert f"{len(data.train):,} training and {len(data.test):,} test images · source: {data.source}" in captions


@pytest.mark.browser
def test_home_in_chromium(streamlit_server, page, artifacts_dir: Path) -> None:
    page.goto(streamlit_server.url)
    wait_for_app(page)
    page.get_by_text("Dataset distillation", exact=False).first.wait_for()
    img = page.locator("[data-testid='stImage'] img").first
    img.wait_for()
    box = img.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 200  # ten class rows of 28×28×2 images
    assert page.get_by_text("60,000 training", exact=False).count() >= 1
    page.screenshot(path=str(artifacts_dir / "home.png"), full_page=True)


@pytest.mark.browser
def test_the_server_writes_every_threads_stack_to_its_log_on_sigusr1(streamlit_server, page) -> None:
    """app/diagnostics.py: how a stuck page's script run is found on a live server (benchmarks/load.py uses it)."""
    import os
    import signal
    import time

    page.goto(streamlit_server.url)  # a session has run main.py, which installs the handler
    wait_for_app(page)
    page.get_by_text("Dataset distillation", exact=False).first.wait_for()
    before = streamlit_server.log.stat().st_size
    os.kill(streamlit_server.proc.pid, signal.SIGUSR1)  # run.sh execs streamlit: the same process
    deadline = time.monotonic() + 10
    dump = ""
    while "bootstrap.py" not in dump and time.monotonic() < deadline:
        time.sleep(0.2)
        dump = streamlit_server.log.read_bytes()[before:].decode(errors="replace")
    assert "Thread 0x" in dump and "streamlit/web/bootstrap.py" in dump, dump[-2000:]
    assert streamlit_server.proc.poll() is None  # and the server goes on serving
    page.reload()
    page.get_by_text("Dataset distillation", exact=False).first.wait_for()
