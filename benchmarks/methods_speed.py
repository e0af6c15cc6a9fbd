"""Seconds per outer iteration of DC, DSA and DM: ours (fp32 and the fast modes) vs the reference.

    flock /tmp/ddstudio-bench.lock .venv/bin/python -m benchmarks.methods_speed --threads 1
    flock /tmp/ddstudio-bench.lock .venv/bin/python -m benchmarks.methods_speed --methods dm \
        --datasets mnist --ipcs 10 --modes fp32 channels_last --reference /tmp/refdc-run

Identical hyperparameters: the paper preset (real batch 256 per class, reference loops, DSA
strategy per dataset). The reference is VICO-UoE/DatasetCondensation (`--reference`: a checkout
whose networks.py uses `.contiguous().reshape` after convolutions, needed on torch >= 2.x); its
iteration is driven here by calling its own functions (get_network, DiffAugment, match_loss,
epoch) in main.py / main_DM.py's order. Ours and the reference run interleaved in one process so
both see the same load on this shared CPU. Each cell runs in a fresh process (`--in-process` to
share one): in one long process the reference's DC/DSA/DM steps became up to 1.5x faster after
earlier cells (CIFAR-10 DC IPC 1: 13.7 s there vs 20.5-21.2 s in a fresh process, over and over;
ours 10.8 vs 11.4 s). The reference allocates 8-34 MB activations per class and is sensitive to the
allocator's state (with THP_MEM_ALLOC_ENABLE=1 the same step took 16.1 s); ours works in chunks
of 32 images and is not. A fresh process is how either implementation is run in practice.

DC/DSA iterations at IPC 10/50 take minutes (outer_loop 10/50 matchings of 10 x 256 real images
plus inner training); `--dc-outer K` times a truncated iteration of K outer loops for BOTH
implementations (the same work), and the table also gives the extrapolation to the full loop count.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ddcore.data import load_dataset
from ddcore.device import cpu_has_bf16
from ddcore.methods import create_method, list_methods, method_class
from ddcore.methods.matching import get_loops

from .noise_data import noise_dataset

RESULTS = Path(__file__).resolve().parent / "results"
REFERENCE_METHODS = ("dc", "dsa", "dm")  # what the Reference class below can run of refdc's code


def timed_methods() -> list[str]:
    """Registered methods with speed modes (the matching methods' `speed_mode` setting)."""
    return [m for m in list_methods() if "speed_mode" in {f.name for f in method_class(m).config_fields()}]


def has_loops(method: str) -> bool:
    """Gradient matching (DC, DSA): an iteration is outer loops of matching plus inner training."""
    return "outer_loop" in {f.name for f in method_class(method).config_fields()}


class Reference:
    """One outer iteration of the reference code, on the same data."""

    def __init__(self, path: str, data, method: str, ipc: int, outer: int | None, device: str = "cpu") -> None:
        sys.path.insert(0, path)
        import utils as ref  # noqa: PLC0415 (the reference's module)

        self.ref = ref
        self.method, self.ipc = method, ipc
        info = data.info
        self.C, self.ch, self.hw = info.num_classes, info.channels, (info.image_size, info.image_size)
        images, labels = data.normalized_split("train")
        self.device = device
        self.images_all = images.to(device)  # main.py keeps images_all on args.device too
        self.indices_class = [np.flatnonzero(labels.numpy() == c) for c in range(self.C)]
        self.image_syn = torch.randn(self.C * ipc, self.ch, *self.hw, device=device, requires_grad=True)
        self.label_syn = torch.arange(self.C, device=device).repeat_interleave(ipc)
        lr = 1.0 if method == "dm" else 0.1
        self.optimizer_img = torch.optim.SGD([self.image_syn], lr=lr, momentum=0.5)
        self.outer_loop, self.inner_loop = get_loops(ipc)
        if outer:
            self.outer_loop = min(outer, self.outer_loop)
        strategy = "color_crop_cutout_scale_rotate" if info.name == "mnist" else "color_crop_cutout_flip_scale_rotate"
        self.args = argparse.Namespace(device=device, dis_metric="ours", dsa=method in ("dsa", "dm"),
                                       dsa_strategy=strategy, dsa_param=ref.ParamDiffAug(), dc_aug_param=None,
                                       batch_train=256)

    def get_images(self, c: int, n: int) -> torch.Tensor:
        return self.images_all[np.random.permutation(self.indices_class[c])[:n]]

    def step(self) -> None:
        ref, a = self.ref, self.args
        net = ref.get_network("ConvNet", self.ch, self.C, self.hw).to(self.device)
        if self.method == "dm":
            for p in net.parameters():
                p.requires_grad = False
            loss = torch.tensor(0.0, device=self.device)
            for c in range(self.C):
                img_real, img_syn = self.get_images(c, 256), self.image_syn[c * self.ipc:(c + 1) * self.ipc]
                seed = int(time.time() * 1000) % 100000
                img_real = ref.DiffAugment(img_real, a.dsa_strategy, seed=seed, param=a.dsa_param)
                img_syn = ref.DiffAugment(img_syn, a.dsa_strategy, seed=seed, param=a.dsa_param)
                loss = loss + torch.sum((net.embed(img_real).detach().mean(0) - net.embed(img_syn).mean(0)) ** 2)
            self.optimizer_img.zero_grad()
            loss.backward()
            self.optimizer_img.step()
            return
        params = list(net.parameters())
        optimizer_net = torch.optim.SGD(net.parameters(), lr=0.01)
        criterion = torch.nn.CrossEntropyLoss()
        for ol in range(self.outer_loop):
            loss = torch.tensor(0.0, device=self.device)
            for c in range(self.C):
                img_real = self.get_images(c, 256)
                lab_real = torch.full((img_real.shape[0],), c, dtype=torch.long, device=self.device)
                img_syn = self.image_syn[c * self.ipc:(c + 1) * self.ipc]
                lab_syn = torch.full((self.ipc,), c, dtype=torch.long, device=self.device)
                if a.dsa:
                    seed = int(time.time() * 1000) % 100000
                    img_real = ref.DiffAugment(img_real, a.dsa_strategy, seed=seed, param=a.dsa_param)
                    img_syn = ref.DiffAugment(img_syn, a.dsa_strategy, seed=seed, param=a.dsa_param)
                gw_real = [g.detach().clone() for g in torch.autograd.grad(criterion(net(img_real), lab_real), params)]
                gw_syn = torch.autograd.grad(criterion(net(img_syn), lab_syn), params, create_graph=True)
                loss = loss + ref.match_loss(gw_syn, gw_real, a)
            self.optimizer_img.zero_grad()
            loss.backward()
            self.optimizer_img.step()
            if ol == self.outer_loop - 1:
                break
            dst = ref.TensorDataset(self.image_syn.detach().clone(), self.label_syn.clone())
            loader = torch.utils.data.DataLoader(dst, batch_size=256, shuffle=True, num_workers=0)
            for _ in range(self.inner_loop):
                ref.epoch("train", loader, net, optimizer_net, criterion, a, aug=a.dsa)


def git_commit() -> str:
    import subprocess  # noqa: PLC0415

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=10).stdout.strip()
    except Exception:
        return ""


def timed(step, repeats: int, warmup: int, device: str = "cpu") -> list[float]:
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(warmup):
        step()
    out = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        step()
        sync()
        out.append(time.perf_counter() - t)
    return out


def seconds(v: float) -> str:
    return f"{v:.2f}" if v >= 1 else f"{v:.3f}"


def write_table(jsonl: Path, out: Path) -> None:
    """Markdown table of the newest row per (dataset, method, IPC, threads) in `jsonl`: median s/it per mode."""
    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    newest: dict[tuple, dict] = {}
    earlier: dict[tuple, dict] = {}  # fast-mode timings of older rows of a cell, when the newest row lacks them
    for r in rows:
        cell = (r["dataset"], r["method"], r["ipc"], r.get("threads", 1))
        newest[cell] = r
        for m in ("channels_last", "bf16", "compile"):
            if m in r:
                earlier.setdefault(cell, {})[m] = r[m]
    modes = [m for m in ("fp32", "channels_last", "bf16", "compile") if any(m in r for r in rows)]
    machines = sorted({r.get("machine", "CPU") for r in rows})
    lines = [f"# Seconds per outer iteration, paper hyperparameters, {', '.join(machines)}", "",
             f"Rows: `{jsonl.name}` (newest per cell), rendered by `python -m benchmarks.methods_speed --table`. "
             "Median of the timed iterations; reference = VICO-UoE/DatasetCondensation driven in the same process "
             "just before ours, a fresh process per cell (from 2026-11-25 23:05; see the module docstring); speed-up = "
             "reference / ours fp32. DC/DSA rows time the first `outer_timed` outer loops of an iteration "
             "(`outer_full` in a whole one) for both implementations. * = from an earlier run of the cell, before "
             "the first-order fast passes and under load ~3 (the newest timed fp32 and the reference only).", "",
             "| dataset | method | IPC | threads | outer timed/full | reference s | "
             + " | ".join(f"{m} s" for m in modes) + " | speed-up fp32 | when | load before |",
             "|---|---|---|---|---|---|" + "---|" * len(modes) + "---|---|---|"]
    for (ds, method, ipc, threads), r in sorted(newest.items()):
        med = {k: statistics.median(v) for k, v in r.items()
               if k in ("reference", *modes) and isinstance(v, list) and v}
        ref, fp = med.get("reference"), med.get("fp32")
        outer = f"{r['outer_timed']}/{r['outer_full']}" if r.get("outer_timed") else "–"
        older = {m: statistics.median(v) for m, v in earlier.get((ds, method, ipc, threads), {}).items()
                 if m not in med}
        cells = " | ".join(f"{seconds(med[m])}" if m in med else f"{seconds(older[m])}*" if m in older else "–"
                           for m in modes)
        speed = f"{ref / fp:.2f}x" if ref and fp else "–"
        ref_txt = seconds(ref) if ref else "–"
        lines.append(f"| {ds} | {method} | {ipc} | {threads} | {outer} | {ref_txt} | {cells} | {speed} | {r['when']} | "
                     f"{r['load_before'][0]:.1f} |")
    out.write_text("\n".join(lines) + "\n")


def _shared_args(argv: list[str]) -> list[str]:
    """argv without the --datasets/--methods/--ipcs lists (a child process gets one cell of them)."""
    out, skip = [], False
    for a in argv:
        if a in ("--datasets", "--methods", "--ipcs"):
            skip = True
            continue
        if a.startswith("--"):
            skip = False
        if not skip:
            out.append(a)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", default=timed_methods(), choices=timed_methods(),
                   help="default: every registered method with speed modes")
    p.add_argument("--datasets", nargs="+", default=["mnist", "cifar10"])
    p.add_argument("--ipcs", nargs="+", type=int, default=[1, 10, 50])
    p.add_argument("--modes", nargs="+", default=["fp32", "channels_last", "bf16", "compile"])
    p.add_argument("--reference", default="/tmp/refdc-run", help="patched reference checkout ('' to skip)")
    p.add_argument("--dc-outer", type=int, default=2, help="outer loops timed per DC/DSA iteration (0: all)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu or cuda (then use another --out)")
    p.add_argument("--out", default=str(RESULTS / "methods-speed.jsonl"))
    p.add_argument("--table", action="store_true", help="render the .jsonl as a .md table beside it and stop")
    p.add_argument("--noise-data", action="store_true",
                   help="random pixels of each dataset's shape (benchmarks/noise_data.py): times the same work where the "
                        "data cannot travel, e.g. a lent GPU")
    p.add_argument("--in-process", action="store_true",
                   help="time every cell in this process (default: one fresh process per cell, see the docstring)")
    args = p.parse_args()
    if args.table:
        write_table(Path(args.out), Path(args.out).with_suffix(".md"))
        return
    cells = [(ds, m, i) for ds in args.datasets for m in args.methods for i in args.ipcs]
    if not args.in_process and len(cells) > 1:
        for ds, m, i in cells:
            subprocess.run([sys.executable, "-m", "benchmarks.methods_speed", *_shared_args(sys.argv[1:]),
                            "--in-process", "--datasets", ds, "--methods", m, "--ipcs", str(i)], check=True)
        return
    torch.set_num_threads(args.threads)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for ds in args.datasets:
        data = noise_dataset(ds) if args.noise_data else load_dataset(ds)
        for method in args.methods:
            for ipc in args.ipcs:
                outer_full, _ = get_loops(ipc)
                loops = has_loops(method)
                outer = outer_full if not loops or not args.dc_outer else min(args.dc_outer, outer_full)
                extra = {"outer_loop": outer} if loops else {}
                # DC/DSA iterations are long: no warm-up beyond the first (untimed) network build.
                warmup, repeats = (0, 1) if loops else (1, args.repeats)
                row = {"dataset": ds, "method": method, "ipc": ipc, "outer_timed": outer if loops else None,
                       "outer_full": outer_full if loops else None, "threads": args.threads,
                       "when": time.strftime("%Y-%m-%d %H:%M"), "load_before": os.getloadavg(),
                       **({"data": "noise"} if args.noise_data else {})}
                if args.reference and method in REFERENCE_METHODS:
                    np.random.seed(0)
                    torch.manual_seed(0)
                    r = Reference(args.reference, data, method, ipc, outer if loops else None, args.device)
                    row["reference"] = timed(r.step, repeats, warmup, args.device)
                for mode in args.modes:
                    if mode == "compile" and loops:
                        continue  # double backward (create_graph) is not supported by torch.compile
                    if mode == "bf16" and args.device == "cpu" and not cpu_has_bf16():
                        row["bf16_skipped"] = "no native bfloat16 on this CPU (a bf16 conv measured ~80x slower)"
                        continue
                    m = create_method(method, data, ipc, preset="paper", device=args.device, speed_mode=mode, **extra)
                    if mode == "compile":
                        m.step()  # compile outside the timing
                    row[mode] = timed(m.step, repeats, warmup if mode != "compile" else 0, args.device)
                row["load_after"] = os.getloadavg()
                summary = {k: round(statistics.median(v), 3) for k, v in row.items()
                           if isinstance(v, list) and k not in ("load_before", "load_after")}
                print(json.dumps({"cell": f"{ds}:{method}:{ipc}", **summary}), flush=True)
                with open(args.out, "a") as f:
                    machine = (torch.cuda.get_device_name() if args.device.startswith("cuda")
                               else f"{platform.machine()} {os.cpu_count()} CPUs")
                    f.write(json.dumps({**row, "machine": machine,
                                        "torch": torch.__version__, "commit": git_commit()}) + "\n")


if __name__ == "__main__":
    main()
