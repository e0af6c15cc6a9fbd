"""The Ray executor: portable jobs (distill, evaluate, expert training) run on a Ray cluster's workers.

Why: a table of methods × datasets × IPCs × seeds is hundreds of runs; Ray is the maintained engine for
spreading them over machines. The queue stays where the Studio runs (order, fair share, the live
snapshots every page reads); only the task itself moves:

    executor = RayExecutor("127.0.0.1:6379")        # or connect() with RAY_ADDRESS; ray.init is called here
    manager = JobManager(store, executors={"ray": executor}); manager.submit(spec, executor="ray")

For each job it packs the job's inputs (its run, its required artefacts) from the submitting store
(ddcore.platform.transfer), runs the task in a worker against a scratch store seeded with them, relays the
task's progress, metrics and images (and the job's pause / step / stop) through one small actor, and
unpacks what the task changed into the submitting store when it ends. A worker that dies mid-task has its
task retried (`max_retries`) from the same inputs; when the retries are spent the job fails with the reason,
and the submitting store still holds everything it held before.

The Studio's code (ddcore/) and embedded data (assets/) travel to the workers with the job (Ray's
`working_dir`); workers need the same Python packages, and the datasets at the paths in DDCORE_DATA
(passed on from the submitting process) or in their own DDCORE_DATA.
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .executors import ThreadExecutor
from .relay import NO_CONTROL, RELAY_EVERY_S, RelayRecorder, apply_event, control_of, portable_exception, take_steps
from .transfer import pack_changes, pack_slice, store_rows, unpack_slice

ADDRESS_VARIABLE = "RAY_ADDRESS"  # Ray's own variable: the Studio uses the cluster it names
CAPACITY_TTL_S = 10.0
INSTALL_HINT = "pip install ray==2.60.0 (pinned in requirements.txt)"
SCRATCH_PREFIX = "ddstudio-worker-"  # then the worker's pid: a worker killed mid-task leaves its folder behind


class WorkerLost(RuntimeError):
    """The worker (or its node) running a job died, and the retries were spent."""


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise RuntimeError(f"Ray is not installed here; {INSTALL_HINT}") from e
    return ray


def cluster_address() -> str | None:
    """The cluster the Studio is pointed at (RAY_ADDRESS), or None: jobs run in this process."""
    address = os.environ.get(ADDRESS_VARIABLE, "").strip()
    return address or None


def check_address(address: str) -> str:
    """'host:port', 'auto' or 'ray://host:port'; anything else is refused with the forms named."""
    address = str(address).strip()
    if address == "auto" or address.startswith("ray://"):
        return address
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c.isspace() for c in host):
        raise ValueError(f"a Ray cluster address is host:port (e.g. 127.0.0.1:6379), 'auto' or ray://host:port, "
                         f"not {address!r}")
    return address


def _check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail in seconds when nothing listens at host:port (ray.init itself retries for minutes)."""
    if address == "auto" or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise ConnectionError(f"Nothing answers at {address} ({e.strerror or e}). Is the cluster started there "
                              "(`ray start --head --port=…`), and is the address right?") from None


def _stage_code() -> Path:
    """A folder with just ddcore/ and assets/ (what a worker imports and the embedded default data), the
    working_dir every worker gets; Ray uploads it once per content."""
    from ..paths import ASSETS_DIR, PACKAGE_DIR

    stage = Path(tempfile.mkdtemp(prefix="ddstudio-ray-code-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(PACKAGE_DIR, stage / "ddcore", ignore=ignore)
    if ASSETS_DIR.is_dir():
        shutil.copytree(ASSETS_DIR, stage / "assets", ignore=ignore)
    return stage


class RayExecutor(ThreadExecutor):
    """Runs each portable job as one Ray task with the resources its kind declares."""

    name = "ray"
    remote = True

    def __init__(self, address: str | None = None, *, max_retries: int = 2) -> None:
        super().__init__()
        ray = _ray()
        self.address = check_address(address or cluster_address() or "")
        _check_reachable(self.address)
        self.max_retries = int(max_retries)
        self._stage = _stage_code()
        from ..paths import default_data_roots

        env = {"DDCORE_DATA": os.pathsep.join(str(p) for p in default_data_roots()), "RAY_USAGE_STATS_ENABLED": "0"}
        try:
            ray.init(address=self.address, runtime_env={"working_dir": str(self._stage), "env_vars": env},
                     namespace="ddstudio", logging_level="WARNING", log_to_driver=False, ignore_reinit_error=True)
        except Exception as e:
            shutil.rmtree(self._stage, ignore_errors=True)
            raise ConnectionError(f"Could not reach the Ray cluster at {self.address}: {e}. Start one with "
                                  "`ray start --head` (see README.md, Sweeps on a cluster).") from e
        self._relay = _relay_class(ray).options(num_cpus=0).remote()
        self._closed = False
        self._resources: dict[str, float] = dict(ray.cluster_resources())
        threading.Thread(target=self._watch_resources, daemon=True, name="ddray-resources").start()

    # ------------------------------------------------------------------ what the queue asks
    def _watch_resources(self) -> None:
        """The cluster's resources, refreshed every CAPACITY_TTL_S on a thread of its own: the queue asks for the
        capacity under its lock, so the answer must never wait on the network."""
        while not self._closed:
            try:
                self._resources = dict(_ray().cluster_resources())
            except Exception:  # a cluster that does not answer keeps its last known size
                pass
            time.sleep(CAPACITY_TTL_S)

    def capacity(self, device: str) -> int | None:
        """Jobs at once: the cluster's CPUs (each job takes one), or its GPUs for CUDA jobs (last known)."""
        if device == "cuda":
            return max(1, int(self._resources.get("GPU", 0)))
        return max(1, int(self._resources.get("CPU", 1)))

    def nodes(self) -> list[dict[str, Any]]:
        """The cluster's live nodes: address, CPUs, GPUs."""
        out = []
        for node in _ray().nodes():
            if node.get("Alive"):
                r = node.get("Resources", {})
                out.append({"address": node.get("NodeManagerAddress", ""), "cpus": r.get("CPU", 0),
                            "gpus": r.get("GPU", 0), "id": node.get("NodeID", "")[:8]})
        return out

    def run(self, task: Any, spec: Any, ctx: Any, job: Any) -> Any:
        ray = _ray()
        resources = task.resources(spec)
        inbound = pack_slice(ctx.store, run_ids=([ctx.run_id] if ctx.run_id else []) + list(task.other_runs_read(spec)),
                             artefact_keys=[record.key for record in ctx.artefacts.values()])
        artefact_keys = {kind: record.key for kind, record in ctx.artefacts.items()}
        threads = max(1, int(resources.cpus))
        ref = _remote_function(ray).options(num_cpus=resources.cpus, num_gpus=resources.gpus,
                                            max_retries=self.max_retries, retry_exceptions=False).remote(
            task.kind, spec, inbound, artefact_keys, job.id, ctx.run_id, self._relay, threads)
        job.publish(message="Waiting for a cluster worker…", where="cluster (waiting)")
        attempts = 0
        steps_granted = 0
        try:
            while True:
                ready, _ = ray.wait([ref], timeout=RELAY_EVERY_S)
                steps_granted += take_steps(job)
                control = control_of(job, steps_granted)
                for event in ray.get(self._relay.exchange.remote(job.id, control)):
                    attempts = apply_event(event, job, ctx, task, attempts)
                if ready:
                    break
            try:
                ok, result, outbound = ray.get(ref)
            except ray.exceptions.RayTaskError as e:  # the task function itself failed outside the task's code
                raise (e.cause if isinstance(e.cause, BaseException) else RuntimeError(str(e))) from None
            except ray.exceptions.RayError as e:  # the worker or its node died and the retries are spent
                reason = type(e).__name__
                raise WorkerLost(f"the cluster worker running it died ({reason}) on each of {max(attempts, 1)} "
                                 f"attempt(s); nothing it made was kept") from None
            for event in ray.get(self._relay.exchange.remote(job.id, control)):  # the last words before the end
                attempts = apply_event(event, job, ctx, task, attempts)
            unpack_slice(ctx.store, outbound)
            if not ok:
                raise result
            return result
        except BaseException:
            try:  # this side gave up (shutdown, the relay failed): the cluster stops the task too
                ray.cancel(ref, force=True)
            except Exception:
                pass
            raise
        finally:
            try:
                self._relay.forget.remote(job.id)
            except Exception:
                pass

    def shutdown(self, wait: float = 0.0) -> None:
        super().shutdown(wait)
        self._closed = True
        shutil.rmtree(self._stage, ignore_errors=True)


def run_on_worker(kind: str, spec: Any, inbound: bytes, artefact_keys: dict[str, str], job_id: str,
                  run_id: str | None, relay: Any, threads: int) -> tuple[bool, Any, bytes]:
    """The body of one Ray task: the task against a scratch store seeded with its inputs. Returns (ok, result or
    the exception it raised, the store slice it changed), so even a failed run's last good set comes back."""
    from ..device import set_threads
    from ..platform.store import Store
    from ..tasks import TASKS, TaskContext

    set_threads(threads)
    recorder = RelayRecorder(lambda events: ray_get(relay.report.remote(job_id, events)))
    recorder.send("started", os.getpid(), _node_address())
    sweep_dead_scratch()
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-") as folder:
        scratch = Store(folder)
        try:
            unpack_slice(scratch, inbound)
            before = store_rows(scratch)
            artefacts = {kind_: scratch.get_artefact(key) for kind_, key in artefact_keys.items()}
            ctx = TaskContext(store=scratch, recorder=recorder, control=recorder, job_id=job_id, run_id=run_id,
                              artefacts=artefacts)  # type: ignore[arg-type]
            try:
                result, ok = TASKS.get(kind).run(spec, ctx), True
            except Exception as e:
                result, ok = portable_exception(e), False
            recorder._flush(force=True)
            return ok, result, pack_changes(scratch, before)
        finally:
            scratch.close()


def sweep_dead_scratch(root: str | Path | None = None) -> list[Path]:
    """Remove the scratch stores of workers that died mid-task (a SIGKILL skips TemporaryDirectory's cleanup, and
    each retry would leave one more); a folder names its worker, and a process that is gone cannot come back for it.
    What the dead task made is not lost: its job is retried from the submitting store. Returns what it removed."""
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid = folder.name[len(SCRATCH_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _process_exists(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def ray_get(ref: Any) -> Any:
    import ray

    return ray.get(ref)


def _node_address() -> str:
    try:
        import ray

        return str(ray.util.get_node_ip_address())
    except Exception:
        return socket.gethostname()


_CACHE: dict[str, Any] = {}


def _remote_function(ray: Any) -> Any:
    if "task" not in _CACHE:
        _CACHE["task"] = ray.remote(run_on_worker)
    return _CACHE["task"]


def _relay_class(ray: Any) -> Any:
    if "relay" not in _CACHE:

        class JobRelay:
            """Mailboxes between workers and the submitter: events up, control state down, per job."""

            def __init__(self) -> None:
                self.events: dict[str, list[Any]] = {}
                self.controls: dict[str, tuple[Any, ...]] = {}

            def report(self, job_id: str, events: list[Any]) -> tuple[Any, ...]:
                self.events.setdefault(job_id, []).extend(events)
                return self.controls.get(job_id, NO_CONTROL)

            def exchange(self, job_id: str, control: tuple[Any, ...]) -> list[Any]:
                self.controls[job_id] = control
                return self.events.pop(job_id, [])

            def forget(self, job_id: str) -> None:
                self.events.pop(job_id, None)
                self.controls.pop(job_id, None)

        _CACHE["relay"] = ray.remote(JobRelay)
    return _CACHE["relay"]
