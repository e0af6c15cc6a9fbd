"""Distill: pick a dataset, a method and an IPC, press Start and watch the synthetic images evolve."""
from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import streamlit as st

from app.explain import method_help, seeing
from app.live_cache import shared
from app.samples import dataset as cached_dataset
from app.state import studio as get_studio
from app.widgets import (
    change_images,
    class_grid,
    class_rows,
    encoded,
    fmt_about,
    fmt_accuracy,
    fmt_duration,
    init_from_query,
    jobs_sidebar,
    labelled_grid,
    loss_figure,
    moved_per_class,
    plain,
    png_bytes,
    polled,
    show_image,
    spread,
    stamped,
    status_badge,
    sync_query,
    timelapse_gif,
)
from ddcore import published
from ddcore.data import DatasetNotFoundError, available_datasets, data_note, get_dataset_info
from ddcore.methods import list_methods, make_config, method_class
from ddcore.models import list_models
from ddcore.platform.bridge import (
    DistillSpec,
    EvalSpec,
    Subject,
    available_devices,
    cpu_estimate,
    decode_uint8,
    make_grid,
    random_baseline,
    runs_on_cpu,
)

studio = get_studio()

DATASETS = available_datasets()  # only what this machine has (uploads included)
METHODS = list_methods()
if not METHODS:
    st.error("No distillation methods are installed in this build.")
    st.stop()
DEFAULT_METHOD = "dm" if "dm" in METHODS else METHODS[0]
ARCHITECTURES = list_models()
TEXT_FIELDS = ("init",)
MAX_PAGE_IPC = 500
LONG_RUN_S = 15 * 60  # past this, a preset's estimate is a warning (a lesson's attention span), not a caption
LIVE_EVERY_S = 0.3  # the live grid's refresh: a running job publishes its images every 0.25 s

def _decimals(seconds: float) -> str:
    """Seconds with as many decimals as they need: '36', '1.6', '0.17'."""
    return f"{seconds:.{0 if seconds >= 10 else 1 if seconds >= 1 else 2}f}"


init_from_query("distill_dataset", "dataset", "mnist", allowed=DATASETS)
init_from_query("distill_method", "method", DEFAULT_METHOD, allowed=METHODS)
init_from_query("distill_ipc", "ipc", 10, int, allowed=range(1, MAX_PAGE_IPC + 1))
if "distill_run" not in st.session_state:
    st.session_state.distill_run = st.query_params.get("run")


PRESENTING = st.query_params.get("present") == "1"
if PRESENTING:  # for a projector: large type, the grid and the loss curve only; settings fold away
    st.html("<style>[data-testid='stSidebar'], [data-testid='stSidebarCollapsedControl'] {display: none;} "
            "[data-testid='stMainBlockContainer'] {max-width: 100%; padding-top: 1.5rem;} "
            "[data-testid='stMarkdownContainer'] p, [data-testid='stCaptionContainer'], button p "
            "{font-size: 1.35rem !important;} [data-testid='stImageCaption'] {font-size: 1.2rem;}</style>")
    top = st.columns([6, 2])
    top[0].title("Distill")
    if top[1].button("Leave presenter mode", key="leave_present"):
        del st.query_params["present"]
        st.rerun()
    settings = st.expander("Settings", expanded=False)
    live = st.container()
else:
    st.title("Distill")
    st.caption("Choose what to condense and how, press **Start**, and watch the synthetic images learn. "
               "Runs are kept in the Gallery; every tab sees the same jobs.")
    settings, live = st.columns([5, 8], gap="large")
SHOWING_RUN = bool(st.session_state.get("distill_run"))
# With no run to show, the wide column explains the chosen method (a narrow one clipped its equation) under the
# "Press Start" box; while a run shows, the explanation stays below the settings.
live_panel = live.container()
explanation = settings if SHOWING_RUN or PRESENTING else live.container()

def _start(spec: DistillSpec) -> None:
    """Submit the run and show it; a toast says so where the live view is below the fold (a narrow window)."""
    try:
        job = studio.submit(spec, data=data)
    except Exception as e:
        st.session_state.distill_error = f"Could not start the run: {plain(str(e))}"
    else:
        st.session_state.distill_run = job.run_id
        st.toast(f"Started {spec.method.upper()} on {get_dataset_info(spec.dataset).display_name}, IPC {spec.ipc}: "
                 "its images appear in the run panel.", icon="▶")


def _method_label(name: str) -> str:
    """The method's title, with its CLI name where the title does not already say it ("DM", not "DM (dm)")."""
    title = method_class(name).title or name
    return title if name.lower() in title.lower() else f"{title} ({name})"


# ---------------------------------------------------------------------------------------------- settings
with settings:
    dataset_name = st.selectbox("Dataset", DATASETS, key="distill_dataset",
                                format_func=lambda n: get_dataset_info(n).display_name)
    try:
        data = cached_dataset(dataset_name)
    except DatasetNotFoundError as e:
        st.error(f"{get_dataset_info(dataset_name).display_name} is not available here: {e}")
        st.stop()
    info = data.info
    method = st.selectbox("Method", METHODS, key="distill_method",
                          format_func=_method_label)
    cls = method_class(method)

    smallest = min(data.train.class_counts())
    ipc_limit = max(1, min(MAX_PAGE_IPC, smallest))  # a small uploaded dataset bounds IPC by its smallest class
    lowered = int(st.session_state.get("distill_ipc", 1)) > ipc_limit
    if lowered:
        st.session_state.distill_ipc = ipc_limit
    c1, c2 = st.columns(2)
    ipc = int(c1.number_input("Images per class (IPC)", min_value=1, max_value=ipc_limit, step=1, key="distill_ipc",
                              help="How many synthetic images each class gets."))
    if lowered:
        c1.caption(f"Lowered to {ipc_limit}: the smallest class of {plain(info.display_name)} has {smallest} images.")
    architecture = c2.selectbox("Architecture", ARCHITECTURES, index=ARCHITECTURES.index("convnet"),
                                key="distill_arch", help="The network whose features/gradients are matched.")
    presets = list(cls.presets) + ["custom"]
    default_preset = next((p for p in ("live", "quick") if p in presets), presets[0])

    def _preset_changed() -> None:
        """Each preset starts the images its own way (live: from noise, so they visibly learn); custom keeps the
        start of the preset it was opened from."""
        chosen = st.session_state.get("distill_preset") or default_preset
        if chosen == "custom":
            return
        try:
            st.session_state.distill_init = make_config(method, info, ipc, chosen).init
        except Exception:  # a preset this IPC cannot take is reported below
            pass

    if st.session_state.get("distill_preset_for") != method:  # a method without the chosen preset: its default
        st.session_state.distill_preset_for = method
        if st.session_state.get("distill_preset") not in presets:
            st.session_state.distill_preset = default_preset
        _preset_changed()
    preset = st.segmented_control("Preset", presets, key="distill_preset", on_change=_preset_changed,
                                  help="live: sized for watching (from noise, a half-width network, small real "
                                       "batches; seconds per visible change) · quick: a few minutes to half an hour "
                                       "on a laptop CPU (the time shows below), measured against the papers · paper: "
                                       "the paper's settings · custom: edit every hyperparameter") or default_preset
    if preset == "live":
        st.caption("**live** trades accuracy for something to watch: the images start as noise and turn into "
                   "class shapes within a minute. Its sets score below the quick preset's (Benchmarks in README).")
    c3, c4 = st.columns(2)
    init = c3.segmented_control("Initialisation", ["real", "noise"], key="distill_init",
                                help="Start from random real images of each class, or from Gaussian noise.") or "real"
    seed = int(c4.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key="distill_seed"))
    devices = ["auto"] + available_devices()
    device = st.selectbox("Device", devices, key="distill_device")

    if preset != "custom":
        st.session_state.distill_custom_from = preset  # custom starts from the preset chosen before it
    chosen_base = st.session_state.get("distill_custom_from")
    base_preset = preset if preset != "custom" else (chosen_base if chosen_base in cls.presets else default_preset)
    overrides: dict[str, Any] = {"init": init}
    problems: list[str] = []
    try:
        config = make_config(method, info, ipc, base_preset, init=init)
    except Exception as e:  # bad IPC for this dataset, preset missing…
        config = None
        problems.append(str(e))
    if preset == "custom" and config is not None:
        with st.expander("Hyperparameters", expanded=True):
            st.caption(f"Starting from the **{base_preset}** preset of {cls.title or method}.")
            for f in dataclasses.fields(config):
                if f.name in TEXT_FIELDS:
                    continue
                value = getattr(config, f.name)
                key = f"distill_cfg_{method}_{f.name}"
                if isinstance(value, bool):
                    new = st.checkbox(f.name, value=value, key=key)
                elif isinstance(value, int):
                    new = int(st.number_input(f.name, value=value, step=1, key=key))
                elif isinstance(value, float):
                    new = float(st.number_input(f.name, value=value, format="%g", key=key))
                elif isinstance(value, str):
                    new = st.text_input(f.name, value=value, key=key)
                else:
                    continue
                if new != value:
                    overrides[f.name] = new
        try:
            config = make_config(method, info, ipc, base_preset, **overrides)
        except Exception as e:
            problems.append(str(e))
    if ipc > smallest:
        problems.append(f"IPC {ipc} is more than the smallest class of {info.display_name} has ({smallest} images).")
    if config is not None:
        iterations = getattr(config, "iterations", None)
        st.caption(f"{ipc * info.num_classes} synthetic images · {iterations} iterations · preset **{preset}**")
        guess = cpu_estimate(method, info, ipc, int(iterations), base_preset, config=config,
                             class_sizes=data.train.class_counts()) if iterations else None
        measured = f"{_decimals(guess.per_iteration_s)} s per iteration, {guess.basis}, on a 2-core CPU" if guess else ""
        # the tables time ConvNet-3 at the preset's own settings: a change beyond these is not in them
        untimed = [name for name in overrides if name not in ("init", "iterations")]
        if guess is not None and (untimed or architecture != "convnet"):
            measured += (f"; timed at the {base_preset} preset's settings on a ConvNet, not with your "
                         + ", ".join(["architecture"] * (architecture != "convnet") + untimed))
        if base_preset == "paper" and runs_on_cpu(device) and iterations:
            st.warning(f"The paper preset on a CPU: {int(iterations):,} iterations, "
                       + (f"about **{fmt_about(guess.seconds)}** ({measured})" if guess else
                          "with no measurement to estimate from (the run shows its ETA after a few iterations)")
                       + ". The live and quick presets are sized for a laptop; the paper's for a GPU.")
        elif guess is not None and runs_on_cpu(device):
            text = f"About **{fmt_about(guess.seconds)}** on a laptop CPU ({measured})."
            if guess.seconds > LONG_RUN_S:  # at IPC 10 many quick presets take 17-33 min
                st.warning(text + " Images update as it runs and Stop keeps them; a smaller IPC is faster.")
            else:
                st.caption(text)
    for p in problems:
        st.error(p)
    start = st.button("▶ Start", type="primary", disabled=bool(problems), width="stretch",
                      key="distill_start", shortcut="Ctrl+Enter")
    start_spec = DistillSpec(dataset=dataset_name, method=method, ipc=ipc, preset=base_preset, overrides=overrides,
                             architecture=architecture, seed=seed, device=device) if not problems else None
    if not PRESENTING and st.button("Presenter mode", key="enter_present", width="stretch",
                                    help="For a projector: large type, the images and the loss curve only, "
                                         "keyboard shortcuts (Space: pause / resume, →: step)"):
        st.query_params["present"] = "1"
        st.rerun()
    if start and start_spec is not None:
        _start(start_spec)
# Below Start, so a new user reaches the button without scrolling: the data, then the method explained.
with explanation:
    strip_classes = list(range(min(info.num_classes, 20)))
    g = np.random.default_rng(0)
    idx = [int(data.train.class_indices[c][g.integers(len(data.train.class_indices[c]))]) for c in strip_classes]
    strip = data.train.images[idx].permute(0, 2, 3, 1).numpy()
    strip_img = make_grid(strip, [list(range(len(idx)))], pad=2, scale=2 if info.image_size <= 32 else 1)
    st.image(stamped(png_bytes(strip_img)), caption="One real image per class: " + ", ".join(info.class_names[c] for c in strip_classes)
             + (" …" if info.num_classes > len(strip_classes) else ""), width="content")

    with st.container(border=True):
        method_help(cls)

sync_query({"dataset": dataset_name, "method": method, "ipc": ipc, "run": st.session_state.distill_run})


# ---------------------------------------------------------------------------------------------- live view
def _act(fn, *args) -> None:
    try:
        fn(*args)
    except Exception as e:  # shown on the next run of the live view
        st.session_state.distill_error = str(e)


def _published_row(dataset: str, method_name: str, ipc_value: int, arch: str):
    try:
        rows = published.lookup(dataset, method_name, ipc_value, architecture=arch if arch == "convnet" else None)
    except Exception:
        return None
    verified = [r for r in rows if not r.uncertain]
    return (verified or rows or [None])[0]


def _evaluation_panel(run_id: str, record) -> bool:
    """Accuracy of the set as it is now beside the random-real baseline and the paper; True while evaluating."""
    device = record.spec.get("device", "auto")
    baseline = random_baseline(record.dataset, record.ipc, record.seed, record.method,
                               str(record.spec.get("preset", "quick")), record.architecture, device)
    like = baseline.options  # DD-Ranking's rule: random real trained the way this set is ({}: random's own protocol)
    states = [studio.evaluation_state(EvalSpec(Subject.run(run_id), architecture=record.architecture, device=device)),
              studio.evaluation_state(baseline)]
    cells = []
    for state in states:
        live_snap = state.job
        if state.stored is not None:
            cells.append((fmt_accuracy(state.stored.mean), spread(state.stored.std, state.stored.seeds)))
        elif state.busy and live_snap is not None:
            where = f"queued #{live_snap.position}" if live_snap.position else \
                f"evaluating… {live_snap.progress:.0%}" if live_snap.total else "starting…"
            cells.append(("…", where))
        elif live_snap is not None and live_snap.status == "failed":
            cells.append(("failed", live_snap.message[:120]))
        else:
            cells.append(("—", "not evaluated" if not state.problem else state.problem[:120]))
    iteration = states[0].spec.subject.iteration if states[0].spec is not None else None
    earlier = [e for e in studio.evaluations(run_id) if e.architecture == record.architecture
               and states[0].spec is not None and e.subject.fingerprint != states[0].spec.subject.fingerprint]
    pub = _published_row(record.dataset, record.method, record.ipc, record.architecture)
    pub_base = _published_row(record.dataset, "random", record.ipc, record.architecture)
    st.markdown("**Quick evaluation** — test accuracy of a fresh "
                f"{record.architecture} trained only on the images"
                + (f" (the set at iteration {iteration:,})" if iteration is not None else ""))
    m1, m2, m3 = st.columns(3)
    m1.metric("This set", cells[0][0], help="ddcore.evaluate, quick preset", border=True)
    if cells[0][1]:
        m1.caption(cells[0][1])
    own = (states[0].stored.result.config or {}) if states[0].stored is not None else {}
    if own.get("optimizer", "sgd") != "sgd" or own.get("convnet_norm"):  # the method's own recipe (FRePo's Adam)
        paper = (method_class(record.method).title or record.method).split(" (")[0]
        m1.caption(f"trained as in the {paper} paper: {str(own.get('optimizer')).capitalize()}"
                   + (", no normalisation" if own.get("convnet_norm") == "none" else ""))
    if earlier:
        last = earlier[-1]
        m1.caption(f"Earlier images (iteration {last.subject.iteration if last.subject.iteration is not None else '?'})"
                   f": {fmt_accuracy(last.mean)}")
    m2.metric("Random real", cells[1][0], border=True,
              help="The same number of real images per class, picked at random, trained the way this set is "
                   "(its augmentation, optimiser, network and pixel space: DD-Ranking's fair baseline)")
    if cells[1][1]:
        m2.caption(cells[1][1])
    m2.caption(f"{record.ipc} real image{'s' if record.ipc != 1 else ''} per class"
               + (f", trained like {record.method.upper()} sets: {_recipe_words(like)}" if like else ""))
    if like:
        own = studio.evaluation_state(dataclasses.replace(baseline, options={}))
        if own.stored is not None:  # where the two protocols differ, both (#20)
            m2.caption(f"By random real's own protocol: {fmt_accuracy(own.stored.mean)}")
    m3.metric("Published", f"{pub.mean:.1f} %" if pub else "—", border=True,
              help="The paper's full-protocol number (many more iterations and evaluation epochs)")
    m3.caption(f"{pub.label()} % · {pub.paper} ({pub.table})" if pub else f"No published {record.method.upper()} number at IPC {record.ipc}")
    if pub_base:
        m2.caption(f"Published random real: {pub_base.label()} %")
    note = data_note(record.dataset)
    if note and pub:
        st.caption(f"⚠️ {note}")
    busy = any(state.busy for state in states)
    if not busy and cells[0][0] == "—" and states[0].spec is not None and record.status in ("done", "stopped"):
        if st.button("Evaluate now", key=f"eval_{run_id}"):
            for state in states:
                if state.spec is not None and state.stored is None:
                    _act(studio.submit, state.spec)
            st.rerun()
    return busy


def _recipe_words(like: dict[str, Any]) -> str:
    """'DSA augmentation', 'Adam, no normalisation, ZCA-whitened' for trained_like's options."""
    words = []
    if like.get("augmentation"):
        words.append(f"{str(like['augmentation']).upper()} augmentation")
    if like.get("optimizer", "sgd") != "sgd":
        words.append(str(like["optimizer"]).capitalize())
    if like.get("convnet_norm") not in (None, "", "own"):
        words.append("no normalisation" if like["convnet_norm"] == "none" else str(like["convnet_norm"]))
    if like.get("zca_space"):
        words.append("ZCA-whitened")
    return ", ".join(words) or "its protocol"


def _known_method(name: str):
    """The run's method class, or None for a set imported from elsewhere or a plugin no longer installed."""
    return method_class(name) if name in METHODS else None


def _run_init(spec: dict[str, Any]) -> str | None:
    """How the run's images started ('noise' or 'real'), from its overrides or its preset."""
    init = dict(spec.get("overrides") or {}).get("init")
    if init:
        return str(init)
    try:
        return make_config(spec["method"], get_dataset_info(spec["dataset"]), int(spec["ipc"]),
                           spec.get("preset", "quick")).init
    except (KeyError, ValueError):
        return None


def _formation_factor(spec: dict[str, Any]) -> int:
    """The run's multi-formation factor (IDC: each stored image decodes into factor^2), 1 for other methods."""
    try:
        config = make_config(spec["method"], get_dataset_info(spec["dataset"]), int(spec["ipc"]),
                             spec.get("preset", "quick"), **dict(spec.get("overrides") or {}))
    except (KeyError, ValueError):
        return 1
    return int(getattr(config, "formation_factor", 1) or 1)


def _live_view() -> None:
    run_id = st.session_state.get("distill_run")
    if st.session_state.get("distill_error"):
        st.error(st.session_state.pop("distill_error"))
    if not run_id:
        active = studio.jobs(active=True, kind="distill")
        where = "Open **Settings** and press **Start**" if PRESENTING else "Press **Start**"  # folded away on a projector
        st.info(f"{where} to run the chosen method. The default — DM on MNIST at IPC 10, live preset, from noise — "
                "shows its first images within seconds.")
        if not PRESENTING and start_spec is not None and st.button(
                "▶ Start", type="primary", key="distill_start_here",
                help="The same as Start under the settings: runs the method with the settings on the left"):
            _start(start_spec)
            st.rerun(scope="app")
        if active:
            snap = active[-1]
            if st.button(f"Watch the run in progress: {plain(snap.name)}", key="watch_active"):
                st.session_state.distill_run = snap.run_id
                st.rerun(scope="app")
        else:
            earlier = [j for j in studio.jobs(kind="distill") if j.run_id and studio.run(j.run_id) is not None]
            if earlier and st.button(f"Open the last run: {plain(earlier[-1].name)} ({earlier[-1].status})",
                                     key="open_last_run"):
                st.session_state.distill_run = earlier[-1].run_id
                st.rerun(scope="app")
        return
    view = studio.run_view(run_id)
    if view is None:
        shown = run_id if len(run_id) <= 40 else run_id[:40] + "…"  # a hand-edited link can be any length
        st.warning(f"There is no run {plain(repr(shown))} in the store (deleted?).")
        st.session_state.distill_run = None
        return
    record, snap, status = view.record, view.job, view.status
    header = st.container()
    header.markdown(f"### {plain(record.name)}  \n{status_badge(status)}"
                    + (f" · position {snap.position} in the queue" if snap and snap.position else "")
                    + "".join(f" · waiting for **{plain(w.name)}** ({w.progress:.0%})"
                              for w in (studio.job(i) for i in (snap.waiting_for if snap else ())) if w)
                    + f" · `{run_id}`")

    iteration, total = view.iteration, view.total
    if view.live and snap is not None:
        done = float(snap.iteration)  # fractional inside a long iteration (DC reports each class it matches)
        inside = f" ({done - int(done):.0%} into iteration {int(done) + 1:,})" if done - int(done) >= 0.005 else ""
        text = (f"Iteration {int(done):,} / {total:,}{inside} · {snap.its_per_s:.2f} it/s · "
                f"ETA {fmt_duration(snap.eta_s)}" if total else (snap.message or "Starting…"))
        if snap.stopping:
            text += " · stopping…"
        elif snap.pausing and status == "paused":
            text += " · pausing (finishing the step in progress)…"
        st.progress(min(1.0, done / total) if total else 0.0, text=text)
        if record.message:  # e.g. "Resumed from its checkpoint at iteration 1,250 of 2,000."
            st.caption(plain(record.message))
        b1, b2, b3, b4 = st.columns([3, 3, 2, 2])  # Pause and Step carry their shortcut hints: wider
        if status == "paused":
            b1.button("▶ Resume", on_click=_act, args=(studio.resume, snap.id), key="ctl_resume",
                      width="stretch", shortcut="Space")
            b2.button("⏭ Step", on_click=_act, args=(studio.step, snap.id), key="ctl_step",
                      help="Advance one iteration while paused", width="stretch", shortcut="Right")
        else:
            b1.button("⏸ Pause", on_click=_act, args=(studio.pause, snap.id), key="ctl_pause",
                      width="stretch", disabled=status == "queued", shortcut="Space")
            b2.button("⏭ Step", disabled=True, key="ctl_step_off", width="stretch",
                      help="Pause first, then step one iteration at a time")
        b3.button("⏹ Stop", on_click=_act, args=(studio.stop, snap.id), key="ctl_stop", width="stretch",
                  help="End now and keep the current images (the run can be resumed)")
        b4.caption(f"elapsed {fmt_duration(snap.elapsed_s)}")
    else:
        st.progress(min(1.0, iteration / total) if total else 0.0,
                    text=f"Iteration {iteration:,} / {total:,} · {status}")
        if record.message and status != "done":
            (st.error if status == "failed" else st.info)(plain(record.message))
        if record.resumable:
            if st.button("▶ Resume from the last checkpoint", key="ctl_resume_run"):
                _act(studio.resume_run, run_id)
                st.rerun()

    # The images: live from the job, or the stored set / last frame.
    if view.problem:
        st.warning(plain(view.problem))
    images, labels = view.images, view.labels
    class_names = tuple(get_dataset_info(record.dataset).class_names)
    # The grid takes the live column's whole width (show_image scales it down to fit, never past it) and the
    # loss curve goes under it: side by side, a 10-per-row grid overflowed its column onto the chart.
    with st.container(key="distill_grid"):
        if images is not None:
            frame = (run_id, view.image_iteration, snap.frame if view.live and snap is not None else -1, len(images),
                     PRESENTING)
            per_row = min(20, max(1, len(images) // max(1, len(class_names))))
            # a projector gets the grid as large as the screen allows (about 1,100 pixels across)
            rows = len(class_names)
            scale = max(1, min(8, 1100 // (per_row * (images.shape[1] + 2)),
                               900 // (rows * (images.shape[1] + 2)))) if PRESENTING else None
            grid = shared(("grid", *frame), lambda: encoded(labelled_grid(images, labels, class_names, scale=scale,
                                                                          max_per_class=20), fast=view.live))
            show_image(grid, f"Synthetic set at iteration {view.image_iteration or 0:,}" + (" (live)" if view.live else ""))
            st.caption(seeing("grid", _known_method(record.method), ipc=record.ipc, init=_run_init(record.spec),
                              iteration=view.image_iteration or 0))
            factor = _formation_factor(record.spec)
            if factor > 1:  # multi-formation (IDC): the stored images above, the images networks train on here
                show_image(labelled_grid(decode_uint8(images, factor), np.repeat(labels, factor * factor), class_names,
                                         max_per_class=40),
                           f"Decoded: each stored image above becomes {factor * factor} training images")
        else:
            st.caption("Waiting for the first images…")
    with st.container(key="distill_loss_chart"):
        metrics = list(view.metrics)
        if metrics:
            # While live, the curve is rebuilt at most once a second (a new Plotly figure costs more than a grid)
            moment = int(time.monotonic()) if view.live else len(metrics)
            figure = shared(("loss", run_id, moment, PRESENTING),
                            lambda: loss_figure(metrics, height=320 if PRESENTING else 220))
            st.plotly_chart(figure, width="stretch", key="distill_loss", config={"displayModeBar": False})
            st.caption(seeing("loss", _known_method(record.method)))
        else:
            st.caption("The loss curve appears after the first iteration.")
    evaluating = False
    if status in ("done", "stopped") or record.status in ("done", "stopped"):
        evaluating = _evaluation_panel(run_id, record)
    active_now = view.live or evaluating
    was_active = st.session_state.get("distill_was_active", False)
    st.session_state.distill_was_active = active_now
    if was_active and not active_now:
        st.rerun()  # redraw the whole page once so the view stops polling and the timelapse is complete


def _is_active() -> bool:
    run_id = st.session_state.get("distill_run")
    if not run_id:
        return studio.any_active("distill")
    if studio.active_job_for_run(run_id) is not None:
        return True
    return any(j.run_id == run_id or j.kind == "evaluate" for j in studio.jobs(active=True, kind="evaluate"))


with live_panel:
    polling = _is_active()
    st.session_state.distill_was_active = polling
    polled(_live_view, LIVE_EVERY_S if polling else None)


# ---------------------------------------------------------------------------------------------- timelapse
def _timelapse_gif(run_id: str, frames: list[int], class_names) -> bytes:
    """The stored snapshots as an animated GIF (made when the download is asked for; a thinned-away one is skipped)."""
    pictures = []
    for it in frames:
        try:
            images, labels = studio.run_frame(run_id, it)
        except OSError:
            continue
        pictures.append((it, images, labels))
    return timelapse_gif(pictures, class_names)


def _frame(run_id: str, it: int) -> tuple[tuple, tuple[np.ndarray, np.ndarray]]:
    """(cache key, (images, labels)) of a stored snapshot, read once per version for every session: the timelapse
    is redrawn every 2 s in each open tab, and what it draws from a snapshot is shared under this key too. A
    snapshot that is gone or damaged raises OSError."""
    version = studio.run_frame_version(run_id, it)
    if version is None:
        raise OSError(f"snapshot {it} of run {run_id} is gone")
    key = ("snapshot", run_id, it, version)
    return key, shared(key, lambda: studio.run_frame(run_id, it))


def _timelapse() -> None:
    run_id = st.session_state.get("distill_run")
    record = studio.run(run_id) if run_id else None
    if record is None:
        return
    frames = studio.run_frames(run_id)
    st.divider()
    st.subheader("Timelapse")
    if len(frames) < 1:
        st.caption("Snapshots are stored as the run goes; the scrubber appears with the first one.")
        return
    info_ = get_dataset_info(record.dataset)
    left, right = st.columns([3, 2], gap="large")
    with left:
        if len(frames) > 1:
            # The slider is rebuilt when a snapshot arrives; the chosen iteration is remembered, so a live run
            # only moves the view while it sits at the newest snapshot (the right end follows the run).
            picked = st.session_state.get(f"tl_pick_{run_id}")
            start = frames.index(picked) if picked in frames else len(frames) - 1
            pos = st.slider("Snapshot", 1, len(frames), value=start + 1, key=f"tl_{run_id}_{len(frames)}",
                            help="Drag to replay how the images evolved; at the right end it follows the newest "
                                 "snapshot", format="%d") - 1  # counted from 1, as the caption counts them
            st.session_state[f"tl_pick_{run_id}"] = None if pos == len(frames) - 1 else frames[pos]
        else:
            pos = 0
        it = frames[pos]
        try:
            key, (images, labels) = _frame(run_id, it)
        except OSError as e:  # thinned away by the live run between listing and reading, or damaged on disk
            st.caption("That snapshot was just replaced by a newer one." if "damaged" not in str(e)
                       else f"That snapshot cannot be read: {plain(str(e))}")
            return
        mode = st.segmented_control("Show", ["Images", "Change since the start"], default="Images",
                                    key="tl_mode", help="Change: how far each pixel moved from the first snapshot "
                                                        "(brighter = moved more)") or "Images"
        if mode == "Images" or pos == 0:
            show_image(shared((*key, "grid"), lambda: encoded(labelled_grid(images, labels, info_.class_names,
                                                                            max_per_class=20))),
                       f"Iteration {it:,} ({pos + 1} of {len(frames)} stored snapshots)")
        else:
            try:
                first_key, (first, _) = _frame(run_id, frames[0])
            except OSError:
                first_key, first = None, None
            if first is not None and first.shape == images.shape:
                change = shared((*key, "change", first_key), lambda: encoded(labelled_grid(
                    change_images(images, first), labels, info_.class_names, max_per_class=20)))
                show_image(change, f"Change from iteration {frames[0]:,} to {it:,}: |now − start|, brightened 2×")
                moved = shared((*key, "moved", first_key),
                               lambda: moved_per_class(images, first, labels, info_.num_classes))
                st.caption("Mean change per pixel (grey levels of 255): " + " · ".join(
                    f"{plain(n)} {m:.0f}" for n, m in zip(info_.class_names, moved)))
        if len(frames) > 1:
            st.download_button("⬇ Timelapse (animated GIF)", lambda: _timelapse_gif(run_id, frames, info_.class_names),
                               f"{run_id}-timelapse.gif", "image/gif", on_click="ignore", key=f"tl_gif_{run_id}",
                               help=f"All {len(frames)} stored snapshots, in order, looping")
    with right:
        names = list(info_.class_names)
        chosen = st.selectbox("Look at one class", names, key="distill_class")
        c = names.index(chosen)
        mine = class_rows(np.asarray(labels), len(names))[c]

        def synthetic_class() -> tuple[tuple[bytes, int], int]:
            grid, shown = class_grid(images, mine)
            return encoded(grid), shown

        def real_class() -> tuple[bytes, int]:  # five real images of the class, the same ones every time
            real = cached_dataset(record.dataset)
            five = min(5, real.train.class_counts()[c])  # a small folder's class: each image once
            real_idx = real.train.sample_class(c, five, __import__("torch").Generator().manual_seed(c))
            real_imgs = real.train.images[real_idx].permute(0, 2, 3, 1).numpy()
            return encoded(class_grid(real_imgs, range(len(real_imgs)))[0])

        grid, shown = shared((*key, "class", c), synthetic_class)
        more = f" (the first {shown} of {len(mine)})" if shown < len(mine) else ""
        show_image(grid, f"Synthetic '{chosen}' at iteration {it:,}{more}")
        show_image(shared(("real class", record.dataset, c), real_class), f"Real '{chosen}' training images")
        st.caption(seeing("class", _known_method(record.method), class_name=chosen))


_timelapse_every = 2.0 if polling else None
if not PRESENTING:  # a projector shows the grid and the loss curve only
    polled(_timelapse, _timelapse_every)


jobs_sidebar(studio)  # last, so a job started in this run is already listed and polled
