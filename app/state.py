"""Server-wide objects: one Studio (job queue and store) shared by every session and tab."""
from __future__ import annotations

import streamlit as st

from ddcore.platform.bridge import Studio, default_home


@st.cache_resource(show_spinner=False)
def _studio_for(home: str) -> Studio:
    # Creating it marks runs left active by a previous (killed) server as interrupted.
    return Studio(home)


def studio() -> Studio:
    """The Studio for the current $DDCORE_HOME (tests switch homes between sessions)."""
    return _studio_for(str(default_home()))
