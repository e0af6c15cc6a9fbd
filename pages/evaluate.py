"""Evaluate: how good is a synthetic set, on which networks, compared with what?

Evaluations run as background jobs (one Studio per server, see app/state.py); every plot is drawn
from the run store, so re-opening the page shows what was measured without recomputing it.
"""
from __future__ import annotations

import streamlit as st

from app import exports, plots
from app.state import studio as get_studio
from app.widgets import (
    counted,
    custom_eval_preset,
    fmt_accuracy,
    fmt_duration,
    init_from_query,
    jobs_sidebar,
    plain,
    polled,
    status_badge,
    sync_query,
)
from ddcore import published
from ddcore.data import get_dataset_info, list_datasets, point_datasets, subset_note
from ddcore.models import list_models, model_descriptions
from ddcore.platform.bridge import (
    EvalSpec,
    Subject,
    available_devices,
    compare_published,
    latest,
    preset_seeds,
    set_labels,
    trained_like,
)

studio = get_studio()

DATASETS = [d for d in list_datasets() if d != "folder" and d not in point_datasets()]  # points: the playground's
KRR = "convnet_krr"  # kernel ridge regression on the set: what the kernel methods' papers report beside a network
FC_KRR = "fc_krr"  # the same with KIP's own kernel: the closed-form NTK of an infinitely wide fully connected network
FC_WIDE = "fc_wide"  # KIP's finite network: a wide FC network of that kernel's shape, trained in its kernel regime
CONV_WIDE = "convnet_wide"  # RFAD's finite network: a ConvNet of its kernel's shape (no normalisation), likewise
REPLAY = "dd_replay"  # DD's own evaluation: its learned step sizes replayed from fresh initialisations
ARCHITECTURES = list_models() + [KRR, FC_KRR, FC_WIDE, CONV_WIDE, REPLAY]
KRR_NAMES = {KRR: "ConvNet KRR (kernel)", FC_KRR: "FC NTK KRR (KIP's kernel)", FC_WIDE: "Wide FC network (KIP's)",
             CONV_WIDE: "Wide ConvNet (RFAD's)", REPLAY: "DD's learned schedule (replayed)"}
SUITE = [a for a in ("convnet", "mlp", "lenet", "alexnet", "vgg11", "resnet18") if a in ARCHITECTURES]
PRESETS = ["quick", "paper", "custom"]
CHART_CONFIG = {"displaylogo": False, "displayModeBar": True,
                "toImageButtonOptions": {"format": "png", "scale": 2}}


def chart(plot: plots.Plot, key: str, filename: str) -> None:
    """A plotly chart with its PNG download button (modebar camera) and its caption."""
    config = dict(CHART_CONFIG, toImageButtonOptions=dict(CHART_CONFIG["toImageButtonOptions"], filename=filename))
    st.plotly_chart(plot.figure, key=key, config=config, width="stretch")
    if plot.caption:
        st.caption(plot.caption)


def _keep(key: str, options: list) -> None:
    """Drop a remembered widget value that is no longer an option (another dataset, a deleted run)."""
    if key not in st.session_state:
        return
    value = st.session_state[key]
    if isinstance(value, list):
        valid = [v for v in value if v in options]
        if valid != value:  # only write on a change (a write makes Streamlit warn about the widget default)
            st.session_state[key] = valid
    elif value not in options:
        del st.session_state[key]


def _datasets_with_data() -> list[str]:
    have = {r.dataset for r in studio.runs()} | {r.dataset for r in studio.results()}
    return [d for d in DATASETS if d in have] + [d for d in DATASETS if d not in have]


# ---------------------------------------------------------------------------------------------- header
init_from_query("eval_dataset", "dataset", "mnist", allowed=DATASETS)

st.title("Evaluate")
st.caption("Train fresh networks on stored synthetic sets, across architectures, and set the accuracies beside the "
           "random-real and whole-dataset baselines and the papers' numbers. Results are stored and reused.")
dataset = st.selectbox("Dataset", _datasets_with_data(), key="eval_dataset",
                       format_func=lambda n: get_dataset_info(n).display_name)
sync_query({"dataset": dataset})
info = get_dataset_info(dataset)

tab_run, tab_results, tab_published, tab_export = st.tabs(
    [":material/play_arrow: Run evaluations", ":material/insights: Results", ":material/menu_book: Published numbers",
     ":material/download: Export"])

# ---------------------------------------------------------------------------------------------- run
with tab_run:
    runs = [r for r in studio.runs(dataset=dataset) if r.status in ("done", "stopped") and r.fingerprint]
    run_label = {r.id: f"{r.name} ({r.architecture}{', stopped' if r.status == 'stopped' else ''})" for r in runs}
    left, right = st.columns([3, 2], gap="large")
    with left:
        if not runs:
            st.info(f"No stored {info.display_name} runs yet: distill one on the Distill page, or evaluate the "
                    "baselines below.")
        _keep(f"eval_sets_{dataset}", [r.id for r in runs])
        chosen = st.multiselect("Synthetic sets", [r.id for r in runs], default=[r.id for r in runs[:1]],
                                format_func=lambda i: run_label.get(i, i), key=f"eval_sets_{dataset}",
                                help="Stored runs of this dataset (newest first).")
        ipcs_chosen = sorted({r.ipc for r in runs if r.id in chosen})
        b1, b2 = st.columns(2)
        with_random = b1.checkbox("Random real baseline", value=True, key="eval_random",
                                  help="IPC random real training images per class, at each chosen set's IPC "
                                       "(the baseline every method must beat).")
        random_ipcs = ipcs_chosen
        if with_random and not ipcs_chosen:
            random_ipcs = [int(b1.number_input("Baseline IPC", min_value=1, max_value=500, value=1,
                                               key="eval_random_ipc"))]
        like = "random"
        if with_random:
            methods = sorted({r.method for r in runs if r.id in chosen} - {"random"})
            like = b1.selectbox("Baseline trained like", ["random", *methods], key="eval_random_like",
                                format_func=lambda m: "random real's own protocol" if m == "random" else
                                f"{m.upper()} sets (DD-Ranking's fair baseline)",
                                help="A set's gain over random real is fair when both are trained the same way: the "
                                     "same augmentation, optimiser and network (e.g. FRePo's sets train with Adam on a "
                                     "ConvNet without normalisation), in the same pixel space (ZCA-whitened where the method's "
                                     "quick preset whitens this dataset, as FRePo's and MTT's do on CIFAR-10).")
        with_whole = b2.checkbox("Whole-dataset reference", value=False, key="eval_whole",
                                 help=f"Train on all {info.display_name} training images: the upper line. "
                                      "Slow on a CPU (minutes to hours); computed once and stored.")

        def _suite() -> None:
            st.session_state.eval_archs = list(SUITE)

        descriptions = {**model_descriptions(), KRR: "no training: kernel ridge regression on the set with the "
                        "random-feature NNGP kernel of 4 random ConvNets (RFAD's); FRePo, RFAD and KIP report it "
                        "beside a trained network. On the preset's test images (paper: the full test set); seconds "
                        "to a minute on a CPU.",
                        FC_KRR: "no training: kernel ridge regression with the closed-form NTK of an infinitely wide "
                        "fully connected network, the kernel KIP (kip_fc) distils with; its paper's number. Seconds.",
                        FC_WIDE: "a width-1024 fully connected network of KIP's kernel's shape, trained the way that "
                        "kernel describes (output centred at initialisation, full-batch gradient descent on the "
                        "squared error): KIP-FC's finite-network number for a kip_fc set, a kernel-regime network's "
                        "for any other. Its own training recipe (the preset sets only the seeds and test images); "
                        "sets of up to 1,000 images; seconds to minutes per network on a CPU.",
                        CONV_WIDE: "a ConvNet without normalisation, the shape of the kernel RFAD distils with, trained "
                        "by RFAD's finite recipe (output centred at initialisation, SGD with momentum on the label-"
                        "scaled squared error, weight decay towards the initial weights, at most 1000 steps, the best "
                        "network by accuracy on 100 real training images per class): RFAD's finite-network number. "
                        "Width 128 here (RFAD: 1024, its learning rate scaled by 1024 / 128); sets of up to 500 "
                        "images; a minute to tens of minutes per network on a CPU, by the set's size.",
                        REPLAY: "DD's own evaluation: a fresh network of the DD run's architecture takes exactly the "
                        "steps DD learned (image group i, step size lr_i); DD sets only, and the random real baseline "
                        "replays each chosen DD set's schedule (DD-Ranking's same-protocol rule). Seconds."}
        archs = st.multiselect("Architectures", ARCHITECTURES, default=["convnet"], key="eval_archs",
                               format_func=lambda a: KRR_NAMES.get(a, a),
                               help="\n".join(f"- **{k}**: {v}" for k, v in descriptions.items()))
        st.button("Use the cross-architecture suite (" + ", ".join(SUITE) + ")", on_click=_suite,
                  key="eval_suite_btn")
    with right:
        preset = st.segmented_control("Preset", PRESETS, default="quick", key="eval_preset",
                                      help="quick: few epochs, a 2000-image test subset, one network (CPU friendly; raise Seeds for a spread). "
                                           "paper: the DC/DSA/DM protocol (300 or 1000 epochs, full test set, "
                                           "5 seeds).") or "quick"
        preset_name = preset
        if preset == "custom":
            preset_name = custom_eval_preset("eval")
        default_seeds = preset_seeds(preset_name)
        seeds = int(st.number_input("Seeds (networks per set and architecture)", 1, 20, default_seeds,
                                    key=f"eval_seeds_{preset}"))
        devices = ["auto"] + available_devices()
        device = st.selectbox("Device", devices, key="eval_device")

    subjects: list[tuple[Subject, str]] = [(Subject.run(i, dataset), run_label.get(i, i)) for i in chosen]
    if with_random:
        subjects += [(Subject.random(dataset, ipc, 0), f"random real · IPC {ipc}" +
                      ("" if like == "random" else f" · trained like {like.upper()}")) for ipc in random_ipcs]
    if with_whole:
        subjects.append((Subject.whole(dataset), "whole dataset"))
        if preset != "custom" and "cuda" not in available_devices():
            st.warning(f"The whole-dataset reference trains on every {info.display_name} training image for "
                       f"{'60–150' if preset == 'quick' else '300–1000'} epochs: hours on a CPU. A custom preset "
                       "with a few epochs gives a rough line sooner (it is stored under its own preset name).")

    def make_spec(subject: Subject, arch: str) -> EvalSpec:
        options = trained_like(like, dataset, ipc=int(subject.ipc or 1), eval_preset=preset_name) \
            if subject.kind == "random" and like != "random" else {}
        return EvalSpec(subject=subject, architecture=arch, preset=preset_name, device=device,
                        seeds=seeds, options=options)

    dd_runs = [r for r in runs if r.id in chosen and r.method == "dd"]

    def make_specs(subject: Subject, arch: str) -> list[EvalSpec]:
        """DD's replayed schedule measures DD sets, and random real images with each chosen DD set's schedule."""
        if arch != REPLAY:
            return [make_spec(subject, arch)]
        if subject.kind == "run":
            return [make_spec(subject, arch)] if subject.run_id in {r.id for r in dd_runs} else []
        return [EvalSpec(subject=subject, architecture=arch, preset=preset_name, device=device, seeds=seeds,
                         options={"schedule_of": r.id}) for r in dd_runs if subject.kind == "random" and r.ipc == subject.ipc]

    specs = [spec for s, _ in subjects for a in archs for spec in make_specs(s, a)]
    if REPLAY in archs:
        st.caption(f"DD's learned schedule replays on DD sets only ({len(dd_runs)} chosen), and on random real images "
                   "with each chosen DD set's schedule at its IPC; other sets are not replayed.")
    stored = sum(1 for s in specs if studio.evaluation_state(s).stored is not None)
    n_new = len(specs) - stored
    if len(specs) == len(subjects) * len(archs):
        st.caption(f"{counted(len(subjects), 'set')} × {counted(len(archs), 'architecture')} = "
                   f"{counted(len(specs), 'evaluation')}: "
                   f"{stored} already stored (reused), {n_new} to compute.")
    else:  # the replayed schedule measures DD sets only, and random real once per DD set of its IPC
        st.caption(f"{counted(len(subjects), 'set')} × {counted(len(archs), 'architecture')}, DD's schedule replayed "
                   "where it applies: "
                   f"{counted(len(specs), 'evaluation')}, {stored} already stored (reused), {n_new} to compute.")
    label = f"Evaluate {counted(len(subjects), 'set')} on {counted(len(archs), 'architecture')}" \
        if len(specs) == len(subjects) * len(archs) else f"Run {counted(len(specs), 'evaluation')}"
    if st.button(label, type="primary", disabled=not specs, key="eval_start"):
        ids = list(st.session_state.get("eval_jobs", []))
        reused = 0
        for spec in specs:
            try:
                job = studio.submit(spec)
            except (KeyError, ValueError, RuntimeError, FileNotFoundError) as e:
                st.error(f"{plain(spec.subject.label)} on {spec.architecture}: {plain(str(e))}")
                continue
            reused += int(job.snapshot().status == "done")
            if job.id not in ids:
                ids.append(job.id)
        st.session_state.eval_jobs = ids
        st.toast(f"Queued {counted(len(specs) - reused, 'evaluation')}; {reused} reused from the store.")

    def _progress() -> None:
        mine = [studio.job(i) for i in st.session_state.get("eval_jobs", [])]
        mine = [j for j in mine if j is not None]
        mine_ids = {j.id for j in mine}
        jobs = mine + [j for j in studio.jobs(active=True, kind="evaluate") if j.id not in mine_ids]
        if not jobs:
            st.caption("No evaluations started from this tab yet; stored results are under **Results**.")
            return
        active = [j for j in jobs if j.status in ("queued", "running")]
        st.markdown(f"**Evaluations** — {len(active)} active, {len(jobs) - len(active)} finished")
        for snap in jobs:
            c1, c2 = st.columns([6, 1])
            extra = " (stored result reused)" if snap.reused else ""
            if snap.status == "running":
                eta = f" · ETA {fmt_duration(snap.eta_s)}" if snap.eta_s is not None else ""
                c1.progress(snap.progress, text=f"{plain(snap.name)} · {snap.progress:.0%} · {fmt_duration(snap.elapsed_s)}"
                                                f" elapsed{eta}")
            elif snap.status == "queued":
                c1.progress(0.0, text=f"{plain(snap.name)} · queued" + (f" #{snap.position}" if snap.position else ""))
            else:
                acc = fmt_accuracy(snap.accuracy, snap.accuracy_std, getattr(snap.result, "seeds", None)) \
                    if snap.status == "done" else snap.message
                c1.markdown(f"{status_badge(snap.status)} {plain(snap.name)}: **{acc}**{extra}")
            if snap.active and c2.button("Cancel", key=f"eval_cancel_{snap.id}"):
                studio.stop(snap.id)
                st.rerun()  # the whole page, so the sidebar's jobs panel shows it at once
        now_active = bool(active)
        if st.session_state.get("eval_was_active") and not now_active:
            st.session_state.eval_was_active = False
            st.rerun()  # redraw everything once so the plots include the new results
        st.session_state.eval_was_active = now_active

    polling = studio.any_active("evaluate")
    st.session_state.eval_was_active = polling
    with st.container(key="eval_progress"):
        polled(_progress, 1.0 if polling else None)

# ---------------------------------------------------------------------------------------------- results
everything = studio.results()  # every dataset: the published explorer compares across them
all_rows = [r for r in everything if r.dataset == dataset]
with tab_results:
    if not all_rows:
        st.info(f"No stored evaluations for {info.display_name} yet: run some under **Run evaluations**.")
    else:
        presets_present = list(dict.fromkeys(r.preset for r in sorted(all_rows, key=lambda r: -r.created)))
        f1, f2, f3 = st.columns(3)
        _keep(f"eval_view_preset_{dataset}", presets_present)
        view_preset = f1.selectbox("Preset", presets_present, key=f"eval_view_preset_{dataset}",
                                   help="Plots compare results measured the same way; pick which.")
        rows = latest(r for r in all_rows if r.preset == view_preset)
        ipcs = sorted({r.ipc for r in rows if r.ipc is not None})
        _keep(f"eval_view_ipcs_{dataset}", ipcs)
        view_ipcs = f2.multiselect("IPC", ipcs, default=ipcs, key=f"eval_view_ipcs_{dataset}",
                                   help="Which sets' IPCs the heatmap and bars show.")
        grid_rows = [r for r in rows if r.ipc is None or r.ipc in view_ipcs]
        st.subheader("Cross-architecture generalisation")
        chart(plots.heatmap(grid_rows), "eval_heatmap", f"{dataset}-cross-architecture")
        with st.expander("Grouped bars", expanded=False):
            chart(plots.grouped_bars(grid_rows), "eval_bars", f"{dataset}-bars")

        st.subheader("Accuracy against images per class")
        archs_present = list(dict.fromkeys(r.architecture for r in rows))
        default_arch = "convnet" if "convnet" in archs_present else archs_present[0]
        g1, g2 = st.columns([2, 3])
        _keep(f"eval_ipc_arch_{dataset}", archs_present)
        ipc_arch = g1.selectbox("Evaluated on", archs_present, index=archs_present.index(default_arch),
                                key=f"eval_ipc_arch_{dataset}")
        show_pub = g2.checkbox("Published numbers (open diamonds)", value=True, key="eval_show_published")
        try:
            pub_rows = [p for p in published.load_published() if p.dataset == dataset]
        except Exception:  # a dataset the table does not know
            pub_rows = []
        measured_methods = {r.method for r in rows}
        pub_rows = [p for p in pub_rows if p.method in measured_methods or p.method == "whole"]
        chart(plots.accuracy_vs_ipc(rows, ipc_arch, pub_rows, show_published=show_pub), "eval_ipc",
              f"{dataset}-accuracy-vs-ipc")
        note = subset_note(dataset) if any(r.variant for r in rows) else ""  # rows measured on the embedded subset
        if note and show_pub and pub_rows:
            st.caption(f"⚠️ {note}")

        st.subheader("One evaluation in detail")
        labels = set_labels(rows)
        options = {f"{labels[r.subject]} on {r.architecture}": r for r in rows}
        _keep(f"eval_detail_{dataset}", list(options))
        pick = st.selectbox("Evaluation", list(options), key=f"eval_detail_{dataset}", index=len(options) - 1)
        row = options.get(pick) or rows[-1]
        seeds_text = ", ".join(f"{a:.1f}" for a in row.accuracies) or "—"
        wall = "—" if row.wall_time_s is None else (f"{row.wall_time_s:.1f} s" if row.wall_time_s < 60
                                                    else fmt_duration(row.wall_time_s))
        one = row.n_seeds == 1
        seeds_part = "" if one else f" over {counted(row.n_seeds, 'seed')} (per seed: {seeds_text})"
        st.markdown(f"**{fmt_accuracy(row.mean, row.std, 1 if one else None)}**{seeds_part} · "
                    f"{row.preset} preset · {row.test_images or '?'} test images · {wall} on {row.device or '?'}")
        d1, d2 = st.columns(2)
        with d1:
            chart(plots.per_class(row), "eval_per_class", f"{dataset}-per-class")
        with d2:
            chart(plots.confusion(row), "eval_confusion", f"{dataset}-confusion")
        if plots.has_training_curves(row):
            chart(plots.training_curves(row), "eval_curves", f"{dataset}-training-curves")
        else:  # KRR trains nothing; a replayed DD schedule is a handful of steps
            st.caption("No training curves stored for this evaluation.")
        with st.expander("The stored record (config, versions, per seed)"):
            record = {k: v for k, v in row.record.items() if k not in ("curves", "confusion")}
            st.json(record, expanded=False)

# ---------------------------------------------------------------------------------------------- published
with tab_published:
    table = compare_published(everything, published.load_published())
    p1, p2, p3 = st.columns(3)
    pub_datasets = published.datasets()
    sel_ds = p1.multiselect("Datasets", pub_datasets, default=[dataset] if dataset in pub_datasets else pub_datasets,
                            key="pub_datasets")
    pub_ipcs = sorted({r["ipc"] for r in table if r["ipc"]})
    sel_ipc = p2.multiselect("IPC", pub_ipcs, default=[i for i in (1, 10, 50) if i in pub_ipcs], key="pub_ipcs")
    families = list(dict.fromkeys(r["family"] for r in table))
    sel_fam = p3.multiselect("Method family", families, default=families, key="pub_families")
    q1, q2 = st.columns(2)
    only_ours = q1.checkbox("Only rows we measured too", value=False, key="pub_only_ours")
    hide_uncertain = q2.checkbox("Hide numbers not checked against the originating paper", value=False,
                                 key="pub_hide_uncertain")
    shown = [r for r in table if r["dataset"] in sel_ds and (r["ipc"] in sel_ipc or r["ipc"] is None)
             and r["family"] in sel_fam and (not only_ours or r["ours_mean"] is not None)
             and not (hide_uncertain and r["uncertain"])]
    shown.sort(key=lambda r: r["ours_mean"] is None)  # rows with our measurement first (stable otherwise)
    columns = ["dataset", "ipc", "method", "family", "architecture", "mean", "std", "ours_mean", "ours_std",
               "difference", "ours_preset", "ours_seeds", "paper", "table", "citation", "uncertain", "protocol_notes"]
    ours_columns = ("ours_mean", "ours_std", "difference", "ours_preset", "ours_seeds")
    if not any(r["ours_mean"] is not None for r in shown):  # nothing of ours beside them: no columns of "None"
        columns = [c for c in columns if c not in ours_columns]
    st.dataframe([{c: r[c] for c in columns} for r in shown], key="pub_table", hide_index=True,
                 width="stretch",
                 column_config={
                     "mean": st.column_config.NumberColumn("published %", format="%.1f"),
                     "std": st.column_config.NumberColumn("± (published)", format="%.1f"),
                     "ours_mean": st.column_config.NumberColumn("ours %", format="%.1f"),
                     "ours_std": st.column_config.NumberColumn("± (ours)", format="%.1f"),
                     "difference": st.column_config.NumberColumn("ours − published", format="%+.1f"),
                     "uncertain": st.column_config.CheckboxColumn("unverified"),
                     "ours_preset": st.column_config.TextColumn("our preset"),
                     "ours_seeds": st.column_config.NumberColumn("our seeds"),
                 })
    n_ours = sum(1 for r in shown if r["ours_mean"] is not None)
    st.caption(f"{counted(len(shown), 'published row')}, {n_ours} with our stored measurement beside them (same dataset, "
               "method, IPC and architecture; ours may use a shorter preset, see 'our preset'). 'unverified': read "
               "from a later paper's table, not the originating one. Each row names its paper.")
    chart(plots.published_scatter(shown), "pub_plot", "published-numbers")
    st.download_button("Download these rows (CSV)", lambda: exports.published_csv(shown), "published-vs-ours.csv",
                       "text/csv", key="pub_csv", on_click="ignore")

# ---------------------------------------------------------------------------------------------- export
with tab_export:
    if not all_rows:
        st.info("Nothing stored to export for this dataset yet.")
    else:
        e1, e2 = st.columns(2)
        # made when clicked (a callable) and without a rerun (on_click="ignore"): a download started while a job's
        # progress redraws the page is never cancelled by a new copy replacing the one being fetched
        e1.download_button("Results (CSV)", lambda: exports.results_csv(all_rows), f"{dataset}-evaluations.csv",
                           "text/csv", key="export_csv", width="stretch", on_click="ignore")
        e2.download_button("Results with full records (JSON)", lambda: exports.results_json(all_rows),
                           f"{dataset}-evaluations.json", "application/json", key="export_json",
                           width="stretch", on_click="ignore")
        view = latest(all_rows)
        md = exports.summary_markdown(view, title=f"{info.display_name}: test accuracy (%)")
        st.markdown("**Markdown summary** (newest result per set and architecture), ready to paste into a report:")
        st.code(md, language="markdown", wrap_lines=True)
        with st.expander("Preview"):
            st.markdown(md)
        st.download_button("Summary (Markdown)", md, f"{dataset}-summary.md", "text/markdown", key="export_md",
                           on_click="ignore")
        st.caption("Every plot downloads as PNG from the camera icon in its toolbar.")

jobs_sidebar(studio)  # last, so a job started in this run is already listed and polled
