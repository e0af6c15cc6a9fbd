"""Waiting on real background work in tests: poll a condition until it holds, or fail saying what was awaited."""
from __future__ import annotations

import time
from typing import Callable


def until(condition: Callable[[], object], timeout: float, what: str, every: float = 0.02) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")
