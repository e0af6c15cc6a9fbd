"""Studies: tasks whose whole result is one stored analysis (privacy, continual learning, architecture search).

A study is an artefact keyed to what it measured (its spec without the device, plus the content of the
sets it read), so reopening a page shows the stored result without recomputation and an identical
submission is served from the store. Its folder holds `result.json` and, for arrays (ROC points,
per-example scores, images), `arrays.npz` written and read without pickle.

    class PrivacyTask(StudyTask):
        kind = "privacy"; produces = "privacy-study"; Spec = PrivacySpec; Result = PrivacyResult
        def identity(self, spec, store) -> tuple[spec, Requirement]   # validate; what makes two studies equal
        def run(self, spec, ctx): ...; return self.save(ctx, spec, result)

`Result` is a class with `to_dict() -> dict` (JSON-able), `arrays() -> dict[str, np.ndarray]` and
`from_stored(data: dict, arrays: dict, record: ArtefactRecord)`.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar, Iterable

import numpy as np

from ..methods.base import Requirement
from .base import Prepared, Task, TaskContext

if TYPE_CHECKING:
    from ..platform.records import ArtefactRecord
    from ..platform.store import Store

RESULT_FILE = "result.json"
ARRAYS_FILE = "arrays.npz"
_LOADED: dict[tuple[str, float], Any] = {}  # (folder, created) -> result: pages re-read studies on every rerun


class StudyTask(Task):
    Result: ClassVar[type] = object

    def identity(self, spec: Any, store: "Store") -> tuple[Any, Requirement]:
        """The validated spec and the requirement that names its result (kind = `produces`)."""
        raise NotImplementedError

    def keyed(self, spec: Any, store: "Store") -> tuple[Any, Requirement]:
        """`identity`, marked by `mark_variants`: a study of the embedded subset is not served once the full data
        has arrived."""
        spec, identity = self.identity(spec, store)
        return spec, mark_variants(identity)

    def prepare(self, spec: Any, store: "Store") -> Prepared:
        spec, identity = self.keyed(spec, store)
        record = store.get_artefact(identity.key())
        reused = self.load_artefact(record, store) if record is not None else None
        return Prepared(spec, identity.label or self.title, reused=reused, key=identity.key())

    def save(self, ctx: TaskContext, spec: Any, result: Any, inputs: Iterable[str] = ()) -> Any:
        """Write the result's files, index them, and return the result as it loads from the store."""
        from .. import __version__

        _, identity = self.keyed(spec, ctx.store)
        folder = ctx.store.artefact_dir(identity.key())
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {k: np.asarray(v) for k, v in result.arrays().items()}
        if arrays:
            np.savez_compressed(folder / ARRAYS_FILE, **arrays)
        (folder / RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=1, default=_plain))
        to_dict = getattr(spec, "to_dict", None)
        record = ctx.store.put_artefact(
            identity.key(), str(self.produces), identity.label or self.title, identity.as_dict(),
            producer={"job": ctx.job_id, "kind": self.kind, "spec": to_dict() if to_dict else {}},
            inputs=tuple(inputs), code_version=__version__)
        return self.load_artefact(record, ctx.store)

    def load_artefact(self, record: "ArtefactRecord", store: "Store") -> Any:
        """The stored result; a study never changes once written (a new one has a new `created`), so each is read
        from disk once per process rather than on every page rerun."""
        folder = store.artefact_dir(record.key)
        memo = (str(folder), float(record.created))
        if memo in _LOADED:
            return _LOADED[memo]
        data = json.loads((folder / RESULT_FILE).read_text())
        arrays: dict[str, np.ndarray] = {}
        if (folder / ARRAYS_FILE).is_file():
            with np.load(folder / ARRAYS_FILE, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        result = self.Result.from_stored(data, arrays, record)
        if len(_LOADED) >= 32:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[memo] = result
        return result


def mark_variants(identity: Requirement) -> Requirement:
    """`identity` with the variant of each dataset it names (`dataset` or `datasets`) where this machine loads the
    embedded subset (`ddcore.data.local_variant`); unchanged for full data, and when already marked."""
    from ..data import local_variant

    params = identity.as_dict()
    if "data_variants" in params:
        return identity
    names = params.get("datasets") or [params.get("dataset")]
    root = params.get("data_root")  # a built-in dataset read from an explicit root is never the embedded subset
    variants = {str(n): v for n in names if n and (v := local_variant(str(n), root))}
    if not variants:
        return identity
    return Requirement.from_dict(identity.kind, {**params, "data_variants": variants},
                                 label=f"{identity.label} (embedded subset)" if identity.label else "")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-able")
