"""Explanations a student can follow: a method's objective as an equation, what its symbols are, and a
"what you are seeing" line that changes with the view (live grid, one class beside its real images, loss curve).

The words live on the method classes (`explanation`, `objective`, `symbols`, `loss_meaning`); this module only
arranges them, with one phrase per family for how that family moves the images.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from app.text import plain

HOW_IT_MOVES = {
    "distribution matching": "each step moves them so that their average features, seen through a network, match "
                             "the average features of real images of their class",
    "gradient matching": "each step moves them so that the gradient they give a network points where the real "
                         "images' gradient points",
    "trajectory": "each step moves them so that a student network trained on them lands where an expert trained on "
                  "real images landed",
    "kernel": "each step moves them so that a classifier fitted on them in closed form predicts real images correctly",
    "meta-learning": "each step moves them so that a network trained for a few steps on them does well on real images",
    "coreset": "nothing is synthesised: real images are picked",
}


# A long objective in a narrow column was clipped at its right edge: it scrolls instead, a little smaller than
# KaTeX's display size. Style-only st.html takes no space on the page.
_EQUATION_CSS = ("<style>[data-testid='stMarkdownContainer'] .katex-display { overflow-x: auto; overflow-y: hidden; "
                 "padding-bottom: 2px; } [data-testid='stMarkdownContainer'] .katex-display > .katex "
                 "{ font-size: 1.05em; }</style>")


def method_help(cls: Any, *, equation: bool = True) -> None:
    """The chosen method's plain-language paragraph, its objective as an equation and its paper link."""
    text = cls.explanation or cls.title
    paper = f"[{cls.paper or 'paper'}]({cls.paper_url})" if cls.paper_url else (cls.paper or "")
    st.markdown(f"**{cls.title or cls.name}** · *{cls.family or 'method'}*\n\n{text}")
    if equation and getattr(cls, "objective", ""):
        st.html(_EQUATION_CSS)
        st.latex(cls.objective)
        if cls.symbols:
            st.caption(cls.symbols)
    if paper:
        st.markdown(f"📄 {paper}")


def seeing(view: str, cls: Any, *, ipc: int | None = None, init: str | None = None, iteration: int | None = None,
           class_name: str | None = None) -> str:
    """One caption, beginning 'What you are seeing:', for `view` in ('grid', 'class', 'loss'); `cls` may be None (a
    set imported from elsewhere)."""
    family = getattr(cls, "family", "") or ""
    how = HOW_IT_MOVES.get(family, "each step changes them to serve the method's objective")
    start = {"noise": "as random noise", "real": "as randomly chosen real images"}.get(init or "", "")
    if view == "grid":
        where = f" at iteration {iteration:,}" if iteration is not None else ""
        count = f"its {ipc} synthetic image{'s' if ipc != 1 else ''}" if ipc else "its synthetic images"
        began = f" They started {start};" if start and family != "coreset" else ""
        return (f"What you are seeing: one row per class, {count}{where}.{began} {how}. A class's row turns into "
                "what the networks need to recognise it, which is not always what a person would draw.")
    if view == "class":
        name = f"'{plain(class_name)}'" if class_name else "one class"
        return (f"What you are seeing: the synthetic {name} images, above real {name} training images. "
                "Synthetic images often look like an average of many real ones, with the features a network relies "
                "on exaggerated.")
    if view == "loss":
        meaning = getattr(cls, "loss_meaning", "") or "The quantity the method minimises."
        return (f"What you are seeing: {meaning} It falls as the images improve, and jumps around because every "
                "step draws new real images (and, for most methods, a new network).")
    raise ValueError(f"no caption for view {view!r}")
