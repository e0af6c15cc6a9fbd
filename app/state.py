"""Server-wide objects: one Studio (job queue and store) shared by every session and tab."""
from __future__ import annotations

import sqlite3

import streamlit as st

from app.text import plain
from ddcore.platform.bridge import Studio, default_home, home_path


class SessionStudio:
    """The server's Studio as one browser session uses it: every job it submits is marked as this session's, so
    the queue shares slots fairly between sessions and the jobs panel lists the session's own jobs first."""

    def __init__(self, shared: Studio, owner: str | None) -> None:
        self._shared, self.owner = shared, owner

    def submit(self, spec, **kwargs):
        kwargs.setdefault("owner", self.owner)
        return self._shared.submit(spec, **kwargs)

    def resume_run(self, run_id: str, **kwargs):
        kwargs.setdefault("owner", self.owner)
        return self._shared.resume_run(run_id, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._shared, name)


def session_id() -> str | None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return getattr(ctx, "session_id", None)


@st.cache_resource(show_spinner=False)
def _studio_for(home: str) -> Studio:
    # Creating it marks runs left active by a previous (killed) server as interrupted.
    return Studio(home)


def studio() -> SessionStudio:
    """The Studio for the current $DDCORE_HOME (tests switch homes between sessions). A store that cannot be
    opened (an unwritable folder, a full disk, a file where the folder should be) stops the page with the reason
    and what to do, not a traceback."""
    home = home_path()
    try:
        return SessionStudio(_studio_for(str(default_home())), session_id())
    except (OSError, sqlite3.Error) as e:
        st.error(f"The store at `{plain(str(home))}` cannot be opened: {plain(str(e))}. Point DDCORE_HOME at a "
                 "writable folder with free space, then reload this page.")
        st.stop()
        raise  # (st.stop raises; this line keeps type checkers content)
