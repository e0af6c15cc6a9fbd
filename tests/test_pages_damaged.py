"""Damaged files in the store are said on the page, never a traceback: a corrupt set file (Distill, Gallery,
Compare) and a corrupt history snapshot (Distill's timelapse, Gallery)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ddcore.platform.store import Store
from tests.apptest_kit import ok, page
from tests.evalkit import make_runs


@pytest.fixture
def damaged(tmp_path: Path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("DDCORE_HOME", str(home))
    store = Store(home)
    broken_set, broken_frame = make_runs(store, ("random", "dm"))
    store.set_path(broken_set).write_bytes(b"not a set file" * 10)
    store.add_frame(broken_frame, 0, np.zeros((10, 28, 28, 1), np.uint8), np.arange(10))
    store.add_frame(broken_frame, 1, np.zeros((10, 28, 28, 1), np.uint8), np.arange(10))
    store.set_path(broken_frame).unlink()  # the Gallery then shows the newest snapshot...
    (store.history_dir(broken_frame) / f"{1:09d}.npz").write_bytes(b"junk")  # ...which is damaged
    return broken_set, broken_frame


def test_a_damaged_set_or_snapshot_is_said_not_raised(damaged) -> None:
    broken_set, broken_frame = damaged
    at = ok(page("distill.py", run=broken_set).run())
    assert any("cannot be read" in w.value for w in at.warning)
    at = ok(page("gallery.py", run=broken_set).run())
    assert any("cannot be read" in e.value for e in at.error)
    at = ok(page("gallery.py", run=broken_frame).run())
    assert any("snapshot cannot be read" in w.value for w in at.warning)
    at = ok(page("distill.py", run=broken_frame).run())
    at = ok(page("compare.py", dataset="mnist", runs=f"{broken_set},{broken_frame}").run())
    assert any("not a readable DD Studio set file" in e.value for e in at.error)
