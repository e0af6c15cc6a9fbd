"""What every session watching a run draws, made once per change and shared by all of them.

Why: the live view of a run is redrawn twice a second in every open tab. Drawing the labelled grid, encoding
it as PNG and building the loss figure cost ~30 ms each time; with twenty tabs that was more CPU than the job
got (benchmarks/results/load.md). Keyed by what the picture shows (run, iteration, frame, size), the work is
done once per new frame and reused by every session; identical PNG bytes are also one media file for
Streamlit, so browsers do not download the image again until it changes.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

_LOCK = threading.Lock()
_ENTRIES: OrderedDict[Hashable, Any] = OrderedDict()
MAX_ENTRIES = 64  # a few frames of a few runs; each PNG is ~100 kB


def shared(key: Hashable, make: Callable[[], Any]) -> Any:
    """The value for `key`, made by `make()` the first time (under no lock: two sessions may both make it,
    which is harmless) and kept for every later caller until newer keys push it out."""
    with _LOCK:
        if key in _ENTRIES:
            _ENTRIES.move_to_end(key)
            return _ENTRIES[key]
    value = make()
    with _LOCK:
        _ENTRIES[key] = value
        while len(_ENTRIES) > MAX_ENTRIES:
            _ENTRIES.popitem(last=False)
    return value


def clear() -> None:
    with _LOCK:
        _ENTRIES.clear()
