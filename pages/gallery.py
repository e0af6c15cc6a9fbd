"""Gallery: every stored run with filters and thumbnails; open one to see, download, rename or delete it."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app.navigation import page as app_page
from app.state import studio as get_studio
from app.widgets import (
    counted,
    display_scale,
    fmt_accuracy,
    fmt_duration,
    fmt_when,
    init_from_query,
    labelled_grid,
    loss_figure,
    mosaic,
    plain,
    png_bytes,
    show_image,
    stamped,
    status_badge,
    submit_job,
    sync_query,
)
from ddcore.data import get_dataset_info
from ddcore.platform.bridge import RUN_STATUSES, EvalSpec, Subject, SyntheticSetFileError

studio = get_studio()
ALL = "All"


@st.cache_data(show_spinner=False, max_entries=256)
def _thumbnail(run_id: str, updated: float, root: str) -> bytes | None:
    """A small grid (up to 6 images per class, 10 classes) of a run's set or its latest snapshot."""
    latest = studio.latest_images(run_id)
    return png_bytes(mosaic(*latest)) if latest is not None else None


def _open(run_id: str | None) -> None:
    st.session_state.gallery_run = run_id


def _options(values, current):
    opts = [ALL] + sorted({v for v in values if v is not None}, key=lambda v: (str(type(v)), v))
    return opts


runs_all = studio.runs()
init_from_query("gallery_dataset", "dataset", ALL, allowed=[ALL, *{r.dataset for r in runs_all}])  # a filter with no
init_from_query("gallery_method", "method", ALL, allowed=[ALL, *{r.method for r in runs_all}])     # runs: said, not
init_from_query("gallery_ipc", "ipc", ALL, int, allowed=[ALL, *{r.ipc for r in runs_all}])          # silently All
init_from_query("gallery_status", "status", ALL, allowed=[ALL, *RUN_STATUSES])
if "gallery_run" not in st.session_state:
    st.session_state.gallery_run = st.query_params.get("run")

st.title("Gallery")


# ---------------------------------------------------------------------------------------------- one run
def _detail(run_id: str) -> None:
    record = studio.run(run_id)
    if record is None:
        st.warning(f"No run {plain(repr(run_id))} in the store (it may have been deleted).")
        st.button("← All runs", on_click=_open, args=(None,))
        return
    st.button("← All runs", on_click=_open, args=(None,), key="back")
    job = studio.active_job_for_run(run_id)
    status = job.status if job is not None else record.status
    st.subheader(plain(record.name))
    st.markdown(f"{status_badge(status)} · {record.method.upper()} on {get_dataset_info(record.dataset).display_name} "
                f"· IPC {record.ipc} · {record.architecture} · preset {record.preset} · seed {record.seed} · "
                f"created {fmt_when(record.created)} · `{run_id}`")
    if record.message and status not in ("done",):
        (st.error if status == "failed" else st.info)(record.message)

    try:
        synthetic = studio.run_set(run_id)
    except (SyntheticSetFileError, OSError) as e:
        synthetic = None
        st.error(f"The stored set file cannot be read: {plain(str(e))}")
    info = get_dataset_info(record.dataset)
    tab_images, tab_training, tab_eval, tab_config = st.tabs(["Images", "Training", "Evaluations", "Config & files"])
    with tab_images:
        if synthetic is not None:
            images, labels = synthetic.to_uint8(), synthetic.hard_labels().numpy()
            scale = display_scale(info.image_size, min(record.ipc, 50), target_width=1100, rows=info.num_classes,
                                  max_height=900)
            d1, d2, d3 = st.columns(3)
            base = f"{record.method}-{record.dataset}-ipc{record.ipc}-{run_id}"
            # each file is made when its button is clicked, not on every redraw (the zip of PNGs takes a while)
            d1.download_button("⬇ Grid PNG", lambda: synthetic.to_png_grid(scale=2), f"{base}.png", "image/png",
                               width="stretch", on_click="ignore")
            d2.download_button("⬇ Images (zip of PNGs)", synthetic.to_png_zip, f"{base}-images.zip",
                               "application/zip", width="stretch", on_click="ignore")
            d3.download_button("⬇ Set file (.safetensors)", lambda: studio.run_set_bytes(run_id),
                               f"{base}.safetensors", "application/octet-stream", width="stretch",
                               on_click="ignore")
            st.download_button("⬇ Tensors for the field's code (images.pt, labels.pt, lr.pt)", synthetic.to_torch_zip,
                               f"{base}-tensors.zip", "application/zip", on_click="ignore",
                               help="Unclipped, as stored (normalised; in ZCA space when the run used it): what "
                                    "MTT's and DD-Ranking's evaluation code loads. meta.json says how to read them.")
            show_image(labelled_grid(images, labels, info.class_names, scale=scale),
                       f"All {len(synthetic)} images at iteration {synthetic.meta.iteration:,}, one row per class")
        else:
            frames = studio.run_frames(run_id)
            latest = None
            if frames:
                try:
                    latest = studio.run_frame(run_id, frames[-1])
                except OSError as e:
                    st.warning(f"The newest snapshot cannot be read: {plain(str(e))}")
            if latest is not None:
                show_image(labelled_grid(*latest, info.class_names), f"Latest snapshot (iteration "
                           f"{frames[-1]:,}); the set file is written when the run ends")
            elif not frames:
                st.caption("No images stored yet.")
    with tab_training:
        metrics = studio.run_metrics(run_id)
        c1, c2, c3 = st.columns(3)
        c1.metric("Iterations", f"{record.iteration:,} / {record.total:,}")
        c2.metric("Time", fmt_duration(record.elapsed_s))
        c3.metric("Snapshots kept", len(studio.run_frames(run_id)))
        if metrics:
            st.plotly_chart(loss_figure(metrics, height=320), width="stretch", key="gallery_loss")
        else:
            st.caption("No metrics recorded.")
    with tab_eval:
        evals = studio.evaluations(run_id)
        if evals:
            st.dataframe(pd.DataFrame([{"architecture": e.architecture, "preset": e.preset,
                                        "accuracy": fmt_accuracy(e.mean, e.std, e.seeds),
                                        "images of iteration": e.subject.iteration,
                                        "current images": e.subject.fingerprint == record.fingerprint,
                                        "when": fmt_when(e.created)}
                                       for e in evals]), hide_index=True, width="stretch")
        else:
            st.caption("Not evaluated yet.")
        state = studio.evaluation_state(EvalSpec(Subject.run(run_id), architecture=record.architecture))
        if state.busy and state.job is not None:
            st.info(f"Evaluation in progress: {state.job.progress:.0%}")
        elif synthetic is not None and state.stored is None and state.spec is not None \
                and st.button("Evaluate (quick)", key="gallery_eval"):
            submit_job(studio, state.spec)
    with tab_config:
        st.json(record.spec, expanded=True)
        if synthetic is not None:
            st.caption("Method configuration stored with the set:")
            st.json(synthetic.meta.config, expanded=False)
        st.caption(f"Folder: `{studio.run_folder(run_id)}`")

    st.divider()
    a1, a2, a3 = st.columns([3, 2, 2])
    with a1:
        with st.form(f"rename_{run_id}", border=False):
            new_name = st.text_input("Name", value=record.name, key=f"name_{run_id}")
            if st.form_submit_button("Rename"):
                try:
                    studio.rename_run(run_id, new_name)
                except ValueError as e:
                    st.error(str(e))
                else:
                    st.toast(f"Renamed to {plain(new_name.strip())}")
                    st.rerun()
    with a2:
        st.markdown("&nbsp;")
        if record.resumable and job is None:
            if st.button("▶ Resume run", key="gallery_resume", width="stretch"):
                try:
                    studio.resume_run(run_id)
                except Exception as e:
                    st.error(str(e))
                else:
                    st.session_state.distill_run = run_id
                    st.switch_page(app_page("distill.py"))
        others = [r.id for r in studio.runs(dataset=record.dataset) if r.id != run_id][:1]
        st.markdown(f"[🔀 Compare with other runs](./compare?dataset={record.dataset}&runs={','.join([run_id, *others])})")
    with a3:
        st.markdown("&nbsp;")
        with st.popover("🗑 Delete…", width="stretch"):
            st.write(f"Delete **{plain(record.name)}** with its images, checkpoints and evaluations? This cannot be undone.")
            sure = st.checkbox("Yes, delete it", key=f"confirm_{run_id}")
            if st.button("Delete permanently", type="primary", disabled=not sure, key=f"delete_{run_id}"):
                try:
                    studio.delete_run(run_id)
                except Exception as e:
                    st.error(str(e))
                else:
                    st.session_state.gallery_run = None
                    st.rerun()


# ---------------------------------------------------------------------------------------------- all runs
def _browse() -> None:
    if not runs_all:
        st.info("No runs stored yet. Start one on the **Distill** page; it appears here at once.")
        st.page_link(app_page("distill.py"), label="Go to Distill", icon="🧪")
        return
    f1, f2, f3, f4 = st.columns(4)
    for key, values in (("gallery_dataset", [r.dataset for r in runs_all]),
                        ("gallery_method", [r.method for r in runs_all]),
                        ("gallery_ipc", [r.ipc for r in runs_all]),
                        ("gallery_status", [r.status for r in runs_all])):
        if st.session_state.get(key) not in _options(values, None):
            st.session_state[key] = ALL
    ds = f1.selectbox("Dataset", _options([r.dataset for r in runs_all], None), key="gallery_dataset",
                      format_func=lambda d: d if d == ALL else get_dataset_info(d).display_name)
    me = f2.selectbox("Method", _options([r.method for r in runs_all], None), key="gallery_method",
                      format_func=lambda m: m if m == ALL else m.upper())
    ipc = f3.selectbox("IPC", _options([r.ipc for r in runs_all], None), key="gallery_ipc")
    status = f4.selectbox("Status", _options([r.status for r in runs_all], None), key="gallery_status")
    runs = studio.runs(dataset=None if ds == ALL else ds, method=None if me == ALL else me,
                           ipc=None if ipc == ALL else ipc, status=None if status == ALL else status)
    sync_query({"dataset": None if ds == ALL else ds, "method": None if me == ALL else me,
                "ipc": None if ipc == ALL else ipc, "status": None if status == ALL else status})
    st.caption(f"{len(runs)} of {len(runs_all)} runs")
    per_row = 4
    for start in range(0, len(runs), per_row):
        cols = st.columns(per_row)
        for col, r in zip(cols, runs[start:start + per_row]):
            with col.container(border=True):
                thumb = _thumbnail(r.id, r.updated, studio.home)
                if thumb:
                    st.image(stamped(thumb), width=220)
                else:
                    st.caption("no images yet")
                st.markdown(f"**{plain(r.name)}**  \n{status_badge(r.status)} · acc "
                            f"{fmt_accuracy(r.accuracy, r.accuracy_std, r.accuracy_seeds)}")
                st.caption(f"{fmt_when(r.created)} · iteration {r.iteration:,} of {r.total:,}")
                st.button("Open", key=f"open_{r.id}", on_click=_open, args=(r.id,), width="stretch")


def _artefacts() -> None:
    """Stored artefacts (expert trajectories, trained networks, ...) with their lineage and dependents."""
    rows = studio.artefacts()
    if not rows:
        return
    st.divider()
    st.subheader("Artefacts")
    st.caption("Objects a run needed before it could start (made once by their own job, then reused).")
    for record, runs in rows:
        with st.container(border=True):
            c1, c2 = st.columns([4, 1])
            producer = record.producer or {}
            c1.markdown(f"**{plain(record.name)}** · `{plain(record.kind)}` · {record.size_bytes / 1e6:.2f} MB · made "
                        f"{fmt_when(record.created)} by job `{producer.get('job', '?')}`")
            c1.caption("Used by: " + (", ".join(plain(r.name) for r in runs) if runs else "no run yet"))
            with c2.popover("🗑 Delete", width="stretch"):
                if runs:
                    st.warning(f"{counted(len(runs), 'run')} used it; they keep their images but cannot resume without it.")
                force = st.checkbox("Yes, delete it", key=f"art_confirm_{record.key}")
                if st.button("Delete", key=f"art_delete_{record.key}", disabled=not force):
                    try:
                        studio.delete_artefact(record.key, force=True)
                    except (RuntimeError, ValueError) as e:
                        st.error(str(e))
                    else:
                        st.rerun()


if st.session_state.gallery_run:
    sync_query({"run": st.session_state.gallery_run})
    _detail(st.session_state.gallery_run)
else:
    sync_query({"run": None})
    _browse()
    _artefacts()
