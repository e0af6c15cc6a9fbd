"""Helpers for the Streamlit AppTest tests: open a page with URL parameters, and fail on any exception."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


def page(name: str, timeout: float = 120, **query: str) -> AppTest:
    """pages/<name> as AppTest, with these URL query parameters."""
    at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=timeout)
    for k, v in query.items():
        at.query_params[k] = v
    return at


def ok(at: AppTest) -> AppTest:
    """The page ran without an exception (the exceptions' text is the failure message)."""
    assert not at.exception, [e.value for e in at.exception]
    return at


def opened(name: str, timeout: float = 120, **state: object) -> AppTest:
    """pages/<name> run once with these session-state values, without an exception."""
    at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=timeout)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    return ok(at)
