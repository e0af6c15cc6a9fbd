"""Executors: where a job's work runs, behind one small interface between the queue and the machine.

The queue decides what runs next (order, device slots, dependencies); an executor only runs it:

    executor.start(job, work)    # run work() (which calls the task and reports through the job) somewhere
    executor.shutdown(wait)

`ThreadExecutor` (the default) runs work on a daemon thread in this process: the job's recorder and
controls are plain shared memory. An executor for other processes or machines (the sweeps issue's
Ray executor) implements the same two calls: it runs the task where it likes against a scratch store
there, relays the recorder's calls and the job's control requests over its own channel, and when the
task returns copies the run folder or artefact folder it produced into the submitting process's
store (`Store.import_run` / `Store.import_artefact`), so lineage and files end where the job was asked for.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Protocol


class Executor(Protocol):
    name: str

    def start(self, job: Any, work: Callable[[], None]) -> None: ...

    def shutdown(self, wait: float = 0.0) -> None: ...


class ThreadExecutor:
    """One daemon thread per running job, in this process."""

    name = "threads"

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []

    def start(self, job: Any, work: Callable[[], None]) -> None:
        thread = threading.Thread(target=work, daemon=True, name=f"ddjob-{job.id}")
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def shutdown(self, wait: float = 0.0) -> None:
        for t in list(self._threads):
            t.join(timeout=wait)
