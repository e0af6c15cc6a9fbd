"""Compare: 2–4 runs of one dataset side by side, rows aligned by class, real images as reference."""
from __future__ import annotations

import streamlit as st
import torch

from app.navigation import page as app_page
from app.samples import dataset as cached_dataset
from app.state import studio as get_studio
from app.widgets import fmt_accuracy, init_from_query, plain, png_bytes, show_image, side_by_side, status_badge, submit_job, sync_query
from ddcore import published
from ddcore.data import DatasetNotFoundError, get_dataset_info
from ddcore.platform.bridge import EvalSpec, Subject, SyntheticSetFileError

studio = get_studio()
MAX_RUNS = 4

st.title("Compare")
st.caption("Put 2–4 runs of the same dataset side by side. Rows are aligned by class; the first block shows real "
           "training images of each class. The address bar keeps your selection, so the link reproduces this view.")

with_sets = [r for r in studio.runs() if r.fingerprint]
if not with_sets:
    st.info("No finished runs yet: start one on the **Distill** page (runs appear here once they have a set).")
    st.stop()

datasets = sorted({r.dataset for r in with_sets})
url_runs = list(dict.fromkeys(r for r in (st.query_params.get("runs") or "").split(",") if r))  # a link may repeat one
if "compare_dataset" not in st.session_state and url_runs:
    first = studio.run(url_runs[0])
    if first is not None:
        st.session_state.compare_dataset = first.dataset
init_from_query("compare_dataset", "dataset", datasets[0], allowed=datasets)
if "compare_runs" not in st.session_state:
    st.session_state.compare_runs = url_runs

c1, c2 = st.columns([1, 3])
ds = c1.selectbox("Dataset", datasets, key="compare_dataset", format_func=lambda d: get_dataset_info(d).display_name)
candidates = [r for r in with_sets if r.dataset == ds]
by_id = {r.id: r for r in candidates}
kept = list(dict.fromkeys(st.session_state.compare_runs))
missing = [r for r in kept if r not in by_id]
st.session_state.compare_runs = [r for r in kept if r in by_id][:MAX_RUNS]
if missing:
    st.warning(f"Not shown (not found for {get_dataset_info(ds).display_name}, or without a set): "
               + ", ".join(f"`{m[:40]}`" for m in missing[:5]) + (" …" if len(missing) > 5 else ""))
chosen = c2.multiselect("Runs", list(by_id), key="compare_runs", max_selections=MAX_RUNS,
                        format_func=lambda i: f"{by_id[i].name} · {status_badge(by_id[i].status)} · {i}",
                        placeholder="Pick two to four runs")
sync_query({"dataset": ds, "runs": chosen})

if len(chosen) < 2:
    stored = f"{len(candidates)} run{'s' if len(candidates) != 1 else ''} of {get_dataset_info(ds).display_name} stored"
    st.info(f"Pick at least two runs ({stored}).")
    if len(candidates) < 2:
        st.page_link(app_page("distill.py"), label="Start another run on the Distill page", icon="🧪")
    st.stop()

info = get_dataset_info(ds)
try:
    real = cached_dataset(ds)
except DatasetNotFoundError as e:
    real = None
    st.warning(f"Real reference images unavailable: {e}")

sets = []
for run_id in chosen:
    try:
        s = studio.run_set(run_id)
    except (SyntheticSetFileError, OSError) as e:
        st.error(f"{plain(by_id[run_id].name)}: {plain(str(e))}")
        continue
    sets.append((by_id[run_id], s))
if len(sets) < 2:
    st.stop()

max_ipc = max(s.hard_labels().bincount(minlength=info.num_classes).max().item() for _, s in sets)
o1, o2 = st.columns([1, 3])
if max_ipc > 1:
    per_class = o1.slider("Images per class shown", 1, int(max_ipc), min(10, int(max_ipc)), key="compare_per")
else:  # IPC 1 sets: a slider from 1 to 1 raises StreamlitInvalidMinMaxError
    per_class = 1
    o1.caption("One image per class in each set.")
classes = list(range(info.num_classes))
if info.num_classes > 10:
    picked = o2.multiselect("Classes", info.class_names, default=list(info.class_names[:10]), key="compare_classes")
    classes = [info.class_names.index(c) for c in picked] or classes[:10]

blocks = []
if real is not None:
    g = torch.Generator().manual_seed(0)
    idx = torch.cat([real.train.sample_class(c, per_class, g) for c in range(info.num_classes)])
    blocks.append(("Real images", real.train.images[idx].permute(0, 2, 3, 1).numpy(),
                   real.train.labels[idx].numpy()))
for record, s in sets:
    blocks.append((f"{record.name}", s.to_uint8(), s.hard_labels().numpy()))
image = side_by_side(blocks, info.class_names, per_class=per_class, classes=classes)
show_image(image)
st.download_button("⬇ Comparison PNG", png_bytes(image), f"compare-{ds}-{'-'.join(chosen)}.png", "image/png",
                   on_click="ignore")

st.subheader("Accuracy")
cols = st.columns(len(sets))
for col, (record, _) in zip(cols, sets):
    with col.container(border=True):
        st.markdown(f"**{plain(record.name)}**  \n{record.method.upper()} · IPC {record.ipc} · {record.architecture}")
        acc, std, seeds = record.accuracy, record.accuracy_std, record.accuracy_seeds
        st.metric("Quick evaluation", fmt_accuracy(acc, std, seeds))
        try:
            rows = published.lookup(ds, record.method, record.ipc)
        except Exception:
            rows = []
        st.caption(f"Published: {rows[0].label()} % ({rows[0].paper})" if rows else "No published number")
        state = studio.evaluation_state(EvalSpec(Subject.run(record.id), architecture=record.architecture))
        if state.busy:
            st.caption("evaluating…")
        elif acc is None and state.spec is not None and st.button("Evaluate", key=f"cmp_eval_{record.id}"):
            submit_job(studio, state.spec)
