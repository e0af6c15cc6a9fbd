"""A user's text (run names, labels made from them) as literal text wherever it is shown.

Pure (no streamlit), so plots and exports use the same rule as the pages: Streamlit reads markdown (links,
remote images) in st.markdown, captions, toasts and alerts, and HTML where a page allows it; Plotly reads
a subset of HTML tags. A run named `<img src=x onerror=...>` or `![](http://...)` must read as exactly that.
"""
from __future__ import annotations

import html
import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]$~|#])")


def plain(text: object) -> str:
    """Literal text inside Streamlit markdown (with or without unsafe_allow_html): no links, images, emphasis,
    code, maths or HTML can come out of it."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))


def plot_text(text: object) -> str:
    """Literal text inside a Plotly label, legend or hover text."""
    return html.escape(str(text), quote=False)
