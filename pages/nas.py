"""Architecture search with a proxy: does a small set rank ConvNet variants as the whole data does?

A study runs as a background job (ddcore/tasks/nas.py); the whole-data accuracies of a grid are made first by a
job of their own and reused by every later study of that grid; results are stored and reopen without
recomputation.
"""
from __future__ import annotations

import streamlit as st

from app import study_plots
from app.state import studio as get_studio
from app.widgets import fmt_about, init_from_query, jobs_sidebar, study_progress, submit_job, sync_query
from ddcore.data import available, get_dataset_info
from ddcore.platform.bridge import NAS_BUDGETS, NAS_GRIDS, NasGrid, NasSpec, available_devices, nas_estimate

studio = get_studio()
DATASETS = [d for d in ("mnist", "fashionmnist", "cifar10") if available(d)]  # only what this machine has
COLUMNS = {"widths": "Widths", "depths": "Depths", "norms": "Normalisations", "activations": "Activations", "poolings": "Poolings"}
CHOICES = {k: list(getattr(NAS_GRIDS["dc720"], k)) for k in COLUMNS}
CHART_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def chart(plot, key: str) -> None:
    st.plotly_chart(plot.figure, key=key, config=CHART_CONFIG, width="stretch")
    st.caption(plot.caption)


def _use_grid() -> None:
    grid = NAS_GRIDS[st.session_state.nas_grid_name]
    for k in COLUMNS:
        st.session_state[f"nas_{k}"] = list(getattr(grid, k))


init_from_query("nas_dataset", "dataset", "mnist", allowed=DATASETS)
init_from_query("nas_budget", "budget", "quick", allowed=list(NAS_BUDGETS))
st.session_state.setdefault("nas_grid_name", "quick" if "quick" in NAS_GRIDS else next(iter(NAS_GRIDS)))
for _k in COLUMNS:
    st.session_state.setdefault(f"nas_{_k}", list(getattr(NAS_GRIDS[st.session_state.nas_grid_name], _k)))
st.title("Architecture search")
st.caption("Train a grid of ConvNet variants briefly on a proxy (a distilled set, a random real subset, a coreset) and on "
           "the whole data, then ask whether the proxy ranks them as the whole data does (Spearman and Kendall rank "
           "correlation, with bootstrap intervals), as in the DC paper's architecture-search experiment.")

left, right = st.columns([3, 2], gap="large")
with left:
    dataset = st.selectbox("Dataset", DATASETS, key="nas_dataset", format_func=lambda n: get_dataset_info(n).display_name)
    sync_query({"dataset": dataset})
    runs = [r for r in studio.runs(dataset=dataset) if r.status in ("done", "stopped") and r.fingerprint]
    run_label = {r.id: f"{r.name} ({r.method}, IPC {r.ipc})" for r in runs}
    chosen = st.multiselect("Stored synthetic sets as proxies", [r.id for r in runs], key=f"nas_runs_{dataset}",
                            format_func=lambda i: run_label.get(i, i),
                            help="Sets distilled on the Distill page (or with python -m ddcore distill).")
    if not runs:
        st.caption(f"No stored {get_dataset_info(dataset).display_name} sets yet: distil one on the Distill page, or use the "
                   "baselines below.")
    b1, b2, b3 = st.columns(3)
    with_random = b1.checkbox("Random real subset", value=True, key="nas_random")
    with_herding = b2.checkbox("Herding coreset", value=False, key="nas_herding")
    ipcs = sorted({r.ipc for r in runs if r.id in chosen})
    ipc = int(b3.number_input("Baseline IPC", 1, 100, ipcs[0] if ipcs else 10, key=f"nas_ipc_{ipcs[0] if ipcs else 0}",
                              help="Images per class of the random and herding proxies (the chosen sets' IPC by default)."))
with right:
    st.selectbox("Grid", list(NAS_GRIDS), key="nas_grid_name", on_change=_use_grid,
                 format_func=lambda g: f"{g} ({len(NAS_GRIDS[g])} ConvNets)",
                 help="Picking a grid sets the options below; edit them for a grid of your own.")
    edited = any(tuple(st.session_state[f"nas_{k}"]) != tuple(getattr(NAS_GRIDS[st.session_state.nas_grid_name], k))
                 for k in COLUMNS)
    with st.expander("Grid options" + (" (edited: not the grid named above)" if edited else ""), expanded=edited):
        for k, label in COLUMNS.items():
            st.multiselect(label, CHOICES[k], key=f"nas_{k}")
        if edited:
            st.button(f"Back to the {st.session_state.nas_grid_name} grid", on_click=_use_grid, key="nas_use_grid")
    budget = st.segmented_control("Budget", list(NAS_BUDGETS), key="nas_budget",
                                  help="\n".join(f"- **{k}**: {b.note}" for k, b in NAS_BUDGETS.items())) or "quick"
    device = st.selectbox("Device", ["auto"] + available_devices(), key="nas_device")

sync_query({"budget": budget})
proxies = tuple([f"run:{i}" for i in chosen] + (["random"] if with_random else []) + (["herding"] if with_herding else []))
options = {k: tuple(st.session_state[f"nas_{k}"]) for k in COLUMNS}
spec = NasSpec(dataset, proxies, ipc, **options, budget=budget, device=device)
state = studio.study_state(spec)
if state.problem:
    st.error(state.problem)
elif state.stored is None:
    grid = NasGrid(**options)
    whole = studio.study_state(spec.whole_spec())
    estimate = nas_estimate(grid, len(proxies), NAS_BUDGETS[budget], dataset, whole.stored is not None)
    reuse = "stored, reused" if whole.stored is not None else "to compute first, then stored for later studies"
    st.caption(f"{len(grid)} architectures × {len(proxies)} prox{'y' if len(proxies) == 1 else 'ies'}; whole-data accuracies "
               f"{reuse}. Cost estimate on this machine's CPU: about **{fmt_about(estimate)}** (rates measured on a "
               "2-core CPU; slower when it is busy).")
start = st.button("Start the study", type="primary", key="nas_start",
                  disabled=bool(state.problem) or state.stored is not None or state.busy)
if start:
    submit_job(studio, spec, "Could not start")


study_progress(studio, spec, "nas", state.busy)

# ---------------------------------------------------------------------------------------------- results
result = state.stored
stored = studio.studies("nas")
if result is None and stored:
    labels = {r.key: (f"{get_dataset_info(r.dataset).display_name}, {len(r.architectures)} ConvNets, {r.budget}: "
                      + ", ".join(r.proxies)) for r in stored}
    st.divider()
    pick = st.selectbox("Stored studies", list(labels), format_func=lambda k: labels[k], key="nas_stored",
                        help="Studies already computed; the one matching the controls above opens by itself.")
    result = next(r for r in stored if r.key == pick)
if result is None:
    st.info("No stored study yet: choose proxies and a grid above and start one (the **tiny** budget finishes in seconds).")
else:
    st.subheader("Proxy against whole-data accuracy")
    chart(study_plots.nas_scatter(result), "nas_scatter")
    st.subheader("Rank correlation")
    statistic = st.segmented_control("Statistic", ["spearman", "kendall"], default="spearman", key="nas_statistic",
                                     format_func=lambda s: "Spearman's ρ" if s == "spearman" else "Kendall's τ") or "spearman"
    chart(study_plots.nas_correlations(result, statistic), "nas_corr")
    st.dataframe([{"proxy": c["proxy"], "architectures": f"{c['subset']} ({c['n']})",
                   "Spearman": round(c["spearman"], 2), "Spearman 95 %": f"[{c['spearman_low']:.2f}, {c['spearman_high']:.2f}]",
                   "Kendall": round(c["kendall"], 2), "Kendall 95 %": f"[{c['kendall_low']:.2f}, {c['kendall_high']:.2f}]"}
                  for c in result.correlations], hide_index=True, key="nas_table")
    st.caption("DC-Bench (NAS-Bench-201, CIFAR-10 IPC 50) found rank correlations near zero or negative: TM −0.09, DM −0.37, "
               "DSA −0.37, DC −0.19, k-means 0.11, random −0.06; read ours with the intervals.")
    st.subheader("Time saved")
    chart(study_plots.nas_time(result), "nas_time")

jobs_sidebar(studio)
