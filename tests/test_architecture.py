"""House rules that keep the layers apart."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from ddcore.registry import Registry, UnknownNameError, drop_none

ROOT = Path(__file__).resolve().parent.parent


def test_nothing_under_ddcore_imports_streamlit() -> None:
    offenders = []
    for path in (ROOT / "ddcore").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n.split(".")[0] == "streamlit" for n in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders


@pytest.mark.slow  # ~5 s: a fresh interpreter imports torch and every ddcore module
def test_importing_every_ddcore_module_does_not_load_streamlit() -> None:
    code = ("import importlib, pkgutil, sys, ddcore\n"
            "for m in pkgutil.walk_packages(ddcore.__path__, 'ddcore.'):\n"
            "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
            "assert 'streamlit' not in sys.modules, 'streamlit imported'\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def test_registry_refuses_duplicates_and_suggests_close_names() -> None:
    reg: Registry[int] = Registry("thing")
    reg.register("alpha", "first")(1)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("Alpha", 2)
    with pytest.raises(UnknownNameError, match="Did you mean: alpha"):
        reg.get("alpah")
    assert reg.get(" ALPHA ") == 1 and reg.names() == ["alpha"] and "alpha" in reg
    assert drop_none({"a": None, "b": 0}) == {"b": 0}


def test_no_pickle_loading_in_the_code() -> None:
    for path in [p for folder in ("ddcore", "app", "pages") for p in (ROOT / folder).rglob("*.py")]:
        text = path.read_text()
        unpickle, torch_load = "pickle." + "load", "torch." + "load("  # split so repo greps don't flag this check
        assert f"{unpickle}(" not in text and f"{unpickle}s(" not in text, path
        for line in text.splitlines():
            if torch_load in line:
                assert "weights_only=True" in line, f"{path}: {line.strip()}"


# The layering, as enforced (DESIGN.md "Wave 2"):
#   science  ddcore.{data, models, methods, evaluation, augment, zca, synthetic, checkpoint, published, registry, ...}
#   tasks    ddcore.tasks: one file per task kind, joins science and platform
#   platform ddcore.platform: store, queue, executors, recorder, bridge
#   UI       app/, pages/: only the bridge and the registries
UI_MAY_IMPORT = {"ddcore.platform.bridge", "ddcore.data", "ddcore.methods", "ddcore.models", "ddcore.published"}
SCIENCE = ("data", "models", "methods", "evaluation", "privacy", "experts.py", "augment.py", "zca.py", "synthetic.py", "checkpoint.py", "runner.py",
           "published.py", "registry.py", "device.py", "paths.py", "catalog.py", "playground.py", "estimates.py", "board.py")


def _ddcore_imports(path: Path) -> list[str]:
    """Absolute names of the ddcore modules a file imports (relative imports resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from ddcore import published` imports the module ddcore.published
            out += [f"{module}.{a.name}" for a in node.names] if module == "ddcore" else [module]
    return [name for name in out if name == "ddcore" or name.startswith("ddcore.")]


def test_pages_and_app_import_only_the_bridge_and_the_registries() -> None:
    offenders = {}
    for path in [*(ROOT / "pages").glob("*.py"), *(ROOT / "app").glob("*.py")]:
        bad = [m for m in _ddcore_imports(path) if m not in UI_MAY_IMPORT]
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert not offenders, offenders


def test_pages_and_app_go_through_the_studio_not_around_it() -> None:
    """No page reaches the Studio's store or queue (the bridge's methods are the narrow interface)."""
    import re

    offenders = [str(p.relative_to(ROOT)) for p in [*(ROOT / "pages").glob("*.py"), *(ROOT / "app").glob("*.py")]
                 if re.search(r"\.(store|manager)\b\s*\.", p.read_text())]
    assert not offenders, offenders


def test_science_modules_never_import_the_platform_or_the_tasks() -> None:
    offenders = {}
    for name in SCIENCE:
        target = ROOT / "ddcore" / name
        for path in ([target] if target.is_file() else target.rglob("*.py")):
            bad = [m for m in _ddcore_imports(path) if m.startswith(("ddcore.platform", "ddcore.tasks"))]
            if bad:
                offenders[str(path.relative_to(ROOT))] = bad
    assert not offenders, offenders


def test_the_layering_test_sees_a_violation(tmp_path: Path) -> None:
    """The checks above can fail: a page importing the store directly is caught."""
    fake = ROOT / "pages" / "_layering_probe.py"
    fake.write_text("from ddcore.platform.store import Store\nfrom ddcore import published, jobs\n")
    try:
        assert [m for m in _ddcore_imports(fake) if m not in UI_MAY_IMPORT] == ["ddcore.platform.store", "ddcore.jobs"]
    finally:
        fake.unlink()
