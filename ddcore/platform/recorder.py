"""How a running task talks to the outside: one Recorder for progress, metrics and images, one Control
for pause / step / stop. The job queue, the CLI and the benchmarks each hand a task their own pair;
the task's code is the same in all three.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Protocol

import numpy as np


class Recorder(Protocol):
    def progress(self, done: float, total: float, message: str = "") -> None:
        """done of total units (iterations, epochs, ...); the rate and ETA are derived from the calls."""

    def metrics(self, row: dict[str, Any]) -> None:
        """One row of per-iteration metrics (always with 'iteration')."""

    def images(self, images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]) -> None:
        """The current images (uint8 N×H×W×C) for a live view."""

    def state(self, status: str) -> None:
        """'running' or 'paused', as the task sees it."""

    def detail(self, value: Any) -> None:
        """A task's own live state (plain data: a sweep's cells) for the pages that know its kind."""


class Control(Protocol):
    def wait_turn(self, before_hold: Callable[[], None] | None = None) -> bool:
        """Block while paused; True to do one more unit of work, False to stop now. `before_hold` is called once
        before it says it holds (the task publishes where it stands, so "paused" is shown with that iteration)."""

    @property
    def stop_requested(self) -> bool: ...

    @property
    def paused_requested(self) -> bool: ...


class NullRecorder:
    """Records nothing (a library call that only wants the result)."""

    def progress(self, done: float, total: float, message: str = "") -> None:
        pass

    def metrics(self, row: dict[str, Any]) -> None:
        pass

    def images(self, images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]) -> None:
        pass

    def state(self, status: str) -> None:
        pass

    def detail(self, value: Any) -> None:
        pass


class EventControl:
    """Stop when an event is set (Ctrl-C in the CLI, a time budget in the benchmarks); never pauses."""

    def __init__(self, event: threading.Event | None = None, budget_s: float | None = None) -> None:
        self.event = event or threading.Event()
        self.deadline = None if budget_s is None else time.monotonic() + budget_s

    def wait_turn(self, before_hold: Callable[[], None] | None = None) -> bool:
        return not self.stop_requested

    @property
    def stop_requested(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.event.set()
        return self.event.is_set()

    @property
    def paused_requested(self) -> bool:
        return False


class ProgressRate:
    """Rate and ETA from (time, done) pairs, over a sliding window."""

    def __init__(self, window: int = 20) -> None:
        self.window, self.points = window, []  # type: ignore[var-annotated]
        self.start = time.monotonic()

    def add(self, done: float) -> tuple[float, float]:
        """(units per second, elapsed seconds)."""
        now = time.monotonic()
        self.points = (self.points + [(now, done)])[-self.window:]
        (t0, d0), (t1, d1) = self.points[0], self.points[-1]
        rate = (d1 - d0) / (t1 - t0) if t1 > t0 and d1 > d0 else (done / (now - self.start) if now > self.start else 0)
        return float(rate), now - self.start


STORE_EVERY_S = 2.0  # how often a run's progress row is written to the index
CHECKPOINT_EVERY_S = 30.0  # and a checkpoint at least this often, so a killed server loses under a minute of work


class RunRecorder:
    """Saves one distillation run into the store as it goes: metrics, a thinned snapshot history,
    checkpoints every `checkpoint_every` iterations or CHECKPOINT_EVERY_S seconds (whichever comes first),
    progress in the index, and at the end the set.

    The only writer of run files: the job queue, the CLI and the benchmarks all save through it."""

    def __init__(self, store: Any, run_id: str, checkpoint_every: int = 50) -> None:
        from .store import HistoryWriter

        self.store, self.run_id = store, run_id
        self.checkpoint_every = max(1, int(checkpoint_every or 50))
        self.history = HistoryWriter(store, run_id)
        self.pending: list[dict[str, Any]] = []
        self.last_store = time.monotonic()
        self.last_checkpoint = -1
        self.last_checkpoint_at = time.monotonic()

    def start(self, runner: Any, resumed: bool, paused: bool = False) -> None:
        m = runner.method
        if resumed:  # what came after the checkpoint is redone: drop its metrics and snapshots
            self.store.truncate_metrics(self.run_id, m.iteration)
            self.store.drop_frames(self.run_id, [i for i in self.store.frame_iterations(self.run_id) if i > m.iteration])
            from .store import HistoryWriter

            self.history = HistoryWriter(self.store, self.run_id)  # its stride from the frames that remain
        self.last_checkpoint = m.iteration
        said = f"Resumed from its checkpoint at iteration {m.iteration:,} of {m.total_iterations:,}." if resumed else ""
        self.store.update_run(self.run_id, status="paused" if paused else "running", message=said,
                              total=int(m.total_iterations))
        self.history.offer(m.iteration, lambda: _frame(runner), force=m.iteration == 0)

    def step(self, runner: Any, row: dict[str, Any]) -> None:
        it = runner.method.iteration
        self.pending.append(row)
        self.history.offer(it, lambda: _frame(runner))
        due = it % self.checkpoint_every == 0 or time.monotonic() - self.last_checkpoint_at >= CHECKPOINT_EVERY_S
        if due and it != self.last_checkpoint:
            self.flush()
            self.store.save_checkpoint(self.run_id, runner.checkpoint())
            self.last_checkpoint, self.last_checkpoint_at = it, time.monotonic()
        if time.monotonic() - self.last_store >= STORE_EVERY_S:
            self.flush()
            self.store.update_run(self.run_id, iteration=it, elapsed_s=float(runner.method.elapsed_s))
            self.last_store = time.monotonic()

    def flush(self) -> None:
        self.store.append_metrics(self.run_id, self.pending)
        self.pending.clear()

    def finish(self, runner: Any, status: str, message: str = "") -> tuple[str, str]:
        """Save the set, the final checkpoint and frame; returns the (status, message) stored."""
        self.flush()
        if runner is not None:
            try:
                self.store.save_set(self.run_id, runner.result())
                self.store.save_checkpoint(self.run_id, runner.checkpoint())
                it = runner.method.iteration
                if it not in self.store.frame_iterations(self.run_id):
                    images, labels = _frame(runner)
                    self.store.add_frame(self.run_id, it, images, labels)
                self.store.update_run(self.run_id, iteration=it, elapsed_s=float(runner.method.elapsed_s))
            except Exception as e:  # keep the original failure's message; note this one
                message = message or f"{type(e).__name__}: {e}"
                status = "failed"
        if status == "stopped" and not message:
            message = "Stopped by the user; resume it to continue from the last iteration."
        if status == "interrupted" and not message and runner is not None:
            message = (f"The server was shut down at iteration {runner.method.iteration:,}; the run was saved there "
                       "and continues from it when the server starts again.")
        self.store.update_run(self.run_id, status=status, message=message)
        return status, message


def _frame(runner: Any) -> tuple[np.ndarray, np.ndarray]:
    snap = runner.snapshot()
    return snap.images, snap.labels
