"""Many browsers on one Studio while a job runs: does every session see the live job, how long do pages take
to load and a click to answer, does the server's memory stay bounded, and how much does watching cost the job?

    .venv/bin/python -m benchmarks.load                       # 20 sessions, 10 minutes (the issue's case)
    .venv/bin/python -m benchmarks.load --sessions 3 --minutes 0.5 --out-dir /tmp/load   # a quick look

It starts the real server (scripts/run.sh) on a fresh store, starts a DM run (MNIST, IPC 10, the live preset as a
custom one with enough iterations to outlast the measurement) from a browser, measures the job's rate with no tab watching,
then opens `--sessions` headless Chromium sessions on the run's live view and, over `--minutes`, samples:
each session's page load (goto -> live grid shown), whether it shows the live grid, the job's rate, the
server's resident memory, and a Pause -> Resume round trip in one session. Results: results/load.md / .jsonl.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking"]
GRID = "[data-testid='stImage']:has-text('Synthetic set at iteration')"
# Records in the page when the live grid first shows, in ms from the navigation's start (performance.now()), so
# that sessions opened together are each timed from their own goto, not from when this script looked.
GRID_CLOCK = """(() => {
  const seen = () => [...document.querySelectorAll("[data-testid='stImage']")]
    .some(el => el.textContent.includes('Synthetic set at iteration'));
  const watch = new MutationObserver(() => {
    if (seen()) { window.__ddGridShownMs = performance.now(); watch.disconnect(); }
  });
  document.addEventListener('DOMContentLoaded', () => {
    if (seen()) { window.__ddGridShownMs = performance.now(); return; }
    watch.observe(document.body, {childList: true, subtree: true, characterData: true});
  });
})();"""
# Stated bounds (the issue asks for them): a page shows the live grid within 30 s on this 2-core CPU, a click
# answers within 5 s, the server grows by at most 300 MB over the run, and every session sees the live job.
BOUNDS = {"page_load_s": 30.0, "round_trip_s": 5.0, "memory_growth_mb": 300.0, "sessions_seeing_job": 1.0}


def chromium_for(on_ui_core: bool) -> str:
    """Chromium, or (on_ui_core) a wrapper starting it with taskset on the core the server keeps for pages: a
    stand-in for browsers on other machines, as in a classroom."""
    from ddcore.device import ui_and_job_cores

    split = ui_and_job_cores()
    if not on_ui_core or split is None:
        return CHROMIUM
    wrapper = Path(tempfile.mkdtemp(prefix="ddstudio-chromium-")) / "chromium"
    wrapper.write_text(f'#!/bin/sh\nexec taskset -c {min(split[0])} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def wait_healthy(url: str) -> None:
    """Until the server answers its health check (two minutes at most)."""
    for _ in range(240):
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("the server did not come up")


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)


def record(row: dict, out_dir: Path, stem: str) -> list[dict]:
    """Append `row` to <stem>.jsonl and return every row recorded so far (the .md is rewritten from them)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / f"{stem}.jsonl").open("a") as f:
        f.write(json.dumps(row) + "\n")
    return [json.loads(line) for line in (out_dir / f"{stem}.jsonl").read_text().splitlines()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    """Resident memory of the server and its children (MB)."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _cpu_s(pid: int) -> float:
    """CPU seconds the process itself (its threads, not its children: the job workers) has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def tcp_sockets(port: int) -> list[tuple[str, str]]:
    """(local address in hex, state in hex) of every TCP socket whose local end is `port`, from /proc/net/tcp{,6}
    (state '01': established, '0A': listening); empty where /proc is not there."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            address, hex_port = parts[1].rsplit(":", 1)
            if int(hex_port, 16) == port:
                found.append((address, parts[3]))
    return found


def _connections(port: int) -> int:
    """Established TCP connections to `port` on this machine (a browser tab holds its websocket open)."""
    return sum(state == "01" for _, state in tcp_sockets(port))


def _wait_no_connections(port: int, limit_s: float) -> None:
    """Until no client holds a connection to the server (or `limit_s` passed): closed tabs are gone for it."""
    deadline = time.monotonic() + limit_s
    while _connections(port) and time.monotonic() < deadline:
        time.sleep(0.1)


def _run_rate(home: Path, seconds: float) -> float:
    """The run's iterations per second over `seconds`, read from the store as another process would."""
    from ddcore.platform.store import Store

    store = Store(home)
    first = store.list_runs()[0]
    t0, i0 = time.monotonic(), first.iteration
    time.sleep(seconds)
    last = store.get_run(first.id)
    return (last.iteration - i0) / (time.monotonic() - t0)


def _round_trip(page, click: str, shown: str, limit_s: float = 60.0) -> float:
    """Seconds from a click to the page showing the new state; inf when it did not within `limit_s` (recorded, so a
    saturated machine still yields its other numbers)."""
    t0 = time.monotonic()
    try:
        page.get_by_role("button", name=re.compile(click)).click(timeout=limit_s * 1000)
        page.get_by_role("button", name=re.compile(shown)).wait_for(timeout=limit_s * 1000)
    except Exception:  # Playwright's TimeoutError
        return float("inf")
    return time.monotonic() - t0


def _judge(out: dict) -> None:
    """The derived numbers and the bounds, from what `measure` recorded."""
    round_trip = out["round_trip_s"]
    out["job_speed_kept"] = out["rate_watched"] / out["rate_no_tabs"] if out["rate_no_tabs"] else None
    out["memory_growth_mb"] = out["rss_mb"]["end"] - out["rss_mb"]["after_sessions"]
    out["within_bounds"] = {
        "page_load_s": (out["page_load_s"]["max"] or 1e9) <= BOUNDS["page_load_s"],
        "round_trip_s": max(round_trip["pause"], round_trip["resume"]) <= BOUNDS["round_trip_s"],
        "memory_growth_mb": out["memory_growth_mb"] <= BOUNDS["memory_growth_mb"],
        "sessions_seeing_job": out["sessions_seeing_job"] >= BOUNDS["sessions_seeing_job"],
    }


def _sample(home: Path, pid: int, rss: list, minutes: float) -> list[float]:
    """The job's rate over 30 s windows for `minutes`, with the server's memory after the sessions opened and
    after each window appended to `rss`."""
    rss.append((_rss_mb(pid), time.monotonic()))
    deadline = time.monotonic() + minutes * 60
    rates = []
    while time.monotonic() < deadline:
        rates.append(_run_rate(home, min(30.0, max(5.0, deadline - time.monotonic()))))
        rss.append((_rss_mb(pid), time.monotonic()))
    return rates


def _protocol_clients(url: str, run_id: str, sessions: int, seconds: float) -> subprocess.Popen:
    """`sessions` Streamlit protocol clients (benchmarks/stclient.py) on the run's live view, in one process on the
    core the server keeps for pages: stand-ins for browsers on the students' own machines."""
    from ddcore.device import ui_and_job_cores

    split = ui_and_job_cores()
    pin = ["taskset", "-c", str(min(split[0]))] if split else []
    command = [*pin, sys.executable, "-m", "benchmarks.stclient", "--url", url, "--page", "distill", "--query",
               f"run={run_id}", "--sessions", str(sessions), "--seconds", str(seconds)]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))


def measure(sessions: int, minutes: float, baseline_s: float = 30.0, browser=None,
            executable: str = CHROMIUM, clients: str = "chromium", together: bool = False,
            grid_wait_s: float | None = None) -> dict:
    """The measurement; `browser`: a Playwright browser to open the sessions in (default: a fresh Chromium started
    from `executable`). clients='protocol': the sessions are protocol clients (one real Chromium page still starts
    the run and makes the pause / resume round trip). together: the Chromium sessions navigate at once rather
    than one after another's grid has shown (each page's load is still timed from its own navigation)."""
    if browser is None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            launched = pw.chromium.launch(executable_path=executable, headless=True, args=ARGS)
            try:
                return measure(sessions, minutes, baseline_s, launched, clients=clients, together=together,
                               grid_wait_s=grid_wait_s)
            finally:
                launched.close()
    home = Path(tempfile.mkdtemp(prefix="ddstudio-load-"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, DDCORE_HOME=str(home), PORT=str(port), DDSTUDIO_MAX_JOBS="50")
    log = (home / "server.log").open("wb")  # read back when a session misses the live job
    server = subprocess.Popen(["bash", str(ROOT / "scripts" / "run.sh")], cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()  # the server holds its own copy
    out: dict = {"sessions": sessions, "minutes": minutes, "bounds": BOUNDS}
    try:
        wait_healthy(url)
        first = browser.new_page()
        first.goto(f"{url}/distill?ipc=10")  # the default run (DM, MNIST, IPC 10, live preset), made long enough
        first.get_by_role("button", name=re.compile("Start")).first.wait_for(timeout=120_000)
        first.get_by_text("custom", exact=True).first.click()  # custom: starts from the live preset
        iterations = first.get_by_label("iterations", exact=True)
        iterations.fill("100000")
        iterations.press("Enter")
        first.get_by_text(re.compile(r"\b100000 iterations")).first.wait_for(timeout=60_000)  # the rerun took it
        first.get_by_role("button", name=re.compile("Start")).first.click(timeout=120_000)
        first.locator(GRID).first.wait_for(timeout=120_000)
        run_id = re.search(r"run=([\w-]+)", first.url).group(1)
        first.close()  # no tab open: the job's own rate
        _wait_no_connections(port, limit_s=5.0)  # the server has seen the tab go (at most the 5 s it once slept)
        time.sleep(0.5)  # a script run the tab started finishes
        out["rate_no_tabs"] = _run_rate(home, baseline_s)
        pid = server.pid
        rss = [(_rss_mb(pid), time.monotonic())]
        pages, events, loads, seeing = [], [], [], 0
        if clients == "protocol":
            return _measure_protocol(out, url, home, run_id, sessions, minutes, browser, pid, rss, server)
        opened = time.monotonic()
        for _ in range(sessions):  # together: each navigation starts before any grid is awaited (a class at once)
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.add_init_script(GRID_CLOCK)
            events.append(PageEvents(page))
            page.goto(f"{url}/distill?run={run_id}", wait_until="commit")
            pages.append(page)
            if not together:
                loads.append(_grid_load_s(page, grid_wait_s))
        if together:
            loads = [_grid_load_s(page, grid_wait_s, waited_s=time.monotonic() - opened) for page in pages]
        cpu0, t0 = _cpu_s(pid), time.monotonic()
        rates = _sample(home, pid, rss, minutes)
        out["server_cpu_cores"] = (_cpu_s(pid) - cpu0) / (time.monotonic() - t0)  # the pages' work, jobs excluded
        captions, missed = [], []
        for page, seen_by in zip(pages, events):  # every session still shows the live grid, at a recent iteration
            text = page.locator(GRID).first.inner_text(timeout=10_000) if page.locator(GRID).count() else ""
            captions.append(text)
            seeing += "(live)" in text
            if "(live)" not in text:  # what the session showed instead, so a miss can be told from a slow load
                missed.append(f"{page_text(page)} || {seen_by.summary()}")
        stacks = _script_threads(server.pid, home / "server.log") if missed else ""  # while the miss lasts
        # What a student would do next: reload a page that never showed the job (a new session for the same tab).
        reloads = [_reload_load_s(page, grid_wait_s) for page, text in zip(pages, captions) if "(live)" not in text]
        pause_s = _round_trip(pages[0], "Pause", "Resume")
        resume_s = _round_trip(pages[0], "Resume", "Pause")
        for page in pages:
            page.context.close()
        finite = [x for x in loads if x != float("inf")]
        out.update({
            "page_load_s": {"median": statistics.median(finite) if finite else None,
                            "max": max(loads) if loads else None},
            "sessions_seeing_job": seeing / max(1, sessions),
            # the sessions that missed it, reloaded once: seconds until the grid showed (None: not even then)
            "missed_reload_loads_s": [round(x, 2) if x != float("inf") else None for x in reloads],
            "sessions_seeing_job_after_reload": (seeing + sum(x != float("inf") for x in reloads)) / max(1, sessions),
            "session_loads_s": [round(x, 2) if x != float("inf") else None for x in loads],  # None: no grid in time
            "session_captions": [c[-120:] for c in captions],  # what each session's grid said at the end
            "missed_sessions_text": missed,
            "server_log_tail": _tail(home / "server.log") if missed else "",  # what the server said about it
            "server_script_threads": stacks,
            "round_trip_s": {"pause": pause_s, "resume": resume_s},
            "rate_watched": statistics.mean(rates) if rates else None,
            "rss_mb": {"start": rss[0][0], "after_sessions": rss[1][0], "end": rss[-1][0],
                       "max": max(r for r, _ in rss)},
            "load_avg": os.getloadavg(), "when": time.strftime("%Y-%m-%d %H:%M"),
            "cpu": f"{os.cpu_count()} cores",
        })
        _judge(out)
    finally:
        stop_server(server)
        shutil.rmtree(home, ignore_errors=True)  # its run and log: what a miss needs of them is in `out` already
    return out


def _tail(path: Path, lines: int = 15) -> str:
    """The last `lines` lines of a log, or '' when there is none."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _script_threads(pid: int, log: Path) -> str:
    """Where the server's script runs are now: it is asked for every thread's stack (app/diagnostics.py), and of
    each thread running a page script the frames in this project's code and the innermost one are kept."""
    before = log.stat().st_size if log.exists() else 0
    try:
        os.kill(pid, signal.SIGUSR1)
    except OSError as error:
        return f"no stacks: {error}"
    time.sleep(2.0)
    dump = log.read_bytes()[before:].decode(errors="replace")
    threads = []
    for block in re.split(r"\n(?=(?:Current thread|Thread) 0x)", dump):
        frames = re.findall(r'File "([^"]+)", line (\d+) in (\S+)', block)
        if not any("script_runner" in f for f, _, _ in frames):
            continue
        ours = [f"{Path(f).parent.name}/{Path(f).name}:{n} {fn}" for f, n, fn in frames
                if str(ROOT) in f and "site-packages" not in f]
        innermost = [f"{Path(f).name}:{n} {fn}" for f, n, fn in frames[:2]]
        threads.append(" < ".join(innermost + ours[:6]))
    return " || ".join(threads) or f"no script thread in the stacks ({len(dump)} characters dumped)"


def page_text(page) -> str:
    """The page's visible text (its last 400 characters) and how many images it holds, or why it could not be read;
    with DDSTUDIO_LOAD_SHOTS set to a folder, a full-page screenshot of it goes there too."""
    try:
        if os.environ.get("DDSTUDIO_LOAD_SHOTS"):
            page.screenshot(path=f"{os.environ['DDSTUDIO_LOAD_SHOTS']}/miss-{time.time():.0f}.png", full_page=True)
        images = page.locator("img").count()
        return f"{images} images; " + " ".join(page.inner_text("body", timeout=10_000).split())[-400:]
    except Exception as error:  # Playwright's errors: a closed or crashed page says so
        return f"unreadable: {error}"[:400]


class PageEvents:
    """What a page's connection did, from Playwright's events: when its websocket opened and closed, how many
    messages went each way and when the last came in, console errors, crashes and failed requests. A session that
    never shows its content can then be told apart: never connected, connected but never answered, or answered
    and then went silent."""

    def __init__(self, page) -> None:
        self.t0 = time.monotonic()
        self.sockets: list[dict] = []
        self.problems: list[str] = []
        page.on("websocket", self._socket)
        page.on("console", lambda m: m.type in ("error", "warning") and self._note(f"console {m.type}: {m.text}"))
        page.on("pageerror", lambda e: self._note(f"page error: {e}"))
        page.on("crash", lambda _: self._note("page crashed"))
        page.on("requestfailed", lambda r: self._note(f"request failed: {r.url} {r.failure}"))

    def _now(self) -> float:
        return round(time.monotonic() - self.t0, 1)

    def _note(self, text: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(f"{self._now()} s {text[:200]}")

    def _socket(self, ws) -> None:
        entry = {"url": ws.url.rsplit("/", 1)[-1], "opened_s": self._now(), "in": 0, "out": 0, "last_in_s": None,
                 "closed_s": None}
        self.sockets.append(entry)

        def received(_payload) -> None:
            entry["in"] += 1
            entry["last_in_s"] = self._now()

        ws.on("framereceived", received)
        ws.on("framesent", lambda _: entry.__setitem__("out", entry["out"] + 1))
        ws.on("close", lambda _: entry.__setitem__("closed_s", self._now()))

    def summary(self) -> str:
        sockets = "; ".join(f"{s['url']} opened {s['opened_s']} s, {s['in']} in (last {s['last_in_s']} s), "
                            f"{s['out']} out, closed {s['closed_s']}" for s in self.sockets) or "no websocket"
        return f"at {self._now()} s: {sockets}" + ("; " + " | ".join(self.problems) if self.problems else "")


def _grid_load_s(page, wait_s: float | None = None, waited_s: float = 0.0) -> float:
    """Seconds from the page's navigation to its first live grid (GRID_CLOCK); inf when none showed within
    `wait_s` (default twice the bound; the test waits longer, so a slow machine is not read as a missing grid).
    waited_s: how long ago the page was opened (sessions opened together share one deadline)."""
    wait_s = BOUNDS["page_load_s"] * 2 if wait_s is None else wait_s
    try:
        page.wait_for_function("window.__ddGridShownMs !== undefined", timeout=max(1.0, wait_s - waited_s) * 1000,
                               polling=200)
    except Exception:
        return float("inf")
    shown_s = page.evaluate("window.__ddGridShownMs") / 1000
    return shown_s if shown_s <= wait_s else float("inf")  # opened together: waited on late


def _reload_load_s(page, wait_s: float | None) -> float:
    """Seconds from reloading `page` to its live grid showing; inf when it did not within `wait_s`."""
    try:
        page.reload(wait_until="commit")
    except Exception:  # Playwright's errors: a crashed page cannot be reloaded
        return float("inf")
    return _grid_load_s(page, wait_s)


def _measure_protocol(out: dict, url: str, home: Path, run_id: str, sessions: int, minutes: float, browser, pid: int,
                      rss: list, server: subprocess.Popen) -> dict:
    """The rest of `measure` with protocol clients as the sessions (the server is stopped by the caller)."""
    opening_s = 0.2 * sessions + 15.0
    proc = _protocol_clients(url, run_id, sessions, opening_s + minutes * 60)
    time.sleep(opening_s)
    cpu0, t0 = _cpu_s(pid), time.monotonic()
    rates = _sample(home, pid, rss, minutes)
    out["server_cpu_cores"] = (_cpu_s(pid) - cpu0) / (time.monotonic() - t0)  # the pages' work, jobs excluded
    stats = json.loads(proc.communicate(timeout=300)[0] or "[]")
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(f"{url}/distill?run={run_id}")
    page.locator(GRID).first.wait_for(timeout=120_000)
    pause_s = _round_trip(page, "Pause", "Resume")
    resume_s = _round_trip(page, "Resume", "Pause")
    page.context.close()
    loads = [s.get("first_image_s") for s in stats]
    finite = [x for x in loads if x is not None]
    out.update({
        "page_load_s": {"median": statistics.median(finite) if finite else None,
                        "max": max(finite) if len(finite) == len(loads) and finite else float("inf")},
        "sessions_seeing_job": sum(bool(s.get("live_seen")) for s in stats) / max(1, sessions),
        "images_per_session_per_s": statistics.mean(s.get("images", 0) for s in stats) / (minutes * 60) if stats else 0,
        "new_images_per_session_per_s": (statistics.mean(s.get("new_images", 0) for s in stats) / (minutes * 60)
                                         if stats else 0),
        "fragment_reruns_per_session_per_s": (statistics.mean(s.get("reruns", 0) for s in stats) / (minutes * 60)
                                              if stats else 0),
        "round_trip_s": {"pause": pause_s, "resume": resume_s},
        # the live grid's timer as each session was last given it (its fastest fragment), median over sessions
        "live_interval_s": _live_interval(stats),
        "rate_watched": statistics.mean(rates) if rates else None,
        "rss_mb": {"start": rss[0][0], "after_sessions": rss[1][0], "end": rss[-1][0], "max": max(r for r, _ in rss)},
        "load_avg": os.getloadavg(), "when": time.strftime("%Y-%m-%d %H:%M"), "cpu": f"{os.cpu_count()} cores",
        "browsers": "protocol clients on the UI core (benchmarks/stclient.py); one Chromium for the round trip",
    })
    _judge(out)
    return out


def _live_interval(stats: list[dict]) -> float | None:
    """The live grid's timer as each session was last given it (its fastest running fragment), median over sessions."""
    last = [min(v for v in (i[-1] for i in s["intervals"].values()) if v is not None)
            for s in stats if any(i and i[-1] is not None for i in s.get("intervals", {}).values())]
    return statistics.median(last) if last else None


def _freshness(row: dict) -> str:
    """Images a protocol session fetched a second, how many of them were new to it (a new live frame is a new
    image), and the live grid's timer it was last given ("-": not measured)."""
    images = row.get("images_per_session_per_s")
    if images is None:
        return "-"
    new = row.get("new_images_per_session_per_s")
    timer = row.get("live_interval_s")
    return (f"{images:.2f} / " + (f"{new:.2f}" if new is not None else "-")
            + (f" ({timer:.1f})" if timer is not None else " (0.3, fixed)"))


def write(row: dict, out_dir: Path) -> None:
    rows = record(row, out_dir, "load")
    lines = ["# Many sessions on one server while a DM run works (MNIST, IPC 10, quick preset: the Distill default)", "",
             "Command: `python -m benchmarks.load --sessions N --minutes M`; machine: this repo's 2-core CPU unless "
             "noted; real headless Chromium sessions on the run's live view. Bounds: "
             + ", ".join(f"{k} {v}" for k, v in BOUNDS.items()) + ".", "",
             "| when | browsers | sessions | minutes | page load s (median / max) | sessions seeing the live job | "
             "pause / resume round trip s | job it/s alone → watched (kept) | server MB start → end (max) | "
             "images per session per s: fetched / new (live timer s) | server CPU, cores (jobs excluded) | load avg | "
             "within bounds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pl, rt, mem = r["page_load_s"], r["round_trip_s"], r["rss_mb"]
        ok = ", ".join(k for k, v in r["within_bounds"].items() if not v) or "all"
        where = r.get("browsers", "any core; server not yet pinned")
        lines.append(f"| {r['when']} | {where} | {r['sessions']} | {r['minutes']} | {pl['median']:.1f} / {pl['max']:.1f} | "
                     f"{r['sessions_seeing_job']:.0%} | {rt['pause']:.2f} / {rt['resume']:.2f} | "
                     f"{r['rate_no_tabs']:.2f} → {r['rate_watched']:.2f} ({r['job_speed_kept']:.0%}) | "
                     f"{mem['after_sessions']:.0f} → {mem['end']:.0f} ({mem['max']:.0f}) | {_freshness(r)} | "
                     f"{format(r['server_cpu_cores'], '.2f') if r.get('server_cpu_cores') is not None else '-'} | "
                     f"{', '.join(f'{x:.1f}' for x in r['load_avg'])} | "
                     f"{ok if ok == 'all' else 'NOT: ' + ok} |")
    (out_dir / "load.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--baseline-s", type=float, default=30.0, help="seconds to measure the job alone")
    p.add_argument("--out-dir", default=str(RESULTS))
    p.add_argument("--clients", choices=("chromium", "protocol"), default="chromium",
                   help="protocol: the sessions are Streamlit protocol clients on the UI core (benchmarks/stclient.py), "
                        "doing what a tab does to the server without drawing")
    p.add_argument("--browser-on-ui-core", action="store_true",
                   help="run the browsers on the core the server keeps for pages (as if they were the students' "
                        "machines); by default they may use any core, the job's included")
    p.add_argument("--together", action="store_true",
                   help="the Chromium sessions open at once, as a class does, rather than one after another")
    args = p.parse_args()
    executable = chromium_for(args.browser_on_ui_core)
    row = measure(args.sessions, args.minutes, args.baseline_s, executable=executable, clients=args.clients,
                  together=args.together)
    row.setdefault("browsers", ("on the UI core (taskset)" if executable != CHROMIUM else "any core")
                   + ("; opened together" if args.together else ""))
    print(json.dumps(row, indent=1))
    write(row, Path(args.out_dir))


if __name__ == "__main__":
    main()
