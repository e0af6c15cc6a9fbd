"""The benchmark board page (AppTest): empty store, then a board of real tiny evaluations with its exports."""
from __future__ import annotations

import os

import pytest

from ddcore.platform.queue import JobManager
from ddcore.platform.records import Subject
from ddcore.platform.store import Store
from ddcore.results import custom_preset
from tests.apptest_kit import opened
from tests.evalkit import evaluate_all, make_runs


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DDCORE_HOME", str(tmp_path))
    return tmp_path


def test_empty_store_says_what_to_do(home) -> None:
    at = opened("board.py")
    assert any("No evaluated sets yet" in i.value for i in at.info)


def test_board_shows_pooled_sets_fair_baseline_and_exports(home) -> None:
    store = Store(home)
    runs = make_runs(store, methods=("dm",), ipc=1, prefix="=cmd")  # a name a spreadsheet would run
    preset = custom_preset(epochs=3, test_limit=300, augmentation="none")
    manager = JobManager(store)
    try:
        evaluate_all(manager, [Subject.run(runs[0]), Subject.random("mnist", 1, 0)], ["convnet"], preset)
    finally:
        manager.shutdown(wait=10)
    at = opened("board.py", board_preset=preset)
    assert os.environ["DDCORE_HOME"] == str(home)
    table = at.dataframe[0].value
    assert list(table["method"]) == ["dm"] and table["random_same_protocol"].notna().all()
    assert table["networks"].iloc[0] == 1
    labels = [b.proto.label for b in at.get("download_button")]
    assert "⬇ Board (CSV)" in labels and "⬇ Board (Markdown)" in labels
    assert any(r"\mathrm{LRS}" in element.value for element in at.get("latex"))
