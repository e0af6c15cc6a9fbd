"""No loading path unpickles: every call that could (torch.load, numpy.load with allow_pickle, pickle, joblib,
dill, shelve, marshal, pandas.read_pickle) is found by reading the source's syntax tree. One use is allowed, and
named: the CIFAR python-batch reader, whose unpickler builds numpy arrays only and runs on files that first
matched the official MD5 sums (ddcore/data/formats.py, ddcore/data/checksums.py)."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

SCANNED = ("ddcore", "app", "pages", "benchmarks")
FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "joblib", "cloudpickle", "shelve", "marshal"}
ALLOWED = {("ddcore/data/formats.py", "pickle")}  # the restricted, checksum-gated CIFAR batch reader


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _findings(path: Path) -> list[str]:
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                top = module.split(".")[0]
                if top in FORBIDDEN_MODULES and (rel, top) not in ALLOWED:
                    found.append(f"{rel}:{node.lineno} imports {module}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else ""
            name = node.func.attr
            if owner == "torch" and name == "load" and not _is_true(_keyword(node, "weights_only")):
                found.append(f"{rel}:{node.lineno} torch.load without weights_only=True")
            if owner in ("np", "numpy") and name == "load" and _is_true(_keyword(node, "allow_pickle")):
                found.append(f"{rel}:{node.lineno} numpy.load(allow_pickle=True)")
            if owner in ("pd", "pandas") and name == "read_pickle":
                found.append(f"{rel}:{node.lineno} pandas.read_pickle")
    return found


def test_no_loading_path_unpickles() -> None:
    files = [p for d in SCANNED for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 50  # the scan really read the code
    found = [f for p in files for f in _findings(p)]
    assert found == [], "\n".join(found)


def test_the_scan_finds_what_it_forbids(tmp_path: Path) -> None:
    """The scanner itself: each forbidden form in a file is reported (so a clean result means something)."""
    bad = tmp_path / "probe.py"
    bad.write_text("import pickle\nimport numpy as np\nimport torch\n"
                   "torch.load('x')\nnp.load('y', allow_pickle=True)\ntorch.load('z', weights_only=True)\n")
    found = _findings(bad)
    assert len(found) == 3 and any("imports pickle" in f for f in found)
    assert any("torch.load without" in f for f in found) and any("allow_pickle=True" in f for f in found)
