"""The paper preset's CPU time estimate: measured seconds per iteration, scaled by iterations, nearest IPC."""
from ddcore.estimates import PAPER_CPU_SECONDS, paper_cpu_estimate


def test_estimates_scale_with_iterations_and_take_the_nearest_measured_ipc() -> None:
    dm = paper_cpu_estimate("dm", 3, 10, 20_000)
    assert dm is not None and dm.measured_ipc == 10 and dm.seconds == 20_000 * PAPER_CPU_SECONDS[("dm", "colour", 10)]
    assert 15 * 3600 < dm.seconds < 25 * 3600  # DM's 20,000 paper iterations: most of a day on this CPU
    near = paper_cpu_estimate("dc", 1, 40, 1000)
    assert near is not None and near.measured_ipc == 50 and near.per_iteration_s > 1000  # DC IPC 50: 50 outer loops
    assert paper_cpu_estimate("mtt", 3, 10, 5000) is None  # never measured: no guess
