"""CPU time estimates before a run: measured seconds per iteration, scaled by iterations, nearest measured IPC."""
import pytest

from ddcore.data import get_dataset_info
from ddcore.estimates import PAPER_CPU_SECONDS, QUICK_CPU_SECONDS, cpu_estimate
from ddcore.methods import list_methods, make_config, method_class


def test_estimates_scale_with_iterations_and_take_the_nearest_measured_ipc() -> None:
    dm = cpu_estimate("dm", 3, 10, 20_000)
    assert dm is not None and dm.measured_ipc == 10 and dm.seconds == 20_000 * PAPER_CPU_SECONDS[("dm", "colour", 10)]
    assert 15 * 3600 < dm.seconds < 25 * 3600  # DM's 20,000 paper iterations: most of a day on this CPU
    near = cpu_estimate("dc", 1, 40, 1000)
    assert near is not None and near.measured_ipc == 50 and near.per_iteration_s > 1000  # DC IPC 50: 50 outer loops
    assert cpu_estimate("mtt", 3, 10, 5000) is None  # never measured at the paper preset: no guess
    assert cpu_estimate("dm", 3, 10, 100, "nonesuch") is None


def test_quick_estimates_cover_every_distillation_method_and_stop_past_what_was_measured() -> None:
    """A method added without its benchmark rows (python -m benchmarks.methods_accuracy --estimates) fails here."""
    distillers = [m for m in list_methods()  # ddcore's own (other tests register plugins)
                  if method_class(m).family != "coreset" and method_class(m).__module__.startswith("ddcore.methods.")]
    assert len(distillers) >= 13
    for method in distillers:
        for dataset in ("mnist", "cifar10"):
            info = get_dataset_info(dataset)
            for ipc in (1, 10):
                iterations = int(make_config(method, info, ipc, "quick").iterations)
                guess = cpu_estimate(method, info.channels, ipc, iterations, "quick")
                assert guess is not None, f"no quick CPU estimate for {method} on {dataset} at IPC {ipc}"
                assert guess.measured_ipc == ipc and guess.seconds == pytest.approx(iterations * guess.per_iteration_s)
                assert guess.source.startswith("benchmarks/results/methods-accuracy")
    # past twice the largest measured IPC a matching method's cost is not known: no number rather than a low one
    assert max(i for (m, _, i) in QUICK_CPU_SECONDS if m == "dc") == 10
    assert cpu_estimate("dc", 3, 20, 15, "quick") is not None and cpu_estimate("dc", 3, 50, 15, "quick") is None
