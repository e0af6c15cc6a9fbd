"""How long a distillation would take on a CPU like this repo's (2 cores), from measured seconds per iteration.

Why: the paper presets run for thousands of iterations, and at IPC 10 even the quick presets of the matching
and trajectory methods take 17-33 minutes on a laptop; a user who presses Start should be told "about 60 hours"
before, not find out from an ETA afterwards. The tables are measured, not modelled, one torch thread each, on
ConvNet-3 with 10-class data of 28x28x1 ('grey': MNIST, Fashion-MNIST) or 32x32x3 ('colour': CIFAR-10):

* paper: paper hyperparameters, benchmarks/results/methods-speed.md (2026-11-25, load ~1); a DC/DSA row is the timed
  outer loops scaled to a whole iteration (outer_full / outer_timed);
* quick and live: the distillation wall time over the iterations done in benchmarks/results/methods-accuracy.jsonl
  and methods-accuracy-live.jsonl (`python -m benchmarks.methods_accuracy --estimates` prints them), rows run at
  today's preset only, with another benchmark on the second core (load 1-4), so they lean long. Prerequisites (MTT's
  expert trajectories) are not in them: they are made once and shared;
* selection (coreset baselines, any preset): the slowest selection in benchmarks/results/coresets-*.jsonl, which
  includes training or loading the feature network the first time.

Between two measured IPCs the cost is interpolated linearly, past the largest it is extrapolated along the last
segment up to twice that IPC, and beyond that nothing is said (a matching method's cost grows with IPC); other class
counts scale it linearly (every method here works class by class or on the whole synthetic set). Classes smaller
than a matching method's real batch (a folder, a privacy study's members) give it fewer images
(MatchingMethod.real_counts), so its real side shrinks by `real_batch_share`. An image size near a measured one
with the same channels (a grey folder imported at 32x32) is priced by its pixels, as a ConvNet's every layer costs
(a 32x32 grey image 1.31 times a 28x28 one); sizes beyond half or twice the measured pixels (a deeper network, another
regime), and methods never measured, get no estimate.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

SOURCES: dict[str, str] = {
    "paper": "benchmarks/results/methods-speed.md (paper hyperparameters, one thread of a 2-core x86-64 CPU)",
    "quick": "benchmarks/results/methods-accuracy.jsonl (quick preset, one thread of a 2-core x86-64 CPU)",
    "live": "benchmarks/results/methods-accuracy-live.jsonl (live preset, one thread of a 2-core x86-64 CPU)",
    "selection": "benchmarks/results/coresets-quick.jsonl and coresets-paper.jsonl (two threads of a 2-core x86-64 CPU)",
}

# (method, data family, IPC) -> seconds per iteration; 'grey': 28×28×1 data (MNIST, Fashion-MNIST), 'colour':
# 32×32×3 (CIFAR-10), both measured with 10 classes.
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
    ("cafe", "colour", 1): 19.14, ("cafe", "colour", 10): 35.82, ("cafe", "grey", 1): 19.23, ("cafe", "grey", 10): 35.44,
    ("datm", "colour", 1): 1.69, ("datm", "colour", 10): 8.69, ("datm", "grey", 1): 1.77, ("datm", "grey", 10): 8.37,
    ("dc", "colour", 1): 5.58, ("dc", "colour", 10): 86.91, ("dc", "grey", 1): 6.83, ("dc", "grey", 10): 115.41,
    ("dd", "colour", 1): 2.69, ("dd", "colour", 10): 5.49, ("dd", "grey", 1): 1.85, ("dd", "grey", 10): 6.01,
    ("dm", "colour", 1): 1.36, ("dm", "colour", 10): 2.8, ("dm", "grey", 1): 1.35, ("dm", "grey", 10): 1.6,
    ("dsa", "colour", 1): 4.84, ("dsa", "colour", 10): 86.49, ("dsa", "grey", 1): 7.67, ("dsa", "grey", 10): 118.1,
    ("frepo", "colour", 1): 0.815, ("frepo", "colour", 10): 2.34, ("frepo", "grey", 1): 0.539, ("frepo", "grey", 10): 1.08,
    ("idc", "colour", 1): 24.18, ("idc", "colour", 10): 47.14, ("idc", "grey", 1): 22.98, ("idc", "grey", 10): 75.84,
    ("idm", "colour", 1): 4.68, ("idm", "colour", 10): 5.27, ("idm", "grey", 1): 3.75, ("idm", "grey", 10): 3.15,
    ("kip_fc", "colour", 1): 0.037, ("kip_fc", "colour", 10): 0.086, ("kip_fc", "grey", 1): 0.017, ("kip_fc", "grey", 10): 0.034,
    ("mtt", "colour", 1): 2.47, ("mtt", "colour", 10): 9.39, ("mtt", "grey", 1): 5.1, ("mtt", "grey", 10): 9.47,
    ("rfad", "colour", 1): 2.67, ("rfad", "colour", 10): 3.48, ("rfad", "grey", 1): 2.36, ("rfad", "grey", 10): 2.5,
    ("tesla", "colour", 1): 2.11, ("tesla", "colour", 10): 10.44, ("tesla", "grey", 1): 2.1, ("tesla", "grey", 10): 14.29,
}
LIVE_CPU_SECONDS: dict[tuple[str, str, int], float] = {
    ("dm", "grey", 10): 0.17,
}
SECONDS_PER_ITERATION: dict[str, dict[tuple[str, str, int], float]] = {
    "paper": PAPER_CPU_SECONDS, "quick": QUICK_CPU_SECONDS, "live": LIVE_CPU_SECONDS}


# Coreset selection: one step whatever the preset (seconds, the slowest measured per method and data family).
SELECTION_CPU_SECONDS: dict[tuple[str, str], float] = {
    ("random", "grey"): 2.51, ("random", "colour"): 1.75, ("herding", "grey"): 21.1, ("herding", "colour"): 80.58,
    ("kcenter", "grey"): 67.13, ("kcenter", "colour"): 1.15,
}
SYN_IMAGE_COST = 2.4  # a synthetic image costs about 2.4 real ones in a matching iteration: DM on MNIST members, one
# thread, (real per class, IPC) = (50, 10) 1.61 s, (50, 1) 1.14 s, (5, 1) 0.19 s (0.021 s a real image, 0.051 s an IPC)
MEASURED_SHAPES: dict[str, tuple[int, int]] = {"grey": (1, 28), "colour": (3, 32)}  # (channels, image size)
MEASURED_CLASSES = 10
PIXEL_SCALE_LIMITS = (0.5, 2.0)  # how far from a measured shape pricing by pixels is trusted


@dataclass(frozen=True)
class Estimate:
    seconds: float
    per_iteration_s: float
    basis: str  # how the seconds per iteration were had: "measured at IPC 10", "interpolated between IPC 1 and 10", ...
    preset: str

    @property
    def source(self) -> str:
        return SOURCES[self.preset]


def family(channels: int, image_size: int | None = None) -> str | None:
    """'grey' or 'colour' for the measured image shapes (any size when image_size is None), else None."""
    for name, (c, size) in MEASURED_SHAPES.items():
        if channels == c and image_size in (None, size):
            return name
    return None


def priced_family(channels: int, image_size: int) -> tuple[str, float] | None:
    """The measured family for `channels` and how many times its pixels an image of `image_size` holds, or None
    where no family has those channels or the size is too far from the measured one."""
    for name, (c, size) in MEASURED_SHAPES.items():
        if channels == c:
            scale = (int(image_size) / size) ** 2
            low, high = PIXEL_SCALE_LIMITS
            return (name, scale) if low <= scale <= high else None
    return None


def _per_iteration(rows: dict[int, float], ipc: int) -> tuple[float, str] | None:
    """Seconds per iteration at `ipc` from the measured IPCs, and how it was had."""
    if ipc in rows:
        return rows[ipc], f"measured at IPC {ipc}"
    known = sorted(rows)
    if ipc < known[0]:
        return rows[known[0]], f"measured at IPC {known[0]}"
    if ipc > known[-1]:
        if ipc > 2 * known[-1]:
            return None
        if len(known) == 1:
            return rows[known[0]], f"measured at IPC {known[0]}"
        lo, hi = known[-2], known[-1]
        slope = max(0.0, (rows[hi] - rows[lo]) / (hi - lo))
        return rows[hi] + slope * (ipc - hi), f"extrapolated from IPC {lo} and {hi}"
    lo = max(i for i in known if i < ipc)
    hi = min(i for i in known if i > ipc)
    t = (ipc - lo) / (hi - lo)
    return rows[lo] + t * (rows[hi] - rows[lo]), f"interpolated between IPC {lo} and {hi}"


def real_batch_share(batch_real: int, class_sizes: Sequence[int], ipc: int) -> float:
    """What is left of a matching iteration measured with `batch_real` real images per class when the classes hold
    `class_sizes` images: the real side takes at most a class's own, the synthetic side (`ipc`) stays."""
    used = sum(min(int(batch_real), int(n)) for n in class_sizes) / max(1, len(class_sizes))
    return (used + SYN_IMAGE_COST * ipc) / (int(batch_real) + SYN_IMAGE_COST * ipc)


def cpu_estimate(method: str, info: Any, ipc: int, iterations: int, preset: str, *, config: Any = None,
                 class_sizes: Sequence[int] | None = None) -> Estimate | None:
    """A preset's wall time on this kind of CPU for `info`'s data (a DatasetInfo), or None where nothing comparable
    was measured. With the run's `config` and its data's `class_sizes`, a matching method's iteration is priced at
    the real batch those classes give."""
    priced = priced_family(info.channels, info.image_size)
    if priced is None:
        return None
    fam, pixels = priced
    measured_size = MEASURED_SHAPES[fam][1]
    by_pixels = "" if pixels == 1.0 else (f", scaled by pixels from {measured_size}x{measured_size} to "
                                          f"{info.image_size}x{info.image_size} (x{pixels:.2f})")
    selection = SELECTION_CPU_SECONDS.get((method, fam))
    if selection is not None:  # one selection, whatever the IPC and preset
        return Estimate(selection * pixels, selection * pixels, "the slowest selection measured" + by_pixels,
                        "selection")
    rows = {i: s for (m, f, i), s in SECONDS_PER_ITERATION.get(preset, {}).items() if m == method and f == fam}
    found = _per_iteration(rows, ipc) if rows else None
    if found is None:
        return None
    per_it, basis = found
    per_it, basis = per_it * pixels, basis + by_pixels
    if info.num_classes != MEASURED_CLASSES:
        per_it *= info.num_classes / MEASURED_CLASSES
        basis += f", scaled from {MEASURED_CLASSES} to {info.num_classes} classes"
    if config is not None and class_sizes and per_class_real_batch(method, config):
        from .methods import make_config

        timed = per_class_real_batch(method, make_config(method, info, ipc, preset))  # the batch the row was timed at
        given = [min(int(n), int(config.batch_real)) for n in class_sizes]  # what this run's classes give
        share = real_batch_share(timed, given, ipc)
        if share < 1.0:
            per_it *= share
            basis += f", scaled to {share:.0%} for classes of fewer than its {timed} real images"
    return Estimate(per_it * int(iterations), per_it, basis, preset)


def per_class_real_batch(method: str, config: Any) -> int | None:
    """`config.batch_real` where it counts real images per class (a matching method's), else None."""
    from .methods import method_class
    from .methods.matching import MatchingMethod

    return int(config.batch_real) if issubclass(method_class(method), MatchingMethod) else None
