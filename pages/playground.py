"""Playground: distil a toy dataset of points in the plane and watch a few synthetic points teach a network.

The playground steps in this session (ddcore/playground.py says why): each frame runs the method for a bounded
slice of time, lets the small network follow the moved points, and draws both decision boundaries.
"""
from __future__ import annotations

import time

import streamlit as st

from app.playground_draw import class_colour, panel, points_layer, sparkline
from app.state import studio as get_studio
from app.widgets import encoded, init_from_query, plain, polled, show_image, sync_query
from ddcore.data import get_dataset_info, point_datasets
from ddcore.methods import DivergenceError, method_class
from ddcore.platform.bridge import PLAYGROUND_DEFAULT_LR, PLAYGROUND_METHODS, PlaygroundSpec

studio = get_studio()
DATASETS = point_datasets()
SHORT = {d.split("-", 1)[1]: d for d in DATASETS}  # the URL says moons, not points-moons
METHODS = list(PLAYGROUND_METHODS)
LEARNING_RATES = sorted({0.001, 0.003, 0.01, 0.03, 0.05, 0.1, 0.3, 0.5, 1.0, 3.0, *PLAYGROUND_DEFAULT_LR.values()})
FRAME_BUDGET_S = 0.015  # distillation per frame; the rest of each 0.1 s goes to drawing and sending it
FRAME_EVERY_S = 0.08
MAX_POINTS_PER_CLASS = 20


def _float(text: str) -> float:
    return float(text)


init_from_query("pg_dataset", "dataset", "moons", allowed=list(SHORT))
init_from_query("pg_method", "method", "dm", allowed=METHODS)
init_from_query("pg_ipc", "ppc", 3, int, allowed=range(1, MAX_POINTS_PER_CLASS + 1))
init_from_query("pg_seed", "seed", 0, int, allowed=range(0, 10_000))
if "pg_lr" not in st.session_state:
    init_from_query("pg_lr", "lr", PLAYGROUND_DEFAULT_LR[st.session_state.pg_method], _float, allowed=LEARNING_RATES)

st.title("Playground")
st.caption("Distillation in two dimensions: a few synthetic points per class (large, outlined) move over the faint "
           "real points until a small network trained **only on them** draws nearly the boundary that one trained "
           "on **all** the points draws. Press **Play**.")

c1, c2, c3, c4, c5 = st.columns([3, 3, 3, 2, 2])
short = c1.selectbox("Data", list(SHORT), key="pg_dataset", format_func=lambda s: get_dataset_info(SHORT[s]).display_name)
def _method_changed() -> None:
    st.session_state.pg_lr = PLAYGROUND_DEFAULT_LR[st.session_state.pg_method]  # each method's own step size


method = c2.selectbox("Method", METHODS, key="pg_method", format_func=lambda m: f"{method_class(m).title or m}",
                      on_change=_method_changed)
ipc = int(c3.slider("Points per class", 1, MAX_POINTS_PER_CLASS, key="pg_ipc"))
lr = float(c4.select_slider("Learning rate", LEARNING_RATES, key="pg_lr",
                            help=f"The method's step on the points (default {PLAYGROUND_DEFAULT_LR[method]:g})"))
seed = int(c5.number_input("Seed", 0, 9_999, step=1, key="pg_seed"))
dataset = SHORT[short]
spec = PlaygroundSpec(dataset=dataset, method=method, ipc=ipc, lr=lr, seed=seed)
sync_query({"dataset": short, "method": method, "ppc": ipc, "lr": f"{lr:g}", "seed": seed})


def _fresh() -> None:
    """A new playground for the current settings (Reset, or settings that changed)."""
    try:
        with st.spinner("Preparing…" if method != "mtt" else "Training three expert MLPs on the points (once)…"):
            st.session_state.pg = studio.playground(spec)
        st.session_state.pg_spec = spec
        st.session_state.pg_error = None
    except (ValueError, RuntimeError, OSError) as e:
        st.session_state.pg, st.session_state.pg_spec = None, spec
        st.session_state.pg_error = f"Could not start: {e}"


if st.session_state.get("pg_spec") != spec:
    st.session_state.pg_playing = False if "pg_spec" not in st.session_state else st.session_state.get("pg_playing", False)
    _fresh()


def _set_playing(value: bool) -> None:
    st.session_state.pg_playing = value


def _step_once() -> None:
    st.session_state.pg_playing = False
    st.session_state.pg_step = True


b1, b2, b3, b4 = st.columns(4)
playing = bool(st.session_state.get("pg_playing"))
if playing:
    b1.button("⏸ Pause", on_click=_set_playing, args=(False,), key="pg_pause", width="stretch", shortcut="Space")
else:
    b1.button("▶ Play", on_click=_set_playing, args=(True,), key="pg_play", type="primary", width="stretch",
              shortcut="Space")
b2.button("⏭ Step", on_click=_step_once, key="pg_step_btn", width="stretch", shortcut="Right",
          help="One iteration of the method")
if b3.button("↺ Reset", key="pg_reset", width="stretch", help="New noise points, same settings"):
    st.session_state.pg_playing = False
    _fresh()
b4.caption("Keys: **Space** play/pause · **→** step")


def _view() -> None:
    pg = st.session_state.get("pg")
    if st.session_state.get("pg_error"):
        st.error(plain(st.session_state.pg_error))
    if pg is None:
        return
    started = time.perf_counter()
    try:
        if st.session_state.get("pg_playing"):
            pg.advance(FRAME_BUDGET_S)
        elif st.session_state.pop("pg_step", False):
            pg.step()
    except DivergenceError as e:
        st.session_state.pg_playing = False
        st.session_state.pg_error = (f"{e} Lower the learning rate, then Reset.")
        st.rerun()
    frame = pg.frame()
    info = get_dataset_info(dataset)
    still = st.session_state.get("pg_still")
    if still is None or still[0] != (dataset, seed):  # what does not move is drawn once per dataset and seed
        faint = points_layer(frame.real_xy, frame.real_labels, frame.extent, faint=True)
        full = encoded(panel(frame.full_probs, points_layer(frame.real_xy, frame.real_labels, frame.extent,
                                                            faint=False), frame.extent))
        still = st.session_state.pg_still = ((dataset, seed), faint, full)
    _, faint, full = still
    st.markdown(f"Iteration **{frame.iteration:,}** · trained on the synthetic points: **{frame.synthetic_accuracy:.1f} %** "
                f"· on all points: **{frame.full_accuracy:.1f} %** (test points)")
    left, right = st.columns(2)
    with left:
        show_image(encoded(panel(frame.synthetic_probs, faint, frame.extent, synthetic_xy=frame.synthetic_xy,
                                 synthetic_labels=frame.synthetic_labels), fast=True),
                   f"Trained only on the {len(frame.synthetic_labels)} synthetic points: "
                   f"{frame.synthetic_accuracy:.1f} % on the test points")
    with right:
        show_image(full, f"Trained on all {len(frame.real_labels):,} points: {frame.full_accuracy:.1f} % on the "
                         "test points")
    show_image(encoded(sparkline(frame.losses), fast=True), None)
    legend = " · ".join(f"<span style='color:rgb{class_colour(c)}'>●</span> {plain(n)}"
                        for c, n in enumerate(info.class_names))
    took = time.perf_counter() - started
    st.markdown(legend, unsafe_allow_html=True)
    st.caption(f"Each frame (a step of the method, two boundaries, the points) took {1000 * took:.0f} ms to compute "
               "and draw.")
    _pace(took)


def _pace(took: float) -> None:
    """Keep the refresh just slower than a frame takes: a fragment asked to rerun while it still runs is cut short,
    so a method whose frames outgrow the interval (DC's steps are 20 ms) would show almost none of them."""
    if not st.session_state.get("pg_playing"):
        return
    ema = st.session_state.pg_frame_s = 0.7 * st.session_state.get("pg_frame_s", took) + 0.3 * took
    every = st.session_state.get("pg_every", FRAME_EVERY_S)
    wanted = round(min(0.5, max(FRAME_EVERY_S, 1.5 * ema + 0.03)), 2)
    if abs(wanted - every) > 0.25 * every:
        st.session_state.pg_every = wanted
        st.rerun(scope="app")  # the fragment's interval is set where the page calls it


polled(_view, st.session_state.get("pg_every", FRAME_EVERY_S) if playing else None, shared_budget=False)

cls = method_class(method)
with st.expander(f"What {cls.title or method} does here", expanded=False):
    st.markdown(cls.explanation)
    st.caption("On points the method's networks are the three-layer perceptron and image augmentations are off; "
               "the boundary shown is a smaller network (two hidden layers of 32) that keeps training on the "
               "synthetic points as they move.")
