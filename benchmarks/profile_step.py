"""Where one method iteration spends its time: `torch.profiler` over a few steps, reduced to what issue #20 asks
about, host synchronisations per step and the share of normalisation against convolution kernels.

    python3 -m benchmarks.profile_step --device cuda --noise-data --method dm --ipc 10          # on a lent GPU
    .venv/bin/python -m benchmarks.profile_step --noise-data --method dm --ipc 1 --preset quick   # a look here

Why: an H200 profile of DM (issue #20) counted about 30 `cudaStreamSynchronize` calls per step and GroupNorm's
moments kernel at 37% of GPU time; the 6 ms goal needs both numbers re-measured after each change, in one command.
Writes `profile-<method>-<ipc>-<mode>.json` (counts per step, top operators by self time) and the profiler's own
table as `.txt` under --out-dir.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

# Runtime calls that block the host until the device has finished its queued work.
SYNC_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy ")
NORM_WORDS = ("norm", "welford", "moments")
CONV_WORDS = ("conv", "gemm", "cudnn", "winograd", "implicit", "sm90", "sm80", "xmma")


def kernel_family(name: str) -> str:
    """'norm', 'conv' or 'other' for an operator or kernel name (lower-cased substring match)."""
    low = name.lower()
    if any(w in low for w in NORM_WORDS):
        return "norm"
    if any(w in low for w in CONV_WORDS):
        return "conv"
    return "other"


def summarise(events, steps: int, device_type: str) -> dict:
    """Per-step counts and times from a profiler's key averages (`prof.key_averages()`)."""
    syncs = sum(e.count for e in events if any(e.key.startswith(s.strip()) for s in SYNC_CALLS))
    use_device = device_type != "cpu"

    def self_us(e) -> float:
        return float(getattr(e, "self_device_time_total", 0.0) if use_device else e.self_cpu_time_total)

    # On a GPU the kernels carry the device time; on a CPU the aten operators carry the CPU time.
    timed = [e for e in events if self_us(e) > 0]
    total = sum(self_us(e) for e in timed) or 1.0
    families: dict[str, float] = {"norm": 0.0, "conv": 0.0, "other": 0.0}
    for e in timed:
        families[kernel_family(e.key)] += self_us(e)
    top = sorted(timed, key=self_us, reverse=True)[:15]
    return {
        "syncs_per_step": syncs / steps,
        "time_per_step_ms": total / steps / 1000.0,
        "share": {k: round(v / total, 3) for k, v in families.items()},
        "top": [{"name": e.key[:90], "calls_per_step": e.count / steps, "ms_per_step": round(self_us(e) / steps / 1000, 3),
                 "family": kernel_family(e.key)} for e in top],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", default="dm")
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--preset", default="paper")
    p.add_argument("--mode", default="fp32", help="speed_mode (fp32, channels_last, bf16, compile)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--noise-data", action="store_true", help="random pixels of the dataset's shape (timing only)")
    p.add_argument("--out-dir", default="/tmp/profile-step")
    args = p.parse_args()
    import torch
    from torch.profiler import ProfilerActivity, profile

    from ddcore.data import load_dataset
    from ddcore.methods import create_method

    if args.noise_data:
        from .noise_data import noise_dataset

        data = noise_dataset(args.dataset)
    else:
        data = load_dataset(args.dataset)
    method = create_method(args.method, data, args.ipc, preset=args.preset, device=args.device, speed_mode=args.mode)
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        method.step()
    sync()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        for _ in range(args.steps):
            method.step()
        sync()
    wall_ms = (time.perf_counter() - start) / args.steps * 1000
    events = prof.key_averages()
    out = {"method": args.method, "dataset": args.dataset, "ipc": args.ipc, "preset": args.preset, "mode": args.mode,
           "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "torch": torch.__version__,
           "data": "noise" if args.noise_data else "real", "steps": args.steps, "wall_ms_per_step_profiled": round(wall_ms, 2),
           "when": time.strftime("%Y-%m-%d %H:%M"), **summarise(events, args.steps, device.type)}
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"profile-{args.method}-{args.ipc}-{args.mode}"
    (out_dir / f"{stem}.json").write_text(json.dumps(out, indent=1))
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    (out_dir / f"{stem}.txt").write_text(events.table(sort_by=sort, row_limit=40))
    print(json.dumps({k: out[k] for k in ("device", "syncs_per_step", "time_per_step_ms", "share", "wall_ms_per_step_profiled")}))


if __name__ == "__main__":
    main()
