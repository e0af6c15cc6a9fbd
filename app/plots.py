"""Evaluation results -> plotly figures, each with a caption saying what was measured and how.

Pure functions (no streamlit, no store access): the page hands in `ddcore.results.ResultRow`s and
published rows, and gets back `Plot(figure, caption)`. Tests read the numbers back out of
`figure.data` and compare them with the store.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import plotly.graph_objects as go
from plotly.colors import qualitative

from app.text import plain, plot_text
from ddcore.platform.bridge import EvalDetail, ResultRow, detail, published_architecture, set_labels


def plot_labels(rows) -> dict[str, str]:
    """set_labels escaped for Plotly, which reads tags (<a href>, <b>, ...) in every text: a run name is text."""
    return {subject: plot_text(label) for subject, label in set_labels(rows).items()}

PALETTE = qualitative.Plotly + qualitative.D3
# Colours for methods that declare none: the palette, then more, so that many undeclared ids stay distinct.
METHOD_PALETTE = list(dict.fromkeys(c.upper() for c in PALETTE + qualitative.Dark24 + qualitative.Light24))
DROP_COLOR = "#c62828"
# the same on the dark cells of the YlGnBu heatmap (above about 60 %), where the dark red and green do not read
LIGHT_DROP_COLOR, LIGHT_GAIN_COLOR, GAIN_COLOR = "#ffcdd2", "#c8e6c9", "#1b5e20"
TRAIN_OUTLINE = "#ff6d00"
PUBLISHED_SYMBOL = "diamond-open"
WIDE = dict(l=10, r=10, t=40, b=10)


@dataclass
class Plot:
    figure: go.Figure
    caption: str


# ---------------------------------------------------------------------- helpers
def method_color(method: str) -> str:
    """One colour per method id, the same in every figure: the method's declared colour (a registered
    method's `colour` class attribute, or the published-methods table's colour column), else the next
    palette colour not declared by anyone, in the stable order of `ddcore.methods.known_methods()`
    (built-ins, plugins, published-only ids); ids nobody knows get a colour from their name."""
    from ddcore.methods import describe_method

    info = describe_method(method)
    if info is not None and info.colour:
        return info.colour
    free, position = _undeclared_palette()
    key = (method or "").strip().lower()
    i = position[key] if key in position else sum(map(ord, key))
    return free[i % len(free)]


def _undeclared_palette() -> tuple[list[str], dict[str, int]]:
    """The palette without the declared colours, and each undeclared known method's position in it."""
    from ddcore.methods import describe_method, known_methods

    infos = [describe_method(m) for m in known_methods()]
    declared = {i.colour.upper() for i in infos if i is not None and i.colour}
    free = [c for c in METHOD_PALETTE if c not in declared] or list(METHOD_PALETTE)
    undeclared = [i.name for i in infos if i is not None and not i.colour]
    return free, {name: n for n, name in enumerate(undeclared)}


def subject_colours(rows: Sequence[ResultRow], subjects: Sequence[str]) -> dict[str, str]:
    """A method's colour for a set that is its method's only one, distinct palette colours otherwise."""
    method = {r.subject: r.method for r in rows}
    methods = list(dict.fromkeys(method[s] for s in subjects))
    count = {m: sum(1 for s in subjects if method[s] == m) for m in methods}
    return {s: method_color(method[s]) if count[method[s]] == 1 else PALETTE[(i + 3) % len(PALETTE)]
            for i, s in enumerate(subjects)}


def protocol(rows: Iterable[ResultRow]) -> str:
    """'quick preset, 3 seeds' or 'quick/paper presets, 1–3 seeds' for captions."""
    rows = list(rows)
    presets = sorted({r.preset for r in rows if r.preset})
    seeds = sorted({r.n_seeds for r in rows})
    p = f"{'/'.join(presets) or 'unknown'} preset{'s' if len(presets) > 1 else ''}"
    if not seeds:
        return p
    s = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
    return f"{p}, {s} seed{'s' if seeds[-1] != 1 else ''}"


def dataset_name(name: str) -> str:
    try:
        from ddcore.data import get_dataset_info

        return get_dataset_info(name).display_name
    except Exception:
        return name


def tested_on(rows: Iterable[ResultRow]) -> str:
    """'the MNIST test set (300 images)' — how many test images the accuracies were measured on."""
    rows = list(rows)
    names = ", ".join(dataset_name(d) for d in sorted({r.dataset for r in rows}))
    counts = sorted({r.test_images for r in rows if r.test_images})
    if not counts:
        return f"the {names} test set"
    n = f"{counts[0]:,}" if len(counts) == 1 else f"{counts[0]:,}–{counts[-1]:,}"
    return f"{n} {names} test images"


def fmt(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"


def _empty(message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(xaxis_visible=False, yaxis_visible=False, height=200, margin=WIDE)
    return fig


def _set_order(rows: Sequence[ResultRow]) -> list[str]:
    """Subjects: distilled sets by method then IPC, then random real, then the whole dataset."""
    rank = {"run": 0, "random": 1, "whole": 2}
    firsts: dict[str, ResultRow] = {}
    for r in rows:
        firsts.setdefault(r.subject, r)
    return sorted(firsts, key=lambda s: (rank.get(firsts[s].kind, 3), firsts[s].method, firsts[s].ipc or 0,
                                         firsts[s].created))


def _arch_order(rows: Sequence[ResultRow]) -> list[str]:
    """Training architectures first (the reference column), then the rest as first evaluated."""
    trained = [r.train_architecture for r in rows if r.train_architecture]
    seen = list(dict.fromkeys(trained + [r.architecture for r in sorted(rows, key=lambda r: r.created)]))
    return [a for a in seen if any(r.architecture == a for r in rows)]


# ---------------------------------------------------------------------- cross-architecture
def heatmap(rows: Sequence[ResultRow], title: str = "") -> Plot:
    """Sets (rows) × evaluation architectures (columns), mean ± std; the training architecture's cell
    is outlined and every other cell shows its change from it."""
    rows = [r for r in rows if r.mean is not None]
    if not rows:
        return Plot(_empty("No stored results yet: run an evaluation above."), "")
    subjects, archs = _set_order(rows), _arch_order(rows)
    labels = plot_labels(rows)
    cell = {(r.subject, r.architecture): r for r in rows}
    train_arch = {r.subject: r.train_architecture for r in rows}
    z, text, custom = [], [], []
    compact = len(archs) >= 4  # cells under ~60 px on a narrow window: std and 'trained here' move to hover/outline
    for s in subjects:
        base = cell.get((s, train_arch[s])) if train_arch[s] else None
        zr, tr, cr = [], [], []
        for a in archs:
            r = cell.get((s, a))
            if r is None:
                zr.append(None), tr.append(""), cr.append([None, None, None])
                continue
            drop = None if base is None or a == train_arch[s] else r.mean - base.mean
            # one network: no spread to show (not ± 0.0); 4+ columns: the mean alone, so narrow cells still read
            t = fmt(r.mean, None if r.n_seeds == 1 or compact else r.std)
            if a == train_arch[s]:
                t = f"<b>{t}</b>" if compact else f"<b>{t}</b><br>trained here"
            elif drop is not None:
                dark_cell = r.mean >= 60
                colour = (LIGHT_DROP_COLOR if dark_cell else DROP_COLOR) if drop < 0 else \
                    (LIGHT_GAIN_COLOR if dark_cell else GAIN_COLOR)
                t += f"<br><span style='color:{colour}'><b>{drop:+.1f}</b></span>"
            zr.append(r.mean), tr.append(t), cr.append([r.std, drop, r.n_seeds])
        z.append(zr), text.append(tr), custom.append(cr)
    ylabels = [labels[s] for s in subjects]
    fig = go.Figure(go.Heatmap(
        z=z, x=archs, y=ylabels, text=text, texttemplate="%{text}", customdata=custom,
        textfont=dict(size=14 if len(archs) <= 2 else 12 if len(archs) <= 4 else 11),  # narrower cells, smaller text
        colorscale="YlGnBu",
        zmin=0, zmax=100, colorbar=dict(title="acc. %"), xgap=2, ygap=2,
        hovertemplate="%{y} on %{x}<br>accuracy %{z:.2f}% ± %{customdata[0]:.2f}<br>change from training "
                      "architecture %{customdata[1]:+.2f}<br>%{customdata[2]} seeds<extra></extra>"))
    for i, s in enumerate(subjects):
        if train_arch[s] in archs and (s, train_arch[s]) in cell:
            j = archs.index(train_arch[s])
            fig.add_shape(type="rect", x0=j - 0.5, x1=j + 0.5, y0=i - 0.5, y1=i + 0.5,
                          line=dict(color=TRAIN_OUTLINE, width=3))
    fig.update_layout(title=title or "Cross-architecture test accuracy (%)", margin=WIDE,
                      height=max(260, 90 + 70 * len(subjects)), xaxis=dict(side="top", title=""),
                      yaxis=dict(autorange="reversed", title=""))
    caption = (f"Test accuracy (%) on {tested_on(rows)} of networks trained from scratch on each set "
               f"(rows) with each architecture (columns); cells are mean ± std over seeds (a cell without ± is one "
               f"network{'; with 4 or more architectures the cells show means, the std is in the hover' if compact else ''}"
               f"); {protocol(rows)}. "
               f"The outlined cell is the architecture the set was distilled with; the coloured number under every "
               f"other cell is its change from that cell (red: a drop), the cross-architecture generalisation gap.")
    return Plot(fig, caption)


def grouped_bars(rows: Sequence[ResultRow]) -> Plot:
    """One bar group per architecture, one bar per set, error bars = std over seeds."""
    rows = [r for r in rows if r.mean is not None]
    if not rows:
        return Plot(_empty("No stored results yet."), "")
    subjects, archs = _set_order(rows), _arch_order(rows)
    labels = plot_labels(rows)
    cell = {(r.subject, r.architecture): r for r in rows}
    colours = subject_colours(rows, subjects)
    fig = go.Figure()
    for s in subjects:
        xs = [a for a in archs if (s, a) in cell]
        fig.add_bar(name=labels[s], x=xs, y=[cell[(s, a)].mean for a in xs],
                    error_y=dict(type="data", array=[cell[(s, a)].std or 0.0 for a in xs], visible=True),
                    marker_color=colours[s],
                    text=[fmt(cell[(s, a)].mean, cell[(s, a)].std) for a in xs], textposition="outside",
                    customdata=[[cell[(s, a)].std, cell[(s, a)].n_seeds] for a in xs],
                    hovertemplate=f"{labels[s]}<br>%{{x}}: %{{y:.2f}}% ± %{{customdata[0]:.2f}} "
                                  f"(%{{customdata[1]}} seeds)<extra></extra>")
    fig.update_layout(barmode="group", margin=WIDE, yaxis=dict(title="test accuracy (%)", range=[0, 105]),
                      xaxis_title="evaluation architecture", legend_title_text="set", height=420)
    caption = (f"Test accuracy (%) on {tested_on(rows)} per evaluation architecture, one bar per set; bars are the "
               f"mean and error bars one standard deviation over seeds; {protocol(rows)}.")
    return Plot(fig, caption)


# ---------------------------------------------------------------------- accuracy against IPC
def accuracy_vs_ipc(rows: Sequence[ResultRow], architecture: str, published: Sequence[Any] = (),
                    show_published: bool = True) -> Plot:
    """Mean ± std against IPC (log x) per method on one evaluation architecture; random real as a dashed
    line, the whole dataset as a horizontal line, published numbers as open diamonds."""
    rows = [r for r in rows if r.mean is not None and r.architecture == architecture]
    fig = go.Figure()
    if not rows and not published:
        return Plot(_empty(f"No stored results on {architecture} yet."), "")
    dataset = rows[0].dataset if rows else (published[0].dataset if published else "")
    # The newest measurement per (method, IPC).
    points: dict[tuple[str, int], ResultRow] = {}
    for r in rows:
        if r.kind == "whole" or r.ipc is None or r.recipe:  # random real trained like a method: not its own line
            continue
        k = (r.method, r.ipc)
        if k not in points or r.created >= points[k].created:
            points[k] = r
    methods = [m for m in dict.fromkeys(m for m, _ in sorted(points, key=lambda k: (k[0] == "random", k[0])))]
    for m in methods:
        pts = sorted((ipc, r) for (mm, ipc), r in points.items() if mm == m)
        name = "random real (measured)" if m == "random" else f"{m.upper()} (measured)"
        fig.add_scatter(
            x=[p[0] for p in pts], y=[p[1].mean for p in pts], name=name, mode="lines+markers",
            line=dict(color=method_color(m), dash="dash" if m == "random" else "solid", width=2.5),
            marker=dict(size=10, symbol="circle"),
            error_y=dict(type="data", array=[p[1].std or 0.0 for p in pts], visible=True),
            customdata=[[p[1].std, p[1].n_seeds, p[1].preset] for p in pts],
            hovertemplate=f"{name}<br>IPC %{{x}}: %{{y:.2f}}% ± %{{customdata[0]:.2f}}"
                          f"<br>%{{customdata[1]}} seeds, %{{customdata[2]}} preset<extra></extra>")
    wholes = sorted((r for r in rows if r.kind == "whole"), key=lambda r: r.created)
    if wholes:
        w = wholes[-1]
        fig.add_hline(y=w.mean, line=dict(color=method_color("whole"), width=2),
                      annotation_text=f"whole dataset (measured) {fmt(w.mean, w.std)}",
                      annotation_position="bottom right")
        fig.add_scatter(x=[None], y=[None], mode="lines", line=dict(color=method_color("whole")),
                        name=f"whole dataset (measured): {fmt(w.mean, w.std)}", meta={"whole": w.mean})
    pub_arch = published_architecture(architecture)
    pub = [p for p in published if pub_arch is not None and p.architecture == pub_arch] if show_published else []
    pub_methods = list(dict.fromkeys(p.method for p in pub if p.method != "whole"))
    for m in pub_methods:
        ps = sorted((p for p in pub if p.method == m), key=lambda p: p.ipc or 0)
        fig.add_scatter(
            x=[p.ipc for p in ps], y=[p.mean for p in ps], mode="markers", name=f"{m.upper() if m != 'random' else 'random real'} (published)",
            marker=dict(symbol=PUBLISHED_SYMBOL, size=11, line=dict(width=2), color=method_color(m)),
            error_y=dict(type="data", array=[p.std or 0.0 for p in ps], visible=True, thickness=1),
            customdata=[[p.paper, p.table, "unverified" if p.uncertain else "checked", p.std if p.std is not None else math.nan]
                        for p in ps],
            hovertemplate="%{customdata[0]} %{customdata[1]}<br>IPC %{x}: %{y:.1f}% ± %{customdata[3]:.1f}"
                          "<br>(%{customdata[2]})<extra>published</extra>")
    pub_whole = [p for p in pub if p.method == "whole"]
    if pub_whole:
        p = sorted(pub_whole, key=lambda p: p.uncertain)[0]
        fig.add_hline(y=p.mean, line=dict(color=method_color("whole"), width=1, dash="dot"),
                      annotation_text=f"whole dataset (published, {p.paper.split(' (')[0]}) {p.mean:.1f}",
                      annotation_position="top left")
    ipcs = sorted({k[1] for k in points} | {p.ipc for p in pub if p.ipc})
    fig.update_layout(margin=WIDE, height=460, yaxis=dict(title="test accuracy (%)", range=[0, 102]),
                      xaxis=dict(title="images per class (IPC, log scale)", type="log",
                                 tickvals=ipcs or None, ticktext=[str(i) for i in ipcs] or None),
                      legend=dict(groupclick="toggleitem"))
    caption = (f"Test accuracy (%) on {tested_on(rows) if rows else dataset_name(dataset)} against images per class, "
               f"measured on {architecture}: lines are our "
               f"stored results (mean ± std over seeds; {protocol(rows) if rows else 'none measured yet'}), the "
               f"dashed line is random real images, the horizontal line the whole training set. Open diamonds are "
               f"published numbers ({pub_arch or 'no published numbers for this architecture'}; paper protocols, "
               f"usually the paper preset with 5 sets × 20 networks); hover for the paper.")
    return Plot(fig, caption)


# ---------------------------------------------------------------------- one evaluation in detail
def _which_network(row: ResultRow, d: EvalDetail) -> str:
    if row.n_seeds <= 1:
        return "of its one network (1 seed)"
    if d.class_stats_over == "all seeds":
        return f"over the networks of all {row.n_seeds} seeds"
    return f"of the network of the last of its {row.n_seeds} seeds"


def per_class(row: ResultRow) -> Plot:
    d = detail(row)
    if not d.per_class:
        return Plot(_empty("This record has no per-class accuracy."), "")
    names = d.class_names[:len(d.per_class)] or [str(i) for i in range(len(d.per_class))]
    fig = go.Figure(go.Bar(x=names, y=d.per_class, marker_color=method_color(row.method),
                           error_y=dict(type="data", array=d.per_class_std or [0.0] * len(d.per_class),
                                        visible=bool(d.per_class_std)),
                           hovertemplate="%{x}: %{y:.1f}%<extra></extra>"))
    if row.mean is not None:
        # the label sits in the right margin, where no bar can hide it
        fig.add_hline(y=row.mean, line=dict(dash="dot", color="#555"), annotation_text=f"overall<br>{row.mean:.1f}%",
                      annotation_position="right", annotation=dict(xanchor="left", font=dict(size=11)))
    fig.update_layout(margin={**WIDE, "r": 70}, height=360, yaxis=dict(title="test accuracy (%)", range=[0, 105]),
                      xaxis=dict(title="class", type="category"))
    which = "mean over seeds (error bars: std)" if d.per_class_std else _which_network(row, d)
    caption = (f"Test accuracy (%) on {tested_on([row])} per class of {plain(row.label)} evaluated on {row.architecture}, {which}; "
               f"{row.preset} preset; the dotted line is the mean over all seeds.")
    return Plot(fig, caption)


def confusion(row: ResultRow, normalise: bool = True) -> Plot:
    d = detail(row)
    if not d.confusion:
        return Plot(_empty("This record has no confusion matrix."), "")
    m = d.confusion
    names = d.class_names[:len(m)] or [str(i) for i in range(len(m))]
    z = [[v / (sum(r) or 1) * 100 for v in r] for r in m] if normalise else m
    fig = go.Figure(go.Heatmap(z=z, x=names, y=names, colorscale="Blues", customdata=m,
                               texttemplate="%{z:.0f}" if normalise else "%{z:.0f}",
                               hovertemplate="true %{y}, predicted %{x}: %{z:.1f}"
                                             + ("% of the class" if normalise else "") + " (%{customdata:.0f} images)"
                                             "<extra></extra>"))
    fig.update_layout(margin=WIDE, height=420, xaxis=dict(title="predicted class", side="bottom", type="category"),
                      yaxis=dict(title="true class", autorange="reversed", type="category"))
    caption = (f"Confusion matrix of {plain(row.label)} evaluated on {row.architecture}: test images of each true class "
               f"(rows) by predicted class (columns), {'percent of the row' if normalise else 'counts'}, "
               + _which_network(row, d)
               + f"; {row.preset} preset.")
    return Plot(fig, caption)


def has_training_curves(row: ResultRow) -> bool:
    """Whether an evaluation stored curves to draw (KRR trains nothing; a replayed DD schedule stores none)."""
    return bool(detail(row).curves)


def training_curves(row: ResultRow) -> Plot:
    d = detail(row)
    if not d.curves:
        return Plot(_empty("This record has no training curves."), "")
    fig = go.Figure()
    metrics = [k for k in d.curves[0] if k not in ("epoch", "step", "iteration")]
    for i, c in enumerate(d.curves):
        x = c.get("epoch") or c.get("step") or list(range(1, len(next(iter(c.values()))) + 1))
        for j, k in enumerate(metrics):
            y = c[k]
            is_loss = "loss" in k
            fig.add_scatter(x=x[:len(y)], y=y, mode="lines", name=f"{k} · seed {i}", legendgroup=k,
                            yaxis="y2" if is_loss else "y", line=dict(color=PALETTE[j % len(PALETTE)],
                                                                      dash="dot" if is_loss else "solid"),
                            opacity=0.9 if len(d.curves) == 1 else 0.6)
    fig.update_layout(margin=WIDE, height=380, xaxis_title="epoch", yaxis=dict(title="training accuracy (%)",
                                                                                range=[0, 102]),
                      yaxis2=dict(title="training loss", overlaying="y", side="right", showgrid=False),
                      legend=dict(orientation="h", y=-0.25))
    caption = (f"Training curves of the {len(d.curves)} {row.architecture} network{'s' if len(d.curves) != 1 else ''}"
               f" trained on {plain(row.label)} ({row.preset} preset, {len(d.curves)} seed{'s' if len(d.curves) != 1 else ''}"
               f"): accuracy on the training set solid (left axis), loss dotted (right axis), one line per seed.")
    return Plot(fig, caption)


# ---------------------------------------------------------------------- published explorer
def published_scatter(table: Sequence[dict[str, Any]]) -> Plot:
    """Published numbers (open diamonds) and ours where measured (filled), against IPC per method."""
    rows = [r for r in table if r.get("ipc")]
    if not rows:
        return Plot(_empty("No published rows match the filters."), "")
    fig = go.Figure()
    several = len({r["dataset"] for r in rows}) > 1
    groups = list(dict.fromkeys((r["dataset"], r["method"], r["architecture"]) for r in rows))
    for ds, m, arch in groups:
        rs = sorted((r for r in rows if (r["dataset"], r["method"], r["architecture"]) == (ds, m, arch)),
                    key=lambda r: r["ipc"])
        color = method_color(m)
        name = (f"{ds} · " if several else "") + (m if arch == "convnet" else f"{m} · {arch}")
        fig.add_scatter(x=[r["ipc"] for r in rs], y=[r["mean"] for r in rs], mode="lines+markers",
                        name=f"{name} (published)", legendgroup=name, line=dict(color=color, width=1, dash="dot"),
                        marker=dict(symbol=PUBLISHED_SYMBOL, size=10, color=color, line=dict(width=2)),
                        customdata=[[r["paper"], r["dataset"], r["architecture"], r["citation"]] for r in rs],
                        hovertemplate="%{customdata[0]} · %{customdata[1]} · %{customdata[2]}<br>IPC %{x}: "
                                      "%{y:.1f}%<br>%{customdata[3]}<extra></extra>")
        ours = [r for r in rs if r.get("ours_mean") is not None]
        if ours:
            fig.add_scatter(x=[r["ipc"] for r in ours], y=[r["ours_mean"] for r in ours], mode="markers",
                            name=f"{name} (ours)", legendgroup=name, marker=dict(symbol="circle", size=10, color=color),
                            error_y=dict(type="data", array=[r["ours_std"] or 0 for r in ours], visible=True),
                            hovertemplate="ours, IPC %{x}: %{y:.1f}%<extra></extra>")
    ipcs = sorted({r["ipc"] for r in rows})
    fig.update_layout(margin=WIDE, height=420, yaxis=dict(title="test accuracy (%)", range=[0, 102]),
                      xaxis=dict(title="images per class (log scale)", type="log", tickvals=ipcs,
                                 ticktext=[str(i) for i in ipcs]))
    datasets = ", ".join(sorted({r["dataset"] for r in rows}))
    ours = [r for r in rows if r.get("ours_mean") is not None]
    presets = sorted({str(r["ours_preset"]) for r in ours})
    seeds = sorted({int(r["ours_seeds"]) for r in ours if r.get("ours_seeds")})
    ours_note = (f"filled circles, mean ± std over {'/'.join(map(str, seeds))} seed(s), preset "
                 f"{'/'.join(presets)}" if ours else "none measured yet")
    caption = (f"Published test accuracies (%) on {datasets} (open diamonds, each paper's own protocol, usually 5 sets "
               f"× 20 networks; hover for the paper) and our stored measurements of the same method, IPC and "
               f"architecture where they exist ({ours_note}).")
    return Plot(fig, caption)
