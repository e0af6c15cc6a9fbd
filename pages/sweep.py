"""Sweeps: a grid of methods × datasets × IPCs × seeds run as ordinary jobs (here, or on a Ray cluster), watched
cell by cell, with the table the field publishes at the end.

A sweep only coordinates (ddcore/tasks/sweep.py): its distillations and evaluations are jobs like any other, so
their runs appear in the Gallery, Compare, Evaluate and the Benchmark board as they finish.
"""
from __future__ import annotations

import streamlit as st

from app import exports
from app.state import studio as get_studio
from app.widgets import (
    counted,
    custom_eval_preset,
    fmt_about,
    fmt_duration,
    fmt_when,
    jobs_sidebar,
    plain,
    polled,
    status_badge,
    submit_job,
)
from ddcore.data import available_datasets, get_dataset_info
from ddcore.methods import list_methods, method_class
from ddcore.models import list_models
from ddcore.platform.bridge import SWEEP_MAX_CELLS, SweepSpec, cells_table, preset_seeds
from ddcore.platform.bridge import summary_table as sweep_summary

studio = get_studio()
COMMON_IPCS = [1, 10, 50]
CELL_COLUMNS = {"progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=100, format="%d%%")}

st.title("Sweeps")
st.caption("Pick a grid: every dataset × method × IPC × preset × seed is one distillation, evaluated on each chosen "
           "network beside random real images of the same IPC and seed, trained the same way. The runs land in the "
           "store like any others (Gallery, Compare, Evaluate, Benchmark board).")

# ---------------------------------------------------------------------- where the cells run
cluster = studio.cluster()
with st.container(border=True):
    if cluster.connected and not cluster.problem:
        cpus = sum(n["cpus"] for n in cluster.nodes)
        gpus = sum(n["gpus"] for n in cluster.nodes)
        st.markdown(f"**Runs on the Ray cluster at `{plain(cluster.address)}`**: {counted(len(cluster.nodes), 'node')}, "
                    f"{counted(float(cpus), 'CPU')}, {counted(float(gpus), 'GPU')}; up to {cluster.jobs_at_once} jobs at once.")
    else:
        st.markdown(f"**Runs on this machine**: {counted(cluster.jobs_at_once, 'job')} at once.")
        if cluster.problem:
            st.warning(plain(cluster.problem))
        with st.expander("Run on a Ray cluster instead"):
            st.markdown("On one machine: `ray start --head --port=6379`; on each other: "
                        "`ray start --address=<head>:6379`. Then start the Studio with `RAY_ADDRESS=<head>:6379`, or "
                        "connect here. Workers need this Studio's Python packages and the datasets (DDCORE_DATA).")
            address = st.text_input("Cluster address", placeholder="127.0.0.1:6379", key="sweep_address")
            if st.button("Connect", key="sweep_connect", disabled=not address.strip()):
                try:
                    with st.spinner("Connecting…"):
                        studio.connect_cluster(address)
                except (ConnectionError, RuntimeError, ValueError) as e:
                    st.error(plain(str(e)))
                else:
                    st.rerun()

# ---------------------------------------------------------------------- the grid
datasets = available_datasets()
methods = [m for m in list_methods() if m != "random"] + ["random"]
st.subheader("Grid")
g1, g2, g3 = st.columns(3)
chosen_datasets = g1.multiselect("Datasets", datasets, default=["mnist"] if "mnist" in datasets else datasets[:1],
                                 key="sweep_datasets",
                                 format_func=lambda d: get_dataset_info(d).display_name)
chosen_methods = g2.multiselect("Methods", methods, default=["dm"] if "dm" in methods else methods[:1],
                                key="sweep_methods", format_func=str.upper)
ipcs = g3.multiselect("Images per class", COMMON_IPCS, default=[1], key="sweep_ipcs", accept_new_options=True)
g4, g5, g6 = st.columns(3)
shared_presets = sorted(set.intersection(*(set(method_class(m).presets) for m in chosen_methods))) if chosen_methods \
    else ["quick"]
presets = g4.multiselect("Presets", shared_presets, default=["quick"] if "quick" in shared_presets else shared_presets[:1],
                         key="sweep_presets", help="Only presets every chosen method has.")
seeds = int(g5.number_input("Seeds per cell", 1, 10, 1, key="sweep_seeds"))
iterations = int(g6.number_input("Iterations (0: the preset's)", 0, 100_000, 0, step=50, key="sweep_iterations",
                                 help="The same number for every cell; 0 keeps each preset's own."))
g7, g8, g9 = st.columns(3)
architectures = g7.multiselect("Evaluate on", list_models(), default=["convnet"], key="sweep_archs")
eval_preset = g8.selectbox("Evaluation preset", ["quick", "paper", "custom"], key="sweep_eval_preset",
                           help=f"quick: {preset_seeds('quick')} network per set; paper: {preset_seeds('paper')}; "
                                "custom: your epochs, test images and augmentation (a fast first look at a big grid).")
baseline = g9.checkbox("Random-real baseline", value=True, key="sweep_baseline",
                       help="Random real images of each IPC and seed, evaluated the same way (DD-Ranking's rule).")
if eval_preset == "custom":
    eval_preset = custom_eval_preset("sweep")
label = st.text_input("Name (optional)", key="sweep_label", max_chars=80)
where = "auto" if cluster.connected else "local"

problem = ""
try:
    ipc_values = sorted({int(i) for i in ipcs})
except (TypeError, ValueError):
    ipc_values, problem = [], f"IPCs are whole numbers, not {', '.join(map(str, ipcs))}"
spec = None
if not problem:
    try:
        spec = SweepSpec(datasets=tuple(chosen_datasets), methods=tuple(chosen_methods), ipcs=tuple(ipc_values),
                         seeds=tuple(range(seeds)), presets=tuple(presets), eval_architectures=tuple(architectures),
                         eval_preset=eval_preset, overrides={"iterations": iterations} if iterations else {},
                         baseline=baseline, label=label.strip(), executor=where)
        cells = len(spec.cells())
        if not all((chosen_datasets, chosen_methods, ipc_values, presets, architectures)):
            problem = "Choose at least one dataset, method, IPC, preset and network."
        elif cells > SWEEP_MAX_CELLS:
            problem = f"This grid has {cells:,} cells; a sweep takes at most {SWEEP_MAX_CELLS}."
    except (TypeError, ValueError) as e:
        problem = str(e)

if spec is not None and not problem:
    estimate = studio.sweep_estimate(spec)
    jobs_line = (f"**{counted(estimate.cells, 'cell')}**: {counted(estimate.cells, 'distillation')} and "
                 f"{counted(estimate.evaluations, 'evaluation')}")
    table_note = (f" ({counted(len(estimate.from_table), 'distillation setting')} estimated from our recorded CPU "
                  "benchmarks, not yet timed on this machine)" if estimate.from_table else "")
    if estimate.wall_s is not None:
        st.markdown(f"{jobs_line}, about **{fmt_about(estimate.wall_s)}** with {counted(estimate.parallel, 'job')} at once "
                    f"({fmt_about(estimate.total_s)} of work), from the runs this store has measured{table_note}.")
    else:
        partial = (f" The distillations alone: about **{fmt_about(estimate.distillations_s)}** of work{table_note}."
                   if estimate.distillations_s is not None else "")
        st.markdown(f"{jobs_line}. No full estimate yet: nothing was measured here for "
                    f"{plain(', '.join(estimate.unknown[:4]))}{' …' if len(estimate.unknown) > 4 else ''}.{partial} "
                    "Run one cell first, or start and watch the ETA.")
elif problem:
    st.warning(plain(problem))

if st.button("Start sweep", type="primary", disabled=spec is None or bool(problem), key="sweep_start"):
    submit_job(studio, spec, "Could not start the sweep")


# ---------------------------------------------------------------------- sweeps in flight and stored
def _draw_live() -> None:
    live = [j for j in studio.jobs(kind="sweep") if j.active]
    if not live and st.session_state.get("sweep_was_live"):
        st.session_state["sweep_was_live"] = False
        st.rerun()  # one just finished: draw the stored table below
    for job in live:
        with st.container(border=True):
            eta = f" · ETA {fmt_duration(job.eta_s)}" if job.eta_s is not None else ""
            st.markdown(f"{status_badge(job.status)} **{plain(job.name)}**")
            st.progress(job.progress, text=f"{plain(job.message) or 'starting…'} · {fmt_duration(job.elapsed_s)}"
                                           f" elapsed{eta}")
            if job.detail:
                st.dataframe(cells_table(job.detail), hide_index=True, width="stretch", column_config=CELL_COLUMNS)
            if st.button("Stop sweep", key=f"sweep_stop_{job.id}", disabled=job.stopping):
                studio.stop(job.id)
                st.rerun()
    st.session_state["sweep_was_live"] = bool(live)


if any(j.active for j in studio.jobs(kind="sweep")):
    st.subheader("Running")
    polled(_draw_live, 1.0)

stored = studio.sweeps()
ended = [j for j in reversed(studio.jobs(kind="sweep")) if j.status in ("failed", "cancelled")]
for job in ended[:3]:
    st.markdown(f"{status_badge(job.status)} {plain(job.name)}: {plain(job.message)}")
st.subheader("Finished sweeps")
if not stored:
    st.info("No finished sweep yet. Choose a small grid above (one method, IPC 1, one seed) to see how it works.")
else:
    names = {s.key: f"{s.name} · {fmt_when(s.created)}" for s in stored}
    key = st.selectbox("Sweep", [s.key for s in stored], format_func=lambda k: names.get(k, k), key="sweep_shown")
    result = next(s for s in stored if s.key == key)
    where_ran = "a Ray cluster" if result.executor == "ray" else "this machine"
    st.caption(f"{len(result.cells)} cells in {fmt_duration(result.wall_s)} on {where_ran}"
               f"{f' ({result.nodes} nodes)' if result.executor == 'ray' else ''}.")
    summary = sweep_summary(result.cells)
    st.dataframe(summary, hide_index=True, width="stretch")
    with st.expander("Every cell"):
        st.dataframe(cells_table(result.cells), hide_index=True, width="stretch", column_config=CELL_COLUMNS)
    e1, e2 = st.columns(2)
    e1.download_button("⬇ Table (CSV)", lambda: exports.table_csv(summary), "sweep.csv", "text/csv", on_click="ignore",
                       width="stretch")
    e2.download_button("⬇ Table (Markdown)", lambda: exports.table_markdown(summary, list(summary[0]), result.name),
                       "sweep.md", "text/markdown", on_click="ignore", width="stretch")
jobs_sidebar(studio)
