"""Bring a store written by an earlier DD Studio up to the current schema, in place and once.

Version 0 (the first release) keyed evaluations by subject strings ('run:<id>',
'random:<dataset>:<ipc>:<seed>', 'whole:<dataset>') and kept the evaluator's record with accuracies as
fractions. Version 1 keys them to the content measured (the set fingerprint, which the old record
already carried in `set_id`), stores typed subjects and percent, and adds the artefact tables.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..evaluation.result import EvalResult
from .records import Subject, evaluation_key

if TYPE_CHECKING:
    from .store import Store


def _legacy_subject(text: str, row: Any, record: dict[str, Any]) -> Subject:
    kind, _, rest = text.partition(":")
    fingerprint = str(record.get("set_id", "")).rsplit("-", 1)[-1] if kind != "whole" else ""
    if kind == "random":
        dataset, ipc, seed = rest.split(":")
        return Subject.random(dataset, int(ipc), int(seed), fingerprint=fingerprint)
    if kind == "whole":
        return Subject.whole(rest)
    return Subject.run(rest, dataset=row["dataset"] or str(record.get("dataset", "")), fingerprint=fingerprint,
                       ipc=row["ipc"])


def _percent_record(record: dict[str, Any]) -> EvalResult:
    """The version-0 evaluator's fractions become percent (training curves too)."""
    out = dict(record)
    out["accuracies"] = [100.0 * a for a in record.get("accuracies", [])]
    out["mean"], out["std"] = 100.0 * float(record["mean"]), 100.0 * float(record["std"])
    out["per_class_accuracy"] = [100.0 * a for a in record.get("per_class_accuracy", [])]
    curves = dict(record.get("curves") or {})
    for name, values in list(curves.items()):
        if name.startswith("train_acc_"):
            curves[name] = [None if v is None else 100.0 * v for v in values]
    out["curves"] = curves
    return EvalResult.from_dict(out)


def migrate_v0(store: "Store") -> None:
    """Runs get their set's fingerprint; evaluations are re-keyed to content and converted to percent."""
    db = store._db
    from ..evaluation.api import set_fingerprint
    from ..synthetic import SyntheticSetFileError

    db.execute("BEGIN")
    try:
        db.execute("ALTER TABLE runs ADD COLUMN fingerprint TEXT DEFAULT ''")
        runs = {}
        for row in db.execute("SELECT id FROM runs").fetchall():
            fingerprint, iteration = "", None
            try:
                synthetic = store.load_set(row["id"])
            except (SyntheticSetFileError, OSError):
                synthetic = None
            if synthetic is not None:
                fingerprint, iteration = set_fingerprint(synthetic.images, synthetic.labels), synthetic.meta.iteration
            runs[row["id"]] = (fingerprint, iteration)
            db.execute("UPDATE runs SET fingerprint = ? WHERE id = ?", (fingerprint, row["id"]))
        old = db.execute("SELECT * FROM evaluations").fetchall()
        db.execute("ALTER TABLE evaluations RENAME TO evaluations_v0")
        db.execute("DROP INDEX IF EXISTS evaluations_run")
        db.execute(
            "CREATE TABLE evaluations (key TEXT PRIMARY KEY, run_id TEXT, subject TEXT NOT NULL, subject_kind TEXT "
            "NOT NULL, dataset TEXT, ipc INTEGER, fingerprint TEXT, iteration INTEGER, architecture TEXT NOT NULL, "
            "preset TEXT NOT NULL, seeds INTEGER NOT NULL, mean REAL NOT NULL, std REAL NOT NULL, created REAL NOT "
            "NULL, record TEXT NOT NULL)")
        for row in old:
            record = json.loads(row["record"])
            subject = _legacy_subject(row["subject"], row, record)
            if subject.kind == "run":
                fingerprint, iteration = runs.get(subject.run_id, ("", None))
                if fingerprint and fingerprint == subject.fingerprint:  # measured the set the run has now
                    subject = Subject.run(subject.run_id, subject.dataset, fingerprint, iteration, subject.ipc)
            result = _percent_record(record)
            architecture, preset = row["architecture"] or result.architecture, row["preset"] or result.preset
            key = evaluation_key(subject, architecture, preset, len(result.seeds), {})
            db.execute(
                "INSERT OR REPLACE INTO evaluations (key, run_id, subject, subject_kind, dataset, ipc, fingerprint, "
                "iteration, architecture, preset, seeds, mean, std, created, record) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (key, subject.run_id, json.dumps(subject.to_dict()), subject.kind, subject.dataset, subject.ipc,
                 subject.fingerprint, subject.iteration, architecture, preset, len(result.seeds), result.mean,
                 result.std, row["created"], json.dumps(result.to_dict())))
        db.execute("DROP TABLE evaluations_v0")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
