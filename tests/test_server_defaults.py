"""The server's safety defaults hold however it is started: from another folder with a bare `streamlit run`,
the Studio still binds loopback only, keeps usage statistics off and XSRF protection on (app/.streamlit is
read from the script's folder); the Host guard's rules; the classroom-network switch is explicit."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from app.guard import host_allowed, host_name
from benchmarks.load import tcp_sockets
from tests.conftest import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} write them) listening on `port`."""
    return {address for address, state in tcp_sockets(port) if state == "0A"}  # 0A: LISTEN


def test_bare_streamlit_run_from_elsewhere_binds_loopback_without_statistics(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    env["DDCORE_HOME"] = str(tmp_path / "home")
    log = tmp_path / "server.log"
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"),
                             "--server.port", str(port)], cwd=tmp_path, env=env, stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail(f"no server: {log.read_text()[-2000:]}")
        addresses = _listening_addresses(port)
        assert addresses == {"0100007F"}, f"listening on {addresses} (0100007F is 127.0.0.1)"
        text = log.read_text()
        assert "Network URL" not in text and "External URL" not in text, text
        assert "Collecting usage statistics" not in text, text
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(15)


def test_config_keeps_xsrf_protection_and_loopback() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "app" / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["server"].get("enableXsrfProtection", True) is True
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"].get("enableStaticServing", False) is False  # no files served by a user-given path
    assert config["runner"]["postScriptGC"] is False  # a full GC after every live-view rerun starved the job


@pytest.mark.parametrize("header,ok", [
    ("127.0.0.1:8501", True), ("localhost:8501", True), ("[::1]:8501", True), ("LOCALHOST", True),
    ("rebind.example:8501", False), ("127.0.0.1.nip.io:8501", False), ("evil.com", False), (None, True),
])
def test_host_guard(header: str | None, ok: bool) -> None:
    assert host_allowed(header, environ={}) is ok


def test_listed_classroom_host_is_allowed() -> None:
    env = {"DDSTUDIO_ALLOWED_HOSTS": "192.168.1.20, Studio.Local:8501"}
    assert host_allowed("192.168.1.20:8501", env) and host_allowed("studio.local:8501", env)
    assert not host_allowed("192.168.1.21:8501", env)
    assert host_name("[fe80::1]:8501") == "fe80::1"


def test_network_switch_needs_a_name() -> None:
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "run.sh"), "--network"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "usage: bash scripts/run.sh --network NAME" in proc.stderr
