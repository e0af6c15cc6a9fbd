"""How often each open tab may redraw its live parts, given how many tabs are polling this server.

Why: every tab re-runs its live fragments on its own timer (the live grid every 0.3 s, the jobs panel every
second). All those reruns are served by the one core the server keeps for pages. Twenty tabs on a live run asked
for ~90 reruns a second, more than that core serves: the job kept its speed, but each tab then saw a new grid
only about every 20 s (benchmarks/results/load.md). Spreading a fixed budget of reruns over whoever is polling
keeps every tab's view moving: a tab or two keep their 0.3 s; twenty get a new grid every second or two.

Each polled fragment says, on every run, which session it belongs to and how often it would like to run
(`seen`); `interval` then stretches every requested interval by the same factor, so the total stays within
`RERUNS_PER_S`. A fragment not seen for a while (`expired`) no longer counts.
"""
from __future__ import annotations

import math
import threading
import time

RERUNS_PER_S = 15.0  # fragment reruns a second the UI core serves with room to spare (see the module docstring)
WINDOW_S = 8.0  # a fragment not seen for this long, or 2.5 of its stretched intervals if longer, no longer counts
MAX_STRETCH = 10.0  # however many tabs, a live view still refreshes at least every 10 x its own interval
STEP_S = 0.1  # intervals are rounded up to this, so a tab's timer is not re-armed for every small change

_LOCK = threading.Lock()
_DEMAND: dict[tuple[str, str], tuple[float, float]] = {}  # (session, fragment) -> (its own interval s, last seen)
_STRETCH = [1.0]  # the factor last computed (how long a fragment may go unseen depends on it)


def seen(session: str, fragment: str, every_s: float, now: float | None = None) -> None:
    """Record that `session`'s `fragment` polls every `every_s` seconds (called on each of its runs)."""
    now = time.monotonic() if now is None else now
    with _LOCK:
        _DEMAND[(session, fragment)] = (max(every_s, 1e-3), now)


def expired(every_s: float, unseen_s: float) -> bool:
    """Whether a fragment polling every `every_s` (before stretching) and unseen for `unseen_s` has gone."""
    return unseen_s > max(WINDOW_S, 2.5 * every_s * _STRETCH[0])


def demand(now: float | None = None) -> float:
    """Reruns a second that the polling tabs ask for together, before stretching."""
    now = time.monotonic() if now is None else now
    with _LOCK:
        for key in [k for k, (every, when) in _DEMAND.items() if expired(every, now - when)]:
            del _DEMAND[key]
        return sum(1.0 / every for every, _ in _DEMAND.values())


def stretch(now: float | None = None) -> float:
    """The factor every tab's interval is multiplied by: 1 while the demand fits the budget."""
    factor = min(MAX_STRETCH, max(1.0, demand(now) / RERUNS_PER_S))
    _STRETCH[0] = factor
    return factor


def interval(every_s: float, now: float | None = None) -> float:
    """`every_s` stretched to this server's audience, rounded up to `STEP_S`."""
    stretched = every_s * stretch(now)
    return max(every_s, math.ceil(round(stretched / STEP_S, 6)) * STEP_S)


def clear() -> None:
    with _LOCK:
        _DEMAND.clear()
    _STRETCH[0] = 1.0
