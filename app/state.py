"""Server-wide objects: one job manager (and its run store) shared by every session and tab."""
from __future__ import annotations

import os

import streamlit as st

from ddcore.jobs import JobManager
from ddcore.paths import home_dir
from ddcore.store import RunStore


@st.cache_resource(show_spinner=False)
def _manager_for(home: str) -> JobManager:
    # Creating it marks runs left active by a previous (killed) server as interrupted.
    return JobManager(RunStore(home))


def job_manager() -> JobManager:
    """The job manager for the current $DDCORE_HOME (tests switch homes between sessions)."""
    return _manager_for(str(home_dir()))


def run_store() -> RunStore:
    return job_manager().store


def home_label() -> str:
    return os.environ.get("DDCORE_HOME") or str(home_dir())
