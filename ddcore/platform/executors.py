"""Executors: where a job's work runs, behind one small interface between the queue and the machine.

The queue decides what runs next (order, device slots, dependencies); an executor only runs it:

    executor.start(job, work)    # run work() (the job's bookkeeping, which calls executor.run) on a thread
    executor.run(task, spec, ctx, job) -> result     # run the task itself (here, or somewhere else)
    executor.capacity(device) -> int | None          # jobs it runs at once on that device (None: the queue's slots)
    executor.shutdown(wait)

`ThreadExecutor` (the default) runs the task on a daemon thread in this process: the job's recorder and
controls are plain shared memory. `RayExecutor` (ddcore.platform.ray_executor) runs portable tasks on a
Ray cluster: it packs the job's inputs into a scratch store there (ddcore.platform.transfer), relays the
recorder's calls and the job's control requests over a small actor, and when the task returns unpacks
what it changed into the submitting store, so runs, evaluations and artefacts end where they were asked for.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Protocol


class Executor(Protocol):
    name: str
    remote: bool  # True: tasks run in other processes, so only portable task kinds may use it

    def start(self, job: Any, work: Callable[[], None]) -> None: ...

    def run(self, task: Any, spec: Any, ctx: Any, job: Any) -> Any: ...

    def capacity(self, device: str) -> int | None: ...

    def shutdown(self, wait: float = 0.0) -> None: ...


class ThreadExecutor:
    """One daemon thread per running job, in this process."""

    name = "threads"
    remote = False

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []

    def start(self, job: Any, work: Callable[[], None]) -> None:
        thread = threading.Thread(target=work, daemon=True, name=f"ddjob-{job.id}")
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def run(self, task: Any, spec: Any, ctx: Any, job: Any) -> Any:
        return task.run(spec, ctx)

    def capacity(self, device: str) -> int | None:
        return None

    def shutdown(self, wait: float = 0.0) -> None:
        for t in list(self._threads):
            t.join(timeout=wait)
