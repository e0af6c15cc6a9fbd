"""`python -m ddcore continual | nas`: thin layers over the studies; bad input is one line and exit 2."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli import ddcore


def test_bad_study_input_is_one_clear_line() -> None:
    for args, message in ((["continual", "--steps", "11", "--methods", "random"], "between 1 and the number of classes"),
                          (["nas", "--proxy", "run:nope"], "No run 'nope'")):
        out = ddcore(*args)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # two fresh interpreters and two tiny studies, ~30 s
def test_tiny_studies_end_to_end_then_reused(tmp_path: Path) -> None:
    args = ["continual", "--methods", "random", "--ipc", "1", "--steps", "2", "--orders", "2", "--preset", "tiny",
            "--device", "cpu", "--quiet", "--json", str(tmp_path / "cl.json")]
    out = ddcore(*args)
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "cl.json").read_text())
    assert summary["orders"] == [0, 1] and len(summary["methods"]["random"]["final_per_order"]) == 2
    assert "random" in out.stdout and "step 2" in out.stdout
    again = ddcore(*args)
    assert again.returncode == 0 and "stored result reused" in again.stderr

    out = ddcore("nas", "--proxy", "random", "--ipc", "1", "--widths", "8", "16", "--depths", "1", "--norms", "instancenorm",
                 "none", "--budget", "tiny", "--bootstrap", "50", "--device", "cpu", "--quiet", "--json", str(tmp_path / "n.json"))
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "n.json").read_text())
    assert len(result["architectures"]) == 4 and result["correlations"][0]["subset"] == "all"
    assert "Spearman" in out.stdout
