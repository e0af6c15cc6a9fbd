"""What exists: datasets, models and methods as rows (for the CLI listings and the UI pickers),
and a printable summary of a stored synthetic set."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CatalogRow:
    name: str
    description: str
    detail: str = ""


def dataset_rows() -> list[CatalogRow]:
    from .data import DATASETS

    rows = []
    for entry in DATASETS.entries():
        info = entry.obj
        detail = "any size / channels" if info.name == "folder" else \
            f"{info.channels}×{info.image_size}×{info.image_size}, {info.num_classes} classes"
        rows.append(CatalogRow(entry.name, entry.description, detail))
    return rows


def model_rows() -> list[CatalogRow]:
    from .models import MODELS

    return [CatalogRow(e.name, e.description) for e in MODELS.entries()]


def method_rows() -> list[CatalogRow]:
    from .methods import METHODS

    rows = []
    for e in METHODS.entries():
        cls = e.obj
        detail = (f"{cls.family or 'other'}; presets: {', '.join(cls.preset_names())}; "
                  f"evaluated with: {cls.eval_augmentation}")
        rows.append(CatalogRow(e.name, e.description, detail))
    return rows


def format_rows(rows: list[CatalogRow]) -> str:
    width = max((len(r.name) for r in rows), default=4) + 2
    detail_width = max((len(r.detail) for r in rows), default=0) + 2
    return "\n".join(f"{r.name:<{width}}{r.detail:<{detail_width}}{r.description}" for r in rows)


def describe_set(path: str | Path, grid_png: str | Path | None = None, scale: int = 2,
                 overwrite: bool = False) -> str:
    """A set file's summary; writes its PNG grid (classes as rows) beside it unless told where, never over an
    existing file unless `overwrite`."""
    from .synthetic import SyntheticSet

    path = Path(path)
    s = SyntheticSet.load(path)
    target = Path(grid_png) if grid_png else path.with_suffix(".png")
    if target.resolve() == path.resolve():
        raise ValueError(f"{target} is the set file itself; write the grid elsewhere with --png")
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass --overwrite to replace it, or --png to write elsewhere")
    png = s.to_png_grid(scale=scale)
    tmp = target.with_name(target.name + ".tmp")
    try:
        tmp.write_bytes(png)
        tmp.replace(target)  # a full disk leaves no half-written PNG under the real name
    finally:
        tmp.unlink(missing_ok=True)
    m = s.meta
    labels = "soft" if s.soft_labels else "hard"
    names = [_printable(c) for c in m.class_names[:10]]
    lines = [
        f"file:        {path}",
        f"dataset:     {_printable(m.dataset)} ({len(m.class_names)} classes: {', '.join(names)}"
        f"{'…' if len(m.class_names) > 10 else ''})",
        f"method:      {_printable(m.method)}   IPC {m.ipc}   architecture {_printable(m.architecture)}",
        f"images:      {tuple(s.images.shape)} float, {labels} labels" + (f", learned lr {s.lr:g}" if s.lr else ""),
        f"run:         seed {m.seed}, iteration {m.iteration}, {m.elapsed_s:.1f} s on {_printable(m.device)}",
        f"pixel range: [{s.images.min().item():.3f}, {s.images.max().item():.3f}] (normalised)",
        f"grid PNG:    {target}",
    ]
    if m.config:
        lines.append("config:      " + _printable(", ".join(f"{k}={v}" for k, v in sorted(m.config.items()))))
    return "\n".join(lines)


def _printable(text: str) -> str:
    """Text from a set file as the terminal should show it: control characters (an ANSI escape could rewrite the
    screen or the window title) as their escapes."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(text))
