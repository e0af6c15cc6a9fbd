"""Stored results as files a user takes away: CSV, JSON and a markdown table for a report.

Pure functions over `ddcore.results.ResultRow` (and the published comparison's dicts); the page
wraps them in download buttons. Accuracies are percent throughout.
"""
from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, Iterable, Sequence

from app.plots import tested_on
from app.text import plain
from ddcore.platform.bridge import ResultRow, set_labels

CSV_COLUMNS = ("set", "method", "dataset", "ipc", "architecture", "train_architecture", "preset", "n_seeds",
               "mean", "std", "accuracies", "wall_time_s", "device", "subject", "run_id", "run_name", "key", "created")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: a user's run name starting with = + - @ (or a tab/CR) would be
    run as a formula by Excel or LibreOffice (CSV injection), so it gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def results_csv(rows: Sequence[ResultRow]) -> str:
    """One line per stored evaluation; per-seed accuracies joined with ';'."""
    labels = set_labels(rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        d = r.as_dict()
        d["set"] = labels.get(r.subject, r.label)
        d["mean"] = None if r.mean is None else round(r.mean, 4)
        d["std"] = None if r.std is None else round(r.std, 4)
        d["accuracies"] = ";".join(f"{a:.4f}" for a in r.accuracies)
        w.writerow(["" if _clean(d.get(c)) is None else _cell(d.get(c)) for c in CSV_COLUMNS])
    return buf.getvalue()


def results_json(rows: Sequence[ResultRow], with_records: bool = True) -> str:
    """Every row with (by default) its full stored record: config, per-seed, curves, confusion."""
    labels = set_labels(rows)
    out = []
    for r in rows:
        d = r.as_dict(with_record=with_records)
        d["set"] = labels.get(r.subject, r.label)
        out.append(d)
    return json.dumps({"unit": "percent test accuracy", "results": out}, indent=1, default=str, allow_nan=False)


def summary_markdown(rows: Sequence[ResultRow], title: str = "") -> str:
    """Sets (rows) × architectures (columns), 'mean ± std', with a line saying how it was measured."""
    rows = [r for r in rows if r.mean is not None]
    if not rows:
        return "_No stored results._\n"
    labels = set_labels(rows)
    subjects = list(dict.fromkeys(r.subject for r in sorted(rows, key=lambda r: ({"run": 0, "random": 1}.get(r.kind, 2),
                                                                                   r.method, r.ipc or 0))))
    archs = list(dict.fromkeys(r.architecture for r in rows))
    cell = {(r.subject, r.architecture): r for r in rows}
    lines = []
    if title:
        lines += [f"**{plain(title)}**", ""]
    lines.append("| set | " + " | ".join(archs) + " |")
    lines.append("|---|" + "---:|" * len(archs))
    for s in subjects:
        tr = next((r.train_architecture for r in rows if r.subject == s), None)
        cells = []
        for a in archs:
            r = cell.get((s, a))
            if r is None:
                cells.append("–")
                continue
            text = f"{r.mean:.1f} ± {r.std:.1f}" if r.std is not None else f"{r.mean:.1f}"
            cells.append(f"**{text}**" if a == tr else text)
        lines.append(f"| {plain(labels[s])} | " + " | ".join(cells) + " |")  # a name is text in any viewer
    presets = sorted({r.preset for r in rows})
    seeds = sorted({r.n_seeds for r in rows})
    lines += ["", f"Test accuracy (%) on {tested_on(rows)}, mean ± std over {'/'.join(map(str, seeds))} seed(s) of "
                  f"networks trained from scratch on each set; preset {'/'.join(presets)}. Bold: the architecture the "
                  f"set was distilled with. Measured with DD Studio."]
    return "\n".join(lines) + "\n"


def published_csv(table: Iterable[dict[str, Any]]) -> str:
    """The published explorer's rows (with our numbers and the difference) as CSV."""
    table = list(table)
    if not table:
        return ""
    columns = list(table[0])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for row in table:
        w.writerow({k: "" if row.get(k) is None else _cell(row.get(k)) for k in columns})
    return buf.getvalue()


def table_csv(table: Sequence[dict[str, Any]]) -> str:
    """Plain rows (the benchmark board's) as CSV, every column any row has, cells guarded against formulas."""
    columns = list(dict.fromkeys(k for row in table for k in row))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in table:
        w.writerow(["" if _clean(row.get(c)) is None else _cell(row.get(c)) for c in columns])
    return buf.getvalue()


def table_markdown(table: Sequence[dict[str, Any]], columns: Sequence[str], title: str = "") -> str:
    """Chosen columns of plain rows as a markdown table (text escaped so a name cannot become markup)."""
    if not table:
        return "_No rows._\n"
    lines = [f"**{plain(title)}**", ""] if title else []
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table:
        cells = ["–" if row.get(c) is None else plain(str(row.get(c))) for c in columns]  # plain escapes | too
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
