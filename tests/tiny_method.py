"""A tiny but real distillation method for the job and store tests: each iteration pulls every
synthetic image a step towards the mean of a random real batch of its class (no network, so
tests stay fast). Options to slow it down, fail or diverge at a chosen iteration."""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ddcore.methods import METHODS, DistillMethod, MethodConfig, register_method


@dataclass
class TinyPullConfig(MethodConfig):
    iterations: int = 20
    lr: float = 0.2
    batch: int = 16
    sleep_s: float = 0.0  # per iteration, to keep a job running while a test acts on it
    fail_at: int = 0  # raise at this iteration (0: never)
    diverge_at: int = 0  # report a NaN loss at this iteration (0: never)


class TinyPull(DistillMethod):
    name = "tinypull"
    title = "Tiny pull (test method)"
    family = "test"
    explanation = "Moves each synthetic image towards the mean of real images of its class."
    Config = TinyPullConfig

    def _step(self) -> dict[str, float]:
        if self.config.sleep_s:
            time.sleep(self.config.sleep_s)
        it = self.iteration + 1
        if it == self.config.fail_at:
            raise RuntimeError(f"tiny pull failed on purpose at iteration {it}")
        g = self.rng()
        loss = 0.0
        with torch.no_grad():
            for c in range(self.info.num_classes):
                target = self.real_batch(c, self.config.batch, g).mean(0, keepdim=True)
                rows = slice(c * self.ipc, (c + 1) * self.ipc)
                diff = target - self.images[rows]
                loss += float(diff.pow(2).mean())
                self.images[rows] += self.config.lr * diff
        if it == self.config.diverge_at:
            loss = float("nan")
        return {"loss": loss / self.info.num_classes}


if "tinypull" not in METHODS:
    register_method(TinyPull)
