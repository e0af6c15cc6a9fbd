"""Device choice, seeds and thread control."""
from __future__ import annotations

import pytest
import torch

from ddcore.device import available_devices, resolve_device, set_threads


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


def test_set_threads_round_trip() -> None:
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1
        assert set_threads(None) == 1
    finally:
        torch.set_num_threads(before)
