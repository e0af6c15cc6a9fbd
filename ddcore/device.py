"""Device choice, reproducible seeds and CPU thread control."""
from __future__ import annotations

import os

import torch

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


def resolve_device(preference: str | torch.device | None = "auto") -> torch.device:
    """cuda, then mps, then cpu for 'auto'; an explicit choice that is absent fails clearly."""
    if isinstance(preference, torch.device):
        return preference
    pref = (preference or os.environ.get("DDCORE_DEVICE") or "auto").lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    base = pref.split(":")[0]
    if base not in DEVICE_CHOICES:
        raise ValueError(f"Unknown device '{preference}'. Choose one of: {', '.join(DEVICE_CHOICES)}.")
    if base == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("Device 'cuda' was requested but no CUDA GPU is available here; use 'auto' or 'cpu'.")
    if base == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RuntimeError("Device 'mps' was requested but Apple MPS is not available here; use 'auto' or 'cpu'.")
    return torch.device(pref)


def available_devices() -> list[str]:
    found = ["cpu"]
    if torch.cuda.is_available():
        found.insert(0, "cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.insert(0, "mps")
    return found


def cpu_has_bf16() -> bool:
    """oneDNN has native bfloat16 kernels on this CPU (without them it emulates them, ~80x slower)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def set_threads(num_threads: int | None) -> int:
    """Set torch's intra-op CPU threads (None keeps the current value); returns the value in force."""
    if num_threads is not None and num_threads > 0:
        torch.set_num_threads(int(num_threads))
    return torch.get_num_threads()


PIN_VARIABLE = "DDSTUDIO_PIN_CORES"  # '0' turns core pinning off


def _allowed_cores() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return []


# The process's cores as they were before any thread pinned itself (a pinned thread sees only its own).
PROCESS_CORES = _allowed_cores()


def ui_and_job_cores() -> tuple[set[int], set[int]] | None:
    """(cores for the server's pages, cores for jobs): the first allowed core answers the browsers, the others
    compute, so watching a run does not take cycles from it. None where pinning is off, unsupported, or there is
    a single core."""
    if os.environ.get(PIN_VARIABLE, "1") == "0":
        return None
    cores = PROCESS_CORES
    if len(cores) < 2:
        return None
    return {cores[0]}, set(cores[1:])


def pin_this_thread(role: str) -> bool:
    """Pin the calling thread (and the threads it starts later, torch's pool included) to the 'ui' or 'job' cores;
    True when pinned. Linux pins per thread, so a job's pin never moves the server's other threads."""
    split = ui_and_job_cores()
    if split is None:
        return False
    try:
        os.sched_setaffinity(0, split[0] if role == "ui" else split[1])
    except OSError:
        return False
    return True
