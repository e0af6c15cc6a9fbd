"""Bring a store written by an earlier DD Studio up to the current schema, in place and once.

Version 0 (the first release) keyed evaluations by subject strings ('run:<id>',
'random:<dataset>:<ipc>:<seed>', 'whole:<dataset>') and kept the evaluator's record with accuracies as
fractions. Version 1 keys them to the content measured (the set fingerprint, which the old record
already carried in `set_id`), stores typed subjects and percent, and adds the artefact tables.
Version 2 adds the iteration of each run's stored set beside its fingerprint.
Version 3 gives what was made from the embedded CIFAR-10 subset before it had keys of its own (artefacts, studies,
evaluations) the subset's keys, so none of it is served for the full data once that arrives.
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


def _percent(value: Any) -> float:
    return 100.0 * float(value) if isinstance(value, (int, float)) else float("nan")


def _percent_record(record: dict[str, Any], row: Any) -> EvalResult:
    """The version-0 evaluator's fractions become percent (training curves too); a mean or std the record
    lacks (stored as null when it was NaN) comes from the index row, which held percent already."""
    out = dict(record)
    out["accuracies"] = [_percent(a) for a in record.get("accuracies") or []]
    out["mean"] = _percent(record["mean"]) if isinstance(record.get("mean"), (int, float)) else float(row["mean"] or 0)
    out["std"] = _percent(record["std"]) if isinstance(record.get("std"), (int, float)) else float(row["std"] or 0)
    out["per_class_accuracy"] = [_percent(a) for a in record.get("per_class_accuracy") or []]
    curves = dict(record.get("curves") or {})
    for name, values in list(curves.items()):
        if name.startswith("train_acc_"):
            curves[name] = [None if v is None else 100.0 * v for v in values]
    out["curves"] = curves
    return EvalResult.from_dict(out)


def migrate_v0(store: "Store") -> None:
    """Runs get their set's fingerprint; evaluations are re-keyed to content and converted to percent.

    Runs inside the caller's transaction (Store.__init__). A row that cannot be read as an evaluation is
    kept, unchanged, in the table `evaluations_v0_unreadable` rather than stopping the store from opening."""
    db = store._db
    from ..evaluation.api import set_fingerprint
    from ..synthetic import SyntheticSetFileError
    from .store import EVALUATIONS_TABLE

    db.execute("ALTER TABLE runs ADD COLUMN fingerprint TEXT DEFAULT ''")
    db.execute("ALTER TABLE runs ADD COLUMN set_iteration INTEGER")  # version 2's column, filled below too
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
        db.execute("UPDATE runs SET fingerprint = ?, set_iteration = ? WHERE id = ?", (fingerprint, iteration, row["id"]))
    old = db.execute("SELECT * FROM evaluations").fetchall()
    db.execute("ALTER TABLE evaluations RENAME TO evaluations_v0")
    db.execute("DROP INDEX IF EXISTS evaluations_run")
    db.execute(EVALUATIONS_TABLE)
    unreadable = []
    for row in old:
        try:
            record = json.loads(row["record"])
            subject = _legacy_subject(row["subject"], row, record)
            result = _percent_record(record, row)
        except (ValueError, KeyError, TypeError) as e:
            unreadable.append((row, f"{type(e).__name__}: {e}"))
            continue
        if subject.kind == "run":
            fingerprint, iteration = runs.get(subject.run_id, ("", None))
            if fingerprint and fingerprint == subject.fingerprint:  # measured the set the run has now
                subject = Subject.run(subject.run_id, subject.dataset, fingerprint, iteration, subject.ipc)
        architecture, preset = row["architecture"] or result.architecture, row["preset"] or result.preset
        key = evaluation_key(subject, architecture, preset, len(result.seeds), {})
        db.execute(
            "INSERT OR REPLACE INTO evaluations (key, run_id, subject, subject_kind, dataset, ipc, fingerprint, "
            "iteration, architecture, preset, seeds, mean, std, created, record) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (key, subject.run_id, json.dumps(subject.to_dict()), subject.kind, subject.dataset, subject.ipc,
             subject.fingerprint, subject.iteration, architecture, preset, len(result.seeds), result.mean,
             result.std, row["created"], json.dumps(result.to_dict())))
    if unreadable:
        db.execute("CREATE TABLE evaluations_v0_unreadable AS SELECT * FROM evaluations_v0 WHERE 0")
        db.execute("ALTER TABLE evaluations_v0_unreadable ADD COLUMN problem TEXT")
        for row, problem in unreadable:
            db.execute(f"INSERT INTO evaluations_v0_unreadable VALUES ({','.join('?' * (len(row.keys()) + 1))})",
                       (*tuple(row), problem))
    db.execute("DROP TABLE evaluations_v0")


def migrate_v1(store: "Store") -> None:
    """Version 1 -> 2: runs remember the iteration of their stored set (read once from each set file)."""
    from ..synthetic import SyntheticSetFileError

    db = store._db
    db.execute("ALTER TABLE runs ADD COLUMN set_iteration INTEGER")
    for row in db.execute("SELECT id FROM runs WHERE fingerprint != ''").fetchall():
        try:
            synthetic = store.load_set(row["id"])
        except (SyntheticSetFileError, OSError):
            synthetic = None
        if synthetic is not None:
            db.execute("UPDATE runs SET set_iteration = ? WHERE id = ?", (synthetic.meta.iteration, row["id"]))


SUBSET_ARTEFACT_KINDS = ("expert-trajectories", "trained-network", "shadow-models")  # keyed by a 'variant' parameter


def _from_subset(inputs: list[str]) -> str | None:
    """The dataset an artefact was made from when its recorded source is an embedded subset ('dataset:<name>:embedded
    default: CIFAR-10 subset, ...'; the embedded MNIST, 'embedded default (assets/)', is the whole dataset)."""
    for item in inputs:
        kind, _, rest = str(item).partition(":")
        name, _, source = rest.partition(":")
        if kind == "dataset" and source.startswith("embedded default:") and "subset" in source:
            return name
    return None


def _measured_on_subset(record: dict[str, Any], preset: str) -> bool:
    """An evaluation of a dataset with an embedded subset that tested fewer images than the full test split would
    have given it (CIFAR-10: 10,000; the subset: 1,000) was the subset's. The limit comes from the record's config,
    else from its preset; a limit of 1,000 or less, or one not known, cannot tell (the row is left as it is)."""
    from ..evaluation.protocol import get_preset

    tested, config = record.get("test_images"), record.get("config")
    if not isinstance(tested, int) or not isinstance(config, dict):
        return False
    if "test_limit" in config:
        limit = config["test_limit"]
    else:
        try:
            limit = get_preset(preset).test_limit
        except (KeyError, ValueError, TypeError):
            return False
    full_test = 10_000
    if limit is not None and not isinstance(limit, int):
        return False
    return tested < min(full_test if limit is None else limit, full_test)


def _subset_key(kind: str, key: str, params: dict[str, Any], dataset: str) -> tuple[str, dict[str, Any]] | None:
    """The key and params the planner now gives the subset's version of a stored artefact, or None when its stored
    params do not reproduce its key (then no plan could find its subset key either)."""
    from ..methods.base import Requirement

    mark = {"variant": "subset"} if kind in SUBSET_ARTEFACT_KINDS else {"data_variants": {dataset: "subset"}}
    if kind in SUBSET_ARTEFACT_KINDS:  # their stored params carry extras (seconds, shapes): rebuild the spec
        from ..tasks import producer_of

        try:
            producer = producer_of(kind)
            before = producer.spec_for(Requirement.from_dict(kind, params), "auto").requirement()
            after = producer.spec_for(Requirement.from_dict(kind, {**params, **mark}), "auto").requirement()
        except (KeyError, TypeError, ValueError):
            return None
    else:
        before, after = Requirement.from_dict(kind, params), Requirement.from_dict(kind, {**params, **mark})
    return (after.key(), {**params, **mark}) if before.key() == key else None


def migrate_v2(store: "Store") -> None:
    """Version 2 -> 3: the embedded subset's artefacts and studies are re-keyed as `mark_variants` and the artefact
    tasks key them now (their folders move with them, after every row has); one whose subset key is taken, or cannot
    be rebuilt, is retired to '<key>-subset', which nothing asks for. Its evaluations get `Subject.variant` and a
    key of their own, so neither the subset's nor the full data's lookups find them, and the pages label them."""
    from ..data import has_subset

    db = store._db
    moves = []
    for row in db.execute("SELECT * FROM artefacts").fetchall():
        try:
            inputs, params = json.loads(row["inputs"] or "[]"), json.loads(row["params"] or "{}")
        except ValueError:
            continue
        if not isinstance(inputs, list) or not isinstance(params, dict):
            continue
        dataset = _from_subset(inputs)
        if dataset is None or "variant" in params or "data_variants" in params or row["key"].endswith("-subset"):
            continue
        rebuilt = _subset_key(row["kind"], row["key"], params, dataset)
        key, new_params = rebuilt if rebuilt is not None else (f"{row['key']}-subset", params)

        def taken(k: str) -> bool:
            return db.execute("SELECT 1 FROM artefacts WHERE key = ?", (k,)).fetchone() is not None or \
                store.artefact_dir(k).exists()

        if taken(key):  # the subset's own artefact is there already (made since): this one is retired
            key, new_params = f"{row['key']}-subset", params
            if taken(key):
                continue
        db.execute("UPDATE artefacts SET key = ?, params = ?, path = ?, name = ? WHERE key = ?",
                   (key, json.dumps(new_params, sort_keys=True), key, f"{row['name']} (embedded subset)", row["key"]))
        db.execute("UPDATE OR IGNORE artefact_uses SET artefact = ? WHERE artefact = ?", (key, row["key"]))
        db.execute("DELETE FROM artefact_uses WHERE artefact = ?", (row["key"],))
        if store.artefact_dir(row["key"]).is_dir():
            moves.append((store.artefact_dir(row["key"]), store.artefact_dir(key)))
    for row in db.execute("SELECT key, subject, dataset, preset, record FROM evaluations").fetchall():
        try:
            subject, record = json.loads(row["subject"]), json.loads(row["record"])
        except (TypeError, ValueError):
            continue  # an unreadable row stays as it is (the pages skip it)
        if not isinstance(subject, dict) or not isinstance(record, dict):
            continue
        dataset = row["dataset"] or subject.get("dataset") or ""
        if subject.get("variant") or not has_subset(str(dataset)) or not _measured_on_subset(record, row["preset"]):
            continue
        if db.execute("SELECT 1 FROM evaluations WHERE key = ?", (f"{row['key']}-subset",)).fetchone() is None:
            db.execute("UPDATE evaluations SET key = ?, subject = ? WHERE key = ?",
                       (f"{row['key']}-subset", json.dumps({**subject, "variant": "subset"}), row["key"]))
    done = []
    try:  # last, so a failed row above leaves every folder where its (rolled back) row says
        for old, new in moves:
            old.rename(new)
            done.append((old, new))
    except OSError:
        for old, new in reversed(done):
            new.rename(old)
        raise
