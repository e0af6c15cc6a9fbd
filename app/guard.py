"""Who may drive this Studio: the Host header every session's connection arrived with.

Why: Streamlit accepts any Host, so a page on another site whose name is re-bound to 127.0.0.1 (DNS
rebinding) would reach the Studio as same-origin and could start jobs or read the store. A browser always
sends the name it resolved in Host, so the Studio runs only for loopback names and for the names an
operator lists in DDSTUDIO_ALLOWED_HOSTS when serving a classroom network (scripts/run.sh --network).
"""
from __future__ import annotations

import os

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
ALLOWED_HOSTS_VARIABLE = "DDSTUDIO_ALLOWED_HOSTS"


def host_name(host_header: str) -> str:
    """'example.org:8501' -> 'example.org'; '[::1]:8501' -> '::1' (lower case)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host[1:]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def allowed_hosts(environ: dict[str, str] | None = None) -> set[str]:
    env = os.environ if environ is None else environ
    extra = {h.strip().lower() for h in env.get(ALLOWED_HOSTS_VARIABLE, "").split(",") if h.strip()}
    return set(LOOPBACK_NAMES) | {host_name(h) for h in extra}


def host_allowed(host_header: str | None, environ: dict[str, str] | None = None) -> bool:
    """True for a loopback name or a listed one; a session without a Host header (AppTest, no browser) too."""
    if not host_header:
        return True
    return host_name(host_header) in allowed_hosts(environ)
