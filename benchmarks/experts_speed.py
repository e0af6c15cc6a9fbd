"""Training several experts at once (one torch.func.vmap call over their stacked parameters) against one at a
time, on the same device and data.

    flock /tmp/ddstudio-bench.lock .venv/bin/python -m benchmarks.experts_speed --experts 4 --images 1000

Both train `--experts` ConvNet-3 experts for one epoch on `--images` real CIFAR-10 images with DSA, batch 64,
buffer.py's optimiser (SGD lr 0.01); the first pass is a warm-up and not timed. Results: results/experts-speed.md
and .jsonl (one row per device and mode).
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
    p.add_argument("--experts", type=int, default=4)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dataset", default="cifar10")
    args = p.parse_args()
    import torch

    from ddcore.data import load_dataset
    from ddcore.experts import ExpertPlan, train_experts
    from ddcore.models import create_model

    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset)
    info = data.info
    per_class = max(1, args.images // info.num_classes)
    split = data.train.subset_per_class(per_class, torch.Generator().manual_seed(0))
    images, labels = data.normalize(split.images), split.labels
    device = torch.device(args.device)

    def build():
        return create_model("convnet", info.channels, info.num_classes, info.image_size)

    rows = []
    for mode in ("loop", "vmap"):
        plan = ExpertPlan(experts=args.experts, epochs=1, batch=args.batch, mode=mode)
        train_experts(images[: args.batch * 2], labels[: args.batch * 2], build, plan, device)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        out = train_experts(images, labels, build, plan, device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t
        row = {"mode": mode, "experts": args.experts, "images": len(labels), "batch": args.batch, "seconds": round(seconds, 2),
               "expert_epochs_per_s": round(args.experts / seconds, 4), "device": str(device),
               "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else f"{args.threads} CPU thread(s)",
               "load_avg": os.getloadavg(), "torch": torch.__version__, "shape": list(out.shape),
               "when": time.strftime("%Y-%m-%d %H:%M")}
        rows.append(row)
        print(json.dumps(row), flush=True)
    RESULTS.mkdir(exist_ok=True)
    with (RESULTS / "experts-speed.jsonl").open("a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    all_rows = [json.loads(line) for line in (RESULTS / "experts-speed.jsonl").read_text().splitlines()]
    lines = ["# Experts trained together (vmap) against one at a time (loop)", "",
             "Command: `python -m benchmarks.experts_speed` (see the .jsonl for each row's arguments); ConvNet-3, one epoch "
             "each, DSA, SGD lr 0.01, batch 64, CIFAR-10 images.", "",
             "| when | device | experts | images | loop s | vmap s | vmap speed-up | load |", "|---|---|---|---|---|---|---|---|"]
    for i in range(0, len(all_rows) - 1, 2):
        lo, vm = all_rows[i], all_rows[i + 1]
        lines.append(f"| {lo['when']} | {lo['device_name']} | {lo['experts']} | {lo['images']} | {lo['seconds']} | "
                     f"{vm['seconds']} | {lo['seconds'] / vm['seconds']:.2f}x | {lo['load_avg'][0]:.1f} |")
    (RESULTS / "experts-speed.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
