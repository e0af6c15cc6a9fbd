"""The runner: steps any distillation method, with its speed, snapshots, checkpoints and NaN handling.

Why: the bookkeeping around a method's step() (timing, ETA, the current images as uint8 for a live
view, checkpoints for resume, keeping the last good set when the loss explodes) is the same for every
method. Saving a run is the distill task's job (ddcore/tasks/distill.py), which the job queue, the
CLI and the benchmarks all call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from .data import LoadedDataset, load_dataset
from .device import resolve_device
from .methods import DistillMethod, DivergenceError, create_method
from .synthetic import SyntheticSet


class RunSpecLike(Protocol):
    """What the runner reads of a run's spec (ddcore.tasks.distill.DistillSpec is one)."""

    dataset: str
    method: str
    ipc: int
    preset: str
    overrides: dict[str, Any]
    architecture: str
    model_kwargs: dict[str, Any]
    seed: int
    device: str
    data_root: str | None
    eval_every: int | None
    eval_preset: str

    def to_dict(self) -> dict[str, Any]: ...

STATE_VERSION = 1


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
    def __init__(self, spec: RunSpecLike, data: LoadedDataset | None = None, *,
                 artefacts: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.device = resolve_device(spec.device)
        self.data = data if data is not None else load_dataset(spec.dataset, spec.data_root)
        check_ipc(int(spec.ipc), self.data)
        self.method: DistillMethod = create_method(spec.method, self.data, spec.ipc, preset=spec.preset,
                                                   seed=spec.seed, device=str(self.device),
                                                   architecture=spec.architecture,
                                                   model_kwargs=dict(spec.model_kwargs or {}) or None,
                                                   artefacts=artefacts, **dict(spec.overrides or {}))
        self.history: list[dict[str, Any]] = []
        self.error: str | None = None
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
        self._good = self._capture()
        try:
            metrics = m.step()
            _check_images(m.images)
        except DivergenceError as e:
            self._restore_good()
            self.error = (f"{e}. The loss exploded or became NaN; the set from iteration {m.iteration} (the last "
                          "good one) is kept. Try a smaller image learning rate (lr_img).")
            raise DivergenceError(self.error) from e
        row = {"iteration": m.iteration, "time": round(m.elapsed_s, 4), **{k: float(v) for k, v in metrics.items()}}
        self._recent.append((m.elapsed_s, m.iteration))
        self._recent = self._recent[-20:]
        if self.spec.eval_every and (m.iteration % int(self.spec.eval_every) == 0 or m.done):
            row.update(self.evaluate_now())
        self.history.append(row)
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
        try:
            self.method.load_state_dict(state["method"])
            history = [dict(r) for r in state.get("history", []) if r.get("iteration", 0) <= self.method.iteration]
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as e:
            if isinstance(e, torch.OutOfMemoryError) or "CUDA" in str(e):  # the device, not the checkpoint
                raise
            raise ValueError(f"the checkpoint does not fit this run ({type(e).__name__}: {e}); start it again instead "
                             "of resuming") from e
        self.history = history
        self.error = None
        self._recent = []
        self._good = self._capture()

    # ------------------------------------------------------------------ output
    def result(self) -> SyntheticSet:
        s = self.method.synthetic()
        s.meta.notes = self.error or ""
        s.meta.config = {**s.meta.config, "preset": self.spec.preset}
        return s


__all__ = ["DivergenceError", "Runner", "Snapshot"]


def _check_images(images: torch.Tensor) -> None:
    """A step that left pixels non-finite or far outside any image's range diverged, whatever its loss said
    (lr_img=1e9 once 'succeeded' with pixels near 1e10)."""
    from .evaluation.api import MAX_PIXEL_MAGNITUDE

    peak = float(images.detach().abs().max())
    if not peak <= MAX_PIXEL_MAGNITUDE:  # NaN compares false
        raise DivergenceError(f"the synthetic pixels reached {peak:.3g} (normalised units)")


def check_ipc(ipc: int, data: LoadedDataset) -> None:
    """IPC is images per class of the synthetic set: at least 1, and no more than the smallest class has (a
    set larger than its data distils nothing)."""
    counts = [len(ix) for ix in data.train.class_indices]
    smallest = min(counts) if counts else 0
    if not 1 <= ipc <= smallest:
        which = data.info.class_names[counts.index(smallest)] if counts else "?"
        raise ValueError(f"IPC must be between 1 and {smallest:,} for {data.info.display_name} (its smallest class, "
                         f"{which!r}, has {smallest:,} training images), not {ipc:,}")
