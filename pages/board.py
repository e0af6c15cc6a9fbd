"""Benchmark board: the table the field publishes (method × dataset × IPC), from this Studio's stored evaluations,
with random real trained the same way, the whole data, the papers' numbers and DD-Ranking's fair-ranking scores."""
from __future__ import annotations

import streamlit as st

from app import exports
from app.state import studio as get_studio
from app.widgets import init_from_query, jobs_sidebar, plain, sync_query
from ddcore import published
from ddcore.data import get_dataset_info, subset_note
from ddcore.platform.bridge import board_table, build_board

studio = get_studio()
st.title("Benchmark board")
st.caption("Every method's stored sets, pooled over runs and networks, beside random real images at the same IPC "
           "trained **the same way** (DD-Ranking's rule), the whole training set and the published number. "
           "Evaluate sets on the Evaluate page; this board reads what is stored.")

rows = [r for r in studio.results() if r.mean is not None]
set_rows = [r for r in rows if r.kind == "run"]
if not set_rows:
    st.info("No evaluated sets yet. Distil a set (Distill), then evaluate it with its random-real baseline "
            "(Evaluate): its row appears here.")
    jobs_sidebar(studio)
    st.stop()

datasets = sorted({r.dataset for r in set_rows})
presets = sorted({r.preset for r in set_rows}, key=lambda p: (p != "quick", p != "paper", p))
architectures = sorted({r.architecture for r in set_rows}, key=lambda a: (a != "convnet", a))
init_from_query("board_preset", "preset", presets[0], allowed=presets)
init_from_query("board_arch", "arch", architectures[0], allowed=architectures)

c1, c2, c3 = st.columns([3, 2, 2])
chosen = c1.multiselect("Datasets", datasets, default=datasets, key="board_datasets",
                        format_func=lambda d: get_dataset_info(d).display_name)
preset = c2.selectbox("Evaluation preset", presets, key="board_preset",
                      help="Only evaluations under this preset are pooled (different protocols are never mixed).")
architecture = c3.selectbox("Evaluated on", architectures, key="board_arch")
c4, c5 = st.columns([3, 2])
cross = c4.multiselect("Cross-architecture columns", [a for a in architectures if a != architecture],
                       key="board_cross", help="The same sets evaluated on other networks, same preset.")
plain_options = [None] + [p for p in presets if p != preset]
plain_preset = c5.selectbox("Without augmentation (for ARS)", plain_options, key="board_plain",
                            format_func=lambda p: "—" if p is None else p,
                            help="A preset of the same sets and random real trained without augmentation (e.g. a "
                                 "custom '…-none' preset); with it the board computes the augmentation-robust score.")
sync_query({"preset": preset, "arch": architecture})

try:
    papers = published.load_published()
except Exception:  # a damaged packaged table: the board still shows what was measured
    papers = []
board = [b for b in build_board(rows, papers, preset=preset, architecture=architecture, cross_architectures=cross,
                                plain_preset=plain_preset) if b.dataset in chosen]
if not board:
    st.info(f"No set was evaluated on {plain(architecture)} under the {plain(preset)} preset for these datasets.")
    jobs_sidebar(studio)
    st.stop()

table = board_table(board)
shown = ["dataset", "method", "ipc", "ours", "networks", "random_same_protocol", "random_preset", "whole",
         "sigma_above_random", "ior", "hlr", "lrs", "ars", "published", "published_source", "augmentation"]
shown += [f"on {a}" for a in cross if any(f"on {a}" in row for row in table)]
st.dataframe([{k: row.get(k) for k in shown} for row in table], hide_index=True, width="stretch",
             column_config={
                 "ours": st.column_config.TextColumn("ours (%)", help="mean ± std over every network that evaluated "
                                                                      "the method's current sets"),
                 "networks": st.column_config.NumberColumn("networks", help="networks pooled (sets × seeds)"),
                 "random_same_protocol": st.column_config.TextColumn(
                     "random, same protocol", help="random real at this IPC trained with the set's augmentation, "
                                                   "epochs and test images (the fair baseline)"),
                 "random_preset": st.column_config.TextColumn(
                     "random, preset's rule", help="random real under the same preset name; its augmentation follows "
                                                   "the preset's rule for random sets, which may differ"),
                 "sigma_above_random": st.column_config.NumberColumn("σ above random", format="%.1f"),
                 "ior": st.column_config.NumberColumn("IOR", help="improvement over random (points)", format="%.2f"),
                 "hlr": st.column_config.NumberColumn("HLR", help="hard-label recovery: whole − set (points)",
                                                      format="%.2f"),
                 "lrs": st.column_config.NumberColumn("LRS", help="label-robust score, 0–1", format="%.3f"),
                 "ars": st.column_config.NumberColumn("ARS", help="augmentation-robust score, 0–1", format="%.3f"),
             })
notes = {subset_note(b.dataset) for b in board if b.variant} - {""}
for note in notes:
    st.caption(f"⚠️ {note}")
missing = [b for b in board if b.random_same is None]
if missing:
    st.caption("No random-real baseline under the same protocol for: "
               + ", ".join(f"{b.method} {b.dataset} IPC {b.ipc}" for b in missing)
               + ". Evaluate random real at that IPC with a preset of the set's augmentation (a custom preset on the "
                 "Evaluate page) to get the fair column; until then σ, IOR and LRS use the preset's rule.")

with st.expander("What the scores mean (DD-Ranking, arXiv 2505.13300)"):
    st.markdown("Accuracies enter as fractions; λ = ½. **IOR** is the set's gain over random real images trained "
                "the same way; **HLR** how far the set stays below the whole data.")
    st.latex(r"\mathrm{LRS} = \frac{e^{\lambda\,\mathrm{IOR} - (1-\lambda)\,\mathrm{HLR}} - e^{-1}}{e - e^{-1}}")
    st.latex(r"\mathrm{ARS} = \frac{e^{\lambda\,(A^{aug}_{set} - A^{aug}_{rand}) + (1-\lambda)\,(A^{plain}_{set} - "
             r"A^{plain}_{rand})} - e^{-1}}{e - e^{-1}}")
    st.caption("Computed here from the definition: the ddranking 0.2.0 package puts percentages into the exponent "
                "(it returns −0.1565 or overflows), and its pins conflict with this Studio's.")

base = f"board-{preset}-{architecture}"
d1, d2 = st.columns(2)
d1.download_button("⬇ Board (CSV)", lambda: exports.table_csv(table), f"{base}.csv", "text/csv", on_click="ignore",
                   width="stretch")
md_columns = ["dataset", "method", "ipc", "ours", "random_same_protocol", "whole", "lrs", "published"]
d2.download_button("⬇ Board (Markdown)",
                   lambda: exports.table_markdown(table, md_columns, f"Benchmark board · {preset} · {architecture}"),
                   f"{base}.md", "text/markdown", on_click="ignore", width="stretch")
jobs_sidebar(studio)
