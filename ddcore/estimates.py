"""How long a distillation would take on a CPU like this repo's (2 cores), from measured seconds per iteration.

Why: the paper presets run for thousands of iterations, and some quick presets (CAFE, IDC, DC at IPC 10) still take
an hour on a laptop; a user who presses Start should be told "about 60 hours" before, not find out from an ETA
afterwards. The tables are measured, not modelled, one torch thread each:

* paper: paper hyperparameters, benchmarks/results/methods-speed.md (2026-11-25, load ~1); a DC/DSA row is the timed
  outer loops scaled to a whole iteration (outer_full / outer_timed);
* quick and live: the distillation wall time over the iterations done in benchmarks/results/methods-accuracy.jsonl
  and methods-accuracy-live.jsonl (`python -m benchmarks.methods_accuracy --estimates` prints them), with another
  benchmark on the second core (load 1-4), so they lean long. Prerequisites (MTT's expert trajectories) are not in
  them: they are made once and shared.

A method and IPC take the nearest measured IPC of the same method, preset and dataset family; nothing is said past
twice the largest measured IPC (a matching method's cost grows with IPC), nor for a method never measured.
"""
from __future__ import annotations

from dataclasses import dataclass

SOURCES: dict[str, str] = {
    "paper": "benchmarks/results/methods-speed.md (paper hyperparameters, one thread of a 2-core x86-64 CPU)",
    "quick": "benchmarks/results/methods-accuracy.jsonl (quick preset, one thread of a 2-core x86-64 CPU)",
    "live": "benchmarks/results/methods-accuracy-live.jsonl (live preset, one thread of a 2-core x86-64 CPU)",
}

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


# The quick presets' rows (seconds per iteration; the iteration counts differ per method: see each preset).
QUICK_CPU_SECONDS: dict[tuple[str, str, int], float] = {
    ('cafe', 'colour', 1): 19.14, ('cafe', 'colour', 10): 153.95, ('cafe', 'grey', 1): 19.23, ('cafe', 'grey', 10): 120.1,
    ('datm', 'colour', 1): 1.69, ('datm', 'colour', 10): 8.69, ('datm', 'grey', 1): 1.77, ('datm', 'grey', 10): 8.37,
    ('dc', 'colour', 1): 5.58, ('dc', 'colour', 10): 86.91, ('dc', 'grey', 1): 6.83, ('dc', 'grey', 10): 94.01,
    ('dd', 'colour', 1): 1.7, ('dd', 'colour', 10): 3.19, ('dd', 'grey', 1): 2.51, ('dd', 'grey', 10): 4.05,
    ('dm', 'colour', 1): 1.36, ('dm', 'colour', 10): 2.8, ('dm', 'grey', 1): 1.35, ('dm', 'grey', 10): 1.7,
    ('dsa', 'colour', 1): 4.84, ('dsa', 'colour', 10): 86.49, ('dsa', 'grey', 1): 7.67, ('dsa', 'grey', 10): 92.75,
    ('frepo', 'colour', 1): 0.815, ('frepo', 'colour', 10): 1.8, ('frepo', 'grey', 1): 0.539, ('frepo', 'grey', 10): 1.08,
    ('idc', 'colour', 1): 15.58, ('idc', 'colour', 10): 50.26, ('idc', 'grey', 1): 15.21, ('idc', 'grey', 10): 49.63,
    ('idm', 'colour', 1): 2.66, ('idm', 'colour', 10): 4.98, ('idm', 'grey', 1): 3.6, ('idm', 'grey', 10): 3.15,
    ('kip_fc', 'colour', 1): 0.067, ('kip_fc', 'colour', 10): 0.069, ('kip_fc', 'grey', 1): 0.007, ('kip_fc', 'grey', 10): 0.017,
    ('mtt', 'colour', 1): 2.47, ('mtt', 'colour', 10): 9.39, ('mtt', 'grey', 1): 5.1, ('mtt', 'grey', 10): 9.47,
    ('random', 'colour', 1): 0.2, ('random', 'colour', 10): 0.2, ('random', 'grey', 1): 0.0, ('random', 'grey', 10): 0.0,
    ('rfad', 'colour', 1): 2.05, ('rfad', 'colour', 10): 2.46, ('rfad', 'grey', 1): 1.58, ('rfad', 'grey', 10): 2.5,
    ('tesla', 'colour', 1): 2.11, ('tesla', 'colour', 10): 10.44, ('tesla', 'grey', 1): 2.1, ('tesla', 'grey', 10): 14.29,
}
LIVE_CPU_SECONDS: dict[tuple[str, str, int], float] = {
    ('dm', 'grey', 10): 0.17,
}
SECONDS_PER_ITERATION: dict[str, dict[tuple[str, str, int], float]] = {
    "paper": PAPER_CPU_SECONDS, "quick": QUICK_CPU_SECONDS, "live": LIVE_CPU_SECONDS}


@dataclass(frozen=True)
class Estimate:
    seconds: float
    per_iteration_s: float
    measured_ipc: int
    preset: str = "paper"

    @property
    def source(self) -> str:
        return SOURCES[self.preset]


def family(channels: int) -> str:
    return "grey" if channels == 1 else "colour"


def cpu_estimate(method: str, channels: int, ipc: int, iterations: int, preset: str = "paper") -> Estimate | None:
    """A preset's wall time on this kind of CPU, or None where nothing comparable was measured."""
    table = SECONDS_PER_ITERATION.get(preset, {})
    rows = {i: s for (m, f, i), s in table.items() if m == method and f == family(channels)}
    if not rows or ipc > 2 * max(rows):
        return None
    nearest = min(rows, key=lambda i: (abs(i - ipc), i))
    return Estimate(rows[nearest] * int(iterations), rows[nearest], nearest, preset)
