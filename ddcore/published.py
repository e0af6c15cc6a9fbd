"""Published test accuracies for dataset distillation, to set a run next to what the papers report.

Why: a distilled set's accuracy only means something next to the published number for the
same dataset, images per class (IPC) and evaluation network, and next to a random real subset
evaluated the same way. The numbers live in ``resources/published.csv`` (one row per reported
cell); this module loads, validates and looks them up.

Conventions:

* ``mean``/``std`` are test accuracy in percent; ``std`` is ``None`` where none was reported.
* ``ipc`` is ``None`` only for whole-dataset rows (method ``whole``).
* ``architecture`` is ``convnet`` (ConvNet-3, 128 channels, instancenorm) unless the row says
  otherwise: ``convnetd4`` (the depth-4 ConvNet used for 64x64 Tiny-ImageNet), ``alexnet``, ``lenet``,
  ``fc``, or ``convnet_krr`` (kernel ridge regression with the ConvNet NTK: not a trained net).
  In lookups, ``architecture="convnet"`` means the benchmark's standard ConvNet, so it also
  matches ``convnetd4`` rows on Tiny-ImageNet; ``architecture=None`` matches every architecture.
* ``uncertain`` is ``True`` when the number was not checked against the originating paper's own
  table (or its authors' README): it was read from a later paper that tabulates it, or recalled.
  ``source`` says exactly where each number was read.
* Several rows may share a cell: different protocols (e.g. DC-Bench's re-evaluation) or two
  readings of one method (KIP as kernel regression and as a trained ConvNet). Read ``paper``
  and ``protocol_notes`` before comparing.

Methods that appear here but have no implementation in ddcore (MTT, KIP, ...) keep their family,
evaluation augmentation and plot colour in ``resources/published_methods.csv`` (`published_method`);
implemented methods declare them on their class (ddcore/methods/base.py).

Unknown names: ``lookup`` raises :class:`~ddcore.registry.UnknownNameError` (with close matches)
for a dataset or method id that the table's vocabulary does not know, and returns ``[]`` for a
known dataset/method pair that no paper reports (e.g. K-Center on Tiny-ImageNet).
"""
from __future__ import annotations

import csv
import dataclasses
import difflib
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from ddcore.registry import UnknownNameError

COLUMNS: tuple[str, ...] = (
    "paper", "table", "dataset", "ipc", "method", "architecture", "mean", "std",
    "protocol_notes", "citation", "source", "uncertain",
)

# Canonical ids, in the order a table should show them.
KNOWN_DATASETS: tuple[str, ...] = ("mnist", "fashionmnist", "svhn", "cifar10", "cifar100", "tinyimagenet")
KNOWN_METHODS: tuple[str, ...] = (
    "random", "herding", "kcenter", "forgetting", "dd", "ld", "dc", "dsa", "dm", "cafe", "cafe_dsa",
    "kip", "kip_fc", "mtt", "tesla", "frepo", "rfad", "idc", "idm", "ftd", "datm", "whole",
)
KNOWN_ARCHITECTURES: tuple[str, ...] = ("convnet", "convnetd4", "alexnet", "lenet", "fc", "convnet_krr")

# The benchmark's "standard ConvNet" where it is not ConvNet-3 (deeper for larger images).
STANDARD_CONVNET: dict[str, str] = {"tinyimagenet": "convnetd4"}

_DATASET_ALIASES: dict[str, str] = {
    "fmnist": "fashionmnist", "fashion": "fashionmnist",
    "cifar": "cifar10",
    "tiny": "tinyimagenet", "tinyimagenet200": "tinyimagenet", "imagenettiny": "tinyimagenet",
}
_METHOD_ALIASES: dict[str, str] = {
    "randomsubset": "random", "randomreal": "random", "randomselection": "random",
    "kcentergreedy": "kcenter", "kcenters": "kcenter",
    "forgettingevents": "forgetting",
    "datasetdistillation": "dd",
    "learnedlabels": "ld",
    "gradientmatching": "dc", "datasetcondensation": "dc",
    "distributionmatching": "dm",
    "cafedsa": "cafe_dsa", "cafewithdsa": "cafe_dsa",
    "kipconvnet": "kip", "kipfc": "kip_fc",
    "tm": "mtt", "trajectorymatching": "mtt",
    "whole": "whole", "wholedataset": "whole", "full": "whole", "fulldataset": "whole",
    "fullset": "whole", "real": "whole", "realdataset": "whole",
}
_ARCH_ALIASES: dict[str, str] = {
    "convnet3": "convnet", "convnetd3": "convnet", "convnetw128": "convnet", "convnetin": "convnet",
    "convnet4": "convnetd4",
    "mlp": "fc", "fullyconnected": "fc",
    "convnetkrr": "convnet_krr", "krr": "convnet_krr", "ntk": "convnet_krr",
}


class PublishedTableError(ValueError):
    """The published-numbers CSV is malformed; the message names the file and line."""


@dataclass(frozen=True)
class PublishedResult:
    """One published cell: a method's test accuracy on a dataset at an IPC, with its provenance."""

    paper: str
    table: str
    dataset: str
    ipc: int | None
    method: str
    architecture: str
    mean: float
    std: float | None
    protocol_notes: str
    citation: str
    source: str
    uncertain: bool

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def label(self) -> str:
        """'44.9 ± 0.5' (or just '44.9' when no std was reported)."""
        return f"{self.mean:.1f}" if self.std is None else f"{self.mean:.1f} ± {self.std:.1f}"


# --------------------------------------------------------------------------- names


def _squash(name: str) -> str:
    """Lower-case and drop separators, so 'CIFAR-10', 'cifar_10' and 'Cifar 10' compare equal."""
    return re.sub(r"[\s_\-+./]", "", name.strip().lower())


def _canonical(name: str, known: Iterable[str], aliases: dict[str, str], kind: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise UnknownNameError(f"Unknown {kind} {name!r}: give a non-empty name.")
    key = _squash(name)
    table = {_squash(k): k for k in known}
    if key in table:
        return table[key]
    if key in aliases:
        return aliases[key]
    candidates = sorted(set(table) | set(aliases))
    close = difflib.get_close_matches(key, candidates, n=3, cutoff=0.6)
    hint = f" Did you mean: {', '.join(dict.fromkeys(table.get(c) or aliases[c] for c in close))}?" if close else ""
    raise UnknownNameError(f"Unknown {kind} '{name}'.{hint} Known: {', '.join(known)}.")


def canonical_dataset(name: str) -> str:
    """'CIFAR-10' -> 'cifar10', 'FMNIST' -> 'fashionmnist'; unknown names raise UnknownNameError."""
    return _canonical(name, KNOWN_DATASETS, _DATASET_ALIASES, "dataset")


def canonical_method(name: str) -> str:
    """'K-Center' -> 'kcenter', 'CAFE+DSA' -> 'cafe_dsa', 'TM' -> 'mtt'; unknown names raise."""
    return _canonical(name, KNOWN_METHODS, _METHOD_ALIASES, "method")


def canonical_architecture(name: str) -> str:
    """'ConvNet' / 'ConvNetD3' -> 'convnet', 'ConvNetD4' -> 'convnetd4'; unknown names raise."""
    return _canonical(name, KNOWN_ARCHITECTURES, _ARCH_ALIASES, "architecture")


# --------------------------------------------------------------------------- loading


def _parse_percent(value: str, column: str, where: str, required: bool) -> float | None:
    value = value.strip()
    if not value:
        if required:
            raise PublishedTableError(f"{where}: column '{column}' is empty")
        return None
    try:
        number = float(value)
    except ValueError:
        raise PublishedTableError(f"{where}: column '{column}' is not a number: {value!r}") from None
    if not 0.0 <= number <= 100.0:  # also refuses nan
        raise PublishedTableError(f"{where}: column '{column}' = {number} is outside [0, 100]")
    return number


def _parse_row(cells: dict[str, str], where: str) -> PublishedResult:
    for column in ("paper", "dataset", "method", "architecture", "mean", "citation", "source", "uncertain"):
        if not cells[column].strip():
            raise PublishedTableError(f"{where}: column '{column}' is empty")
    dataset = cells["dataset"].strip()
    if dataset not in KNOWN_DATASETS:
        raise PublishedTableError(f"{where}: unknown dataset id {dataset!r} (known: {', '.join(KNOWN_DATASETS)})")
    method = cells["method"].strip()
    if method not in KNOWN_METHODS:
        raise PublishedTableError(f"{where}: unknown method id {method!r} (known: {', '.join(KNOWN_METHODS)})")
    architecture = cells["architecture"].strip()
    if architecture not in KNOWN_ARCHITECTURES:
        raise PublishedTableError(
            f"{where}: unknown architecture {architecture!r} (known: {', '.join(KNOWN_ARCHITECTURES)})")
    ipc_text = cells["ipc"].strip()
    ipc: int | None
    if ipc_text:
        if not re.fullmatch(r"[0-9]+", ipc_text) or int(ipc_text) < 1:
            raise PublishedTableError(f"{where}: ipc must be a positive integer or blank, got {ipc_text!r}")
        ipc = int(ipc_text)
    else:
        ipc = None
    if (ipc is None) != (method == "whole"):
        raise PublishedTableError(f"{where}: ipc must be blank exactly for method 'whole' (got ipc={ipc_text!r}, "
                                  f"method={method!r})")
    uncertain = cells["uncertain"].strip().lower()
    if uncertain not in ("true", "false"):
        raise PublishedTableError(f"{where}: uncertain must be 'true' or 'false', got {cells['uncertain']!r}")
    mean = _parse_percent(cells["mean"], "mean", where, required=True)
    assert mean is not None
    return PublishedResult(
        paper=cells["paper"].strip(), table=cells["table"].strip(), dataset=dataset, ipc=ipc,
        method=method, architecture=architecture, mean=mean,
        std=_parse_percent(cells["std"], "std", where, required=False),
        protocol_notes=cells["protocol_notes"].strip(), citation=cells["citation"].strip(),
        source=cells["source"].strip(), uncertain=uncertain == "true",
    )


def parse_published(text: str, name: str = "published.csv") -> list[PublishedResult]:
    """Parse and validate CSV text; a malformed row raises PublishedTableError naming its line."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise PublishedTableError(f"{name} line 1: the file is empty (expected the header row)") from None
    except csv.Error as exc:
        raise PublishedTableError(f"{name} line 1: {exc}") from None
    if tuple(h.strip() for h in header) != COLUMNS:
        raise PublishedTableError(f"{name} line 1: header must be {','.join(COLUMNS)}; got {','.join(header)}")
    results: list[PublishedResult] = []
    seen: dict[tuple[Any, ...], int] = {}
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise PublishedTableError(f"{name} line {reader.line_num}: {exc}") from None
        where = f"{name} line {reader.line_num}"
        if not raw or all(not cell.strip() for cell in raw):
            continue
        if len(raw) != len(COLUMNS):
            raise PublishedTableError(f"{where}: expected {len(COLUMNS)} columns, got {len(raw)}")
        result = _parse_row(dict(zip(COLUMNS, raw)), where)
        key = (result.paper, result.dataset, result.ipc, result.method, result.architecture, result.table)
        if key in seen:
            raise PublishedTableError(f"{where}: duplicate of line {seen[key]} (same paper, table, dataset, ipc, "
                                      f"method, architecture)")
        seen[key] = reader.line_num
        results.append(result)
    if not results:
        raise PublishedTableError(f"{name}: no data rows")
    return results


@lru_cache(maxsize=1)
def _load_packaged() -> tuple[PublishedResult, ...]:
    text = resources.files("ddcore.resources").joinpath("published.csv").read_text(encoding="utf-8")
    return tuple(parse_published(text, "published.csv"))


def load_published(path: str | Path | None = None) -> list[PublishedResult]:
    """All rows, validated. The packaged table is parsed once and cached; an explicit path is read each call."""
    if path is None:
        return list(_load_packaged())
    path = Path(path)
    return parse_published(path.read_text(encoding="utf-8"), str(path))


# --------------------------------------------------------------------------- queries


def _arch_matches(row: PublishedResult, wanted: str | None) -> bool:
    if wanted is None or row.architecture == wanted:
        return True
    return wanted == "convnet" and row.architecture == STANDARD_CONVNET.get(row.dataset)


def lookup(dataset: str, method: str, ipc: int | None = None, architecture: str | None = "convnet",
           rows: Iterable[PublishedResult] | None = None) -> list[PublishedResult]:
    """Rows for a dataset and method (aliases and case accepted), optionally at one IPC.

    ``architecture=None`` returns every architecture; the default ``"convnet"`` is the standard
    ConvNet of the benchmark. Rows keep the CSV order (each paper's own rows before re-evaluations).
    """
    ds = canonical_dataset(dataset)
    m = canonical_method(method)
    arch = None if architecture is None else canonical_architecture(architecture)
    if ipc is not None and (isinstance(ipc, bool) or not isinstance(ipc, int)):
        raise TypeError(f"ipc must be an int or None, got {ipc!r}")
    source = load_published() if rows is None else rows
    return [r for r in source
            if r.dataset == ds and r.method == m and (ipc is None or r.ipc == ipc) and _arch_matches(r, arch)]


def whole_dataset(dataset: str, architecture: str | None = "convnet") -> PublishedResult | None:
    """The published full-training-set accuracy (the 'upper line'), or None if none is tabulated.

    Prefers a verified row over an uncertain one when several exist.
    """
    found = lookup(dataset, "whole", architecture=architecture)
    if not found:
        return None
    return sorted(found, key=lambda r: r.uncertain)[0]


def methods(rows: Iterable[PublishedResult] | None = None) -> list[str]:
    """Method ids present in the table, in KNOWN_METHODS order."""
    present = {r.method for r in (load_published() if rows is None else rows)}
    return [m for m in KNOWN_METHODS if m in present]


# --------------------------------------------------------------------------- published-only methods

METHOD_COLUMNS: tuple[str, ...] = ("method", "title", "family", "eval_augmentation", "colour", "source")
_EVAL_AUGMENTATIONS = ("dsa", "dc", "none", "auto")  # as ddcore.methods.base.EVAL_AUGMENTATIONS


@dataclass(frozen=True)
class PublishedMethod:
    """A method id of the published numbers that has no implementation here (MTT, KIP, ...): what a
    registered method declares on its class (family, evaluation augmentation, colour), from
    ``resources/published_methods.csv``, each row naming its source."""

    method: str
    title: str
    family: str
    eval_augmentation: str
    colour: str | None
    source: str


def parse_published_methods(text: str, name: str = "published_methods.csv") -> dict[str, PublishedMethod]:
    """Parse and validate the published-methods table (method id -> row, in file order)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != METHOD_COLUMNS:
        raise PublishedTableError(f"{name} line 1: header must be {','.join(METHOD_COLUMNS)}")
    out: dict[str, PublishedMethod] = {}
    for raw in reader:
        where = f"{name} line {reader.line_num}"
        if not raw or all(not cell.strip() for cell in raw):
            continue
        if len(raw) != len(METHOD_COLUMNS):
            raise PublishedTableError(f"{where}: expected {len(METHOD_COLUMNS)} columns, got {len(raw)}")
        cells = {k: v.strip() for k, v in zip(METHOD_COLUMNS, raw)}
        for column in ("method", "family", "eval_augmentation", "source"):
            if not cells[column]:
                raise PublishedTableError(f"{where}: column '{column}' is empty")
        if cells["eval_augmentation"] not in _EVAL_AUGMENTATIONS:
            raise PublishedTableError(f"{where}: eval_augmentation must be one of {', '.join(_EVAL_AUGMENTATIONS)}")
        if cells["colour"] and not re.fullmatch(r"#[0-9A-Fa-f]{6}", cells["colour"]):
            raise PublishedTableError(f"{where}: colour must be '#rrggbb' or empty, not {cells['colour']!r}")
        method = cells["method"].lower()
        if method in out:
            raise PublishedTableError(f"{where}: method {method!r} appears twice")
        out[method] = PublishedMethod(method, cells["title"] or method, cells["family"], cells["eval_augmentation"],
                                      cells["colour"] or None, cells["source"])
    return out


@lru_cache(maxsize=1)
def published_methods() -> dict[str, PublishedMethod]:
    """The packaged published-only methods table (parsed once)."""
    text = resources.files("ddcore.resources").joinpath("published_methods.csv").read_text(encoding="utf-8")
    return parse_published_methods(text)


def published_method(name: str) -> PublishedMethod | None:
    """The published-only method's row for an exact id ('mtt', case-insensitive), or None."""
    return published_methods().get((name or "").strip().lower())


def datasets(rows: Iterable[PublishedResult] | None = None) -> list[str]:
    """Dataset ids present in the table, in KNOWN_DATASETS order."""
    present = {r.dataset for r in (load_published() if rows is None else rows)}
    return [d for d in KNOWN_DATASETS if d in present]
