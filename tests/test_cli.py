"""`python -m ddcore`: listings, close-match errors, show, and a tiny distillation end to end."""
from __future__ import annotations

import io
import json
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


def test_outputs_that_would_replace_a_users_file_or_cannot_be_written_are_refused_first(tmp_path: Path) -> None:
    """Found by probing the CLI: --json over the input set, --out over a notes file, --out under /proc (checked only
    after the run, so the set was lost) all refused before any work, the files untouched; --overwrite and a previous
    JSON result are replaced as asked."""
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    base = ("distill", "--dataset", "mnist", "--method", "random", "--ipc", "1", "--no-store", "--quiet")
    out = ddcore_here(*base, "--out", str(notes))
    assert out.returncode == 2 and "exists; pass --overwrite" in out.stderr and notes.read_text() == "my notes"
    out = ddcore_here(*base, "--out", "/proc/x.ddset")
    assert out.returncode == 2 and "cannot write in /proc" in out.stderr, out.stderr
    target = tmp_path / "s.ddset"
    assert ddcore_here(*base, "--out", str(target)).returncode == 0 and target.is_file()
    kept = target.read_bytes()
    (tmp_path / "s.png").unlink()
    out = ddcore_here(*base, "--out", str(target), "--seed", "1")  # the set is there: not replaced silently
    assert out.returncode == 2 and "exists" in out.stderr and target.read_bytes() == kept
    assert ddcore_here(*base, "--out", str(target), "--seed", "1", "--overwrite").returncode == 0
    assert target.read_bytes() != kept and (tmp_path / "s.png").is_file()
    kept = target.read_bytes()
    evaluate = ("evaluate", str(target), "--preset", "custom-e1-t10-none")
    out = ddcore_here(*evaluate, "--json", str(target))  # the input set named as the result file
    assert out.returncode == 2 and "not a JSON result" in out.stderr and target.read_bytes() == kept
    for flags in (("show", str(target), "--png", "/dev/null", "--overwrite"),  # a device is not replaced by a PNG
                  ("show", str(target), "--png", str(tmp_path / "nodir" / "x.png")),
                  ("export", str(target), "--out", str(tmp_path), "--overwrite")):
        out = ddcore_here(*flags)
        assert out.returncode == 2 and ".tmp" not in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert Path("/dev/null").is_char_device()
    record = tmp_path / "r.json"
    record.write_text("{}")  # a previous result: replaced
    assert ddcore_here(*evaluate, "--json", str(record)).returncode == 0
    assert json.loads(record.read_text())["accuracies"]


def test_a_set_that_cannot_reach_its_out_path_after_the_run_is_rescued_not_lost(tmp_path: Path, capsys) -> None:
    """The folder was writable when checked but not at the end (a disk filled during the run): the set goes to the
    studio's home and the path is said."""
    from ddcore.cli import _save_set
    from ddcore.synthetic import SyntheticSet

    target = tmp_path / "s.ddset"
    assert ddcore_here("distill", "--dataset", "mnist", "--method", "random", "--ipc", "1", "--no-store", "--quiet",
                       "--out", str(target)).returncode == 0
    synthetic = SyntheticSet.load(target)
    saved = _save_set(synthetic, Path("/proc/s.ddset"))  # writing there fails as a full disk would
    assert saved.parent == Path(os.environ["DDCORE_HOME"]) / "rescued" and saved.name.endswith("-s.ddset")
    assert SyntheticSet.load(saved).images.equal(synthetic.images) and saved.with_suffix(".png").is_file()
    assert f"the set is saved as {saved}" in capsys.readouterr().err


@pytest.mark.parametrize("args, says", [
    (("distill", "--method", "dm", "--ipc", "1", "--set", "iterations=Infinity"), "is a whole number, not inf"),
    (("distill", "--method", "dm", "--ipc", "1", "--eval-every", "-1"), "--eval-every is a number of iterations"),
    (("distill", "--method", "dm", "--ipc", "1", "--iterations", "1", "--set", "iterations=5"), "disagree"),
    (("distill", "--method", "dm", "--ipc", "1", "--set", "lr_img=1", "lr_img=2"), "names lr_img twice"),
    (("distill", "--method", "dm", "--ipc", "1", "--set", "=1"), "(no key)"),
    (("distill", "--method", "dm", "--ipc", "1", "--out", "SAME.ddset", "--eval", "--json", "SAME.ddset"),
     "is where the set"),
    (("distill", "--method", "dm", "--ipc", "1", "--eval-krr"), "add --eval to run it"),
    (("distill", "--method", "dm", "--ipc", "1", "--eval", "--eval-arch", "convnet", "bogus"), "bogus"),
    (("privacy", "--preset", "tiny", "--set", "epochs=Infinity"), "epochs is a whole number"),
    (("privacy", "--preset", "tiny", "--set", "test_limit=abc"), "test_limit is a whole number"),
    (("privacy", "--preset", "tiny", "--set", "dataset=foo"), "foo"),
    (("privacy", "--preset", "tiny", "--set", "methods=null"), "methods is a list"),
    (("privacy", "--preset", "tiny", "--set", "ipc=1.5"), "ipc is a whole number"),
    (("privacy", "--preset", "tiny", "--set", "bootstrap=99999999999"), "bootstrap must be between"),
    (("privacy", "--preset", "tiny", "--set", "methods=zz"), "Unknown method 'zz'"),
    (("evaluate", "SET", "--preset", "custom-e99999999999-t10-none"), "epoch count (1 to 100,000)"),
    (("evaluate", "SET", "--preset", "custom-e1-t10-none-lrinf"), "learning rate (lr)"),
    (("evaluate", "SET", "--preset", "custom-e1-t0-none"), "test images (t) are at least 1"),
    (("evaluate", "SET", "--seeds", "1000000"), "number of networks from 1 to 1000"),
])
def test_bad_settings_are_one_line_before_any_work(args, says, tmp_path: Path) -> None:
    """Each once gave a traceback, ran for ever, or ran and ignored the setting; none adds a run to the store."""
    from ddcore.platform.store import Store

    args = tuple(str(tmp_path / a) if a == "SAME.ddset" else a for a in args)
    if "SET" in args:
        target = tmp_path / "s.ddset"
        assert ddcore_here("distill", "--dataset", "mnist", "--method", "random", "--ipc", "1", "--no-store",
                           "--quiet", "--out", str(target)).returncode == 0
        args = tuple(str(target) if a == "SET" else a for a in args)
    runs = len(Store().list_runs())
    out = ddcore_here(*args)
    assert out.returncode == 2 and says in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert len(Store().list_runs()) == runs


def test_show_refuses_a_damaged_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ddset"
    bad.write_bytes(b"not a set file at all")
    out = ddcore_here("show", str(bad))
    assert out.returncode == 2 and "not a readable DD Studio set file" in out.stderr
