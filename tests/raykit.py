"""A real two-node Ray cluster on loopback for the tests: `ray start --head` and `ray start --address`, as README
tells users, each node on its own 127.0.0.x address (Ray turns 127.0.0.1 itself into the host's routable address,
so the nodes use 127.0.0.2 and .3: still loopback, nothing else is reached)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAD_IP, NODE_IP = "127.0.0.2", "127.0.0.3"
RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    def __init__(self, cpus_per_node: int = 1) -> None:
        self.temp = Path(tempfile.mkdtemp(prefix="ddray-", dir="/tmp"))  # short: Ray's unix sockets live here
        self.port = free_port()
        self.address = f"{HEAD_IP}:{self.port}"
        self.env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_DISABLE_DOCKER_CPU_WARNING="1")
        self.procs: list[subprocess.Popen] = []
        common = ["--num-cpus", str(cpus_per_node), "--block", "--disable-usage-stats"]
        self._start("head", [RAY, "start", "--head", "--node-ip-address", HEAD_IP, "--port", str(self.port),
                             "--include-dashboard=false",
                             "--dashboard-agent-listen-port", str(free_port()), "--temp-dir", str(self.temp), *common])
        self._wait_for_nodes(1)
        self._start("node", [RAY, "start", "--address", self.address, "--node-ip-address", NODE_IP,
                             "--dashboard-agent-listen-port", str(free_port()), *common])
        self._wait_for_nodes(2)

    def _start(self, name: str, command: list[str]) -> None:
        log = open(self.temp / f"{name}.log", "wb")
        self.procs.append(subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def _wait_for_nodes(self, count: int, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"a Ray node exited: {self.logs()}")
            out = subprocess.run([RAY, "status", "--address", self.address], env=self.env, capture_output=True,
                                 text=True, timeout=60)
            active = out.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0]
            if out.returncode == 0 and active.count("node_") >= count:
                return
            time.sleep(1)
        raise RuntimeError(f"the Ray cluster did not reach {count} nodes: {self.logs()}")

    def process_ids(self) -> list[int]:
        """Every process of the cluster's nodes (they share each node's process group) and this one (the driver)."""
        groups = {proc.pid for proc in self.procs}
        out = [os.getpid()]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) in groups:  # field 5 of /proc/<pid>/stat: the process group
                out.append(int(stat.parent.name))
        return out

    def connections(self) -> list[tuple[str, str]]:
        """(local, remote) IPv4/IPv6 addresses of every established TCP connection of the cluster's processes."""
        inodes: set[str] = set()
        for pid in self.process_ids():
            try:
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
            except OSError:
                continue
        out = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if parts[3] == "01" and parts[9] in inodes:  # 01: ESTABLISHED
                    out.append((_address(parts[1]), _address(parts[2])))
        return out

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-1500:] for p in self.temp.glob("*.log"))

    def stop(self) -> None:
        """Every process the nodes started (they share each node's session), then the temp folder."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for proc in self.procs:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.time() + (3 if sig == signal.SIGTERM else 10)
            for proc in self.procs:
                try:
                    proc.wait(max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    pass
        shutil.rmtree(self.temp, ignore_errors=True)


def _address(hex_address: str) -> str:
    """/proc/net/tcp's 'HEXIP:HEXPORT' (little-endian IPv4, or IPv6 in 4 little-endian words) as an IP string."""
    import ipaddress

    ip, _ = hex_address.split(":")
    if len(ip) == 8:
        return str(ipaddress.IPv4Address(bytes.fromhex(ip)[::-1]))
    words = bytes.fromhex(ip)
    return str(ipaddress.IPv6Address(b"".join(words[i:i + 4][::-1] for i in range(0, 16, 4))))


def is_loopback(address: str) -> bool:
    import ipaddress

    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback
