"""The runner: drives any distillation method step by step, with snapshots, checkpoints and evaluation.

Why one runner: the CLI, the library and the UI's job manager all need the same bookkeeping
(timing, ETA, periodic snapshots for the live view, checkpoints for resume, NaN handling that
keeps the last good set), so it lives here and not in each method.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable

import numpy as np
import torch

from .data import LoadedDataset, load_dataset
from .device import resolve_device
from .methods import DistillMethod, DivergenceError, create_method
from .synthetic import SyntheticSet

STATE_VERSION = 1


@dataclass
class RunSpec:
    """Everything that defines a run; JSON-serialisable (to_dict / from_dict)."""

    dataset: str
    method: str
    ipc: int
    preset: str = "quick"
    overrides: dict[str, Any] = field(default_factory=dict)  # method config fields, e.g. {"iterations": 200}
    architecture: str = "convnet"
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. {"width": 64}
    seed: int = 0
    device: str = "auto"
    data_root: str | None = None
    snapshot_every_s: float = 0.5  # at most this often (and always at the first and last iteration)
    checkpoint_every: int = 50  # iterations
    eval_every: int | None = None  # iterations; a quick one-seed evaluation
    eval_preset: str = "quick"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunSpec":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"RunSpec has no field(s) {', '.join(unknown)}")
        return cls(**d)


@dataclass
class Snapshot:
    """The current images (uint8 N×H×W×C, de-normalised) and progress, for a live view."""

    iteration: int
    total: int
    images: np.ndarray
    labels: np.ndarray
    metrics: dict[str, float]
    elapsed_s: float
    its_per_s: float
    eta_s: float | None


class Runner:
    def __init__(self, spec: RunSpec, data: LoadedDataset | None = None, *,
                 on_snapshot: Callable[[Snapshot], None] | None = None,
                 on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
                 on_metrics: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.spec = spec
        self.device = resolve_device(spec.device)
        self.data = data if data is not None else load_dataset(spec.dataset, spec.data_root)
        self.method: DistillMethod = create_method(spec.method, self.data, spec.ipc, preset=spec.preset,
                                                   seed=spec.seed, device=str(self.device),
                                                   architecture=spec.architecture,
                                                   model_kwargs=dict(spec.model_kwargs or {}) or None,
                                                   **dict(spec.overrides or {}))
        self.on_snapshot, self.on_checkpoint, self.on_metrics = on_snapshot, on_checkpoint, on_metrics
        self.history: list[dict[str, Any]] = []
        self.error: str | None = None
        self._last_snapshot_t = -math.inf
        self._good = self._capture()
        self._recent: list[tuple[float, int]] = []  # (elapsed_s, iteration) for the speed estimate

    # ------------------------------------------------------------------ state
    @property
    def done(self) -> bool:
        return self.method.done or self.error is not None

    def _capture(self) -> tuple[torch.Tensor, int, float]:
        m = self.method
        return m.images.detach().clone(), m.iteration, m.elapsed_s

    def _restore_good(self) -> None:
        images, iteration, elapsed = self._good
        m = self.method
        with torch.no_grad():
            m.images.data.copy_(images)
        m.iteration, m.elapsed_s = iteration, elapsed

    # ------------------------------------------------------------------ stepping
    def step(self) -> dict[str, Any]:
        """One outer iteration plus bookkeeping; DivergenceError keeps the last good set."""
        if self.done:
            raise RuntimeError("the run is finished" if self.error is None else f"the run failed: {self.error}")
        m = self.method
        if m.iteration == 0 and not self.history:
            self._maybe_snapshot(force=True)
        self._good = self._capture()
        try:
            metrics = m.step()
        except DivergenceError as e:
            self._restore_good()
            self.error = (f"{e}. The loss exploded or became NaN; the set from iteration {m.iteration} (the last "
                          "good one) is kept. Try a smaller image learning rate (lr_img).")
            self._maybe_snapshot(force=True)
            raise DivergenceError(self.error) from e
        row = {"iteration": m.iteration, "time": round(m.elapsed_s, 4), **{k: float(v) for k, v in metrics.items()}}
        self._recent.append((m.elapsed_s, m.iteration))
        self._recent = self._recent[-20:]
        if self.spec.eval_every and (m.iteration % int(self.spec.eval_every) == 0 or m.done):
            row.update(self.evaluate_now())
        self.history.append(row)
        if self.on_metrics is not None:
            self.on_metrics(row)
        if self.on_checkpoint is not None and self.spec.checkpoint_every and (
                m.iteration % int(self.spec.checkpoint_every) == 0 or m.done):
            self.on_checkpoint(self.checkpoint())
        self._maybe_snapshot(force=m.done)
        return row

    def evaluate_now(self, seeds: int = 1) -> dict[str, float]:
        """A quick evaluation of the current set (one network); returns {'eval_acc': ...}."""
        from .evaluate import evaluate

        res = evaluate(self.method.synthetic(), architecture=self.spec.architecture, preset=self.spec.eval_preset,
                       seeds=seeds, device=str(self.device), test_data=self.data)
        return {"eval_acc": float(res.mean), "eval_std": float(res.std)}

    def its_per_s(self) -> float:
        if len(self._recent) >= 2:
            (t0, i0), (t1, i1) = self._recent[0], self._recent[-1]
            if t1 > t0:
                return (i1 - i0) / (t1 - t0)
        m = self.method
        return m.iteration / m.elapsed_s if m.elapsed_s > 0 else 0.0

    def snapshot(self) -> Snapshot:
        m = self.method
        s = m.synthetic()
        speed = self.its_per_s()
        remaining = max(0, m.total_iterations - m.iteration)
        metrics = {k: v for k, v in (self.history[-1] if self.history else {}).items() if k not in ("iteration", "time")}
        return Snapshot(iteration=m.iteration, total=m.total_iterations, images=s.to_uint8(),
                        labels=s.hard_labels().numpy(), metrics=metrics, elapsed_s=m.elapsed_s, its_per_s=speed,
                        eta_s=(remaining / speed) if speed > 0 else None)

    def _maybe_snapshot(self, force: bool = False) -> None:
        if self.on_snapshot is None:
            return
        now = time.monotonic()
        if force or now - self._last_snapshot_t >= self.spec.snapshot_every_s:
            self._last_snapshot_t = now
            self.on_snapshot(self.snapshot())

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self) -> dict[str, Any]:
        """Method state (images, optimiser, iteration) plus spec and history; see ddcore.checkpoint to save it."""
        return {"version": STATE_VERSION, "spec": self.spec.to_dict(), "method": self.method.state_dict(),
                "history": [dict(r) for r in self.history], "error": self.error}

    def restore(self, state: dict[str, Any]) -> None:
        spec = state.get("spec", {})
        for key in ("dataset", "method", "ipc"):
            if key in spec and spec[key] != getattr(self.spec, key):
                raise ValueError(f"checkpoint is for {key}={spec[key]!r}, this run has {getattr(self.spec, key)!r}")
        self.method.load_state_dict(state["method"])
        self.history = [dict(r) for r in state.get("history", []) if r.get("iteration", 0) <= self.method.iteration]
        self.error = None
        self._recent = []
        self._good = self._capture()

    # ------------------------------------------------------------------ convenience
    def run(self, stop_event: threading.Event | None = None,
            progress: Callable[[dict[str, Any]], None] | None = None) -> SyntheticSet:
        """Step until done or stop_event is set; progress(row) after every iteration."""
        while not self.done and not (stop_event is not None and stop_event.is_set()):
            row = self.step()
            if progress is not None:
                progress(row)
        return self.result()

    def result(self) -> SyntheticSet:
        s = self.method.synthetic()
        s.meta.notes = self.error or ""
        s.meta.config = {**s.meta.config, "preset": self.spec.preset}
        return s


__all__ = ["DivergenceError", "RunSpec", "Runner", "Snapshot"]
