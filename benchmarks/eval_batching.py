"""The paper evaluation protocol's networks trained together (one torch.func.vmap call over the seeds' stacked
parameters) against one network alone: issue #20's goal is 10 seeds in at most twice the time of one.

    flock /tmp/ddstudio-bench.lock .venv/bin/python -m benchmarks.eval_batching --seeds 10 --epochs 20
    python3 -m benchmarks.eval_batching --device cuda --seeds 10 --epochs 100     # on a lent GPU

Every row trains ConvNets on random real CIFAR-10 images (IPC 10, 100 images) with the paper protocol's optimiser
and DSA augmentation for `--epochs` passes (the paper runs 1000; the time per pass is what is compared), testing
excluded. Modes: one seed; `--seeds` seeds in turn ('loop'); `--seeds` seeds as one batched call ('vmap'). A first
short run of each mode is a warm-up and not timed. Results: results/eval-batching.md and .jsonl (one row per device).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--out-dir", default=str(RESULTS))
    p.add_argument("--noise-data", action="store_true", help="random pixels of the dataset's shape (timing only)")
    args = p.parse_args()
    import torch

    from ddcore.data import load_dataset
    from ddcore.evaluation.protocol import get_preset
    from ddcore.evaluation.trainer import train_group
    from ddcore.methods.random import random_real_set
    from ddcore.models import create_model

    torch.set_num_threads(args.threads)
    if args.noise_data:
        from .noise_data import noise_dataset

        data = noise_dataset(args.dataset)
    else:
        data = load_dataset(args.dataset)
    info = data.info
    synthetic = random_real_set(data, args.ipc, 0)
    device = torch.device(args.device)

    def build():
        return create_model("convnet", info.channels, info.num_classes, info.image_size)

    def timed(seeds: list[int], mode: str, epochs: int) -> float:
        cfg = get_preset("paper").with_(epochs=epochs, batch_seeds=mode).resolve(info.name, "convnet", "dsa")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        train_group(build, seeds, synthetic.images, synthetic.labels, cfg, device, info.num_classes)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t

    many = list(range(args.seeds))
    times = {}
    for label, seeds, mode in (("one seed", [0], "loop"), (f"{args.seeds} seeds in turn", many, "loop"),
                               (f"{args.seeds} seeds batched (vmap)", many, "vmap")):
        timed(seeds, mode, 2)  # warm-up: kernels, allocator, vmap tracing
        times[label] = timed(seeds, mode, args.epochs)
    one = times["one seed"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{args.threads} CPU thread(s)"
    row = {"device": str(device), "device_name": name, "dataset": info.name, "ipc": args.ipc, "seeds": args.seeds,
           "epochs": args.epochs, "seconds": {k: round(v, 2) for k, v in times.items()},
           "ms_per_pass": {k: round(1000 * v / args.epochs, 1) for k, v in times.items()},
           "ratio_to_one": {k: round(v / one, 2) for k, v in times.items()}, "torch": torch.__version__,
           "load_avg": os.getloadavg(), "when": time.strftime("%Y-%m-%d %H:%M"),
           **({"data": "noise"} if args.noise_data else {})}
    print(json.dumps(row), flush=True)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jsonl = out / "eval-batching.jsonl"
    with jsonl.open("a") as f:
        f.write(json.dumps(row) + "\n")
    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    lines = ["# The paper evaluation protocol: several seeds trained together against one", "",
             "Command: `python -m benchmarks.eval_batching` (see the module docstring). Random real CIFAR-10 images, "
             "ConvNet, paper optimiser, DSA; time per training pass (testing excluded). Goal (issue #20, on a GPU): 10 "
             "seeds batched in at most 2x the time of one.", "",
             "| when | device | seeds | passes | one seed ms/pass | in turn ms/pass (x one) | batched ms/pass (x one) "
             "| load avg |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ms, ratio = r["ms_per_pass"], r["ratio_to_one"]
        turn, batched = f"{r['seeds']} seeds in turn", f"{r['seeds']} seeds batched (vmap)"
        lines.append(f"| {r['when']} | {r['device_name']} | {r['seeds']} | {r['epochs']} | {ms['one seed']} | "
                     f"{ms[turn]} ({ratio[turn]}x) | {ms[batched]} ({ratio[batched]}x) | "
                     f"{', '.join(f'{x:.1f}' for x in r['load_avg'])} |")
    (out / "eval-batching.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
