"""The store: an SQLite index of runs, evaluations and artefacts, plus one folder per run and per artefact.

Why: a run is worth keeping (the Gallery browses it, Compare puts it beside others, Evaluate measures
it), an artefact (expert trajectories, a trained network) is worth reusing, and a server killed
mid-run must lose nothing already checkpointed.

    store = Store()                         # or Store(root); safe to share between threads; migrates old files
    rec = store.create_run(spec_dict, name=None, status="queued")   # -> RunRecord (rec.id)
    store.update_run(run_id, status=..., iteration=..., total=..., message=..., elapsed_s=...)
    store.get_run(run_id); store.list_runs(dataset=, method=, ipc=, status=); store.rename_run; store.delete_run
    store.mark_interrupted() -> list[str]   # runs left active by a dead process -> "interrupted"

    # files of a run (runs/<run_id>/): set, checkpoint, metrics.jsonl, history/<iteration>.npz
    store.save_set / load_set / save_checkpoint / load_checkpoint / append_metrics / read_metrics
    store.add_frame / frame_iterations / load_frame;  HistoryWriter(store, run_id).offer(iteration, get_frame)

    # evaluations, keyed to the content they measured (records.Subject.fingerprint)
    store.save_evaluation(key, subject, architecture, preset, seeds, result) -> EvaluationRecord
    store.get_evaluation(key); store.run_evaluations(run_id); store.list_evaluations(dataset=)

    # artefacts with lineage, and who depends on them
    store.put_artefact(key, kind, name, params, producer=..., inputs=...) -> ArtefactRecord (files in artefact_dir(key))
    store.get_artefact(key); store.list_artefacts(kind=); store.add_artefact_use(key, run_id)
    store.artefact_dependents(key) -> list[str]; store.delete_artefact(key, force=False)

Files are pickle-free: config.json, metrics.jsonl, set.safetensors (SyntheticSet.save), checkpoint via
ddcore.checkpoint, history/<iteration>.npz (uint8 arrays read with allow_pickle=False).
Schema versions (PRAGMA user_version): 0 = the first release (evaluations keyed by subject strings,
accuracies as fractions in the record); 1 = typed subjects keyed to content, percent, artefacts;
2 = runs also remember the iteration of their stored set; 3 = what was made from the embedded CIFAR-10 subset is
keyed apart from the full data (migrations.migrate_v2).
"""
from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import socket
import sqlite3
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..atomic import atomic_path, write_atomic
from ..evaluation.api import set_fingerprint
from ..evaluation.result import EvalResult
from ..names import check_name
from ..paths import home_dir
from ..synthetic import SyntheticSet
from .records import ACTIVE_RUN, RUN_STATUSES, ArtefactRecord, EvaluationRecord, RunRecord, Subject

SCHEMA_VERSION = 3

EVALUATIONS_TABLE = """CREATE TABLE IF NOT EXISTS evaluations (
    key TEXT PRIMARY KEY, run_id TEXT, subject TEXT NOT NULL, subject_kind TEXT NOT NULL, dataset TEXT,
    ipc INTEGER, fingerprint TEXT, iteration INTEGER, architecture TEXT NOT NULL, preset TEXT NOT NULL,
    seeds INTEGER NOT NULL, mean REAL NOT NULL, std REAL NOT NULL, created REAL NOT NULL, record TEXT NOT NULL)"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, dataset TEXT NOT NULL, method TEXT NOT NULL, ipc INTEGER NOT NULL,
    architecture TEXT, preset TEXT, seed INTEGER, status TEXT NOT NULL, message TEXT DEFAULT '',
    iteration INTEGER DEFAULT 0, total INTEGER DEFAULT 0, elapsed_s REAL DEFAULT 0,
    created REAL NOT NULL, updated REAL NOT NULL, owner TEXT DEFAULT '', spec TEXT NOT NULL,
    fingerprint TEXT DEFAULT '', set_iteration INTEGER);
CREATE INDEX IF NOT EXISTS runs_filter ON runs(dataset, method, ipc, status);
""" + EVALUATIONS_TABLE + """;
CREATE INDEX IF NOT EXISTS evaluations_run ON evaluations(run_id);
CREATE TABLE IF NOT EXISTS artefacts (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, params TEXT NOT NULL, path TEXT NOT NULL,
    size_bytes INTEGER DEFAULT 0, created REAL NOT NULL, producer TEXT NOT NULL, inputs TEXT NOT NULL,
    code_version TEXT DEFAULT '');
CREATE TABLE IF NOT EXISTS artefact_uses (artefact TEXT NOT NULL, run_id TEXT NOT NULL, PRIMARY KEY (artefact, run_id));
"""

# Who owns active runs: this process (pid + a token unique to this start).
_PROCESS_TOKEN = secrets.token_hex(4)
_ADOPTED_OWNER: list[str] = []  # a job worker process writes runs in the name of the server that runs the job


def process_owner() -> str:
    if _ADOPTED_OWNER:
        return _ADOPTED_OWNER[0]
    return f"{socket.gethostname()}:{os.getpid()}:{_PROCESS_TOKEN}"


def adopt_owner(owner: str) -> None:
    """Write active runs as owned by `owner` (a job worker: the server it works for). When that server dies the runs
    are orphaned at once, even while the worker is still unwinding, so a restart marks them interrupted."""
    _ADOPTED_OWNER[:] = [owner]


def _owner_alive(owner: str) -> bool:
    """Whether the process that owns a run still runs (same host only; other hosts count as alive)."""
    try:
        host, pid_text, token = owner.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True
    if pid == os.getpid():
        return token == _PROCESS_TOKEN
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _pid_is_running(pid)


def _pid_is_running(pid: int) -> bool:
    """False for a zombie (killed, not yet reaped), which os.kill(pid, 0) still reports."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True  # no /proc (macOS): trust os.kill


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


class StoreDamagedError(RuntimeError, sqlite3.DatabaseError):
    """The store's database file is not one (or is damaged): the CLI reports RuntimeErrors, the pages sqlite errors,
    and each shows this message with what to do."""


class Store:
    """Thread-safe: one sqlite3 connection behind a lock (WAL, so other processes read while we write)."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else home_dir()
        self.runs_dir = self.root / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / "studio.sqlite3"
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.db_path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self.artefacts_dir = self.root / "artefacts"
        try:
            self._open()
        except (sqlite3.OperationalError, sqlite3.IntegrityError):  # locked, read-only, disk I/O, or a migration's
            self._db.close()  # own fault: the file itself is fine, so say nothing of it
            raise
        except sqlite3.DatabaseError as e:  # not a database, or a damaged one: say which file and what to do
            self._db.close()
            raise StoreDamagedError(f"{self.db_path} is not a readable DD Studio store ({e}); move that file aside to start "
                               "a new one (the runs/ and artefacts/ folders beside it are kept)") from e

    def _open(self) -> None:
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # One write transaction for the version check, a migration, the schema and the new version: a second
            # process opening the same store waits here, then finds it migrated; a crash leaves it as it was.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                version = self._db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise RuntimeError(f"{self.db_path} was written by a newer DD Studio (schema {version}; this "
                                       f"one reads up to {SCHEMA_VERSION})")
                legacy = version == 0 and self._db.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name='runs'").fetchone() is not None
                if legacy:
                    from .migrations import migrate_v0

                    migrate_v0(self)
                elif version == 1:
                    from .migrations import migrate_v1

                    migrate_v1(self)
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                if legacy or 0 < version < 3:
                    from .migrations import migrate_v2

                    migrate_v2(self)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _execute(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    # ------------------------------------------------------------------ runs
    def create_run(self, spec: dict[str, Any], name: str | None = None, status: str = "queued",
                   run_id: str | None = None) -> RunRecord:
        run_id = run_id or new_run_id()
        now = time.time()
        name = check_name(name) if name else default_run_name(spec)
        self.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        _write_json(self.run_dir(run_id) / "config.json", {"id": run_id, "name": name, "spec": spec, "created": now})
        self._execute(
            "INSERT INTO runs (id, name, dataset, method, ipc, architecture, preset, seed, status, created, updated, "
            "owner, spec) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, name, spec["dataset"], spec["method"], int(spec["ipc"]), spec.get("architecture", "convnet"),
             spec.get("preset", "quick"), int(spec.get("seed", 0)), status, now, now, process_owner(),
             json.dumps(spec, default=str)))
        record = self.get_run(run_id)
        assert record is not None
        return record

    def update_run(self, run_id: str, **fields: Any) -> None:
        allowed = {"name", "status", "message", "iteration", "total", "elapsed_s", "owner", "spec"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"cannot update run field(s) {sorted(unknown)}")
        if "status" in fields and fields["status"] not in RUN_STATUSES:
            raise ValueError(f"unknown status {fields['status']!r}")
        if "spec" in fields:
            fields["spec"] = json.dumps(fields["spec"], default=str)
        if fields.get("status") in ACTIVE_RUN:
            fields.setdefault("owner", process_owner())
        fields["updated"] = time.time()
        cols = ", ".join(f"{k} = ?" for k in fields)
        self._execute(f"UPDATE runs SET {cols} WHERE id = ?", (*fields.values(), run_id))

    def update_run_if(self, run_id: str, expected_status: str, **fields: Any) -> bool:
        """update_run only while the run's status is `expected_status` (checked and written under the store's
        lock, so a writer in this process that moved the run on, e.g. to 'done', wins); True if updated."""
        with self._lock:
            record = self.get_run(run_id)
            if record is None or record.status != expected_status:
                return False
            self.update_run(run_id, **fields)
            return True

    def get_run(self, run_id: str) -> RunRecord | None:
        rows = self._execute(_RUN_SELECT + " WHERE r.id = ?", (run_id,))
        return _run_from_row(rows[0]) if rows else None

    def list_runs(self, dataset: str | None = None, method: str | None = None, ipc: int | None = None,
                  status: str | Iterable[str] | None = None, limit: int | None = None) -> list[RunRecord]:
        where, params = [], []
        for col, value in (("dataset", dataset), ("method", method), ("ipc", ipc)):
            if value is not None:
                where.append(f"r.{col} = ?")
                params.append(value)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            where.append(f"r.status IN ({','.join('?' * len(statuses))})")
            params.extend(statuses)
        sql = _RUN_SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY r.created DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_run_from_row(r) for r in self._execute(sql, params)]

    def rename_run(self, run_id: str, name: str) -> None:
        self.update_run(run_id, name=check_name(name))

    def delete_run(self, run_id: str, stale_ok: bool = False) -> None:
        """Refused while the run is active in a live process; `stale_ok`: the caller (this process's job manager)
        knows no job of its own works on the run, so an 'active' row owned by this process is stale."""
        record = self.get_run(run_id)
        own_stale = stale_ok and record is not None and record.owner == process_owner()
        if record is not None and record.status in ACTIVE_RUN and _owner_alive(record.owner) and not own_stale:
            raise RuntimeError(f"Run {run_id} is {record.status}; stop it before deleting it")
        self._execute("DELETE FROM evaluations WHERE run_id = ?", (run_id,))
        self._execute("DELETE FROM artefact_uses WHERE run_id = ?", (run_id,))
        self._execute("DELETE FROM runs WHERE id = ?", (run_id,))
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    # ------------------------------------------------------------------ jobs left by a clean shutdown
    @property
    def pending_path(self) -> Path:
        return self.root / "pending-jobs.json"

    def save_pending(self, entries: list[dict[str, Any]]) -> None:
        """The jobs a clean shutdown left (JobManager.shutdown(keep_pending=True)); written atomically."""
        if entries:
            _write_json(self.pending_path, {"saved": time.time(), "jobs": entries})
        else:
            self.pending_path.unlink(missing_ok=True)

    def take_pending(self) -> list[dict[str, Any]]:
        """The pending jobs, removed from the store (a damaged list is dropped: it never blocks a start)."""
        try:
            data = json.loads(self.pending_path.read_text())
            entries = [e for e in data.get("jobs", []) if isinstance(e, dict)]
        except (OSError, ValueError, AttributeError):
            entries = []
        self.pending_path.unlink(missing_ok=True)
        return entries

    def mark_interrupted(self) -> list[str]:
        """Runs left queued/running/paused by a process that is gone become 'interrupted'."""
        rows = self._execute(f"SELECT id, owner FROM runs WHERE status IN ({','.join('?' * len(ACTIVE_RUN))})", ACTIVE_RUN)
        lost = [r["id"] for r in rows if not _owner_alive(r["owner"])]
        for run_id in lost:
            self.update_run(run_id, status="interrupted",
                            message="The server stopped during this run (or could not record how it ended: a full or "
                                    "read-only store); resume it from its last checkpoint.")
        return lost

    # ------------------------------------------------------------------ run files
    def run_dir(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
            raise ValueError(f"invalid run id {run_id!r}")
        return self.runs_dir / run_id

    def set_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "set.safetensors"

    def save_set(self, run_id: str, synthetic: SyntheticSet) -> Path:
        """Write the run's set and remember its fingerprint and iteration (what its evaluations are keyed to and
        labelled with), so finding them never needs the set file read again."""
        path = synthetic.save(self.set_path(run_id))
        self._execute("UPDATE runs SET fingerprint = ?, set_iteration = ?, updated = ? WHERE id = ?",
                      (set_fingerprint(synthetic.images, synthetic.labels), int(synthetic.meta.iteration), time.time(),
                       run_id))
        return path

    def load_set(self, run_id: str) -> SyntheticSet | None:
        path = self.set_path(run_id)
        return SyntheticSet.load(path) if path.is_file() else None

    def checkpoint_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "checkpoint.safetensors"

    def save_checkpoint(self, run_id: str, state: dict[str, Any]) -> Path:
        from ..checkpoint import save_checkpoint

        path = self.checkpoint_path(run_id)
        save_checkpoint(state, path)
        return path

    def load_checkpoint(self, run_id: str) -> dict[str, Any] | None:
        from ..checkpoint import load_checkpoint

        path = self.checkpoint_path(run_id)
        return load_checkpoint(path) if path.exists() else None

    def append_metrics(self, run_id: str, rows: Iterable[dict[str, Any]]) -> None:
        text = "".join(json.dumps(_jsonable(r)) + "\n" for r in rows)
        if text:
            with self._lock, open(self.run_dir(run_id) / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(text)

    def read_metrics(self, run_id: str) -> list[dict[str, Any]]:
        path = self.run_dir(run_id) / "metrics.jsonl"
        if not path.is_file():
            return []
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a crash
                continue
            if isinstance(row, dict):  # anything else was not written here
                rows.append(row)
        return rows

    def truncate_metrics(self, run_id: str, iteration: int) -> None:
        """Drop metric rows after `iteration` (a resumed run repeats them from its checkpoint)."""
        rows = [r for r in self.read_metrics(run_id) if int(r.get("iteration", 0)) <= iteration]
        path = self.run_dir(run_id) / "metrics.jsonl"
        with self._lock:
            write_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))

    # ------------------------------------------------------------------ snapshot history
    def history_dir(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "history"

    def add_frame(self, run_id: str, iteration: int, images: np.ndarray, labels: np.ndarray) -> None:
        folder = self.history_dir(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{int(iteration):09d}.npz"
        with atomic_path(path, ".tmp.npz") as tmp:
            np.savez(tmp, images=np.ascontiguousarray(images, dtype=np.uint8), labels=np.asarray(labels))

    def frame_iterations(self, run_id: str) -> list[int]:
        folder = self.history_dir(run_id)
        if not folder.is_dir():
            return []
        return sorted(int(p.stem) for p in folder.glob("[0-9]*.npz") if p.stem.isascii() and p.stem.isdigit())

    def frame_version(self, run_id: str, iteration: int) -> tuple[int, int] | None:
        """(modification time in ns, size) of a stored snapshot, None when there is none: a key for what is drawn
        from it, which changes when a resumed run writes that iteration again."""
        try:
            st = (self.history_dir(run_id) / f"{int(iteration):09d}.npz").stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def load_frame(self, run_id: str, iteration: int) -> tuple[np.ndarray, np.ndarray]:
        """A stored snapshot; a missing or damaged one raises OSError (never a parser's own exception)."""
        path = self.history_dir(run_id) / f"{int(iteration):09d}.npz"
        try:
            with np.load(path, allow_pickle=False) as z:
                images, labels = z["images"], z["labels"]
        except (ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise OSError(f"snapshot {int(iteration)} of run {run_id} is damaged: {e}") from e
        if images.dtype != np.uint8 or images.ndim != 4 or len(labels) != len(images):
            raise OSError(f"snapshot {int(iteration)} of run {run_id} is damaged: unexpected contents")
        return images, labels

    def drop_frames(self, run_id: str, iterations: Iterable[int]) -> None:
        for it in iterations:
            (self.history_dir(run_id) / f"{int(it):09d}.npz").unlink(missing_ok=True)

    # ------------------------------------------------------------------ evaluations
    def get_evaluation(self, key: str) -> EvaluationRecord | None:
        rows = self._execute("SELECT * FROM evaluations WHERE key = ?", (key,))
        return _eval_from_row(rows[0]) if rows else None

    def save_evaluation(self, key: str, subject: Subject, architecture: str, preset: str, seeds: int,
                        result: EvalResult) -> EvaluationRecord:
        self._execute(
            "INSERT OR REPLACE INTO evaluations (key, run_id, subject, subject_kind, dataset, ipc, fingerprint, "
            "iteration, architecture, preset, seeds, mean, std, created, record) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (key, subject.run_id, json.dumps(subject.to_dict()), subject.kind, subject.dataset, subject.ipc,
             subject.fingerprint, subject.iteration, architecture, preset, int(seeds), float(result.mean),
             float(result.std), time.time(), json.dumps(_jsonable(result.to_dict()))))
        found = self.get_evaluation(key)
        assert found is not None
        return found

    def run_evaluations(self, run_id: str) -> list[EvaluationRecord]:
        rows = self._execute("SELECT * FROM evaluations WHERE run_id = ? ORDER BY created", (run_id,))
        return [_eval_from_row(r) for r in rows]

    def list_evaluations(self, dataset: str | None = None, kind: str | None = None) -> list[EvaluationRecord]:
        where, params = [], []
        for col, value in (("dataset", dataset), ("subject_kind", kind)):
            if value is not None:
                where.append(f"{col} = ?")
                params.append(value)
        sql = "SELECT * FROM evaluations" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY created"
        return [_eval_from_row(r) for r in self._execute(sql, params)]

    # ------------------------------------------------------------------ artefacts
    def artefact_dir(self, key: str) -> Path:
        if not key or not all(ch.isalnum() or ch in "-_" for ch in key):
            raise ValueError(f"invalid artefact key {key!r}")
        return self.artefacts_dir / key

    def put_artefact(self, key: str, kind: str, name: str, params: dict[str, Any], *,
                     producer: dict[str, Any] | None = None, inputs: Iterable[str] = (),
                     code_version: str = "") -> ArtefactRecord:
        """Index an artefact whose files the producer wrote into artefact_dir(key)."""
        folder = self.artefact_dir(key)
        folder.mkdir(parents=True, exist_ok=True)
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        self._execute(
            "INSERT OR REPLACE INTO artefacts (key, kind, name, params, path, size_bytes, created, producer, inputs, "
            "code_version) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (key, kind, name, json.dumps(_jsonable(params), sort_keys=True), key, size, time.time(),
             json.dumps(_jsonable(producer or {})), json.dumps(list(inputs)), code_version))
        found = self.get_artefact(key)
        assert found is not None
        return found

    def get_artefact(self, key: str) -> ArtefactRecord | None:
        rows = self._execute("SELECT * FROM artefacts WHERE key = ?", (key,))
        return _artefact_from_row(rows[0]) if rows else None

    def list_artefacts(self, kind: str | None = None) -> list[ArtefactRecord]:
        sql, params = "SELECT * FROM artefacts", []
        if kind is not None:
            sql, params = sql + " WHERE kind = ?", [kind]
        return [_artefact_from_row(r) for r in self._execute(sql + " ORDER BY created DESC", params)]

    def add_artefact_use(self, key: str, run_id: str) -> None:
        self._execute("INSERT OR IGNORE INTO artefact_uses (artefact, run_id) VALUES (?, ?)", (key, run_id))

    def artefact_dependents(self, key: str) -> list[str]:
        """Ids of the runs that used this artefact (and still exist)."""
        rows = self._execute("SELECT u.run_id FROM artefact_uses u JOIN runs r ON r.id = u.run_id "
                             "WHERE u.artefact = ? ORDER BY r.created", (key,))
        return [r["run_id"] for r in rows]

    def delete_artefact(self, key: str, force: bool = False) -> None:
        """Refused while an active run depends on it; with dependents that are not active, only with force."""
        dependents = [self.get_run(r) for r in self.artefact_dependents(key)]
        active = [r for r in dependents if r is not None and r.active and _owner_alive(r.owner)]
        if active:
            raise RuntimeError(f"artefact {key} is in use by run(s) {', '.join(r.name for r in active)}: stop them "
                               "before deleting it")
        if dependents and not force:
            raise ValueError(f"artefact {key} was used by {len(dependents)} run(s) "
                             f"({', '.join(r.name for r in dependents if r)}); delete it with force=True to "
                             "drop it anyway (those runs keep their sets but can no longer resume)")
        self._execute("DELETE FROM artefact_uses WHERE artefact = ?", (key,))
        self._execute("DELETE FROM artefacts WHERE key = ?", (key,))
        shutil.rmtree(self.artefact_dir(key), ignore_errors=True)


class HistoryWriter:
    """Keeps at most ~max_frames evenly spaced frames: every `stride` iterations, doubling the stride
    (and dropping every other stored frame) whenever the budget is exceeded."""

    def __init__(self, store: Store, run_id: str, max_frames: int = 64) -> None:
        self.store, self.run_id, self.max_frames = store, run_id, max(4, max_frames)
        self.stride = 1
        existing = store.frame_iterations(run_id)  # a resumed run continues its history
        interior = [i for i in existing if i > 0][:-1]  # the last may be a forced, off-stride frame
        if interior:
            self.stride = math.gcd(*interior) & -math.gcd(*interior)  # largest power of two dividing all
        while len(existing) > self.max_frames:
            existing = self._thin(existing)

    def wants(self, iteration: int) -> bool:
        return iteration % self.stride == 0

    def offer(self, iteration: int, get_frame: Callable[[], tuple[np.ndarray, np.ndarray]], force: bool = False) -> bool:
        """Store a frame at this iteration if it falls on the stride (or force, e.g. the last one)."""
        if not (force or self.wants(iteration)):
            return False
        images, labels = get_frame()
        self.store.add_frame(self.run_id, iteration, images, labels)
        frames = self.store.frame_iterations(self.run_id)
        # Frames off the stride (a forced final frame) are superseded by the next on-stride frame.
        stale = [i for i in frames[:-1] if i % self.stride and i != frames[0]]
        if stale:
            self.store.drop_frames(self.run_id, stale)
            frames = [i for i in frames if i not in stale]
        while len(frames) > self.max_frames:
            frames = self._thin(frames)
        return True

    def _thin(self, frames: list[int]) -> list[int]:
        self.stride *= 2
        drop = [i for i in frames[1:-1] if i % self.stride]
        self.store.drop_frames(self.run_id, drop)
        return [i for i in frames if i not in set(drop)]


# ---------------------------------------------------------------------- helpers
_RUN_SELECT = (
    "SELECT r.*, e.mean AS acc_mean, e.std AS acc_std, e.seeds AS acc_seeds FROM runs r LEFT JOIN evaluations e ON "
    "e.key = (SELECT k.key FROM evaluations k WHERE k.run_id = r.id AND k.fingerprint = r.fingerprint AND "
    "k.architecture = r.architecture ORDER BY k.created DESC LIMIT 1)")


def _spec_of(text: str | None) -> dict[str, Any]:
    """A run's stored spec; a damaged one reads as empty (the run still lists; resuming it then says what is
    missing) rather than failing every page that lists runs."""
    try:
        spec = json.loads(text or "{}")
    except (json.JSONDecodeError, TypeError):
        return {}
    return spec if isinstance(spec, dict) else {}


def _run_from_row(row: sqlite3.Row) -> RunRecord:
    return RunRecord(id=row["id"], name=row["name"], dataset=row["dataset"], method=row["method"], ipc=row["ipc"],
                     architecture=row["architecture"] or "convnet", preset=row["preset"] or "quick",
                     seed=row["seed"] or 0, status=row["status"], message=row["message"] or "",
                     iteration=row["iteration"] or 0, total=row["total"] or 0, elapsed_s=row["elapsed_s"] or 0.0,
                     created=row["created"], updated=row["updated"], owner=row["owner"] or "",
                     spec=_spec_of(row["spec"]), fingerprint=row["fingerprint"] or "",
                     set_iteration=row["set_iteration"], accuracy=row["acc_mean"],
                     accuracy_std=row["acc_std"], accuracy_seeds=row["acc_seeds"])


def _eval_from_row(row: sqlite3.Row) -> EvaluationRecord:
    return EvaluationRecord(key=row["key"], subject=Subject.from_dict(json.loads(row["subject"])),
                            architecture=row["architecture"], preset=row["preset"], seeds=row["seeds"],
                            created=row["created"], result=EvalResult.from_dict(json.loads(row["record"])))


def _artefact_from_row(row: sqlite3.Row) -> ArtefactRecord:
    return ArtefactRecord(key=row["key"], kind=row["kind"], name=row["name"], params=json.loads(row["params"]),
                          path=row["path"], size_bytes=row["size_bytes"] or 0, created=row["created"],
                          producer=json.loads(row["producer"]), inputs=tuple(json.loads(row["inputs"])),
                          code_version=row["code_version"] or "")


def default_run_name(spec: dict[str, Any]) -> str:
    """'DM · MNIST · IPC 10': the dataset by its display name where it is a built-in one (an upload keeps its own)."""
    from ..data import DATASETS

    dataset = str(spec["dataset"])
    if dataset in DATASETS.names():
        dataset = DATASETS.get(dataset).display_name
    return f"{str(spec['method']).upper()} · {dataset} · IPC {spec['ipc']}"


def _jsonable(value: Any) -> Any:
    """Plain JSON types (numpy/torch scalars become floats, non-finite floats None)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):
        try:
            return _jsonable(value.item())
        except (ValueError, RuntimeError):
            pass
    return str(value)


def _write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(_jsonable(data), indent=2))
