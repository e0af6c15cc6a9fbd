"""CPU time estimates before a run: measured seconds per iteration, scaled by iterations, interpolated between the
measured IPCs, scaled by the number of classes, and nothing said where nothing comparable was measured."""
import dataclasses

import pytest

from ddcore.data import get_dataset_info
from ddcore.estimates import PAPER_CPU_SECONDS, QUICK_CPU_SECONDS, SELECTION_CPU_SECONDS, cpu_estimate
from ddcore.methods import list_methods, make_config, method_class

MNIST, CIFAR10 = get_dataset_info("mnist"), get_dataset_info("cifar10")


def test_paper_estimates_scale_with_iterations_and_interpolate_between_measured_ipcs() -> None:
    dm = cpu_estimate("dm", CIFAR10, 10, 20_000, "paper")
    assert dm is not None and dm.basis == "measured at IPC 10"
    assert dm.seconds == 20_000 * PAPER_CPU_SECONDS[("dm", "colour", 10)]
    assert 15 * 3600 < dm.seconds < 25 * 3600  # DM's 20,000 paper iterations: most of a day on this CPU
    dc10, dc50 = PAPER_CPU_SECONDS[("dc", "grey", 10)], PAPER_CPU_SECONDS[("dc", "grey", 50)]
    near = cpu_estimate("dc", MNIST, 40, 1000, "paper")  # DC's outer loop has IPC steps: its cost grows with IPC
    assert near is not None and near.basis == "interpolated between IPC 10 and 50"
    assert near.per_iteration_s == pytest.approx(dc10 + 0.75 * (dc50 - dc10))
    assert cpu_estimate("mtt", CIFAR10, 10, 5000, "paper") is None  # never measured at the paper preset: no guess
    assert cpu_estimate("dm", CIFAR10, 10, 100, "nonesuch") is None


def test_quick_estimates_cover_every_distillation_method() -> None:
    """A method added without its benchmark rows (python -m benchmarks.methods_accuracy --estimates) fails here."""
    distillers = [m for m in list_methods()  # ddcore's own (other tests register plugins)
                  if method_class(m).family != "coreset" and method_class(m).__module__.startswith("ddcore.methods.")]
    assert len(distillers) >= 13
    for method in distillers:
        for info in (MNIST, CIFAR10):
            for ipc in (1, 10):
                iterations = int(make_config(method, info, ipc, "quick").iterations)
                guess = cpu_estimate(method, info, ipc, iterations, "quick")
                assert guess is not None, f"no quick CPU estimate for {method} on {info.name} at IPC {ipc}"
                assert guess.basis == f"measured at IPC {ipc}" and guess.source.endswith("2-core x86-64 CPU)")


def test_between_and_past_the_measured_ipcs_and_other_data() -> None:
    one, ten = QUICK_CPU_SECONDS[("dc", "colour", 1)], QUICK_CPU_SECONDS[("dc", "colour", 10)]
    mid = cpu_estimate("dc", CIFAR10, 5, 15, "quick")
    assert mid is not None and one < mid.per_iteration_s < ten and "interpolated" in mid.basis
    past = cpu_estimate("dc", CIFAR10, 20, 15, "quick")  # along the last segment, not the IPC 10 rate
    assert past is not None and past.per_iteration_s > ten and "extrapolated" in past.basis
    assert cpu_estimate("dc", CIFAR10, 50, 15, "quick") is None  # past twice the largest measured IPC: unknown
    # ten times the classes, ten times the work per iteration; a shape never measured gets nothing
    hundred = cpu_estimate("dm", get_dataset_info("cifar100"), 10, 400, "quick")
    assert hundred is not None and hundred.per_iteration_s == pytest.approx(10 * QUICK_CPU_SECONDS[("dm", "colour", 10)])
    assert "scaled from 10 to 100 classes" in hundred.basis
    assert cpu_estimate("dm", dataclasses.replace(CIFAR10, image_size=64), 10, 400, "quick") is None
    # a grey folder imported at 32x32: MNIST's row priced by pixels; other channel counts and far sizes: nothing
    grey32 = cpu_estimate("dm", dataclasses.replace(MNIST, image_size=32), 10, 400, "quick")
    assert grey32 is not None and "scaled by pixels from 28x28 to 32x32 (x1.31)" in grey32.basis
    assert grey32.per_iteration_s == pytest.approx(QUICK_CPU_SECONDS[("dm", "grey", 10)] * (32 / 28) ** 2)
    assert cpu_estimate("dm", dataclasses.replace(MNIST, image_size=48), 10, 400, "quick") is None
    assert cpu_estimate("dm", dataclasses.replace(MNIST, channels=2, mean=(0.5, 0.5), std=(0.5, 0.5)), 10, 400, "quick") is None
    # a coreset selection is one step at any IPC and preset
    herding = cpu_estimate("herding", MNIST, 50, 1, "paper")
    assert herding is not None and herding.seconds == SELECTION_CPU_SECONDS[("herding", "grey")]


def test_small_classes_price_a_matching_method_at_the_real_batch_they_give() -> None:
    """A folder's classes smaller than DM quick's 64 real images: the real side shrinks, the synthetic side stays;
    large classes, a user's smaller batch, and a method without a per-class real batch keep the measured row."""
    dm = make_config("dm", MNIST, 10, "quick")
    row = QUICK_CPU_SECONDS[("dm", "grey", 10)]
    full = cpu_estimate("dm", MNIST, 10, 400, "quick", config=dm, class_sizes=[5000] * 10)
    assert full.per_iteration_s == row and full.basis == "measured at IPC 10"
    small = cpu_estimate("dm", MNIST, 10, 400, "quick", config=dm, class_sizes=[6] * 10)
    assert small.per_iteration_s == pytest.approx(row * (6 + 24) / (64 + 24))
    assert small.basis == "measured at IPC 10, scaled to 34% for classes of fewer than its 64 real images"
    uneven = cpu_estimate("dm", MNIST, 10, 400, "quick", config=dm, class_sizes=[6] * 5 + [5000] * 5)
    assert small.per_iteration_s < uneven.per_iteration_s < row
    mine = cpu_estimate("dm", MNIST, 10, 400, "quick", config=dataclasses.replace(dm, batch_real=16),
                        class_sizes=[5000] * 10)
    assert mine.per_iteration_s == pytest.approx(row * (16 + 24) / (64 + 24))
    frepo = make_config("frepo", MNIST, 10, "quick")  # its batch_real is a whole batch, not per class
    assert cpu_estimate("frepo", MNIST, 10, 10, "quick", config=frepo, class_sizes=[6] * 10).per_iteration_s == \
        QUICK_CPU_SECONDS[("frepo", "grey", 10)]
