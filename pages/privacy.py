"""Privacy: does a network trained on distilled data reveal which images the data came from?

A study (ddcore/tasks/privacy.py) runs as a background job; its result is stored keyed to its settings, so
the page shows it again on reopening without recomputation. Every figure is drawn from the stored result.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from app import privacy_plots
from app.state import studio as get_studio
from app.widgets import fmt_about, fmt_duration, init_from_query, jobs_sidebar, plain, study_progress, submit_job, sync_query
from ddcore.data import available_datasets, get_dataset_info
from ddcore.methods import describe_method, list_methods
from ddcore.platform.bridge import (
    ATTACK_TITLES,
    ATTACKS,
    PRIVACY_BASELINES,
    PRIVACY_PRESETS,
    PrivacyResult,
    PrivacySpec,
    membership_subset,
    privacy_estimate,
)

studio = get_studio()

DATASETS = available_datasets()  # only what this machine has (uploads included)
DISTILLERS = [m for m in list_methods() if (describe_method(m) is None or describe_method(m).family != "coreset")]
BASELINE_TITLES = {"members": "Members (all real)", "random": "Random member subset", "herding": "Herding coreset",
                   "dpsgd": "DP-SGD on the members"}
EPSILONS = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
PRESET_HELP = {"quick": "minutes on a laptop CPU (MNIST, Fashion-MNIST)", "paper": "CIFAR-10 scale, dozens of shadow "
               "models: for a GPU", "tiny": "seconds: a first look at the page"}
CHART_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
SIZE_KEYS = ("pool_per_class", "ipc", "shadows", "epochs", "dp_epochs", "epsilons", "methods")


def _img(a: np.ndarray) -> np.ndarray:
    """H×W×1 (grey) as H×W, which st.image shows."""
    return a[..., 0] if a.ndim == 3 and a.shape[-1] == 1 else a


def _keep(key: str, options: list) -> None:
    """Drop remembered choices that are no longer offered (another split, a deleted run)."""
    if key in st.session_state and any(v not in options for v in st.session_state[key]):
        st.session_state[key] = [v for v in st.session_state[key] if v in options]


def chart(plot, key: str) -> None:
    st.plotly_chart(plot.figure, key=key, config=CHART_CONFIG, width="stretch")
    st.caption(plot.caption)


def apply_preset() -> None:
    """Choosing a preset sets the sizes it stands for (the user may change them afterwards)."""
    preset = PrivacySpec.preset(st.session_state["pv_preset"], st.session_state.get("pv_dataset", "mnist"))
    for name in SIZE_KEYS:
        value = getattr(preset, name)
        st.session_state[f"pv_{name}"] = list(value) if isinstance(value, tuple) else value


def result_for_display(current: PrivacyResult | None) -> PrivacyResult | None:
    """The study to show: the one the settings describe when it is stored, else one picked from the store."""
    if current is not None:
        return current
    stored = [r for r in studio.studies("privacy") if r.spec.get("dataset") == dataset]
    if not stored:
        return None
    labels = {r.key: _study_label(r) for r in stored}
    key = st.selectbox("Stored studies of this dataset", list(labels), format_func=lambda k: labels[k], key="pv_shown",
                       help="The settings above describe a study that is not stored yet; these are.")
    return next(r for r in stored if r.key == key)


def _study_label(r: PrivacyResult) -> str:
    s = r.spec
    what = ", ".join(t.label for t in r.targets if t.kind == "distilled") or "baselines"
    return f"{what} · IPC {s['ipc']} · split {s['split_seed']} ({s['pool_per_class']}/class) · {fmt_duration(r.total_s)}"


# ---------------------------------------------------------------------------------------------- header
init_from_query("pv_dataset", "dataset", "mnist", allowed=DATASETS)
if "pv_preset" not in st.session_state:
    st.session_state["pv_preset"] = "quick"
    apply_preset()

st.title("Privacy")
st.caption("Does a network trained on distilled images reveal which real images they were distilled from? Attack it "
           "and see: membership inference against targets trained on distilled sets, real subsets and DP-SGD.")

with st.expander("What is membership inference? (a two-minute explanation)"):
    st.markdown(
        "A **membership inference attack** looks at a trained network and guesses, for one image, whether that image "
        "was in the network's training data (a *member*) or not (a *non-member*). Networks often behave a little "
        "differently on what they were trained on: a lower loss, a more confident answer. If an attacker can tell, "
        "the network leaks who was in its data, which matters for medical or personal images.\n\n"
        "Here a pool of real images is split in two at random. **Members** are given to the target (directly, or "
        "after distilling them into a few synthetic images); **non-members** never are. The attack scores every pool "
        "image; a good attack gives members higher scores.\n\n"
        "- **ROC curve**: for every threshold on the score, the share of members caught (true positives) against the "
        "share of non-members wrongly accused (false positives). Guessing is the diagonal. The log axes zoom into the "
        "low false-positive corner, where an attack is confidently right about a few images: the dangerous case.\n"
        "- **AUC** summarises the curve (0.5 is guessing, 1 is perfect); **TPR at 1% FPR** counts members found "
        "while accusing only 1% of non-members.\n"
        "- **Whiskers** are 95% bootstrap intervals: if two targets' whiskers overlap, the data cannot tell them apart.\n"
        "- **DP-SGD** trains with clipped, noisy gradients and comes with a proven bound ε on any attack: the honest "
        "baseline. *Privacy for Free* (Dong et al., ICML 2022) argued distillation protects membership; *No Free "
        "Lunch* (Carlini et al., 2022) found no significant gain over a random subset at equal accuracy, with DP-SGD "
        "better; Zhao & Zhang (2025) found real-image initialisation leaks. The nearest-neighbour gallery shows why.")

# ---------------------------------------------------------------------------------------------- settings
c1, c2, c3 = st.columns(3)
dataset = c1.selectbox("Dataset", DATASETS, key="pv_dataset", format_func=lambda n: get_dataset_info(n).display_name)
sync_query({"dataset": dataset})
preset = c2.selectbox("Preset", list(PRIVACY_PRESETS), key="pv_preset", on_change=apply_preset,
                      format_func=lambda p: f"{p}: {PRESET_HELP.get(p, '')}")
split_seed = c3.number_input("Split seed", 0, 10_000, 0, key="pv_split_seed",
                             help="Which images are members and which non-members (recorded with the result).")
c1, c2, c3 = st.columns(3)
pool = c1.number_input("Pool images per class", 2, 5000, key="pv_pool_per_class",
                       help="Half become members, half non-members.")
ipc = c2.number_input("Images per class (IPC) of the distilled sets", 1, 2500, key="pv_ipc",
                      help="Also the size of the random and herding subsets.")
eligible = studio.runs_on_subset(dataset, membership_subset(dataset, int(pool), int(split_seed)))
methods = st.multiselect("Distil from the members with", DISTILLERS, key="pv_methods",
                         format_func=lambda m: m.upper(),
                         help="Each is distilled twice, from real-image and from noise initialisation, and stored as a run.")
_keep("pv_runs", [r.id for r in eligible])
runs = st.multiselect("Stored runs distilled from these members", [r.id for r in eligible], key="pv_runs",
                      format_func=lambda i: next((r.name for r in eligible if r.id == i), i),
                      help="Only runs that saw this split's members alone are offered: a set distilled from other "
                           "images would leak them by construction.")
baselines = st.multiselect("Baselines", list(PRIVACY_BASELINES), default=list(PRIVACY_BASELINES), key="pv_baselines",
                           format_func=lambda b: BASELINE_TITLES[b])
c1, c2 = st.columns(2)
epsilons = c1.multiselect("DP-SGD privacy budgets ε", EPSILONS, key="pv_epsilons", disabled="dpsgd" not in baselines,
                          help="δ = 1e-5. Smaller ε: more noise, more privacy, less accuracy.")
attacks = c2.multiselect("Attacks", list(ATTACKS), default=list(ATTACKS), key="pv_attacks",
                         format_func=lambda a: ATTACK_TITLES[a])
c1, c2, c3 = st.columns(3)
shadows = c1.number_input("Shadow models (LiRA)", 2, 512, key="pv_shadows",
                          help="Each trains on a random half of the pool; reused by every study of this split.")
epochs = c2.number_input("Epochs (members target, shadows)", 1, 1000, key="pv_epochs")
dp_epochs = c3.number_input("DP-SGD epochs", 1, 1000, key="pv_dp_epochs")

spec: PrivacySpec | None = None
problem = ""
try:
    spec = PrivacySpec.preset(preset, dataset, split_seed=int(split_seed), pool_per_class=int(pool), ipc=int(ipc),
                              methods=tuple(methods), runs=tuple(runs), baselines=tuple(baselines),
                              epsilons=tuple(epsilons) or (1.0,), attacks=tuple(attacks), shadows=int(shadows),
                              epochs=int(epochs), dp_epochs=int(dp_epochs))
except (TypeError, ValueError) as e:
    problem = str(e)
state = studio.study_state(spec) if spec is not None else None
problem = problem or (state.problem if state is not None else "")

current: PrivacyResult | None = None
if problem:
    st.error(plain(problem))
elif state is not None and state.stored is not None:
    current = state.stored
    st.success(f"This study is stored ({fmt_duration(current.total_s)} on {current.device}); its results are below.")
elif state is not None and state.busy:
    study_progress(studio, spec, "pv", True, live_images=True)
elif spec is not None:
    estimate = privacy_estimate(spec)
    shadow_note = ""
    if spec.lira and not any(a.params.get("split_seed") == spec.split_seed and a.params.get("pool_per_class") == spec.pool_per_class
                             and a.params.get("shadows") == spec.shadows and a.params.get("epochs") == spec.epochs
                             and a.params.get("dataset") == spec.dataset for a, _ in studio.artefacts("shadow-models")):
        shadow_note = f", plus about {fmt_about(estimate['shadows'])} for the shadow models (made once per split)"
    st.caption(f"Estimated cost on a 2-core laptop CPU: about {fmt_about(estimate['study'])}{shadow_note}. "
               f"{int(estimate['members']):,} members; a GPU is much faster.")
    if st.button("Start the study", type="primary", key="pv_start"):
        submit_job(studio, spec, "Could not start the study")

# ---------------------------------------------------------------------------------------------- results
st.divider()
st.subheader("Results")
result = result_for_display(current)
if result is None:
    st.info("No privacy study of this dataset is stored yet. Choose the settings above and start one "
            "(its estimated time shows above Start; the tiny preset takes well under a minute).")
else:
    c1, c2 = st.columns([2, 1])
    attack = c1.selectbox("Attack", list(result.attacks), format_func=lambda a: ATTACK_TITLES[a], key="pv_attack")
    measure = c2.radio("Attack success as", ["auc", "tpr_at_1"], horizontal=True, key="pv_measure",
                       format_func=lambda m: "AUC" if m == "auc" else "TPR at 1% FPR")
    tab_roc, tab_bars, tab_trade, tab_nn, tab_table = st.tabs(
        [":material/show_chart: ROC", ":material/bar_chart: AUC and TPR", ":material/balance: Accuracy vs privacy",
         ":material/image_search: Nearest neighbours", ":material/table: Table"])
    with tab_roc:
        chart(privacy_plots.roc(result, attack), "pv_roc")
    with tab_bars:
        chart(privacy_plots.measures(result, attack), "pv_bars")
    with tab_trade:
        chart(privacy_plots.tradeoff(result, attack, measure), "pv_trade")
    with tab_nn:
        distilled = [t for t in result.targets if t.kind == "distilled" and result.synthetic_images(t.id) is not None]
        if not distilled:
            st.info("This study has no distilled set, so there are no synthetic images to compare.")
        else:
            c1, c2 = st.columns(2)
            tid = c1.selectbox("Synthetic set", [t.id for t in distilled], key="pv_nn_target",
                               format_func=lambda i: result.target(i).label)
            space = c2.radio("Distance in", ["pixel", "feature"], horizontal=True, key="pv_nn_space",
                             format_func=lambda s: "pixels" if s == "pixel" else "features of a network")
            summary = result.neighbours.get(tid, {})
            st.markdown(
                f"**{summary.get(f'closer_to_member_{space}', 0):.0%}** of this set's images are closer to a member "
                f"than to any non-member (about 50% if the set copies no member); median distance ratio "
                f"member / non-member **{summary.get(f'ratio_{space}', 1):.2f}** (1: no closer to members).")
            synthetic = result.synthetic_images(tid)
            members = result.neighbour_images(tid, space, "member")
            others = result.neighbour_images(tid, space, "non_member")
            if synthetic is not None and members is not None and others is not None:
                order = np.argsort(members[1][:, 0])[:8]  # the most member-like first
                k = members[0].shape[1]
                for row, i in enumerate(order):
                    cols = st.columns(1 + 2 * k)
                    cols[0].image(_img(synthetic[i]), caption="synthetic" if row == 0 else None, width=64)
                    for j in range(k):
                        cols[1 + j].image(_img(members[0][i, j]), caption=f"member d={members[1][i, j]:.1f}", width=64)
                        cols[1 + k + j].image(_img(others[0][i, j]), caption=f"non-member d={others[1][i, j]:.1f}", width=64)
            where = "normalised pixels" if space == "pixel" else \
                "the penultimate features of a ConvNet trained on real images outside the pool"
            st.caption(f"For the 8 synthetic images nearest to a member: the {result.spec['neighbours']} nearest members "
                       f"and non-members of the pool, by Euclidean distance in {where}. "
                       "Non-members are the reference: a synthetic image much nearer a member than any non-member "
                       "resembles that particular image.")
    with tab_table:
        st.dataframe(privacy_plots.summary_rows(result, attack), hide_index=True, width="stretch")
        st.caption(f"{ATTACK_TITLES[attack]}; intervals are 95% bootstrap intervals; cost = making the training set "
                   f"(a distillation, a selection) plus training the target, in seconds on {result.device}. "
                   f"Shadow models: {result.shadows.get('seconds', 0):.0f} s, shared by every study of this split.")

jobs_sidebar(studio)
