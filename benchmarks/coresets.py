"""Coreset baselines (every registered method of family 'coreset': random, herding, k-center, plugins)
evaluated with ConvNet, beside the published numbers.

    flock /tmp/ddstudio-bench.lock .venv/bin/python -m benchmarks.coresets --preset quick
    flock /tmp/ddstudio-bench.lock .venv/bin/python -m benchmarks.coresets --preset paper \
        --methods random herding --datasets mnist cifar10 --ipcs 1 10 --seeds 3

Seed s means: coreset chosen with seed s, then one fresh network (init seed s) trained on it and
tested, so the spread covers both the choice of images and the network (the DC paper reports
5 sets x 20 networks). Every finished cell is appended to a JSON-lines file at once, so an
interrupted run keeps its results; `--resume` skips cells already there; the markdown table is
rewritten after every cell.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from ddcore.data import load_dataset
from ddcore.device import resolve_device
from ddcore.evaluate import evaluate, get_preset
from ddcore.methods import create_method, list_methods, make_config, method_class
from ddcore.platform.store import Store
from ddcore.tasks import resolve_artefacts

RESULTS = Path(__file__).resolve().parent / "results"


def coreset_methods() -> list[str]:
    """The registered coreset methods (family 'coreset'), in the registry's order."""
    return [m for m in list_methods() if method_class(m).family == "coreset"]


def published(dataset: str, method: str, ipc: int) -> tuple[float, float | None, bool] | None:
    try:
        from ddcore.published import lookup

        rows = lookup(dataset, method, ipc, "convnet")
    except (ImportError, KeyError):  # no table, or a method the papers do not report (UnknownNameError)
        return None
    if not rows:
        return None
    r = rows[0]
    return r.mean, r.std, r.uncertain


def load_avg() -> str:
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def run_cell(data, method: str, ipc: int, seed: int, preset: str, device: str, coreset_preset: str) -> dict:
    t0 = time.perf_counter()
    config = make_config(method, data.info, ipc, coreset_preset)
    needed = method_class(method).requires(data.info, ipc, config, "convnet")  # herding/k-center: a trained network
    artefacts = resolve_artefacts(needed, Store(), "cpu", data) if needed else None
    m = create_method(method, data, ipc, config=config, seed=seed, device="cpu", artefacts=artefacts)
    while not m.done:
        m.step()
    select_s = time.perf_counter() - t0
    r = evaluate(m.synthetic(), "convnet", preset, seeds=[seed], device=device, test_data=data)
    return {"dataset": data.info.name, "method": method, "ipc": ipc, "seed": seed, "accuracy": r.accuracies[0],
            "select_s": round(select_s, 2), "eval_s": r.wall_time_s, "train_s": r.train_time_s, "test_s": r.test_time_s,
            "test_images": r.test_images, "device": r.device, "preset": r.preset, "config": r.config,
            "load": load_avg(), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}


def table(cells: list[dict], title: str, command: str, started: str, load_start: str) -> str:
    groups: dict[tuple, list[dict]] = {}
    for c in cells:
        groups.setdefault((c["dataset"], c["method"], c["ipc"]), []).append(c)
    lines = [f"# {title}", "", f"Command: `{command}`  ", f"Started {started}; machine: {platform.machine()} "
             f"{os.cpu_count()} CPU(s), torch {torch.__version__}; load average at start {load_start}, "
             f"now {load_avg()} (the CPU is shared with other jobs: times are noisy).", "",
             "Ours: mean ± population std over seeds (each seed = its own coreset + one fresh ConvNet), "
             "test accuracy %. "
             "Published: DC paper Table 1 (5 sets x 20 ConvNets) via ddcore.published; '?' = marked uncertain there. "
             "'±2σ' = |ours − published| ≤ 2 × published std.", "",
             "| dataset | method | IPC | ours | n | published | ±2σ | select s | eval s / network | test images "
             "| preset (epochs, aug) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (ds, method, ipc), cs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        accs = [c["accuracy"] for c in cs]
        m = sum(accs) / len(accs)
        s = (sum((a - m) ** 2 for a in accs) / len(accs)) ** 0.5
        pub = published(ds, method, ipc)
        if pub is None:
            pub_txt, ok = "–", "–"
        else:
            pm, ps, unc = pub
            pub_txt = f"{pm:.1f} ± {ps:.1f}" if ps is not None else f"{pm:.1f}"
            pub_txt += " ?" if unc else ""
            ok = ("yes" if abs(m - pm) <= 2 * ps else "no") if ps else "–"
        cfg = cs[0]["config"]
        lines.append(f"| {ds} | {method} | {ipc} | {m:.1f} ± {s:.1f} | {len(cs)} | {pub_txt} | {ok} | "
                     f"{sum(c['select_s'] for c in cs) / len(cs):.1f} | {sum(c['eval_s'] for c in cs) / len(cs):.1f} | "
                     f"{cs[0]['test_images']} | {cs[0]['preset']} ({cfg['passes']} passes, {cfg['augmentation']}) |")
    return "\n".join(lines) + "\n"


def naive_evaluate(images: torch.Tensor, labels: torch.Tensor, data, passes: int,
                   seeds: list[int]) -> tuple[list[float], float]:
    """The reference's way (refdc/utils.py evaluate_synset + epoch), written plainly: a DataLoader per
    network, one optimiser each, testing the whole test set through a DataLoader of 256. The 'before'
    of the speed comparison (same maths as ddcore.evaluate without augmentation)."""
    from torch.utils.data import DataLoader, TensorDataset

    from ddcore.models import create_model

    t0 = time.perf_counter()
    accs = []
    test = DataLoader(TensorDataset(data.normalize(data.test.images), data.test.labels), batch_size=256)
    for seed in seeds:
        torch.manual_seed(seed)
        net = create_model("convnet", data.info.channels, data.info.num_classes, data.info.image_size)
        lr = 0.01
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
        loader = DataLoader(TensorDataset(images, labels), batch_size=256, shuffle=True)
        for ep in range(passes):
            net.train()
            for x, y in loader:
                loss = torch.nn.functional.cross_entropy(net(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            if ep == passes // 2 + 1:
                lr *= 0.1
                opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
        net.eval()
        correct = 0
        with torch.no_grad():
            for x, y in test:
                correct += int((net(x).argmax(1) == y).sum())
        accs.append(correct / len(data.test))
    return accs, time.perf_counter() - t0


def speed(dataset: str, ipc: int, out: Path) -> None:
    """Wall time of one quick evaluation (the issue's 'CIFAR-10 IPC-10 under a minute'), of the same
    training done the naive way, and of loop vs vmap seed batching, with a profile of the quick run."""
    from torch.profiler import ProfilerActivity, profile

    data = load_dataset(dataset)
    m = create_method("random", data, ipc, seed=0)
    m.step()
    s = m.synthetic()
    rows = [f"# Evaluation speed, {dataset} IPC {ipc} random set, ConvNet, CPU", "",
            f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average at start {load_avg()} "
            "(shared CPU: noisy).", "", "| what | wall s | accuracy % |", "|---|---|---|"]

    def add(what: str, wall: float, accs: list[float]) -> None:
        rows.append(f"| {what} | {wall:.1f} | {' / '.join(f'{a:.1f}' for a in accs)} |")
        out.write_text("\n".join(rows) + "\n")
        print(rows[-1], flush=True)

    quick = get_preset("quick")
    r = evaluate(s, "convnet", "quick", device="cpu", test_data=data)
    add(f"evaluate(preset='quick'): {len(r.seeds)} seeds x {r.config['passes']} passes, {r.test_images} test images "
        f"(train {r.train_time_s:.1f} s, test {r.test_time_s:.1f} s)", r.wall_time_s, r.accuracies)
    full = evaluate(s, "convnet", "quick", seeds=[0], device="cpu", test_data=data, test_limit=None)
    add("evaluate, 1 seed, quick passes, full test set "
        f"(train {full.train_time_s:.1f} s, test {full.test_time_s:.1f} s)", full.wall_time_s, full.accuracies)
    accs, wall = naive_evaluate(s.images, s.labels, data, quick.epochs_no_aug, [0])
    add("naive reference-style loop (DataLoader, 2 threads), same 1 seed and passes, full test set via DataLoader(256)",
        wall, accs)
    for mode in ("loop", "vmap"):
        rr = evaluate(s, "convnet", "quick", seeds=2, device="cpu", test_data=data, epochs=5, batch_seeds=mode,
                      test_limit=100)
        add(f"training only, 2 seeds x 5 passes, batch_seeds={mode} (train {rr.train_time_s:.1f} s)", rr.train_time_s,
            rr.accuracies)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        evaluate(s, "convnet", "quick", seeds=1, device="cpu", test_data=data, epochs=3, test_limit=500)
    rows += ["", "Profile of a short quick evaluation (1 seed, 3 passes, 500 test images), "
             "top operators by self CPU time:",
             "", "```", prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12), "```"]
    out.write_text("\n".join(rows) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="quick", choices=["quick", "paper"], help="evaluation preset")
    p.add_argument("--coreset-preset", default=None, help="preset of herding/k-center features (default: --preset)")
    p.add_argument("--datasets", nargs="+", default=["mnist", "fashionmnist", "cifar10"])
    p.add_argument("--methods", nargs="+", default=coreset_methods(), choices=coreset_methods(),
                   help="default: every registered coreset method")
    p.add_argument("--ipcs", nargs="+", type=int, default=[1, 10, 50])
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--name", default=None, help="results file stem (default coresets-<preset>)")
    p.add_argument("--resume", action="store_true", help="skip cells already in the JSON-lines file")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--speed", action="store_true",
                   help="time one quick evaluation of a random set (first dataset and IPC)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.speed:
        RESULTS.mkdir(parents=True, exist_ok=True)
        speed(args.datasets[0], args.ipcs[0], RESULTS / f"coresets-speed-{args.datasets[0]}-ipc{args.ipcs[0]}.md")
        return 0
    get_preset(args.preset)
    stem = args.name or f"coresets-{args.preset}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    jsonl, md = RESULTS / f"{stem}.jsonl", RESULTS / f"{stem}.md"
    cells = ([json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
             if args.resume and jsonl.exists() else [])
    if not args.resume and jsonl.exists():
        jsonl.unlink()
    done = {(c["dataset"], c["method"], c["ipc"], c["seed"]) for c in cells}
    command = "python -m benchmarks.coresets " + " ".join(argv if argv is not None else sys.argv[1:])
    started, load_start = time.strftime("%Y-%m-%d %H:%M"), load_avg()
    device = str(resolve_device(args.device))
    title = f"Coreset baselines, {args.preset} preset, ConvNet, on {device}"
    # cheap cells first: IPC order outermost so a cut-off run still covers every dataset and method
    for ipc in args.ipcs:
        for ds in args.datasets:
            data = load_dataset(ds)
            for method in args.methods:
                for seed in range(args.seeds):
                    if (data.info.name, method, ipc, seed) in done:
                        continue
                    cell = run_cell(data, method, ipc, seed, args.preset, device, args.coreset_preset or args.preset)
                    cells.append(cell)
                    with jsonl.open("a") as f:
                        f.write(json.dumps(cell) + "\n")
                    md.write_text(table(cells, title, command, started, load_start))
                    print(f"{ds} {method} ipc{ipc} seed{seed}: {cell['accuracy']:.2f}% "
                          f"(select {cell['select_s']:.1f} s, eval {cell['eval_s']:.1f} s, load {cell['load']})",
                          flush=True)
    md.write_text(table(cells, title, command, started, load_start))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
