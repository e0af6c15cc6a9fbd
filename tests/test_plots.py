"""Plots and exports of the Evaluate page: the numbers in every figure are the numbers in the store.

Real evaluations (tiny: 3 epochs, 300 test images, 1 seed) of real MNIST sets run once per module
through the job manager; the figures are then built from what the store returns.
"""
from __future__ import annotations

import csv
import io
import json
import math
import re

import pytest

from app import exports, plots
from ddcore import published
from ddcore.platform.queue import JobManager
from ddcore.platform.records import Subject
from ddcore.platform.store import Store
from ddcore.results import ResultRow, collect, compare_published, detail, latest
from tests.evalkit import evaluate_all, make_runs, tiny_preset

ARCHS = ["convnet", "mlp"]


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("plots-store")
    manager = JobManager(Store(root), threads=1)
    try:
        run_ids = make_runs(manager.store)
        evaluated = [Subject.run(i, "mnist") for i in run_ids] + [Subject.random("mnist", 1, 0)]
        evaluate_all(manager, evaluated, ARCHS, tiny_preset())
    finally:
        manager.shutdown()
    store = Store(root)
    return store, run_ids, [s.group for s in evaluated]  # a row's subject is its set group


def _by_cell(store: Store) -> dict[tuple[str, str], object]:
    return {(e.subject.group, e.architecture): e for e in store.list_evaluations()}


def test_rows_carry_the_stored_numbers(stored) -> None:
    store, run_ids, subjects = stored
    rows = collect(store, dataset="mnist")
    assert len(rows) == len(subjects) * len(ARCHS)
    cells = _by_cell(store)
    for r in rows:
        ev = cells[(r.subject, r.architecture)]
        assert r.mean == pytest.approx(ev.mean) and r.std == pytest.approx(ev.std)
        assert r.accuracies == pytest.approx(ev.result.accuracies)
        assert r.preset == tiny_preset() and r.n_seeds == 1
        if r.kind == "run":
            assert r.train_architecture == "convnet" and r.method in ("random", "dm")
        assert 0 <= r.mean <= 100


def test_heatmap_cells_equal_the_store(stored) -> None:
    store, run_ids, subjects = stored
    rows = latest(collect(store))
    plot = plots.heatmap(rows)
    hm = plot.figure.data[0]
    assert hm.type == "heatmap" and list(hm.x) == ARCHS  # the training architecture first
    cells = _by_cell(store)
    row_of = {r.subject: r for r in rows}
    labels = list(hm.y)
    for subject in subjects:
        i = labels.index(next(lbl for lbl in labels if lbl == plots.set_labels(rows)[subject]))
        for j, arch in enumerate(hm.x):
            ev = cells[(subject, arch)]
            assert hm.z[i][j] == pytest.approx(ev.mean)
            assert hm.customdata[i][j][0] == pytest.approx(ev.std)
            one = len(ev.result.seeds) == 1  # one network: its mean alone, no '± 0.0' that would claim a spread
            assert plots.fmt(ev.mean, None if one else ev.std) in hm.text[i][j] and ("±" in hm.text[i][j]) != one
            if row_of[subject].kind == "run" and arch != "convnet":  # drop from the training architecture
                assert hm.customdata[i][j][1] == pytest.approx(ev.mean - cells[(subject, "convnet")].mean)
                light = plots.LIGHT_GAIN_COLOR in hm.text[i][j] or plots.LIGHT_DROP_COLOR in hm.text[i][j]
                assert light == (ev.mean >= 60)  # the change stays readable on the heatmap's dark cells
    # one outline per distilled set, around its training architecture's column (0)
    outlines = [s for s in plot.figure.layout.shapes if s.type == "rect"]
    assert len(outlines) == len(run_ids) and all(s.x0 == -0.5 for s in outlines)
    assert tiny_preset() in plot.caption and "1 seed" in plot.caption


def test_bars_and_ipc_plot_equal_the_store(stored) -> None:
    store, _, subjects = stored
    rows = latest(collect(store))
    cells = _by_cell(store)
    bars = plots.grouped_bars(rows).figure
    assert len(bars.data) == len(subjects)
    for trace in bars.data:
        subject = next(s for s, lbl in plots.set_labels(rows).items() if lbl == trace.name)
        for x, y, err in zip(trace.x, trace.y, trace.error_y.array):
            assert y == pytest.approx(cells[(subject, x)].mean) and err == pytest.approx(cells[(subject, x)].std)

    pub = [p for p in published.load_published() if p.dataset == "mnist"]
    plot = plots.accuracy_vs_ipc(rows, "convnet", pub)
    fig = plot.figure
    assert fig.layout.xaxis.type == "log"
    measured = {t.name: t for t in fig.data if t.name and t.name.endswith("(measured)")}
    dm = measured["DM (measured)"]
    dm_subject = next(r.subject for r in rows if r.method == "dm")
    assert list(dm.x) == [1] and dm.y[0] == pytest.approx(cells[(dm_subject, "convnet")].mean)
    # random real: the newest 'random' measurement at IPC 1 (the baseline subject was evaluated last)
    newest_random = max((r for r in rows if r.method == "random" and r.architecture == "convnet"),
                        key=lambda r: r.created)
    assert measured["random real (measured)"].y[0] == pytest.approx(newest_random.mean)
    assert measured["random real (measured)"].line.dash == "dash"
    published_dm = {p.ipc: p.mean for p in published.lookup("mnist", "dm")}
    pub_trace = next(t for t in fig.data if t.name == "DM (published)")
    assert pub_trace.marker.symbol == plots.PUBLISHED_SYMBOL
    assert {x: y for x, y in zip(pub_trace.x, pub_trace.y)} == {k: pytest.approx(v) for k, v in published_dm.items()}
    whole = published.whole_dataset("mnist")
    assert whole is not None and any(abs(s.y0 - whole.mean) < 1e-9 for s in fig.layout.shapes)  # the reference line
    assert "convnet" in plot.caption and tiny_preset() in plot.caption


def test_detail_plots_equal_the_record(stored) -> None:
    store, run_ids, _ = stored
    row = next(r for r in collect(store) if r.run_id == run_ids[1] and r.architecture == "convnet")
    record = store.get_evaluation(row.key).result
    pc = plots.per_class(row)
    assert list(pc.figure.data[0].y) == pytest.approx(record.per_class_accuracy)
    assert list(pc.figure.data[0].x) == record.class_names
    cm = plots.confusion(row)
    assert [list(r) for r in cm.figure.data[0].customdata] == record.confusion
    assert all(sum(r) == pytest.approx(100) for r in cm.figure.data[0].z)  # rows normalised to percent
    curves = plots.training_curves(row).figure
    loss = next(t for t in curves.data if t.name.startswith("loss"))
    assert list(loss.y) == pytest.approx(record.curves["loss_0"])
    acc = next(t for t in curves.data if t.name.startswith("train_acc"))
    assert list(acc.y) == pytest.approx(record.curves["train_acc_0"])
    for p in (pc, cm, plots.training_curves(row)):
        assert row.preset in p.caption and "seed" in p.caption


def test_exports_round_trip(stored) -> None:
    store, _, subjects = stored
    rows = collect(store)
    parsed = list(csv.DictReader(io.StringIO(exports.results_csv(rows))))
    assert len(parsed) == len(rows)
    for line, r in zip(parsed, rows):
        assert float(line["mean"]) == pytest.approx(r.mean, abs=1e-4)
        assert line["architecture"] == r.architecture and line["preset"] == r.preset
    data = json.loads(exports.results_json(rows))
    assert [d["mean"] for d in data["results"]] == pytest.approx([r.mean for r in rows])
    assert data["results"][0]["record"]["config"]["epochs"] == 3
    md = exports.summary_markdown(latest(rows))
    assert sum(line.startswith("| ") for line in md.splitlines()) == len(subjects) + 1  # header + one per set
    for r in latest(rows):
        assert f"{r.mean:.1f} ± {r.std:.1f}" in md
    assert tiny_preset() in md


def test_published_comparison_sets_ours_beside_theirs(stored) -> None:
    store, _, _ = stored
    rows = collect(store)
    table = compare_published(rows, published.load_published())
    dm1 = [t for t in table if t["dataset"] == "mnist" and t["method"] == "dm" and t["ipc"] == 1
           and t["architecture"] == "convnet"]
    assert dm1, "the published table has DM on MNIST at IPC 1"
    ours = next(r for r in rows if r.method == "dm" and r.architecture == "convnet")
    for t in dm1:
        assert t["ours_mean"] == pytest.approx(ours.mean, abs=0.01)
        assert t["difference"] == pytest.approx(ours.mean - t["mean"], abs=0.02)
        assert t["citation"] and t["family"] == "distribution matching"
    assert all(t["ours_mean"] is None for t in table if t["dataset"] == "cifar10")
    fig = plots.published_scatter([t for t in table if t["dataset"] == "mnist"]).figure
    assert any(t.name == "dm (ours)" for t in fig.data)


def test_plots_without_results_say_so() -> None:
    for plot in (plots.heatmap([]), plots.grouped_bars([]), plots.accuracy_vs_ipc([], "convnet")):
        assert plot.caption == "" and plot.figure.layout.annotations
    row = ResultRow(key="k", subject="random:mnist:1:0", kind="random", label="random real · IPC 1", method="random",
                    dataset="mnist", ipc=1, architecture="mlp", train_architecture=None, preset="quick", n_seeds=2,
                    mean=50.0, std=1.0)  # a row whose stored result is not at hand
    assert detail(row).per_class is None and plots.per_class(row).caption == ""
    assert math.isclose(plots.heatmap([row]).figure.data[0].z[0][0], 50.0)


def test_exports_keep_a_hostile_run_name_as_text(stored) -> None:
    """A run renamed to markup, a table-breaking pipe and a spreadsheet formula leaves every export as text."""
    store, run_ids, _ = stored
    hostile = '=HYPERLINK("http://x")|<img src=x onerror=alert(1)>![i](http://127.0.0.2/p.png)'
    old = store.get_run(run_ids[0]).name
    store.rename_run(run_ids[0], hostile)
    try:
        rows = [r for r in collect(store) if r.run_id == run_ids[0]]
        assert rows and all(hostile == r.run_name for r in rows)
        for line in csv.DictReader(io.StringIO(exports.results_csv(rows))):
            assert line["run_name"] == "'" + hostile  # a leading apostrophe: shown, never evaluated
        md = exports.summary_markdown(rows, title=hostile)
        assert "<img" not in md and not re.search(r"(?<!\\)\]\(", md) and "![" not in md  # no tag, link, image
        table = [line for line in md.splitlines() if line.startswith("|")]
        pipes = {len(re.findall(r"(?<!\\)\|", line)) for line in table}
        assert len(pipes) == 1, table  # the name's pipe does not add a column
    finally:
        store.rename_run(run_ids[0], old)


def test_heatmap_changes_stay_readable_on_dark_cells() -> None:
    """The change from the training architecture is drawn light on the colour scale's dark cells (about 60 % and up)
    and dark on its light ones, gains green and drops red."""
    def row(arch: str, mean: float) -> ResultRow:
        return ResultRow(key=arch, subject="run:r1", kind="run", label="DM · IPC 10", method="dm", dataset="mnist",
                         ipc=10, architecture=arch, train_architecture="convnet", preset="quick", n_seeds=1,
                         mean=mean, std=0.0)

    hm = plots.heatmap([row("convnet", 50.0), row("mlp", 80.0), row("lenet", 40.0), row("alexnet", 55.0)]).figure.data[0]
    cells = dict(zip(hm.x, hm.text[0]))
    assert plots.LIGHT_GAIN_COLOR in cells["mlp"]  # +30 on a dark cell
    assert plots.DROP_COLOR in cells["lenet"] and plots.LIGHT_DROP_COLOR not in cells["lenet"]  # -10 on a light cell
    assert plots.GAIN_COLOR in cells["alexnet"] and plots.LIGHT_GAIN_COLOR not in cells["alexnet"]  # +5 on a light one
    dark_drop = plots.heatmap([row("convnet", 95.0), row("mlp", 70.0)]).figure.data[0]
    assert plots.LIGHT_DROP_COLOR in dict(zip(dark_drop.x, dark_drop.text[0]))["mlp"]  # -25 on a dark cell


def test_a_wide_heatmap_shows_means_so_narrow_cells_read() -> None:
    """Up to three architectures a cell reads 'mean ± std' and the training architecture's 'trained here'; from four
    on (cells under ~60 px on a 420 px window) the mean alone, the std staying in the hover, the outline marking
    where the set was distilled."""
    def row(arch: str, mean: float) -> ResultRow:
        return ResultRow(key=arch, subject="run:r1", kind="run", label="DM · IPC 10", method="dm", dataset="mnist",
                         ipc=10, architecture=arch, train_architecture="convnet", preset="quick", n_seeds=3,
                         mean=mean, std=1.5)

    narrow = plots.heatmap([row("convnet", 50.0), row("mlp", 80.0), row("lenet", 40.0)])
    cells = dict(zip(narrow.figure.data[0].x, narrow.figure.data[0].text[0]))
    assert "50.0 ± 1.5" in cells["convnet"] and "trained here" in cells["convnet"] and "80.0 ± 1.5" in cells["mlp"]
    wide = plots.heatmap([row("convnet", 50.0), row("mlp", 80.0), row("lenet", 40.0), row("alexnet", 55.0)])
    hm = wide.figure.data[0]
    cells = dict(zip(hm.x, hm.text[0]))
    assert cells["convnet"] == "<b>50.0</b>" and cells["mlp"].startswith("80.0<br>") and "±" not in "".join(cells.values())
    assert all(c[0] == 1.5 for c in hm.customdata[0]) and "the std is in the hover" in wide.caption
    assert len([s for s in wide.figure.layout.shapes if s.type == "rect"]) == 1  # the outline still marks convnet


def test_our_convnet_krr_rows_meet_the_published_krr_rows() -> None:
    """A KRR evaluation with the ConvNet kernel is set beside the papers' KRR rows (RFAD's quoted CIFAR-10 number),
    not beside their trained ConvNets."""
    ours = ResultRow(key="k", subject="run:r1", kind="run", label="RFAD · IPC 1", method="rfad", dataset="cifar10",
                     ipc=1, architecture="convnet_krr", train_architecture="convnet", preset="quick", n_seeds=1,
                     mean=40.0, std=None)
    rows = [r for r in compare_published([ours], published.load_published()) if r["method"] == "rfad" and r["ipc"] == 1]
    assert [(r["architecture"], r["mean"], r["ours_mean"], r["difference"]) for r in rows] == [("convnet_krr", 53.6, 40.0, -13.6)]
