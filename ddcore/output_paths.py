"""Where a command may write its results, decided before the work starts.

Why: a distillation or a study can take an hour; finding out afterwards that its --out or --json path cannot be
written (a missing or read-only folder, /proc, a directory) loses the result, and writing over a file the user did
not mean to replace (the input set named as --json, a notes file named as --out) loses theirs. So every output path
is checked first, by writing a probe file beside it, and an existing file is replaced only when it is what the
command writes anyway (a previous JSON result) or the user said --overwrite.
"""
from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from .atomic import write_atomic

MAX_JSON_PROBE_BYTES = 64 * 1024 * 1024  # a larger existing file is not read to see whether it is JSON


def output_problem(path: str | Path, *, overwrite: bool = False, replaces_json: bool = False) -> str:
    """Why `path` cannot take a new file (empty when it can). An existing regular file is replaced with
    `overwrite`, or, with `replaces_json`, when it holds JSON (a previous result of the same command)."""
    path = Path(path)
    if path.is_dir():
        return "is a directory; give a file name"
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        return f"{parent} is a file, not a folder"
    if not parent.is_dir():
        return f"the folder {parent} does not exist"
    if path.exists() or path.is_symlink():
        mode = path.lstat().st_mode
        if not stat.S_ISREG(mode) and not stat.S_ISLNK(mode):
            return "exists and is not a regular file (a device, a pipe or a socket); give a file name"
        if not overwrite and not (replaces_json and _holds_json(path)):
            return ("exists and is not a JSON result of this command; choose another path (it would be replaced)"
                    if replaces_json else "exists; pass --overwrite to replace it, or choose another path")
    try:  # the folder may exist and still refuse files: read-only, /proc, a full disk
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".ddcore-probe-"):
            pass
    except OSError as e:
        return f"cannot write in {parent}: {e.strerror or e}"
    return ""


def _holds_json(path: Path) -> bool:
    try:
        if path.stat().st_size > MAX_JSON_PROBE_BYTES:
            return False
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def write_json(path: str | Path, value: Any) -> Path:
    """`value` as indented JSON at `path`, whole or not at all (a full disk leaves the previous file as it was)."""
    return write_atomic(path, json.dumps(value, indent=1))


def check_outputs(**paths: tuple[str | Path | None, dict[str, bool]]) -> None:
    """Raise ValueError naming the first option whose path cannot be written: check_outputs(json=(args.json,
    {"replaces_json": True}), out=(args.out, {"overwrite": args.overwrite}))."""
    for option, (path, flags) in paths.items():
        if path is None:
            continue
        problem = output_problem(path, **flags)
        if problem:
            raise ValueError(f"--{option.replace('_', '-')} {os.fspath(path)}: {problem}")
