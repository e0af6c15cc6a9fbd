"""`python -m ddcore`: listings, close-match errors, show, and a tiny distillation end to end."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import ROOT


def ddcore(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """The CLI in a clean environment, with the suite's one intra-op thread (conftest.py): with two OpenMP threads
    beside a busy core a tiny NAS study took 26 s instead of 5."""
    return subprocess.run([sys.executable, "-m", "ddcore", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "DDCORE_OFFLINE": "1",
                                            "HOME": str(Path.home()), "DDCORE_HOME": os.environ["DDCORE_HOME"],
                                            "DDCORE_CACHE": os.environ["DDCORE_CACHE"],
                                            "OMP_NUM_THREADS": os.environ["OMP_NUM_THREADS"],
                                            "DDCORE_JOB_THREADS": os.environ["DDCORE_JOB_THREADS"]})


def side_by_side(*calls: list[str]) -> list[subprocess.CompletedProcess]:
    """Independent CLI calls at once: each is a fresh interpreter that spends ~2 s importing torch, on one core."""
    from ddcore.platform.store import Store

    Store().close()  # the session's store exists (created, migrated) before the calls open it together
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda args: ddcore(*args), calls))


def ddcore_here(*args: str) -> subprocess.CompletedProcess:
    """The CLI's own `main` in this process, for refusals and small runs where a fresh interpreter is not what is
    tested: one costs ~4 s of CPU (torch's import) on a 2-core CI machine, which the suite paid once per call. The
    entry point itself, `python -m ddcore`, is proven by the calls through `ddcore` above. An exception main lets
    through becomes a traceback on stderr and exit status 1, as the interpreter would report it."""
    from ddcore.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:  # argparse's refusals
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except Exception:
            traceback.print_exc()
            code = 1
    return subprocess.CompletedProcess(["python", "-m", "ddcore", *args], code, out.getvalue(), err.getvalue())


@pytest.mark.slow
def test_listings_name_every_registry_entry() -> None:
    from ddcore.data import list_datasets
    from ddcore.methods import METHODS
    from ddcore.models import list_models

    # (tests may register extra methods in this process; the CLI's fresh process has the built-in ones)
    methods = [e.name for e in METHODS.entries() if e.obj.__module__.startswith("ddcore.")]
    for kind, names in (("datasets", list_datasets()), ("models", list_models()), ("methods", methods)):
        out = ddcore(kind)
        assert out.returncode == 0, out.stderr
        listed = {line.split()[0] for line in out.stdout.splitlines() if line.strip()}
        assert listed == set(names)


@pytest.mark.slow
def test_wrong_names_suggest_close_matches() -> None:
    out = ddcore("distill", "--dataset", "mnist", "--method", "herdng", "--ipc", "1")  # once through the entry point
    assert out.returncode == 2 and "Did you mean: herding" in out.stderr and "Traceback" not in out.stderr
    out = ddcore_here("distill", "--dataset", "cifar-1O", "--method", "random")
    assert out.returncode == 2 and "cifar10" in out.stderr


@pytest.mark.slow
def test_distill_a_coreset_then_show_it(tmp_path: Path) -> None:
    target = tmp_path / "r.ddset"
    out = ddcore("distill", "--dataset", "mnist", "--method", "random", "--ipc", "2", "--out", str(target), "--quiet")
    assert out.returncode == 0, out.stderr
    assert target.exists() and target.with_suffix(".png").exists()
    out = ddcore("show", str(target), "--png", str(tmp_path / "grid.png"), "--scale", "1")
    assert out.returncode == 0, out.stderr
    assert "method:      random   IPC 2" in out.stdout
    assert Image.open(tmp_path / "grid.png").size == (2 * 30 + 2, 10 * 30 + 2)
    kept = target.read_bytes()
    out = ddcore("show", str(target), "--png", str(target), "--overwrite")  # the grid over the set itself: refused
    assert out.returncode == 2 and "the set file itself" in out.stderr and target.read_bytes() == kept


def test_an_output_the_set_cannot_be_saved_at_is_refused_before_the_run(tmp_path: Path) -> None:
    cases = ((tmp_path / "d.png", "cannot end in .png"), (tmp_path, "is a directory"),
             (tmp_path / "no" / "x.ddset", "does not exist"))
    outs = [ddcore_here("distill", "--dataset", "mnist", "--method", "random", "--ipc", "1", "--no-store", "--out",
                        str(bad)) for bad, _ in cases]
    for (_, why), out in zip(cases, outs):
        assert out.returncode == 2 and why in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert not (tmp_path / "d.png").exists()


def test_show_refuses_a_damaged_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ddset"
    bad.write_bytes(b"not a set file at all")
    out = ddcore_here("show", str(bad))
    assert out.returncode == 2 and "not a readable DD Studio set file" in out.stderr
