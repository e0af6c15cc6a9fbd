"""DD Studio entry point: `streamlit run app/main.py` (see README)."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # streamlit puts app/ on the path, not the repo root
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

import app.diagnostics  # noqa: E402,F401  (kill -USR1 <pid>: every thread's stack to the log)
from app.guard import ALLOWED_HOSTS_VARIABLE, host_allowed  # noqa: E402
from app.navigation import PAGES  # noqa: E402
from app.text import plain  # noqa: E402
from ddcore.platform.bridge import pin_this_thread  # noqa: E402

pin_this_thread("ui")  # this page run stays on the core kept for browsers; jobs compute on the others

st.set_page_config(page_title="DD Studio", page_icon=str(ROOT / "assets" / "icon.png"), layout="wide")
host = st.context.headers.get("Host")
if not host_allowed(host):  # DNS rebinding: another site's page reaching this server under its own name
    st.error(f"DD Studio is not served under the host name {plain(repr(host))}. Open it at http://127.0.0.1 (the address "
             f"the server printed), or list this name in {ALLOWED_HOSTS_VARIABLE} when serving a network.")
    st.stop()
nav = st.navigation({section: [page.st_page() for page in pages] for section, pages in PAGES.items()})
nav.run()
