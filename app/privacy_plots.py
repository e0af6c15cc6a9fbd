"""Privacy study -> plotly figures, each with a caption saying what was measured, on how many examples, by
which attack. Pure functions over a stored `PrivacyResult` (no streamlit); tests read the numbers back."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from app.plots import WIDE, Plot, method_color
from app.text import plot_text
from ddcore.platform.bridge import ATTACK_TITLES, PrivacyResult, TargetResult

KIND_COLOURS = {"members": "#37474f", "random": "#8d6e63", "herding": "#ff8f00", "dpsgd": "#6a1b9a"}
BELOW = dict(orientation="h", yanchor="top", y=-0.2, x=0, font=dict(size=11))  # narrow screens keep the plot wide
DP_SHADES = ["#4a148c", "#7b1fa2", "#ab47bc", "#ce93d8", "#e1bee7"]


def target_colour(target: TargetResult, result: PrivacyResult) -> str:
    if target.kind == "distilled":
        return method_color(target.method)
    if target.kind == "dpsgd":
        dp = [t.id for t in result.targets if t.kind == "dpsgd"]
        return DP_SHADES[dp.index(target.id) % len(DP_SHADES)]
    return KIND_COLOURS.get(target.kind, "#607d8b")


def _dash(target: TargetResult) -> str:
    return "dot" if target.init == "noise" else "solid"


def _counts(result: PrivacyResult) -> str:
    s = result.split
    return (f"{s['members']:,} members and {s['non_members']:,} non-members ({s['pool_per_class']} images per class "
            f"of {result.spec['dataset']}, split {s['seed']})")


def _attack_words(result: PrivacyResult, attack: str) -> str:
    words = ATTACK_TITLES[attack]
    if attack.startswith("lira") and result.shadows:
        words += f" with {result.shadows['count']} shadow models ({result.shadows['epochs']} epochs each" + \
                 (", one global variance" if result.shadows.get("fix_variance") else "") + ")"
    return words


def roc(result: PrivacyResult, attack: str, targets: Sequence[str] | None = None) -> Plot:
    """ROC curves on log-log axes with the chance diagonal, one per target."""
    fig = go.Figure()
    non = int(result.split["non_members"])
    floor = 0.5 / max(1, non)  # FPR 0 cannot sit on a log axis: drawn at half the smallest measurable FPR
    fig.add_trace(go.Scatter(x=[floor, 1], y=[floor, 1], mode="lines", name="chance",
                             line=dict(color="#9e9e9e", dash="dash", width=1), hoverinfo="skip"))
    for t in result.targets:
        if targets is not None and t.id not in targets:
            continue
        fpr, tpr = result.roc(t.id, attack)
        m = t.attacks[attack]
        fig.add_trace(go.Scatter(
            x=np.maximum(fpr, floor), y=np.maximum(tpr, floor), mode="lines", name=plot_text(t.label),
            line=dict(color=target_colour(t, result), dash=_dash(t), width=2, shape="hv"),
            hovertemplate=f"{plot_text(t.label)}<br>FPR %{{x:.4f}}<br>TPR %{{y:.4f}}<br>AUC {m.auc.value:.3f}<extra></extra>"))
    fig.update_layout(xaxis=dict(type="log", title="false positive rate (non-members called members)",
                                 range=[np.log10(floor), 0]),
                      yaxis=dict(type="log", title="true positive rate (members found)", range=[np.log10(floor), 0]),
                      height=500, margin=WIDE, legend=BELOW, title=f"ROC: {ATTACK_TITLES[attack]}")
    caption = (f"ROC of the {_attack_words(result, attack)} against each target, on {_counts(result)}. Log-log axes: the "
               f"left edge is where an attack names members with few false alarms; the dashed diagonal is guessing. "
               f"FPR below 1/{non:,} cannot be measured with {non:,} non-members (drawn at the edge).")
    return Plot(fig, caption)


def measures(result: PrivacyResult, attack: str) -> Plot:
    """AUC and TPR at 1% FPR per target, with their 95% bootstrap intervals."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("AUC (0.5: guessing)", "TPR at 1% FPR (1%: guessing)"),
                        horizontal_spacing=0.18)
    labels = [plot_text(t.label) for t in result.targets]
    colours = [target_colour(t, result) for t in result.targets]
    for col, field, scale, chance in ((1, "auc", 1.0, 0.5), (2, "tpr_at_1", 100.0, 1.0)):
        vals = [getattr(t.attacks[attack], field) for t in result.targets]
        fig.add_trace(go.Bar(
            y=labels, x=[v.value * scale for v in vals], orientation="h", marker_color=colours, showlegend=False,
            error_x=dict(type="data", symmetric=False, array=[(v.high - v.value) * scale for v in vals],
                         arrayminus=[(v.value - v.low) * scale for v in vals], color="#424242"),
            customdata=[[v.low * scale, v.high * scale] for v in vals],
            hovertemplate="%{y}<br>%{x:.3f} [%{customdata[0]:.3f}, %{customdata[1]:.3f}]<extra></extra>"), row=1, col=col)
        fig.add_vline(x=chance, line=dict(color="#9e9e9e", dash="dash", width=1), row=1, col=col)
    fig.update_xaxes(title_text="AUC", row=1, col=1)
    fig.update_xaxes(title_text="TPR at 1% FPR (%)", rangemode="tozero", row=1, col=2)
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    fig.update_yaxes(autorange="reversed", showticklabels=False, row=1, col=2)
    fig.update_layout(height=120 + 34 * len(labels), margin=WIDE)
    caption = (f"{_attack_words(result, attack)} on {_counts(result)}: bars are the measured values, whiskers their "
               f"95% intervals from {result.spec['bootstrap']} bootstrap resamples of members and non-members. "
               "Overlapping whiskers: the data cannot tell the targets apart.")
    return Plot(fig, caption)


def tradeoff(result: PrivacyResult, attack: str, measure: str = "auc") -> Plot:
    """Test accuracy against attack success: the utility a target keeps for the privacy it gives up."""
    fig = go.Figure()
    scale = 1.0 if measure == "auc" else 100.0
    title = "attack AUC" if measure == "auc" else "attack TPR at 1% FPR (%)"
    for t in result.targets:
        v = getattr(t.attacks[attack], measure)
        text = f"ε = {t.epsilon:.2g}" if t.kind == "dpsgd" and t.epsilon is not None else ""
        fig.add_trace(go.Scatter(
            x=[v.value * scale], y=[t.test_accuracy], mode="markers+text" if text else "markers", name=plot_text(t.label),
            text=[text], textposition="top center",
            marker=dict(size=13, color=target_colour(t, result), symbol="circle-open" if t.init == "noise" else "circle",
                        line=dict(width=2, color=target_colour(t, result))),
            error_x=dict(type="data", symmetric=False, array=[(v.high - v.value) * scale],
                         arrayminus=[(v.value - v.low) * scale], color="#9e9e9e"),
            hovertemplate=f"{plot_text(t.label)}<br>{title} %{{x:.3f}}<br>test accuracy %{{y:.1f}} %<br>{t.images} training images"
                          "<extra></extra>"))
    chance = 0.5 if measure == "auc" else 1.0
    fig.add_vline(x=chance, line=dict(color="#9e9e9e", dash="dash", width=1))
    fig.update_layout(xaxis_title=f"{title} (left: more private)", yaxis_title="test accuracy (%)", height=480,
                      margin=WIDE, legend=BELOW)
    limit = result.spec.get("test_limit")
    tested = f"{limit:,} test images" if limit else "the whole test set"
    caption = (f"Each target's test accuracy ({tested}, one network each) against the success of the "
               f"{_attack_words(result, attack)} on {_counts(result)}; whiskers are 95% bootstrap intervals. Up and to "
               "the left is better; DP-SGD points are labelled with the privacy budget ε they spent (δ = 1e-5).")
    return Plot(fig, caption)


def summary_rows(result: PrivacyResult, attack: str) -> list[dict[str, object]]:
    """One table row per target (for st.dataframe): accuracy, cost, and the attack's measures with intervals."""
    rows = []
    for t in result.targets:
        m = t.attacks[attack]
        rows.append({"target": t.label, "training images": t.images, "test accuracy (%)": round(t.test_accuracy, 1),
                     "AUC": f"{m.auc.value:.3f} [{m.auc.low:.3f}, {m.auc.high:.3f}]",
                     "TPR@1% FPR (%)": f"{100 * m.tpr_at_1.value:.1f} [{100 * m.tpr_at_1.low:.1f}, {100 * m.tpr_at_1.high:.1f}]",
                     "TPR@0.1% FPR (%)": f"{100 * m.tpr_at_0_1.value:.1f}",
                     "advantage": f"{m.advantage.value:.3f}",
                     "cost (s)": round(t.cost_s, 1)})
    return rows
