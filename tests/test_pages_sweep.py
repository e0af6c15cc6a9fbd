"""The Sweeps page (AppTest): an empty store, bad grids and addresses, a sweep started from the page and followed
to its stored table with the exports."""
from __future__ import annotations

import time

import pytest

from tests.apptest_kit import ok, opened, page


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DDCORE_HOME", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return tmp_path


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_empty_store_says_where_cells_run_and_what_to_do(home) -> None:
    at = opened("sweep.py")
    text = " ".join(m.value for m in at.markdown)
    assert "Runs on this machine" in text
    # evaluations: nothing measured here, said and not guessed; the distillation from the repo's CPU benchmark, said so
    assert "1 cell**: 1 distillation and" in text and "No full estimate yet" in text and "evaluation of" in text, text
    assert "The distillations alone: about" in text and "estimated from our recorded CPU benchmarks" in text, text
    assert any("No finished sweep yet" in i.value for i in at.info)
    assert not _button(at, "Start sweep").disabled


def test_a_grid_without_methods_or_with_a_bad_ipc_cannot_start(home) -> None:
    at = opened("sweep.py", sweep_methods=[])
    assert any("at least one" in w.value for w in at.warning)
    assert _button(at, "Start sweep").disabled
    at = opened("sweep.py", sweep_ipcs=[1, "ten"])
    assert any("whole numbers" in w.value for w in at.warning)
    assert _button(at, "Start sweep").disabled


def test_a_bad_or_silent_cluster_address_is_said_in_seconds(home) -> None:
    at = page("sweep.py")
    at.run()
    at.text_input(key="sweep_address").input("not an address").run()
    _button(at, "Connect").click().run()
    ok(at)
    assert any("host:port" in e.value for e in at.error)
    started = time.monotonic()
    at.text_input(key="sweep_address").input("127.0.0.1:1").run()
    _button(at, "Connect").click().run()
    assert any("Nothing answers at 127.0.0.1:1" in e.value for e in at.error)
    assert time.monotonic() - started < 30
    assert "Runs on this machine" in " ".join(m.value for m in at.markdown)


@pytest.mark.slow
def test_a_sweep_started_here_runs_and_its_table_can_be_downloaded(home) -> None:
    at = opened("sweep.py", sweep_iterations=1, sweep_label="<b>tiny</b>", sweep_eval_preset="custom",
                sweep_custom_epochs=3, sweep_custom_test=300, sweep_custom_aug="none")
    assert any("custom-e3-t300-none" in c.value for c in at.caption)  # the preset's name, as the Evaluate page says
    _button(at, "Start sweep").click().run()
    ok(at)
    deadline = time.time() + 240
    while time.time() < deadline:
        at.run()
        ok(at)
        if any(s.value == "Finished sweeps" for s in at.subheader) and not at.info and at.dataframe:
            break
        time.sleep(1)
    summary = at.dataframe[0].value
    assert list(summary["method"]) == ["dm"] and summary["seeds done"].iloc[0] == 1
    assert summary["gain on convnet"].notna().all()
    labels = [b.proto.label for b in at.get("download_button")]
    assert "⬇ Table (CSV)" in labels and "⬇ Table (Markdown)" in labels
    text = " ".join(m.value for m in at.markdown)
    assert "about" in text  # the same grid again now has a measured estimate
    from ddcore.platform.store import Store

    presets = {e.preset for e in Store(home).list_evaluations()}
    assert presets == {"custom-e3-t300-none"}, presets  # the set and its baseline, both under the custom preset
