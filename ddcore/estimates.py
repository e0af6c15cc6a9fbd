"""How long a distillation would take on a CPU like this repo's (2 cores), from measured seconds per iteration.

Why: the paper presets run for thousands of iterations; a user who presses Start on a laptop should be told
"about 60 hours" before, not find out from an ETA afterwards. The table is measured, not modelled: paper
hyperparameters, one torch thread, benchmarks/results/methods-speed.md (2026-11-25, load ~1); a DC/DSA row is the
timed outer loops scaled to a whole iteration (outer_full / outer_timed). Other methods and IPCs take the nearest
measured IPC of the same method and dataset family, or say they have no estimate.
"""
from __future__ import annotations

from dataclasses import dataclass

SOURCE = "benchmarks/results/methods-speed.md (paper hyperparameters, one thread of a 2-core x86-64 CPU)"

# (method, dataset family, IPC) -> seconds per iteration; 'grey' covers MNIST and Fashion-MNIST (28×28×1), 'colour'
# CIFAR-10/100 and SVHN (32×32×3).
PAPER_CPU_SECONDS: dict[tuple[str, str, int], float] = {
    ("dm", "grey", 1): 2.75, ("dm", "grey", 10): 2.92, ("dm", "grey", 50): 3.78,
    ("dm", "colour", 1): 2.94, ("dm", "colour", 10): 3.40, ("dm", "colour", 50): 4.43,
    ("dc", "grey", 1): 11.56, ("dc", "grey", 10): 46.31 / 2 * 10, ("dc", "grey", 50): 45.25 / 2 * 50,
    ("dc", "colour", 1): 11.68, ("dc", "colour", 10): 45.27 / 2 * 10, ("dc", "colour", 50): 46.07 / 2 * 50,
    ("dsa", "grey", 1): 11.74, ("dsa", "grey", 10): 44.18 / 2 * 10, ("dsa", "grey", 50): 45.75 / 2 * 50,
    ("dsa", "colour", 1): 10.75, ("dsa", "colour", 10): 42.91 / 2 * 10, ("dsa", "colour", 50): 45.26 / 2 * 50,
}


@dataclass(frozen=True)
class Estimate:
    seconds: float
    per_iteration_s: float
    measured_ipc: int
    source: str = SOURCE


def family(channels: int) -> str:
    return "grey" if channels == 1 else "colour"


def paper_cpu_estimate(method: str, channels: int, ipc: int, iterations: int) -> Estimate | None:
    """The paper preset's wall time on this kind of CPU, or None where nothing comparable was measured."""
    rows = {i: s for (m, f, i), s in PAPER_CPU_SECONDS.items() if m == method and f == family(channels)}
    if not rows:
        return None
    nearest = min(rows, key=lambda i: (abs(i - ipc), i))
    return Estimate(rows[nearest] * int(iterations), rows[nearest], nearest)
