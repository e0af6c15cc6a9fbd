"""Continual learning: classes arrive in steps; a memory of IPC images per class seen so far is all a learner keeps.

A study runs as one background job (ddcore/tasks/continual.py) and is stored, so reopening the page shows it
without recomputation; the figures are drawn from the stored study only.
"""
from __future__ import annotations

import streamlit as st

from app import study_plots
from app.state import studio as get_studio
from app.widgets import (
    counted,
    fmt_about,
    init_from_query,
    jobs_sidebar,
    labelled_grid,
    plain,
    show_image,
    study_progress,
    sync_query,
)
from ddcore.data import available, get_dataset_info
from ddcore.methods import list_methods
from ddcore.platform.bridge import CONTINUAL_PRESETS, ContinualSpec, available_devices, continual_estimate

studio = get_studio()
DATASETS = [d for d in ("mnist", "fashionmnist", "cifar10") if available(d)]  # only what this machine has
PRESETS = [p for p in ("quick", "tiny", "paper") if p in CONTINUAL_PRESETS]
CHART_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def chart(plot, key: str) -> None:
    st.plotly_chart(plot.figure, key=key, config=CHART_CONFIG, width="stretch")
    st.caption(plot.caption)


init_from_query("cl_dataset", "dataset", "mnist", allowed=DATASETS)  # the view lives in the URL: a link reopens the study


def _known_methods(raw: str) -> list[str]:
    """The link's memory methods; none known raises, so the page says so and offers the default three."""
    names = [m for m in raw.split(",") if m in list_methods()]
    if not names:
        raise ValueError(raw)
    return names


init_from_query("cl_methods", "methods", ["random", "herding", "dm"], parse=_known_methods)
init_from_query("cl_ipc", "ipc", 10, int, allowed=range(1, 51))
init_from_query("cl_orders", "orders", 3, int, allowed=range(1, 11))
init_from_query("cl_preset", "preset", "quick", allowed=PRESETS)
st.title("Continual learning")
st.caption("Classes arrive in steps (class-incremental, as in the DM paper's continual-learning experiment). After each step a memory keeps IPC "
           "images of every class seen so far, chosen at random, by herding, or distilled from that step's classes only; a "
           "fresh network is then trained on the memory alone and tested on every class seen so far.")

# ---------------------------------------------------------------------------------------------- the study
left, right = st.columns([3, 2], gap="large")
with left:
    dataset = st.selectbox("Dataset", DATASETS, key="cl_dataset", format_func=lambda n: get_dataset_info(n).display_name)
    sync_query({"dataset": dataset})
    info = get_dataset_info(dataset)
    methods = st.multiselect("Memory methods", list_methods(), key="cl_methods",
                             help="How each step's IPC images per class are made: a coreset of real images (random, "
                                  "herding, k-center) or a distillation of that step's classes.")
    c1, c2, c3 = st.columns(3)
    ipc = int(c1.number_input("IPC (memory images per class)", 1, 50, key="cl_ipc"))
    init_from_query("cl_steps", "steps", min(5, info.num_classes), int, allowed=range(1, info.num_classes + 1))
    steps = int(c2.number_input("Steps", 1, info.num_classes, key="cl_steps",
                                help=f"{info.num_classes} classes split as evenly as possible"))
    orders = int(c3.number_input("Class orders (seeds)", 1, 10, key="cl_orders",
                                 help="Each seed draws its own class order (np.random.RandomState(seed).permutation)."))
with right:
    preset = st.segmented_control("Preset", PRESETS, key="cl_preset",
                                  help="\n".join(f"- **{k}**: {CONTINUAL_PRESETS[k].note}" for k in PRESETS)) or "quick"
    finetune = st.checkbox("Also a fine-tuned learner (forgetting)", value=False, key="cl_finetune",
                           help="One network trained step to step on the new classes' real images with the earlier memory "
                                "replayed: its old classes' accuracy drops as their real images are gone.")
    device = st.selectbox("Device", ["auto"] + available_devices(), key="cl_device")

sync_query({"methods": methods, "ipc": ipc, "steps": steps, "orders": orders, "preset": preset})
spec = ContinualSpec(dataset, tuple(methods), ipc, steps, orders, preset, finetune, device=device)
state = studio.study_state(spec)
if state.problem:
    st.error(state.problem)
elif state.stored is None:
    estimate = continual_estimate(dataset, methods, ipc, steps, orders, info.num_classes, preset, finetune)
    st.caption(f"Cost estimate on this machine's CPU: about **{fmt_about(estimate)}** "
               f"({counted(len(methods), 'method')} × {counted(orders, 'class order')} × {counted(steps, 'step')}; from rates "
               "measured on a 2-core CPU, "
               "slower when the machine is busy).")
start = st.button("Start the study", type="primary", key="cl_start",
                  disabled=bool(state.problem) or state.stored is not None or state.busy)
if start:
    try:
        job = studio.submit(spec)
    except (KeyError, LookupError, ValueError, RuntimeError, FileNotFoundError) as e:
        st.error(f"Could not start: {plain(str(e))}")
    else:
        st.session_state.cl_job = job.id
        st.rerun()


study_progress(studio, spec, "cl", state.busy)

# ---------------------------------------------------------------------------------------------- results
stored = studio.studies("continual")
result = state.stored
if result is None and stored:
    labels = {r.key: (f"{get_dataset_info(r.dataset).display_name}, {r.steps} steps, IPC {r.ipc}, "
                      f"{'/'.join(r.methods)}, {counted(len(r.seeds), 'order')}, {r.preset}") for r in stored}
    st.divider()
    pick = st.selectbox("Stored studies", list(labels), format_func=lambda k: labels[k], key="cl_stored",
                        help="Studies already computed; the one matching the controls above opens by itself.")
    result = next(r for r in stored if r.key == pick)
if result is None:
    st.info("No stored study yet: choose the memories above and start one (the **tiny** preset finishes in seconds).")
else:
    st.subheader("Accuracy on the classes seen so far")
    finals = " · ".join(f"**{plain(m)}** {result.final(m)[0]:.1f} ± {result.final(m)[1]:.1f} %" for m in result.methods)
    st.markdown(f"After the last step: {finals} (mean ± std over {counted(len(result.seeds), 'class order')}).")
    chart(study_plots.continual_accuracy(result), "cl_accuracy")
    if result.finetuned:
        st.subheader("A network fine-tuned from step to step")
        chart(study_plots.continual_accuracy(result, finetune=True), "cl_accuracy_ft")
    st.subheader("Forgetting")
    chart(study_plots.continual_forgetting(result, finetune=result.finetuned), "cl_forgetting")
    st.subheader("The memory after each step")
    g1, g2, g3 = st.columns(3)
    m = g1.selectbox("Method", result.methods, key="cl_mem_method")
    o = g2.selectbox("Class order", list(range(len(result.seeds))), key="cl_mem_order",
                     format_func=lambda i: f"seed {result.seeds[i]}: {', '.join(result.class_names[c] for c in result.class_orders[i])}")
    s = g3.slider("After step", 1, result.steps, result.steps, key="cl_mem_step") if result.steps > 1 else 1
    mi = result.methods.index(m)
    keep = result.memory_step[mi, o] < s
    seen = [c for part in result.step_classes[o][:s] for c in part]
    grid = labelled_grid(result.memory_images[mi, o][keep], result.memory_labels[mi, o][keep], result.class_names,
                         classes=seen, max_per_class=20)
    show_image(grid)
    st.caption(f"The {m} memory of class order {o + 1} after step {s}: {int(keep.sum())} images, {result.ipc} per class seen "
               f"({len(seen)} classes, in arrival order). {result.preset} preset.")
    st.subheader("Cost")
    chart(study_plots.continual_costs(result), "cl_costs")
    with st.expander("Class orders and numbers"):
        st.markdown("\n".join(f"- seed {seed}: " + " → ".join("{" + ", ".join(result.class_names[c] for c in part) + "}"
                                                              for part in result.step_classes[i])
                              for i, seed in enumerate(result.seeds)))
        st.dataframe([{"method": m, **{f"step {k + 1}": round(float(result.accuracy[i, :, k].mean()), 1) for k in range(result.steps)},
                       "final std": round(result.final(m)[1], 1), **{k: round(v, 1) for k, v in result.cost(m).items()}}
                      for i, m in enumerate(result.methods)], hide_index=True, key="cl_table")

jobs_sidebar(studio)
