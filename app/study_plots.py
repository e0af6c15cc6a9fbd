"""Figures of the continual-learning and architecture-search studies, each with a caption (what, preset, seeds).

Pure functions of a stored study (ddcore/continual.py ContinualOutcome, ddcore/nas.py NasResult, read through
the bridge): no streamlit, no store. Kept apart from app/plots.py (the evaluation figures) so each file stays
about one kind of result. Tests read the numbers back out of `figure.data`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from app.plots import PALETTE, WIDE, Plot, dataset_name, method_color
from app.text import plot_text


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _orders(result: Any) -> str:
    n = len(result.seeds)
    return f"{n} class order{'s' if n != 1 else ''} (seeds {', '.join(map(str, result.seeds))})"


def _learner(result: Any) -> str:
    cfg = result.learner or {}
    seeds = "1 network" if result.preset != "paper" else "3 networks"
    aug = cfg.get("augmentation", "?")
    aug = "without augmentation" if aug == "none" else f"with {aug.upper()} augmentation"
    return (f"a fresh {result.architecture} per step, {cfg.get('passes', '?')} passes {aug}, {seeds}, "
            f"{cfg.get('test_limit') or 'all'} test images of the seen classes")


# ---------------------------------------------------------------------------------------------- continual learning
def continual_accuracy(result: Any, finetune: bool = False) -> Plot:
    """Accuracy on every class seen so far against the step: one line per memory method, a band over the orders."""
    acc = result.finetune_accuracy if finetune else result.accuracy
    fig = go.Figure()
    steps = list(range(1, result.steps + 1))
    seen = [len([c for part in result.step_classes[0][: s] for c in part]) for s in steps]
    for m, method in enumerate(result.methods):
        colour = method_color(method)
        a = acc[m]
        mean, lo, hi = a.mean(0), a.min(0), a.max(0)
        fig.add_trace(go.Scatter(x=steps + steps[::-1], y=list(hi) + list(lo[::-1]), fill="toself", mode="lines",
                                 line=dict(width=0), fillcolor=_rgba(colour, 0.18), hoverinfo="skip",
                                 showlegend=False, name=f"{method} (range)"))
        fig.add_trace(go.Scatter(x=steps, y=list(mean), mode="lines+markers", name=method, line=dict(color=colour, width=2),
                                 customdata=np.stack([a.std(0), lo, hi, seen], axis=1),
                                 hovertemplate=(f"<b>{method}</b><br>step %{{x}} (%{{customdata[3]}} classes seen)<br>"
                                                "%{y:.1f} % mean ± %{customdata[0]:.1f}<br>range %{customdata[1]:.1f}–"
                                                "%{customdata[2]:.1f} %<extra></extra>")))
    fig.update_layout(height=380, margin=WIDE, template="plotly_white", xaxis=dict(title="step", tickmode="array",
                      tickvals=steps, ticktext=[f"{s} ({n} cls)" for s, n in zip(steps, seen)]),
                      yaxis=dict(title="test accuracy on the classes seen so far (%)"), legend=dict(orientation="h", y=-0.2))
    who = ("one network fine-tuned from step to step on the new classes' real images with the earlier memory replayed"
           if finetune else _learner(result))
    caption = (f"{dataset_name(result.dataset)}, {result.steps} steps, IPC {result.ipc} per class seen. Line: mean over "
               f"{_orders(result)}; band: their range. Learner: {who}. {result.preset} preset.")
    return Plot(fig, caption)


def continual_forgetting(result: Any, finetune: bool = False) -> Plot:
    """Per class, its best accuracy since it arrived minus its last one (mean over the orders)."""
    fig = go.Figure()
    names = result.class_names
    for method in result.methods:
        f = result.forgetting(method, finetune)  # (orders, classes)
        fig.add_trace(go.Bar(x=names, y=list(np.nanmean(f, axis=0)), name=method, marker_color=method_color(method),
                             error_y=dict(type="data", array=list(np.nanstd(f, axis=0)), visible=True),
                             hovertemplate=f"<b>{method}</b><br>%{{x}}: %{{y:.1f}} points<extra></extra>"))
    fig.update_layout(barmode="group", height=340, margin=WIDE, template="plotly_white",
                      yaxis=dict(title="forgetting (points)"), xaxis=dict(title="class"), legend=dict(orientation="h", y=-0.25))
    learner = "the fine-tuned network" if finetune else "the fresh network of each step"
    caption = (f"Forgetting per class: its best test accuracy over the steps since it arrived minus its accuracy after the "
               f"last step, for {learner}; mean ± std over {_orders(result)}. {result.preset} preset. A class that arrives "
               "in the last step has no forgetting.")
    return Plot(fig, caption)


def continual_costs(result: Any) -> Plot:
    """Seconds per class order: building the memory and training the fresh learners."""
    methods = list(result.methods)
    memory = [result.cost(m)["memory_s"] for m in methods]
    learner = [result.cost(m)["learner_s"] for m in methods]
    fig = go.Figure([go.Bar(x=methods, y=memory, name="building the memory (the method's colour)",
                            marker_color=[method_color(m) for m in methods],
                            hovertemplate="%{x}: %{y:.1f} s building the memory<extra></extra>"),
                     go.Bar(x=methods, y=learner, name="training the fresh learners", marker_color="#b0b4c0",
                            marker_pattern_shape="/", hovertemplate="%{x}: %{y:.1f} s training the learners<extra></extra>")])
    fig.update_layout(barmode="stack", height=320, margin=WIDE, template="plotly_white",
                      yaxis=dict(title="seconds per class order"), legend=dict(orientation="h", y=-0.25))
    caption = (f"Cost per memory method: seconds per class order (mean over {_orders(result)}), all {result.steps} steps, "
               f"on {result.device}. {result.preset} preset; the whole study took {result.wall_time_s:.0f} s.")
    return Plot(fig, caption)


# ---------------------------------------------------------------------------------------------- architecture search
def _budget(result: Any) -> str:
    cfg = result.config or {}
    return (f"{result.budget} budget: {cfg.get('passes', '?')} passes on each proxy, the 'whole data' "
            f"{result.whole_images:,} training images; 1 network per architecture and set (seed 0)")


def nas_scatter(result: Any) -> Plot:
    """Proxy accuracy against whole-data accuracy, one point per architecture (hover names it), one colour per proxy."""
    fig = go.Figure()
    for p, label in enumerate(result.proxies):
        corr = next((c for c in result.correlations if c["proxy"] == label and c["subset"] == "all"), None)
        rho = f" (ρ = {corr['spearman']:.2f})" if corr and np.isfinite(corr["spearman"]) else ""
        fig.add_trace(go.Scatter(x=list(result.whole_accuracy), y=list(result.proxy_accuracy[p]), mode="markers",
                                 name=f"{plot_text(label)}{rho}", text=result.architectures,
                                 marker=dict(size=9, color=PALETTE[p % len(PALETTE)]),
                                 hovertemplate="<b>%{text}</b><br>whole data %{x:.1f} %<br>proxy %{y:.1f} %<extra>"
                                               + plot_text(label) + "</extra>"))
    fig.update_layout(height=420, margin=WIDE, template="plotly_white", xaxis=dict(title="accuracy after whole-data training (%)"),
                      yaxis=dict(title="accuracy after proxy training (%)"), legend=dict(orientation="h", y=-0.2))
    caption = (f"{dataset_name(result.dataset)}: each point is one of {len(result.architectures)} ConvNet variants, "
               f"trained on a proxy (y) and on the whole data (x), tested on the same test images. {_budget(result)}. "
               "A good proxy keeps the order along x.")
    return Plot(fig, caption)


def nas_correlations(result: Any, statistic: str = "spearman") -> Plot:
    """Rank correlation per proxy and subset (all, top k), with the bootstrap interval as error bars."""
    subsets = list(dict.fromkeys(c["subset"] for c in result.correlations))
    fig = go.Figure()
    for p, label in enumerate(result.proxies):
        rows = [next(c for c in result.correlations if c["proxy"] == label and c["subset"] == s) for s in subsets]
        values = [r[statistic] for r in rows]
        fig.add_trace(go.Bar(x=subsets, y=values, name=plot_text(label), marker_color=PALETTE[p % len(PALETTE)],
                             error_y=dict(type="data", symmetric=False, visible=True,
                                          array=[max(0.0, r[f"{statistic}_high"] - r[statistic]) for r in rows],
                                          arrayminus=[max(0.0, r[statistic] - r[f"{statistic}_low"]) for r in rows]),
                             customdata=[[r[f"{statistic}_low"], r[f"{statistic}_high"], r["n"]] for r in rows],
                             hovertemplate=(f"<b>{plot_text(label)}</b><br>%{{x}} (%{{customdata[2]}} architectures)"
                                            "<br>%{y:.2f} [%{customdata[0]:.2f}, %{customdata[1]:.2f}]<extra></extra>")))
    fig.add_hline(y=0, line=dict(color="#888", width=1))
    name = "Spearman's ρ" if statistic == "spearman" else "Kendall's τ"
    fig.update_layout(barmode="group", height=360, margin=WIDE, template="plotly_white",
                      yaxis=dict(title=name, range=[-1.05, 1.05]), legend=dict(orientation="h", y=-0.2))
    caption = (f"{name} between proxy and whole-data accuracy over all {len(result.architectures)} architectures and over "
               f"the top k by whole-data accuracy; error bars: 95 % percentile bootstrap intervals ({result.bootstrap} "
               f"resamples of the architectures). {_budget(result)}.")
    return Plot(fig, caption)


def nas_time(result: Any) -> Plot:
    """Training time of the whole grid on each proxy against on the whole data (and what making the proxy cost)."""
    labels = ["whole data"] + [plot_text(p) for p in result.proxies]
    train = [float(result.whole_seconds.sum())] + [float(s.sum()) for s in result.proxy_seconds]
    make = [0.0] + [float(s) for s in result.proxy_make_seconds]
    fig = go.Figure([go.Bar(x=labels, y=train, name="training the grid", marker_color="#636EFA",
                            text=[""] + [f"{result.time_saved(p):.1f}× faster" for p in range(len(result.proxies))],
                            textposition="outside"),
                     go.Bar(x=labels, y=make, name="making the proxy (distillation or selection)", marker_color="#FFA15A")])
    fig.update_layout(barmode="stack", height=340, margin=WIDE, template="plotly_white", yaxis=dict(title="seconds"),
                      legend=dict(orientation="h", y=-0.3))
    caption = (f"Time saved: seconds to train all {len(result.architectures)} architectures on each proxy against on the "
               f"whole data ({result.whole_images:,} images), on {result.device}; a stored set's distillation time is "
               f"its run's. {_budget(result)}.")
    return Plot(fig, caption)
