"""Device choice, seeds and thread control."""
from __future__ import annotations

import pytest
import torch

from ddcore.device import available_devices, resolve_device, seed_everything, set_threads


def test_auto_picks_an_available_device_and_cpu_always_works() -> None:
    assert resolve_device("auto").type in available_devices()
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_unknown_or_absent_device_fails_clearly() -> None:
    with pytest.raises(ValueError, match="Choose one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_seed_everything_reproduces_draws() -> None:
    g1 = seed_everything(7)
    a = (torch.rand(3), torch.rand(3, generator=g1))
    g2 = seed_everything(7)
    b = (torch.rand(3), torch.rand(3, generator=g2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_set_threads_round_trip() -> None:
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1
        assert set_threads(None) == 1
    finally:
        torch.set_num_threads(before)
