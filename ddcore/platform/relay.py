"""The relay between a job here and its task running in another process (a Ray worker, a local worker process).

The task gets a `RelayRecorder` as its recorder and control: it batches progress, metrics, images and state every
RELAY_EVERY_S into events and gets the job's control state back; the submitting side hands the job's controls
down and applies the events to the job (`apply_event`), so pages see a remote job exactly as a local one.

Events: ("started", pid, where), ("progress", done, total, message), ("metrics", [rows]), ("images", images,
labels, class_names), ("state", status), ("hold", holding, pause number), ("detail", value).
Control: (stop, paused, single steps granted so far, shutdown, pause number). The pause number counts the job's
pauses: a "hold" answers one pause, so after a quick Resume and Pause the job does not read the worker's hold from
the pause before as this one's (it would say "paused" while the worker still runs).
"""
from __future__ import annotations

import time
from typing import Any, Callable

RELAY_EVERY_S = 0.25  # how often a worker sends progress and images, and the submitter passes on controls


class TaskFailed(RuntimeError):
    """A task failed in another process; its message is the original's type, text and place (queue.error_message)."""


NO_CONTROL = (False, False, 0, False, 0)  # before the first control arrives: run


def control_of(job: Any, steps_granted: int) -> tuple[bool, bool, int, bool, int]:
    """What the worker needs of the job's controls: (stop, paused, single steps granted so far, shutdown, pause number)."""
    return job.stop_requested, job.paused_requested, steps_granted, job.shutdown_requested, job.pauses


def take_steps(job: Any) -> int:
    """Single steps asked for since the last look (they are handed to the worker, which spends them)."""
    with job._cond:
        steps, job._steps = job._steps, 0
    return steps


def apply_event(event: tuple[Any, ...], job: Any, ctx: Any, task: Any, attempts: int) -> int:
    """One relayed call of the remote task, made on the job here."""
    kind, *args = event
    if kind == "started":
        pid, address = args
        attempts += 1
        where = f"{address} · pid {pid} · attempt {attempts}"
        message = "" if attempts == 1 else f"Retrying: the worker running attempt {attempts - 1} died"
        job.publish(where=where, worker_pid=int(pid), attempt=attempts, message=message)
        if task.kind == "distill" and ctx.run_id:
            ctx.store.update_run_if(ctx.run_id, "queued", status="running")
    elif kind == "progress":
        job.progress(*args)
    elif kind == "metrics":
        for row in args[0]:
            job.metrics(row)
    elif kind == "images":
        job.images(*args)
    elif kind == "state":
        job.state(args[0])
    elif kind == "hold":
        holding, pause = args
        with job._cond:
            job._holding = bool(holding) and pause == job.pauses  # a hold answering an earlier pause is not this one
            job.publish(pausing=job._paused and not job._stop and not job._holding)
    elif kind == "detail":
        job.detail(args[0])
    return attempts


# ---------------------------------------------------------------------- the worker side
class RelayRecorder:
    """The Recorder and Control a task gets in a worker: calls are batched to `report(events) -> control` every
    RELAY_EVERY_S (a Ray actor's method, or a pipe to the submitting process); the job's control state comes back
    with each batch as (stop, paused, steps granted so far, shutdown)."""

    def __init__(self, report: Callable[[list[Any]], tuple[Any, ...]], every: float = RELAY_EVERY_S) -> None:
        self.report, self.every = report, every
        self._events: list[tuple[Any, ...]] = []
        self._metrics: list[dict[str, Any]] = []
        self._latest: dict[str, tuple[Any, ...]] = {}  # progress and images: only the newest matters
        self._last = 0.0
        self._control: tuple[Any, ...] = NO_CONTROL
        self._steps_used = 0

    def _flush(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._last < self.every:
            return
        # In the order things happened: the metrics, progress and images waiting here came before the event that
        # forces this flush (send flushes at once). A "hold" sent ahead of the last progress let the job say
        # "paused" at the iteration before the one the worker holds at, until the progress came through.
        events = [("metrics", list(self._metrics))] if self._metrics else []
        events += list(self._latest.values()) + list(self._events)
        self._events, self._metrics, self._latest = [], [], {}
        self._control = tuple(self.report(events))
        self._last = time.monotonic()

    def send(self, *event: Any) -> None:
        self._events.append(event)
        self._flush(force=True)

    # Recorder
    def progress(self, done: float, total: float, message: str = "") -> None:
        self._latest["progress"] = ("progress", done, total, message)
        self._flush()

    def metrics(self, row: dict[str, Any]) -> None:
        self._metrics.append(dict(row))
        self._flush()

    def images(self, images: Any, labels: Any, class_names: tuple[str, ...]) -> None:
        self._latest["images"] = ("images", images, labels, tuple(class_names))
        self._flush()

    def state(self, status: str) -> None:
        self.send("state", status)

    def detail(self, value: Any) -> None:
        self._latest["detail"] = ("detail", value)
        self._flush()

    # Control
    def wait_turn(self, before_hold: Callable[[], None] | None = None) -> bool:
        self._flush()
        announced = None  # the pause number this worker said it holds for
        while True:
            # One reading of the controls decides: the flush that says "hold False" may already bring the next
            # pause, and reading that as this turn's pause spent a single step nobody asked for
            stop, paused, granted, _, pause = self._control
            if stop or not paused or granted > self._steps_used:
                break
            if announced != pause:  # a new hold, or a new pause (Resume and Pause) while holding
                if announced is None and before_hold is not None:
                    before_hold()  # the iteration held at is reported first, then "held"
                announced = pause
                self.send("hold", True, announced)
            time.sleep(self.every)
            self._flush(force=True)
        if announced is not None:
            self.send("hold", False, announced)
        if stop:
            return False
        if paused:
            self._steps_used += 1
        return True

    @property
    def stop_requested(self) -> bool:
        self._flush()
        return bool(self._control[0])

    @property
    def paused_requested(self) -> bool:
        return bool(self._control[1])

    @property
    def shutdown_requested(self) -> bool:
        return bool(self._control[3])




def portable_exception(e: BaseException) -> BaseException:
    """An exception that crosses a process boundary intact: a stop stays a Cancelled, anything else becomes a
    TaskFailed carrying the original's type, message and place (attributes such as a runner are dropped)."""
    from ..tasks.base import Cancelled
    from .queue import error_message

    if isinstance(e, Cancelled):
        return Cancelled(str(e))
    return TaskFailed(error_message(e))
