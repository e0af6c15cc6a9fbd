"""DD Studio entry point: `streamlit run app/main.py` (see README)."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # streamlit puts app/ on the path, not the repo root
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app.navigation import PAGES  # noqa: E402

st.set_page_config(page_title="DD Studio", page_icon=":material/science:", layout="wide")
nav = st.navigation({section: [page.st_page() for page in pages] for section, pages in PAGES.items()})
nav.run()
