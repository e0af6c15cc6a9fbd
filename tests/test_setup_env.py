"""scripts/setup_env.sh: installing the dev requirements also counts for the requirements they include, so README's
run command (which the browser tests start) does not install and byte-compile the whole venv a second time."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import ROOT

FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/../../calls.log"
"""


def _project(tmp_path: Path) -> Path:
    """A copy of the script beside two requirements files, and a venv whose python only records its calls."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup_env.sh", tmp_path / "scripts" / "setup_env.sh")
    (tmp_path / "requirements.txt").write_text("numpy==2.3.5\n")
    (tmp_path / "requirements-dev.txt").write_text("-r requirements.txt\npytest==9.2.0\n")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return tmp_path


def _ensure(project: Path, *requirements: str) -> list[str]:
    script = "source scripts/setup_env.sh && " + " && ".join(f"ensure_venv {r}" for r in requirements)
    subprocess.run(["bash", "-c", script], cwd=project, check=True, capture_output=True, text=True, timeout=60)
    log = project / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_the_dev_install_also_stands_for_the_requirements_it_includes(tmp_path: Path) -> None:
    project = _project(tmp_path)
    calls = _ensure(project, "requirements-dev.txt", "requirements.txt")
    installs = [c for c in calls if c.startswith("-m pip install")]
    assert installs == ["-m pip install -q --disable-pip-version-check --no-compile -r requirements-dev.txt"], calls
    assert sum(c.startswith("-m compileall") for c in calls) == 1, calls


def test_a_changed_requirements_file_installs_again(tmp_path: Path) -> None:
    project = _project(tmp_path)
    _ensure(project, "requirements-dev.txt")
    (project / "requirements.txt").write_text("numpy==2.3.5\npillow==12.0.0\n")
    calls = _ensure(project, "requirements.txt")
    assert [c for c in calls if c.startswith("-m pip install")][-1].endswith("-r requirements.txt"), calls
