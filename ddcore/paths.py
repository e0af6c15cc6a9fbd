"""Where things live: the shipped assets, the user cache and data folders (all overridable)."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
ASSETS_DIR = Path(os.environ.get("DDCORE_ASSETS", REPO_DIR / "assets"))


def cache_dir() -> Path:
    """Decoded-data and download cache: $DDCORE_CACHE, else ~/.cache/ddcore."""
    path = Path(os.environ.get("DDCORE_CACHE") or Path.home() / ".cache" / "ddcore")
    path.mkdir(parents=True, exist_ok=True)
    return path


def home_path() -> Path:
    """Where the user data (run store) lives: $DDCORE_HOME, else ~/.local/share/ddstudio (not created here)."""
    return Path(os.environ.get("DDCORE_HOME") or Path.home() / ".local" / "share" / "ddstudio")


def home_dir() -> Path:
    """home_path(), created if missing."""
    path = home_path()
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_data_roots() -> list[Path]:
    """Roots searched when none is given: $DDCORE_DATA (os.pathsep-separated), then ../shared/datasets."""
    roots = [Path(p) for p in os.environ.get("DDCORE_DATA", "").split(os.pathsep) if p]
    shared = REPO_DIR.parent / "shared" / "datasets"
    if shared.is_dir():
        roots.append(shared)
    return roots
