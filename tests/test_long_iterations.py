"""Long iterations never look frozen: DC reports how far through an iteration it is (progress and images move
inside it), and a stop or a pause asked for meanwhile ends the iteration at its next class, putting back the
state it started from, so a resumed run repeats the iteration exactly."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from ddcore.methods import create_method
from ddcore.methods.base import StepInterrupted
from ddcore.platform.queue import JobManager
from ddcore.platform.store import Store
from ddcore.tasks.distill import DistillSpec
from tests.methodkit import TINY_NET, tiny_mnist


def _dc(data):
    return create_method("dc", data, 10, preset="quick", model_kwargs=TINY_NET, inner_loop=2, batch_real=8)


def _stop_half_way(fraction: float) -> None:
    """An on_progress hook that interrupts the iteration once it is half done (as a Stop arriving then would)."""
    if fraction > 0.5:
        raise StepInterrupted("test")


def test_an_interrupted_dc_iteration_puts_its_start_back_and_repeats_exactly() -> None:
    data = tiny_mnist()
    straight = _dc(data)
    seen: list[float] = []
    straight.on_progress = seen.append
    straight.step()
    assert len(seen) > 10 and seen == sorted(seen) and 0 < seen[0] < 0.1 and seen[-1] < 1.0  # classes and loops
    interrupted = _dc(data)
    start_images = interrupted.images.detach().clone()

    interrupted.on_progress = _stop_half_way
    with pytest.raises(StepInterrupted):
        interrupted.step()
    assert interrupted.iteration == 0 and torch.equal(interrupted.images.detach(), start_images)
    interrupted.on_progress = lambda fraction: None
    interrupted.step()  # the same iteration again, from the same start: the same images as never interrupted
    assert interrupted.iteration == 1 and torch.equal(interrupted.images.detach(), straight.images.detach())


def test_a_later_interrupted_iteration_also_puts_back_the_optimisers_momentum() -> None:
    """Interrupted at iteration 1, once the image optimiser has momentum (from iteration 0's updates): the repeat
    equals never interrupting."""
    data = tiny_mnist()
    straight = _dc(data)
    for _ in range(2):
        straight.step()
    again = _dc(data)
    again.step()

    again.on_progress = _stop_half_way
    with pytest.raises(StepInterrupted):
        again.step()
    again.on_progress = lambda fraction: None
    again.step()
    assert again.iteration == 2 and torch.equal(again.images.detach(), straight.images.detach())


@pytest.fixture
def manager(tmp_path: Path):
    m = JobManager(Store(tmp_path))
    yield m
    m.shutdown(wait=10)


def _wait(predicate, timeout: float = 60.0) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError("condition not reached")
        time.sleep(0.01)
    return time.monotonic() - start


def test_a_job_shows_progress_inside_an_iteration_and_pauses_and_stops_within_it(manager) -> None:
    data = tiny_mnist(train_per_class=40)
    # IPC 10: ten outer loops of ten classes make one iteration of several seconds even on a width-32 ConvNet, so a
    # pause or stop that waited for the iteration's end would miss the 2 s bounds; two network epochs after each outer
    # loop (not 30) keep the wait for progress past 0.2 after the resume (two outer loops) short
    spec = DistillSpec(dataset="mnist", method="dc", ipc=10, preset="quick", device="cpu", evaluate_after=False,
                       overrides={"inner_loop": 2, "batch_real": 32, "iterations": 3, "net_width": 32},
                       checkpoint_every=1)
    job = manager.submit(spec, data=data)
    _wait(lambda: 0 < job.snapshot().iteration < 1)  # fractional: inside the first iteration
    frame = job.snapshot().frame
    _wait(lambda: job.snapshot().frame > frame and job.snapshot().iteration < 1)  # the images moved inside it
    manager.pause(job.id)
    assert job.snapshot().status == "paused"
    took = _wait(lambda: job.holding)
    assert took < 2.0, took  # the iteration was cut at its next class, not finished
    assert job.snapshot().pausing is False and job.snapshot().iteration == 0  # back to the iteration's start
    manager.resume(job.id)
    _wait(lambda: job.snapshot().iteration > 0.2)
    manager.stop(job.id)
    assert job.snapshot().stopping
    took = _wait(lambda: job.finished.is_set())
    assert took < 2.0, took
    snap = job.snapshot()
    assert snap.status == "stopped" and manager.store.get_run(job.run_id).resumable
