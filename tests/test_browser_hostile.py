"""Hostile input in a real browser: run names made of markup, a foreign Host header, third-party requests.

One live server on its own store, whose two runs are renamed to markup (an `<img onerror>` and markdown with
a remote image and a javascript: link) and evaluated. Every page that shows a run name is opened in Chromium:
no script may run, no remote image may load, and the names must read as the literal text they are. The same
server is then reached under a foreign host name (DNS rebinding, simulated with Chromium's resolver rules):
the Studio must refuse to run for it. Every request any page made must stay on loopback.
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

from ddcore.platform.queue import JobManager
from ddcore.platform.records import Subject
from ddcore.platform.store import Store
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, StreamlitServer, open_showing, wait_for_app
from tests.evalkit import evaluate_all, make_runs, tiny_preset

SCRIPT_NAME = '<img src=x onerror="window.__xss=1">'
MARKDOWN_NAME = "![t](http://127.0.0.2:9/pixel.png) **bold** [go](javascript:window.__xss=2)"


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("hostile-home")
    store = Store(home)
    ids = make_runs(store, ("random", "dm"), ipc=1)
    store.rename_run(ids[0], SCRIPT_NAME)
    store.rename_run(ids[1], MARKDOWN_NAME)
    manager = JobManager(store)
    try:
        evaluate_all(manager, [Subject.run(i) for i in ids], ["convnet"], tiny_preset())
    finally:
        manager.shutdown(wait=5)
    server = StreamlitServer(home)
    yield server, ids
    server.stop()


def _watch(page) -> list[str]:
    hosts: list[str] = []
    page.on("request", lambda r: hosts.append(urlparse(r.url).hostname or r.url))
    page.on("dialog", lambda d: d.dismiss())
    return hosts


def _assert_inert(page, where: str) -> None:
    assert page.evaluate("() => window.__xss") is None, f"a run name ran a script on {where}"
    assert page.locator("img[src='x']").count() == 0, f"a run name became an <img> on {where}"
    assert page.locator("a[href^='javascript']").count() == 0, f"a run name became a javascript: link on {where}"
    assert page.locator("img[src*='127.0.0.2']").count() == 0, f"a run name loaded a remote image on {where}"


@pytest.mark.browser
def test_markup_names_stay_text_on_every_page(hostile_server, browser, artifacts_dir: Path) -> None:
    server, ids = hostile_server
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    hosts = _watch(page)
    try:
        # the Gallery's detail view: title, rename form, Evaluate button (its job then sits in the sidebar panel)
        open_showing(page, f"{server.url}/gallery?run={ids[0]}", "onerror")
        _assert_inert(page, "the Gallery (detail)")
        page.get_by_role("tab", name="Evaluations").click()
        page.get_by_role("button", name=re.compile("Evaluate")).click()  # a job named after the run: it is listed
        page.get_by_text("Evaluation in progress").wait_for()  # in every session's sidebar ("Jobs on this
        # server"), checked on the Evaluate page below
        open_showing(page, f"{server.url}/gallery?run={ids[1]}", "**bold**")  # markdown shows as its characters
        _assert_inert(page, "the Gallery (second run)")
        open_showing(page, f"{server.url}/gallery", "onerror")
        _assert_inert(page, "the Gallery (list)")
        page.goto(f"{server.url}/compare?dataset=mnist&runs={ids[0]},{ids[1]}")
        wait_for_app(page)
        _assert_inert(page, "Compare")
        page.goto(f"{server.url}/evaluate?dataset=mnist")
        wait_for_app(page)
        page.locator("[data-testid='stSidebar']").get_by_text("onerror", exact=False).first.wait_for()
        _assert_inert(page, "the sidebar's jobs panel")
        page.get_by_role("tab", name=re.compile("Results")).click()
        page.locator(".js-plotly-plot >> visible=true").first.wait_for()
        page.wait_for_timeout(1500)  # plotly draws its legend after the figure
        _assert_inert(page, "Evaluate")
        page.screenshot(path=str(artifacts_dir / "hostile-names-evaluate.png"), full_page=True)
    except Exception as error:  # a page that never showed what was awaited: say what it showed instead
        from benchmarks.load import page_text

        raise AssertionError(f"{error}\nThe page at {page.url} showed: {page_text(page)}") from error
    finally:
        context.close()
    foreign = sorted({h for h in hosts if h not in ("127.0.0.1", "localhost")})
    assert not foreign, f"pages requested other hosts: {foreign}"


@pytest.mark.browser
def test_foreign_host_header_is_refused(hostile_server, browser) -> None:
    """A page on another site that re-binds its name to 127.0.0.1 reaches the server with its own Host header."""
    server, _ = hostile_server
    port = urlparse(server.url).port
    rebound = browser.browser_type.launch(executable_path=CHROMIUM, headless=True,
                                          args=CHROMIUM_ARGS + ["--host-resolver-rules=MAP rebind.example 127.0.0.1"])
    try:
        page = rebound.new_page()
        page.goto(f"http://rebind.example:{port}/gallery")
        page.wait_for_selector("[data-testid='stApp']", timeout=60_000)
        page.get_by_text(re.compile("not served under the host name")).first.wait_for(timeout=60_000)
        assert page.locator("[data-testid='stSidebarNav']").count() == 0  # no pages were offered
        assert page.get_by_text("onerror", exact=False).count() == 0  # no store content reached the page
        page.goto(f"http://127.0.0.1:{port}/gallery")  # the same browser under the loopback name is served
        page.get_by_text("onerror", exact=False).first.wait_for(timeout=60_000)
    finally:
        rebound.close()


@pytest.mark.browser
def test_downloads_complete_every_time_while_a_job_redraws_the_page(hostile_server, browser) -> None:
    """Each download is made when clicked and starts no rerun, so a job's progress redrawing the page (the
    sidebar polls every second) never cancels it; the files keep their names."""
    server, ids = hostile_server
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{server.url}/gallery?run={ids[1]}")
        wait_for_app(page)
        page.get_by_role("tab", name="Evaluations").click()
        button = page.get_by_role("button", name=re.compile("Evaluate"))
        if button.count():
            button.click()  # a job that redraws every open page while it runs
            page.get_by_text("Evaluation in progress").wait_for()
        wait_for_app(page)
        page.get_by_role("tab", name="Images").click()
        for label, suffix in (("Grid PNG", ".png"), ("Images (zip of PNGs)", "-images.zip"),
                              ("Set file (.safetensors)", ".safetensors")):
            with page.expect_download() as info:
                page.get_by_role("button", name=re.compile(re.escape(label))).click()
            download = info.value
            assert download.failure() is None and download.suggested_filename.endswith(suffix)
            assert Path(download.path()).stat().st_size > 0
        page.goto(f"{server.url}/evaluate?dataset=mnist")
        wait_for_app(page)
        page.get_by_role("tab", name=re.compile("Export")).click()
        for _ in range(3):
            with page.expect_download() as info:
                page.get_by_role("button", name=re.compile("Summary \\(Markdown\\)")).click()
            download = info.value
            assert download.failure() is None and download.suggested_filename == "mnist-summary.md"
            text = Path(download.path()).read_text()
            assert text.startswith("**MNIST") and "| set |" in text
            page.wait_for_timeout(700)
    finally:
        context.close()


@pytest.mark.browser
def test_uploads_from_the_browser(hostile_server, browser, tmp_path: Path) -> None:
    """A teacher's zip becomes a dataset the Distill page offers; a zip-slip archive and a pickle posing as a set
    file are refused with their reason; a real set file is imported as a run."""
    from tests.test_uploads import _good, _pickle_disguised, _set_bytes, _zip

    server, _ = hostile_server
    files = {"pets.zip": _good(("cats", "dogs"), 4), "slip.zip": _zip({"../../train/a/1.png": b"x"}),
             "trojan.safetensors": _pickle_disguised(), "mine.safetensors": _set_bytes()}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{server.url}/data")
        wait_for_app(page)
        zip_input = page.locator("[data-testid='stFileUploader']").filter(has_text="Dataset").locator("input")
        set_input = page.locator("[data-testid='stFileUploader']").filter(has_text="Set file").locator("input")
        zip_input.set_input_files(str(tmp_path / "slip.zip"))
        page.get_by_text(re.compile("slip.zip was not added: .*unsafe path")).wait_for()
        zip_input.set_input_files(str(tmp_path / "pets.zip"))
        page.get_by_text(re.compile("Added pets: 2 classes")).wait_for()
        set_input.set_input_files(str(tmp_path / "trojan.safetensors"))
        page.get_by_text(re.compile("trojan.safetensors was not imported")).wait_for()
        set_input.set_input_files(str(tmp_path / "mine.safetensors"))
        page.get_by_text(re.compile("Imported as mine \\(imported\\)")).wait_for()
        page.goto(f"{server.url}/distill")
        wait_for_app(page)
        page.locator("[data-testid='stSelectbox']").filter(has_text="Dataset").click()
        page.get_by_role("option", name=re.compile("pets")).wait_for()
    finally:
        context.close()
