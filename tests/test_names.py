"""Run names: what the store accepts (no control, bidirectional-override or invisible characters) and that
pages and plots show any accepted name as literal text."""
from __future__ import annotations

import pytest

from app.text import plain, plot_text
from ddcore.names import check_name
from ddcore.platform.store import Store
from tests.evalkit import make_runs


@pytest.mark.parametrize("bad,why", [
    ("evil\u202egnp.exe", "bidirectional"), ("a\u200bb", "bidirectional or invisible"), ("line\nbreak", "control"),
    ("bell\x07", "control"), ("", "empty"), ("   ", "empty"), ("x" * 201, "limited to 200"),
])
def test_bad_names_are_refused_with_the_reason(bad: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        check_name(bad)


def test_markup_names_are_accepted_and_shown_as_text() -> None:
    name = "<img src=x onerror=alert(1)> ![i](http://h/p.png) **b** $x$ | a"
    assert check_name(f"  {name}  ") == name
    shown = plain(name)
    assert "<" not in shown and "![" not in shown and "**" not in shown and "\\$" in shown and "\\|" in shown
    assert plot_text(name).startswith("&lt;img")
    assert check_name("Ünïcode 名前 🧪") == "Ünïcode 名前 🧪"  # letters and emoji of any script are fine


def test_store_refuses_a_bad_rename_and_keeps_the_old_name(tmp_path) -> None:
    store = Store(tmp_path)
    run_id = make_runs(store, ("random",))[0]
    before = store.get_run(run_id).name
    with pytest.raises(ValueError, match="U\\+202E"):
        store.rename_run(run_id, "report\u202etxt.exe")
    assert store.get_run(run_id).name == before
    with pytest.raises(ValueError):
        store.create_run({"dataset": "mnist", "method": "dm", "ipc": 1}, name="a\x00b")
