"""The published-numbers table: it loads, it covers the benchmark grid, lookups accept aliases,
and a malformed file fails loudly with the line that is wrong."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ddcore import published as pub
from ddcore.published import (
    COLUMNS,
    KNOWN_DATASETS,
    KNOWN_METHODS,
    PublishedResult,
    PublishedTableError,
    load_published,
    lookup,
    whole_dataset,
)
from ddcore.registry import UnknownNameError

GRID_DATASETS = ("mnist", "fashionmnist", "cifar10", "cifar100")
IPCS = (1, 10, 50)


def _valid_row(**overrides: str) -> dict[str, str]:
    row = {
        "paper": "DC (Zhao et al., ICLR 2021)", "table": "Tab.1", "dataset": "cifar10", "ipc": "10",
        "method": "dc", "architecture": "convnet", "mean": "44.9", "std": "0.5",
        "protocol_notes": "ConvNet-3, gradient matching",
        "citation": "Zhao, Mopuri, Bilen. Dataset Condensation with Gradient Matching. ICLR 2021",
        "source": "readme Tab.1", "uncertain": "false",
    }
    row.update(overrides)
    return row


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


# ------------------------------------------------------------------ the packaged table


def test_packaged_table_loads_and_validates() -> None:
    rows = load_published()
    assert len(rows) > 100
    assert all(isinstance(r, PublishedResult) for r in rows)
    for r in rows:
        assert r.dataset in KNOWN_DATASETS and r.method in KNOWN_METHODS
        assert 0.0 <= r.mean <= 100.0
        assert r.std is None or 0.0 <= r.std <= 100.0
        assert (r.ipc is None) == (r.method == "whole")
        assert r.citation and r.source and r.paper
        assert isinstance(r.uncertain, bool)


def test_load_is_cached_but_returns_a_fresh_list() -> None:
    first, second = load_published(), load_published()
    assert first == second and first is not second
    first.clear()
    assert load_published() == second


@pytest.mark.parametrize("dataset", GRID_DATASETS)
@pytest.mark.parametrize("ipc", IPCS)
def test_grid_has_random_and_a_matching_method(dataset: str, ipc: int) -> None:
    assert lookup(dataset, "random", ipc), f"no random baseline for {dataset} ipc {ipc}"
    # DC reports CIFAR-100 at IPC 1 and 10 only; DM reports no FashionMNIST: every other cell has both.
    assert bool(lookup(dataset, "dc", ipc)) == ((dataset, ipc) != ("cifar100", 50)), f"DC row for {dataset} ipc {ipc}"
    assert bool(lookup(dataset, "dm", ipc)) == (dataset != "fashionmnist"), f"DM row for {dataset} ipc {ipc}"


@pytest.mark.parametrize("dataset", KNOWN_DATASETS)
def test_every_dataset_has_a_whole_dataset_line(dataset: str) -> None:
    full = whole_dataset(dataset)
    assert full is not None and full.method == "whole" and full.ipc is None
    best_distilled = max(r.mean for r in load_published() if r.dataset == dataset and r.method not in ("whole",)
                         and r.architecture != "convnet_krr")
    assert full.mean > best_distilled * 0.9  # the full-data line sits at (or near) the top


def test_required_methods_are_present() -> None:
    required = {"random", "herding", "kcenter", "dd", "dc", "dsa", "dm", "cafe", "mtt", "tesla", "kip",
                "frepo", "idc", "datm", "whole"}
    assert required <= set(pub.methods())
    assert pub.datasets() == list(KNOWN_DATASETS)


def test_known_values_from_verified_sources() -> None:
    (dc,) = [r for r in lookup("cifar10", "dc", 10) if r.paper.startswith("DC (")]
    assert (dc.mean, dc.std, dc.uncertain) == (44.9, 0.5, False)
    (dsa,) = [r for r in lookup("mnist", "dsa", 50)]
    assert (dsa.mean, dsa.std) == (99.2, 0.1)
    krr = lookup("cifar10", "kip", 1, architecture="convnet_krr")
    assert [r.mean for r in krr] == [63.4]
    assert [r.mean for r in lookup("cifar100", "ftd", 50)] == [50.7]
    assert whole_dataset("cifar10").mean == 84.8  # type: ignore[union-attr]


# ------------------------------------------------------------------ names and aliases


@pytest.mark.parametrize("dataset", ["CIFAR-10", "cifar10", "Cifar_10", " cifar 10 "])
def test_dataset_aliases_cifar10(dataset: str) -> None:
    assert lookup(dataset, "DC", 10) == lookup("cifar10", "dc", 10)


@pytest.mark.parametrize("dataset", ["FashionMNIST", "fmnist", "Fashion-MNIST", "fashion_mnist"])
def test_dataset_aliases_fashionmnist(dataset: str) -> None:
    assert lookup(dataset, "dsa", 1) == lookup("fashionmnist", "dsa", 1) != []


@pytest.mark.parametrize("method,canonical", [
    ("k-center", "kcenter"), ("K-Center", "kcenter"), ("kcenter", "kcenter"), ("k_center", "kcenter"),
    ("CAFE+DSA", "cafe_dsa"), ("cafe_dsa", "cafe_dsa"), ("TM", "mtt"), ("KIP-FC", "kip_fc"),
    ("Whole dataset", "whole"), ("full", "whole"),
])
def test_method_aliases(method: str, canonical: str) -> None:
    assert pub.canonical_method(method) == canonical
    assert lookup("cifar10", method) == lookup("cifar10", canonical)


def test_ipc_filter_and_architecture_filter() -> None:
    assert {r.ipc for r in lookup("cifar10", "mtt")} == {1, 10, 50}
    assert all(r.ipc == 50 for r in lookup("cifar10", "mtt", 50))
    # LD used AlexNet: no ConvNet row, but it shows up when any architecture is asked for.
    assert lookup("cifar10", "ld") == []
    assert {r.architecture for r in lookup("cifar10", "ld", architecture=None)} == {"alexnet"}
    assert lookup("cifar10", "ld", 1, architecture="AlexNet")[0].mean == 25.7
    # DD's own MNIST number is a LeNet's (random initialisations), below random real images on a ConvNet.
    assert lookup("mnist", "dd", 10) == [] and [r.architecture for r in lookup("mnist", "dd", 10, None)] == ["lenet"]
    # Tiny-ImageNet's standard ConvNet is depth 4, and 'convnet' means the standard one.
    assert lookup("tinyimagenet", "mtt", 1) == lookup("tinyimagenet", "mtt", 1, architecture="ConvNetD4") != []


def test_unknown_names_raise_with_suggestions_known_but_unreported_is_empty() -> None:
    with pytest.raises(UnknownNameError, match="dsa"):
        lookup("cifar10", "dsaa")
    with pytest.raises(UnknownNameError, match="cifar10"):
        lookup("cifar-11", "dc")
    with pytest.raises(UnknownNameError):
        lookup("cifar10", "dc", architecture="transformer")
    assert lookup("tinyimagenet", "kcenter") == []
    assert lookup("cifar10", "dc", ipc=1000) == []
    with pytest.raises(TypeError):
        lookup("cifar10", "dc", ipc="10")  # type: ignore[arg-type]


def test_label_formats_mean_and_std() -> None:
    (dc,) = [r for r in lookup("cifar10", "dc", 1) if r.std is not None]
    assert dc.label() == "28.3 ± 0.5"
    assert [r.label() for r in lookup("cifar10", "kip", 1) if r.std is None] == ["50.0"]


# ------------------------------------------------------------------ loading other files


def test_a_valid_file_at_a_path_loads_and_bypasses_the_cache(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.csv", [_valid_row(), _valid_row(ipc="", method="whole", mean="84.8")])
    rows = load_published(path)
    assert len(rows) == 2 and rows[1].ipc is None and rows[0].std == 0.5
    assert lookup("cifar10", "dc", rows=rows) == rows[:1]
    assert pub.methods(rows) == ["dc", "whole"]
    assert len(load_published()) > 2  # the packaged table is untouched


@pytest.mark.parametrize("bad,message", [
    ({"mean": "150"}, "outside"),
    ({"mean": "-1"}, "outside"),
    ({"mean": "abc"}, "not a number"),
    ({"mean": ""}, "'mean' is empty"),
    ({"std": "nan"}, "outside"),
    ({"dataset": "imagenet"}, "unknown dataset"),
    ({"method": "magic"}, "unknown method"),
    ({"architecture": "vit"}, "unknown architecture"),
    ({"ipc": "1.5"}, "ipc must be"),
    ({"ipc": "0"}, "ipc must be"),
    ({"ipc": ""}, "blank exactly"),
    ({"uncertain": "maybe"}, "uncertain must be"),
    ({"citation": " "}, "'citation' is empty"),
])
def test_malformed_row_names_its_line(tmp_path: Path, bad: dict[str, str], message: str) -> None:
    path = _write(tmp_path / "bad.csv", [_valid_row(), _valid_row(**{"ipc": "1", **bad})])
    with pytest.raises(PublishedTableError, match=message) as info:
        load_published(path)
    assert "line 3" in str(info.value) and "bad.csv" in str(info.value)


def test_wrong_column_count_and_header_and_duplicates(tmp_path: Path) -> None:
    short = tmp_path / "short.csv"
    short.write_text(",".join(COLUMNS) + "\n" + "a,b,c\n", encoding="utf-8")
    with pytest.raises(PublishedTableError, match=r"line 2: expected 12 columns"):
        load_published(short)

    header = tmp_path / "header.csv"
    header.write_text("paper,dataset\nx,y\n", encoding="utf-8")
    with pytest.raises(PublishedTableError, match="line 1: header"):
        load_published(header)

    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(PublishedTableError, match="empty"):
        load_published(empty)

    dup = _write(tmp_path / "dup.csv", [_valid_row(), _valid_row(ipc="1"), _valid_row()])
    with pytest.raises(PublishedTableError, match="line 4: duplicate of line 2"):
        load_published(dup)


def test_blank_lines_are_skipped_and_line_numbers_stay_physical(tmp_path: Path) -> None:
    path = _write(tmp_path / "gaps.csv", [_valid_row()])
    text = path.read_text(encoding="utf-8") + "\n\n"  # lines 3 and 4 are blank
    bad_row = _write(tmp_path / "row.csv", [_valid_row(ipc="1", mean="101")]).read_text(encoding="utf-8")
    path.write_text(text + bad_row.splitlines()[1] + "\n", encoding="utf-8")
    with pytest.raises(PublishedTableError, match="line 5"):
        load_published(path)
