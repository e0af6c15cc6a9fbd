"""Shared fixtures: an isolated data home per session, a live Streamlit server and headless Chromium."""
from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

# One intra-op thread everywhere in the suite (this process, the CLI and Streamlit subprocesses): the tests use
# tiny sizes, and on 2 cores two OpenMP threads stall whenever the other core is busy (measured: a tiny DC test
# took 112 s with 2 threads beside a busy core, 2.7 s with 1).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("DDCORE_JOB_THREADS", "1")
# A Studio opened by a test starts its job worker on its first job, not beforehand: most tests open a store without
# running a job, and each warm worker cost an interpreter, torch's import and an MNIST load. The Streamlit servers
# the browser tests start keep the user's default (StreamlitServer below).
os.environ.setdefault("DDSTUDIO_WARM_WORKERS", "0")

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test session writes runs and caches into a temporary home, never the user's."""
    home = tmp_path_factory.mktemp("ddhome")
    os.environ["DDCORE_HOME"] = str(home)
    os.environ.setdefault("DDCORE_OFFLINE", "1")
    os.environ.setdefault("DDCORE_CACHE", str(Path.home() / ".cache" / "ddcore"))  # decoded data is safe to share
    return home


@pytest.fixture(scope="session", autouse=True)
def warm_imports_on_the_main_thread() -> None:
    """What a job manager's warm-up thread imports (ddcore/platform/queue.py `_warm_up`: torch.optim pulls in
    torch._dynamo, ~55 new loggers), imported here first. Otherwise that thread, started by a page a test opened,
    was still creating loggers while pytest's log capture walked logging's logger dict at the test's teardown:
    "RuntimeError: dictionary changed size during iteration" (seen once in phase 1, test_data.py)."""
    from ddcore.platform.queue import _warm_up

    _warm_up()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StreamlitServer:
    def __init__(self, home: Path, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / f"streamlit-{self.port}.log"
        env = dict(os.environ, DDCORE_HOME=str(home), PORT=str(self.port), DDSTUDIO_WARM_WORKERS="1")
        # README's run command itself, so the tests prove it serves the app.
        with open(self.log, "wb") as log:  # the server holds its own copy of the handle
            self.proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "run.sh")], cwd=ROOT, env=env,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 240  # the first call may install requirements.txt
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"streamlit did not become healthy: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="session")
def streamlit_server(isolated_home: Path):
    server = StreamlitServer(isolated_home)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: README's test command installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, artifacts_dir: Path, request: pytest.FixtureRequest):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    try:  # keep a final screenshot of every browser test, pass or fail
        pg.screenshot(path=str(artifacts_dir / f"{request.node.name}-final.png"), full_page=True)
    except Exception:
        pass
    context.close()


def wait_for_app(page, timeout: float = 60_000) -> None:
    """Wait until Streamlit finished its script run (no running indicator, app view present)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=timeout)


def open_showing(page, url: str, text: str, timeout: float = 60_000) -> None:
    """Open `url` and wait until `text` shows. A page that never shows its content (the rare open bug in
    docs/reliability.md, "one session may never show its content") is reloaded once, with a warning in the summary
    that says what it showed: tests about something else are not failed by it, and each time it happens is recorded."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(url)
    try:
        wait_for_app(page, timeout)
        page.get_by_text(text, exact=False).first.wait_for(timeout=timeout)
    except PlaywrightTimeout:
        import warnings

        from benchmarks.load import page_text

        warnings.warn(f"{url} did not show {text!r} in {timeout / 1000:.0f} s; reloaded once. It showed: "
                      f"{page_text(page)}", stacklevel=2)
        page.reload()
        wait_for_app(page, timeout)
        page.get_by_text(text, exact=False).first.wait_for(timeout=timeout)
