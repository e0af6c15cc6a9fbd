"""The rerun budget shared by every polling tab (app/audience.py): a tab or two keep their own intervals, twenty
are stretched so that together they stay within the budget, and tabs that stopped polling drop out."""
from __future__ import annotations

import pytest

from app import audience


@pytest.fixture(autouse=True)
def empty():
    audience.clear()
    yield
    audience.clear()


def _tabs(n: int, now: float) -> None:
    """`n` Distill tabs on a live run: the grid every 0.3 s and the jobs panel every second."""
    for i in range(n):
        audience.seen(f"tab{i}", "live_view", 0.3, now)
        audience.seen(f"tab{i}", "jobs_panel", 1.0, now)


def test_one_or_two_tabs_keep_their_own_intervals():
    _tabs(2, now=100.0)
    assert audience.interval(0.3, now=100.0) == pytest.approx(0.3)
    assert audience.interval(1.0, now=100.0) == pytest.approx(1.0)


def test_twenty_tabs_share_the_budget():
    _tabs(20, now=100.0)
    live, panel = audience.interval(0.3, now=100.0), audience.interval(1.0, now=100.0)
    assert live > 1.0 and panel > 3.0
    together = 20 * (1 / live + 1 / panel)
    assert audience.RERUNS_PER_S * 0.9 <= together <= audience.RERUNS_PER_S  # within the budget, and not far under


def test_a_tab_rerunning_updates_its_entry_instead_of_adding_one():
    for moment in range(50):
        audience.seen("tab0", "live_view", 0.3, now=100.0 + moment * 0.3)
    assert audience.demand(now=115.0) == pytest.approx(1 / 0.3)


def test_tabs_that_stopped_polling_drop_out():
    _tabs(20, now=100.0)
    _tabs(1, now=100.0 + audience.WINDOW_S)  # tab0 is still there; the other 19 were closed
    assert audience.interval(0.3, now=100.0 + audience.WINDOW_S + 1) == pytest.approx(0.3)


def test_a_huge_audience_is_stretched_at_most_tenfold():
    _tabs(1000, now=100.0)
    assert audience.interval(0.3, now=100.0) == pytest.approx(0.3 * audience.MAX_STRETCH)


def test_a_stretched_fragment_keeps_counting_between_its_runs():
    """Twenty tabs stretch the jobs panel's 1 s to several seconds; between two of its runs it still counts, so the
    stretch does not collapse and spring back (a fixed 8 s window would drop it)."""
    _tabs(20, now=100.0)
    slow = audience.interval(1.0, now=100.0)
    assert slow > audience.WINDOW_S / 2
    later = 100.0 + 1.5 * slow  # the live grid ran again; the jobs panel is not due yet
    for i in range(20):
        audience.seen(f"tab{i}", "live_view", 0.3, later)
    assert audience.interval(1.0, now=later) == pytest.approx(slow)
