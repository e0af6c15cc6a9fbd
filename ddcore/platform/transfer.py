"""Moving part of a store to another store: what a job on a cluster worker needs in, and what it made back.

Why: a job on another machine cannot open the submitting process's SQLite file. The executor packs the
job's inputs (its run, its required artefacts) into a `StoreSlice`, the worker unpacks them into a scratch
store, runs the task there, and packs only what the task changed (rows that differ from what it was given,
and the folders of those runs and artefacts); the submitter unpacks that into its own store. Nothing is
written to the submitting store until the task has finished, so a worker that dies mid-task loses
nothing already stored.

    data = pack_slice(store, run_ids=("r1",), artefact_keys=("k",))     # bytes (a zip, no pickle)
    unpack_slice(scratch, data)                                         # -> SliceSummary
    before = store_rows(scratch); ...task...; data = pack_changes(scratch, before)
"""
from __future__ import annotations

import io
import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from ..data.formats import safe_zip_members
from .store import Store, process_owner

# table -> the columns that identify a row
TABLES: dict[str, tuple[str, ...]] = {
    "runs": ("id",), "evaluations": ("key",), "artefacts": ("key",), "artefact_uses": ("artefact", "run_id")}
INDEX_FILE = "slice.json"
MAX_SLICE_BYTES = 8 << 30  # a slice larger than this once unpacked is refused (a damaged or hostile archive)

Rows = dict[str, dict[tuple[Any, ...], dict[str, Any]]]


@dataclass(frozen=True)
class SliceSummary:
    runs: tuple[str, ...]
    evaluations: tuple[str, ...]
    artefacts: tuple[str, ...]
    bytes: int

    @property
    def empty(self) -> bool:
        return not (self.runs or self.evaluations or self.artefacts)


def store_rows(store: Store) -> Rows:
    """Every indexed row of a (scratch) store, by table and identity."""
    out: Rows = {}
    for table, key in TABLES.items():
        rows = [dict(r) for r in store._execute(f"SELECT * FROM {table}")]
        out[table] = {tuple(r[c] for c in key): r for r in rows}
    return out


def _rows_for(store: Store, run_ids: Iterable[str], artefact_keys: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    runs, keys = list(dict.fromkeys(run_ids)), list(dict.fromkeys(artefact_keys))

    def select(table: str, column: str, values: list[str]) -> list[dict[str, Any]]:
        if not values:
            return []
        marks = ",".join("?" * len(values))
        return [dict(r) for r in store._execute(f"SELECT * FROM {table} WHERE {column} IN ({marks})", values)]

    return {"runs": select("runs", "id", runs), "evaluations": [], "artefacts": select("artefacts", "key", keys),
            "artefact_uses": []}


def pack_slice(store: Store, run_ids: Iterable[str] = (), artefact_keys: Iterable[str] = ()) -> bytes:
    """The rows and folders of these runs and artefacts (a job's inputs)."""
    rows = _rows_for(store, run_ids, artefact_keys)
    return _pack(store, rows)


def pack_changes(store: Store, before: Rows) -> bytes:
    """Rows that are new or differ from `before`, with the folders of the runs and artefacts among them."""
    after = store_rows(store)
    rows = {table: [row for ident, row in after[table].items() if before.get(table, {}).get(ident) != row]
            for table in TABLES}
    return _pack(store, rows)


def _pack(store: Store, rows: dict[str, list[dict[str, Any]]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(INDEX_FILE, json.dumps(rows))
        for row in rows["runs"]:
            _add_folder(zf, store.run_dir(row["id"]), f"runs/{row['id']}")
        for row in rows["artefacts"]:
            _add_folder(zf, store.artefact_dir(row["key"]), f"artefacts/{row['key']}")
    return buffer.getvalue()


def _add_folder(zf: zipfile.ZipFile, folder: Path, prefix: str) -> None:
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and ".tmp" not in path.name:
            zf.write(path, f"{prefix}/{path.relative_to(folder).as_posix()}")


def unpack_slice(store: Store, data: bytes) -> SliceSummary:
    """Write a slice into `store`: its rows replace rows with the same identity, its run and artefact folders
    replace those folders whole. Paths outside runs/<id>/ and artefacts/<key>/ are refused."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = safe_zip_members(zf, max_total_bytes=MAX_SLICE_BYTES)  # no traversal, links or bombs
        rows = json.loads(zf.read(INDEX_FILE))
        if not isinstance(rows, dict) or set(rows) - set(TABLES):
            raise ValueError("not a store slice: its index names unknown tables")
        folders: dict[str, list[zipfile.ZipInfo]] = {}
        for info in infos:
            if info.filename == INDEX_FILE:
                continue
            folders.setdefault(_folder_of(store, info.filename), []).append(info)
        for top, members in folders.items():
            _replace_folder(store, zf, top, members)
    for table in TABLES:
        for row in rows.get(table, []):
            if table == "runs":  # the submitting process owns the run from now on (its status says if it is active)
                row = {**row, "owner": process_owner()}
            _upsert(store, table, row)
    return SliceSummary(runs=tuple(r["id"] for r in rows.get("runs", [])),
                        evaluations=tuple(r["key"] for r in rows.get("evaluations", [])),
                        artefacts=tuple(r["key"] for r in rows.get("artefacts", [])), bytes=len(data))


def _folder_of(store: Store, name: str) -> str:
    """'runs/<id>' or 'artefacts/<key>' for a member name, after checking it stays inside that folder."""
    path = PurePosixPath(name)
    parts = path.parts
    if path.is_absolute() or len(parts) < 3 or ".." in parts or parts[0] not in ("runs", "artefacts") or "\\" in name:
        raise ValueError(f"a store slice may only hold files under runs/<id>/ and artefacts/<key>/, not {name!r}")
    if parts[0] == "runs":
        store.run_dir(parts[1])  # validates the id
    else:
        store.artefact_dir(parts[1])
    return f"{parts[0]}/{parts[1]}"


def _replace_folder(store: Store, zf: zipfile.ZipFile, top: str, members: list[zipfile.ZipInfo]) -> None:
    kind, ident = top.split("/")
    target = store.run_dir(ident) if kind == "runs" else store.artefact_dir(ident)
    incoming = target.with_name(f".{ident}.incoming")
    shutil.rmtree(incoming, ignore_errors=True)
    for info in members:
        relative = PurePosixPath(info.filename).relative_to(top)
        destination = incoming.joinpath(*relative.parts)
        destination.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as src, open(destination, "wb") as dst:
            shutil.copyfileobj(src, dst)
    old = target.with_name(f".{ident}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    incoming.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _upsert(store: Store, table: str, row: dict[str, Any]) -> None:
    columns = list(row)
    if not columns or not all(c.replace("_", "").isalnum() for c in columns):
        raise ValueError(f"a store slice row of {table} has unexpected columns {columns}")
    store._execute(f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({','.join('?' * len(columns))})",
                   [row[c] for c in columns])
