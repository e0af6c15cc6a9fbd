"""Writing a file so that it is either the old one or the new one, never half of either.

Why: a full disk or a read-only store fails a write part-way. Writing a temporary sibling and renaming it over
the target (atomic on POSIX) keeps the target whole, and removing the temporary on failure leaves no debris
behind for the next reader to trip on. The temporary name is unique to the writer, so two processes filling the
same cache entry at once (two jobs, two test workers) each rename a whole file instead of writing into one.
"""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on any failure it is removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
    return path
