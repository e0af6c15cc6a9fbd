"""`python -m ddcore continual | nas | sweep`: thin layers over the studies; bad input is one line and exit 2."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli import ddcore, ddcore_here, side_by_side


def test_bad_study_input_is_one_clear_line() -> None:
    cases = ((["continual", "--steps", "11", "--methods", "random"], "between 1 and the number of classes"),
             (["nas", "--proxy", "run:nope"], "No run 'nope'"),
             (["sweep", "--methods", "dm", "--ipcs", "1", "1"], "lists a value twice"),
             (["sweep", "--ray-address", "127.0.0.1:1"], "Nothing answers at 127.0.0.1:1"),
             (["sweep", "--ray-address", "nowhere"], "host:port"),
             (["sweep", "--seeds", "0", "--estimate"], "at least 1, not 0"),  # once silently 1
             (["sweep", "--iterations", "0", "--estimate"], "iterations must be between 1"),  # once silently the preset's
             (["sweep", "--arch", "nope", "--estimate"], "Unknown model 'nope'"),  # once priced, then failed later
             (["privacy", "--set", "zzz=1"], "unknown privacy setting(s) zzz"))  # once a TypeError traceback
    for args, message in cases:
        out = ddcore_here(*args)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)
        assert out.stderr.strip().splitlines()[-1].startswith("error:")
        assert sum(line.startswith("error:") for line in out.stderr.splitlines()) == 1


@pytest.mark.slow  # three fresh interpreters and two tiny studies (the two side by side), ~10 s
def test_tiny_studies_end_to_end_then_reused(tmp_path: Path) -> None:
    args = ["continual", "--methods", "random", "--ipc", "1", "--steps", "2", "--orders", "2", "--preset", "tiny",
            "--arch", "convnetw32", "--device", "cpu", "--quiet", "--json", str(tmp_path / "cl.json")]
    nas = ["nas", "--proxy", "random", "--ipc", "1", "--widths", "8", "16", "--depths", "1", "--norms", "instancenorm",
           "none", "--budget", "tiny", "--bootstrap", "50", "--device", "cpu", "--quiet", "--json", str(tmp_path / "n.json")]
    out, nas_out = side_by_side(args, nas)
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "cl.json").read_text())
    assert summary["orders"] == [0, 1] and len(summary["methods"]["random"]["final_per_order"]) == 2
    assert "random" in out.stdout and "step 2" in out.stdout
    again = ddcore(*args)
    assert again.returncode == 0 and "stored result reused" in again.stderr

    assert nas_out.returncode == 0, nas_out.stderr
    result = json.loads((tmp_path / "n.json").read_text())
    assert len(result["architectures"]) == 4 and result["correlations"][0]["subset"] == "all"
    assert "Spearman" in nas_out.stdout


@pytest.mark.slow  # two fresh interpreters, two tiny distillations and four 3-epoch evaluations, ~12 s
def test_a_tiny_sweep_prints_its_table_and_then_has_an_estimate(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DDCORE_HOME", str(tmp_path / "home"))  # a store of its own: nothing measured before
    # a self-describing evaluation preset of 3 epochs on 300 test images (the quick one trains 50-100 epochs: ~6 s each),
    # on a width-32 ConvNet
    args = ["sweep", "--methods", "dm", "random", "--iterations", "3", "--arch", "convnetw32",
            "--eval-preset", "custom-e3-t300-none", "--quiet"]
    out = ddcore(*args, "--json", str(tmp_path / "s.json"))
    assert out.returncode == 0, out.stderr
    table = json.loads((tmp_path / "s.json").read_text())["summary"]
    assert [row["method"] for row in table] == ["dm", "random"] and all(row["seeds done"] == 1 for row in table)
    assert "gain on convnetw32" in out.stdout and "no estimate" in out.stderr
    again = ddcore(*args, "--estimate")
    assert again.returncode == 0 and "about" in again.stderr and "gain" not in again.stdout
