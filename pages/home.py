"""Home: what dataset distillation is, shown with real samples of the default dataset."""
from __future__ import annotations

import streamlit as st

from app.navigation import PAGES
from app.samples import HOME_DATASETS, class_samples_grid, dataset
from app.widgets import png_bytes, stamped
from ddcore.data import DatasetNotFoundError, get_dataset_info
from ddcore.methods import list_methods, method_class

# What the methods match, per family; only families with a method in this build are mentioned.
MATCHES = {
    "gradient matching": "the **gradients** a network computes on real and synthetic batches",
    "distribution matching": "the **feature distributions** of the two",
    "trajectory matching": "whole **training trajectories**",
}


def _methods_sentence() -> str:
    by_family: dict[str, list[str]] = {}
    for name in list_methods():
        by_family.setdefault(method_class(name).family, []).append(name)
    parts = [f"{phrase} ({', '.join(n.upper() for n in by_family[family])})"
             for family, phrase in MATCHES.items() if by_family.get(family)]
    text = ""
    if parts:
        listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]
        text = f"The methods here match what training sees: {listed}. "
    if by_family.get("coreset"):
        text += f"Coreset baselines ({', '.join(by_family['coreset'])}) pick real images instead. "
    return text


st.title("DD Studio")
st.markdown(
    "**Dataset distillation** condenses a large training set into a handful of *synthetic* images per class "
    "(IPC) such that a network trained only on them comes close to one trained on all the data. "
    + _methods_sentence()
    + "Here you can run them live, watch the images evolve, and measure how well they train fresh networks."
)

left, right = st.columns([3, 2], gap="large")
with right:
    st.subheader("Start here")
    for pages in PAGES.values():
        for page in pages:
            if page.default:
                continue
            st.page_link(page.st_page(), label=f"**{page.title}**", icon=page.icon)
            st.caption(page.blurb)
    st.caption("Review of the field: Yu, Liu & Wang, *Dataset Distillation: A Comprehensive Review*, "
               "IEEE TPAMI 2023 ([arXiv 2301.07014](https://arxiv.org/abs/2301.07014)).")

with left:
    names = {get_dataset_info(n).display_name: n for n in HOME_DATASETS}
    choice = st.segmented_control("Dataset", list(names), default=list(names)[0], key="home_dataset")
    name = names[choice or list(names)[0]]
    try:
        data = dataset(name)
    except DatasetNotFoundError as e:
        st.error(str(e))
        st.stop()
    st.image(stamped(png_bytes(class_samples_grid(name))), caption=f"Real training images of {data.info.display_name}, one row per class "
             f"({', '.join(data.info.class_names)}).", width="content")
    st.caption(f"{len(data.train):,} training and {len(data.test):,} test images · source: {data.source}")
    st.info(f"A distilled set at 10 images per class would replace these {len(data.train):,} images with "
            f"{10 * data.info.num_classes} learned ones.")
