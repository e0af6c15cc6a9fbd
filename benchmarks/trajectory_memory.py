"""Peak memory and time of one trajectory-matching iteration against the unroll length: MTT (backpropagation
through all N student steps) against TESLA (the exact adjoint, one step's graph at a time).

    flock /tmp/ddstudio-bench.lock .venv/bin/python -m benchmarks.trajectory_memory --steps 10 20 40 80

Each (gradient, N) runs in a fresh subprocess, so its peak resident memory (ru_maxrss) is its own: the process
baseline (torch, the data) is measured the same way with N = 0 and subtracted. Setting: ConvNet-3 (width 128,
instancenorm) on CIFAR-10-shaped images, IPC 1 (10 synthetic images, all of them each step), random expert
parameters (the cost does not depend on the experts' quality), DSA augmentation as in the methods. Time: the
median of `--repeats` iterations after one warm-up. Results: results/trajectory-memory.md and .jsonl.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def one(gradient: str, steps: int, repeats: int, ipc: int, device: str) -> dict:
    import torch

    from ddcore.augment import dsa_augment
    from ddcore.methods.trajectory import FlatNet, Unroll, match, plan_batches
    from ddcore.models import create_model

    torch.manual_seed(0)
    dev = torch.device(device)
    net = create_model("convnet", 3, 10, 32).to(dev)
    flat = FlatNet(net)
    theta0 = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    target = theta0 + 0.01 * torch.randn_like(theta0)
    images = torch.randn(10 * ipc, 3, 32, 32, device=dev)
    labels = torch.arange(10, device=dev).repeat_interleave(ipc)
    lr = torch.tensor(0.01, device=dev)

    def augment(x, i):
        return dsa_augment(x, "color_crop_cutout_flip_scale_rotate", seed=None,
                           generator=torch.Generator().manual_seed(1000 + i))

    times = []
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    for r in range(repeats + 1):
        unroll = Unroll(plan_batches(len(images), steps, None, torch.Generator().manual_seed(r)), augment)
        t = time.perf_counter()
        if steps:
            match(flat, theta0, target, images, labels, lr, unroll, gradient)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if r:
            times.append(time.perf_counter() - t)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    out = {"gradient": gradient, "steps": steps, "ipc": ipc, "seconds": statistics.median(times) if times else 0.0,
           "peak_rss_mib": peak_rss / 1024, "rss_before_mib": base_rss / 1024, "device": device,
           "threads": torch.get_num_threads(), "torch": torch.__version__, "load_avg": os.getloadavg()}
    if dev.type == "cuda":
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
        out["device_name"] = torch.cuda.get_device_name(dev)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", nargs="+", type=int, default=[10, 20, 40, 80])
    p.add_argument("--gradients", nargs="+", default=["unrolled", "adjoint"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ipc", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # gradient:steps, in the child process
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.one:
        gradient, steps = args.one.split(":")
        print(json.dumps(one(gradient, int(steps), args.repeats, args.ipc, args.device)))
        return
    rows = []
    for steps in [0, *args.steps]:
        for gradient in (args.gradients if steps else args.gradients[:1]):
            out = subprocess.run([sys.executable, "-m", "benchmarks.trajectory_memory", "--one", f"{gradient}:{steps}",
                                  "--repeats", str(args.repeats), "--ipc", str(args.ipc), "--device", args.device,
                                  "--threads", str(args.threads)], capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(json.dumps(row), flush=True)
    base = next(r for r in rows if r["steps"] == 0)["peak_rss_mib"]
    suffix = "" if args.device == "cpu" else f"-{args.device}"
    RESULTS.mkdir(exist_ok=True)
    with (RESULTS / f"trajectory-memory{suffix}.jsonl").open("a") as f:
        for r in rows:
            f.write(json.dumps({**r, "when": time.strftime("%Y-%m-%d %H:%M")}) + "\n")
    lines = [f"# Trajectory matching: memory and time per iteration against the unroll length ({args.device})", "",
             f"Command: `python -m benchmarks.trajectory_memory {' '.join(sys.argv[1:])}`; ConvNet-3 on 3x32x32, IPC "
             f"{args.ipc} (all {10 * args.ipc} images each step), DSA, {args.threads} thread(s); peak resident memory of a "
             f"fresh process minus the same process with no unroll ({base:.0f} MiB); time = median of {args.repeats} "
             f"iterations. Load average during the run: {rows[-1]['load_avg'][0]:.1f}.", "",
             "| steps N | MTT (unrolled) MiB | TESLA (adjoint) MiB | MTT s / iteration | TESLA s / iteration | TESLA time / MTT |",
             "|---|---|---|---|---|---|"]
    for steps in args.steps:
        u = next((r for r in rows if r["steps"] == steps and r["gradient"] == "unrolled"), None)
        a = next((r for r in rows if r["steps"] == steps and r["gradient"] == "adjoint"), None)
        if u and a:
            lines.append(f"| {steps} | {u['peak_rss_mib'] - base:.0f} | {a['peak_rss_mib'] - base:.0f} | "
                         f"{u['seconds']:.2f} | {a['seconds']:.2f} | {a['seconds'] / u['seconds']:.2f} |")
    (RESULTS / f"trajectory-memory{suffix}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
