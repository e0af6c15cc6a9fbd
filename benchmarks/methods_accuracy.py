"""Accuracy of DC, DSA and DM sets beside random real images, evaluated the same way.

    flock /tmp/ddstudio-bench.lock .venv/bin/python -m benchmarks.methods_accuracy --threads 1
    flock /tmp/ddstudio-bench.lock .venv/bin/python -m benchmarks.methods_accuracy \
        --cells cifar10:dm:10 mnist:dc:1 --distill-seeds 0 --eval-seeds 3

A cell = (dataset, method, IPC[, evaluation augmentation]). For every distillation seed the set is distilled with the
method's `--preset` (quick by default; wall time recorded) and evaluated with ddcore.evaluate's
`--eval-preset` protocol on `--eval-seeds` fresh ConvNets; 'random' cells are random real images
evaluated the same way. A fourth part evaluates the cell under another augmentation than its method's
(`mnist:random:10:dsa`): that is how random real is measured under the protocol a DSA-evaluated set gets, the
fair baseline of DD-Ranking (a set and its random-real baseline trained the same way). `as-<method>` takes that
method's whole evaluation protocol (`cifar10:random:1:as-frepo`: ZCA space, DSA, Adam, a ConvNet without norm). Results are appended to
results/methods-accuracy.jsonl as they finish
(`--resume` skips done ones) and results/methods-accuracy.md is rewritten after every cell; with
`--preset paper` the files are methods-accuracy-paper.* (the paper protocol needs a GPU:
benchmarks/paper_gpu.sh runs groups of cells on one, detached from the shell).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from ddcore.data import load_dataset
from ddcore.evaluate import evaluate
from ddcore.evaluation.protocol import EvalConfig
from ddcore.methods import list_methods, method_class
from ddcore.platform.recorder import EventControl
from ddcore.platform.store import Store
from ddcore.tasks import resolve_artefacts
from ddcore.tasks.distill import DistillSpec, distil, requirements

RESULTS = Path(__file__).resolve().parent / "results"
JSONL = RESULTS / "methods-accuracy.jsonl"
TABLE = RESULTS / "methods-accuracy.md"
COMMAND = "python -m benchmarks.methods_accuracy " + " ".join(os.sys.argv[1:])

# Priority order: the targets first; then every other registered distillation method (not a coreset:
# benchmarks/coresets.py has those) and random real, on the same datasets and IPCs.
PRIORITY_CELLS = ["cifar10:dm:10", "mnist:dc:1", "cifar10:dc:1", "cifar10:dsa:1", "cifar10:random:10",
                  "cifar10:random:1", "mnist:random:1", "mnist:dsa:1", "mnist:dm:1", "cifar10:dm:1",
                  "mnist:dm:10", "fashionmnist:dc:1", "fashionmnist:dsa:1", "fashionmnist:dm:1", "fashionmnist:dm:10",
                  "fashionmnist:random:1", "fashionmnist:random:10", "mnist:random:10", "mnist:dc:10",
                  "cifar10:dc:10", "cifar10:dsa:10", "mnist:dsa:10", "fashionmnist:dc:10", "fashionmnist:dsa:10"]
DATASETS, IPCS = ("mnist", "fashionmnist", "cifar10"), (1, 10)


def distillation_methods() -> list[str]:
    """Registered methods that are not coresets, plus the random real baseline."""
    return [m for m in list_methods() if m == "random" or method_class(m).family != "coreset"]


def default_cells() -> list[str]:
    cells = [c for c in PRIORITY_CELLS if c.split(":")[1] in list_methods()]
    extra = [f"{d}:{m}:{i}" for m in distillation_methods() for d in DATASETS for i in IPCS]
    return cells + [c for c in extra if c not in cells]


DEFAULT_CELLS = default_cells()
TARGETS = {("cifar10", "dm", 10): 40.0, ("cifar10", "dc", 1): 24.0, ("cifar10", "dsa", 1): 24.0,
           ("mnist", "dc", 1): 85.0, ("cifar10", "mtt", 1): 27.4}  # MTT: above DC's quick result (issue 16)


def published_row(dataset: str, method: str, ipc: int):
    """The published ConvNet row of a cell, or else the paper's own network's row (DD: LeNet / AlexNet, KIP-FC: an
    FC network or its kernel), so a cell the papers report only on another network still shows what they report."""
    try:
        from ddcore.published import lookup

        rows = lookup(dataset, method, ipc, "convnet") or lookup(dataset, method, ipc, None)
    except Exception:  # the table is optional for this benchmark
        return None
    return rows[0] if rows else None


def published(dataset: str, method: str, ipc: int, mean: float, finished: bool = True) -> tuple[str, str]:
    """The published 'mean ± std' and (ours − published mean) / published std (paper-preset goal: within ±2). No σ
    where it would mislead: a row from another network is named and gets none (our column is a ConvNet's). A set whose
    distillation the budget cut short says so beside its σ ('cut': the gap measures the budget as well as the method)."""
    r = published_row(dataset, method, ipc)
    if r is None:
        return "–", "–"
    text = f"{r.mean:.1f}" + (f" ± {r.std:.1f}" if r.std is not None else "")
    if r.architecture not in ("convnet", "convnetd4"):
        return f"{text} ({r.architecture})", "–"
    sigma = f"{(mean - r.mean) / r.std:+.1f}" if r.std else "–"
    return text, sigma if finished else f"{sigma} (cut)"


def eval_augmentation(row: dict) -> str:
    """The augmentation a row's set was evaluated with (older rows did not record it: resolved again, which is
    deterministic for a method and dataset)."""
    if row.get("eval_augmentation"):
        return row["eval_augmentation"]
    return EvalConfig().resolve(row["dataset"], "convnet", row["method"]).augmentation


def protocol_key(row: dict) -> tuple:
    """What a fair random-real baseline must share with a set: data, IPC, augmentation, ZCA space, optimiser and
    evaluation network (rows from before the optimiser was recorded used the DC recipe on the network as it is)."""
    return (row["dataset"], row["ipc"], eval_augmentation(row), bool(row.get("config", {}).get("zca", False)),
            row.get("eval_optimizer", "sgd"), row.get("eval_convnet_norm", ""))


AS_PREFIX = "as-"  # a cell 'cifar10:random:1:as-frepo': random real trained the way FRePo's sets are


def random_as(data, synthetic, method: str):
    """The random set in the input space of `method`'s sets on this dataset (ZCA-whitened where its preset is)."""
    from dataclasses import asdict

    from ddcore.evaluation.protocol import method_zca
    from ddcore.synthetic import SetMeta, SyntheticSet

    if not method_zca(method, data.info.name, "quick", synthetic.meta.ipc):  # the rule sweep and page baselines use
        return synthetic
    from ddcore.zca import dataset_zca

    meta = SetMeta(**{**asdict(synthetic.meta), "config": {**synthetic.meta.config, "zca": True}})
    return SyntheticSet(dataset_zca(data).apply(synthetic.images), synthetic.labels, meta, synthetic.lr)


def krr_own_kernel(data, synthetic, method: str, device: str) -> dict:
    """A kernel method's own measures beside three random real sets measured the same way, in the same pixel space
    (DD-Ranking's same-protocol rule): KRR with the kernel it distils with (KIP's, FRePo's and RFAD's reported
    numbers), and where the method names one (`eval_finite_network`) a finite network of that kernel's shape trained
    in its kernel regime (KIP-FC's and RFAD's finite-network numbers; 3 seeds for the set, one per random set). A
    closed-form kernel's KRR costs a second on the full test set; the random-feature ConvNet kernel (4 random
    ConvNets, one draw) is scored on the evaluation's 2,000 test images, a minute per set here; the wide networks
    take minutes each."""
    from ddcore.evaluation.kernel_network import evaluate_finite_network
    from ddcore.evaluation.krr import CLOSED_FORM, KERNEL_SETTINGS, evaluate_krr
    from ddcore.methods import create_method, method_class

    kernel = method_class(method).eval_krr_kernel
    finite = method_class(method).eval_finite_network
    closed = kernel in CLOSED_FORM
    if method_class(method).family != "kernel":
        return {}
    limit, seeds = (None, 3) if closed else (2000, [0])
    zca = bool(synthetic.meta.config.get("zca"))
    own = evaluate_krr(synthetic, architecture=kernel, seeds=seeds, device=device, test_data=data, test_limit=limit)
    # the kernel's settings ride on the set (evaluate_krr reads them there): the random sets carry the same ones
    settings = {k: synthetic.meta.config[k] for k in KERNEL_SETTINGS if k in synthetic.meta.config}
    randoms, net_randoms = [], []
    for seed in (0, 1, 2):
        rnd = create_method("random", data, synthetic.meta.ipc, seed=seed).synthetic()
        rnd.meta = dataclasses.replace(rnd.meta, config={**rnd.meta.config, **settings})
        randoms.append(evaluate_krr(rnd, architecture=kernel, seeds=seeds, device=device, test_data=data,
                                    test_limit=limit, zca_space=zca).mean)
        if finite is not None:
            net_randoms.append(evaluate_finite_network(finite, rnd, seeds=[seed], device=device, test_data=data,
                                                       test_limit=limit, zca_space=zca).mean)
    out = {"krr": {"architecture": f"{kernel}_krr", "mean": own.mean, "test_images": own.test_images, "reg": own.reg,
                   "kernel": own.kernel, "command": f"evaluate_krr(set, architecture={kernel!r}, seeds={seeds}, "
                                                    f"test_limit={limit})"},
           "krr_random": {"accuracies": randoms, "seeds": [0, 1, 2],
                          "command": f"evaluate_krr(random real seed s, architecture={kernel!r}, seeds={seeds}, "
                                     f"test_limit={limit}, zca_space={zca})"}}
    if finite is None:
        return out
    net = evaluate_finite_network(finite, synthetic, seeds=3, device=device, test_data=data, test_limit=limit)
    return {**out,
            "finite": {"architecture": finite, "accuracies": list(net.accuracies), "mean": net.mean, "std": net.std,
                       "network": net.description, "lr": net.lr, "test_images": net.test_images,
                       "settings": net.settings, "command": f"evaluate_finite_network({finite!r}, set, seeds=3, "
                                                            f"test_limit={limit})"},
            "finite_random": {"accuracies": net_randoms, "seeds": [0, 1, 2],
                              "command": f"evaluate_finite_network({finite!r}, random real seed s, seeds=[s], "
                                         f"test_limit={limit}, zca_space={zca})"}}


def replay_own_schedule(data, synthetic, device: str) -> dict:
    """DD's own measure: its learned schedule replayed from fresh initialisations (3 seeds), beside three random real
    sets replayed with the same schedule on the same network (one seed each), DD-Ranking's same-protocol rule."""
    from ddcore.evaluation.replay import evaluate_replay, schedule_of
    from ddcore.methods import create_method

    if not synthetic.meta.config.get("learned_step_sizes"):
        return {}
    schedule = schedule_of(synthetic.meta.config)
    own = evaluate_replay(synthetic, seeds=3, device=device, test_data=data)
    randoms = [evaluate_replay(create_method("random", data, synthetic.meta.ipc, seed=seed).synthetic(), seeds=[seed],
                               device=device, test_data=data, schedule=schedule,
                               architecture=synthetic.meta.architecture,
                               model_kwargs=synthetic.meta.config.get("model_kwargs") or {}).mean for seed in (0, 1, 2)]
    return {"replay": {"accuracies": list(own.accuracies), "mean": own.mean, "std": own.std, "steps": own.steps,
                       "groups": own.groups, "architecture": own.architecture, "test_images": own.test_images,
                       "command": "evaluate_replay(set, seeds=3)"},
            "replay_random": {"accuracies": randoms, "seeds": [0, 1, 2],
                              "command": "evaluate_replay(random real seed s, seeds=[s], schedule=the set's)"}}


def run_cell(data, method: str, ipc: int, seed: int, eval_seeds: int, device: str, overrides: dict,
             budget_s: float | None, preset: str = "quick", eval_preset: str = "quick",
             save_dir: Path | None = None, augmentation: str = "auto") -> dict:
    from ddcore.methods import method_class

    if preset not in method_class(method).presets:  # e.g. random real in a --preset live table: its quick preset
        preset = "quick"
    spec = DistillSpec(dataset=data.info.name, method=method, ipc=ipc, preset=preset, seed=seed, device=device,
                       overrides=overrides, evaluate_after=False)
    # prerequisites (expert trajectories, a feature network) are made or loaded first and timed apart: their cost
    # is paid once per setting and shared by every later run
    t_art = time.perf_counter()
    needed = requirements(spec)
    store = Store()
    made = [r for r in needed if store.get_artefact(r.key()) is None]
    artefacts = resolve_artefacts(needed, store, device, data) if needed else {}
    artefacts_s = time.perf_counter() - t_art
    artefact_costs = {r.kind: (store.get_artefact(r.key()).params.get("seconds") if store.get_artefact(r.key()) else None)
                      for r in needed}
    t0 = last = time.perf_counter()

    def progress(runner, row: dict) -> None:  # a line every 30 s, for long runs watched through a log
        nonlocal last
        if time.perf_counter() - last >= 30:
            last = time.perf_counter()
            print(f"  {data.info.name}:{method}:{ipc} it {row['iteration']}/{runner.method.total_iterations} "
                  f"loss {row.get('loss', float('nan')):.4g} {runner.its_per_s():.2f} it/s", flush=True)

    runner, _ = distil(spec, data, control=EventControl(budget_s=budget_s), on_step=progress, artefacts=artefacts)
    synthetic = runner.result()
    distill_s = time.perf_counter() - t0
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
        synthetic.save(save_dir / f"{data.info.name}-{method}-ipc{ipc}-{preset}-seed{seed}.safetensors")
    as_method = augmentation[len(AS_PREFIX):] if augmentation.startswith(AS_PREFIX) else None
    if as_method is not None:  # random real under another method's whole protocol (DD-Ranking's fair baseline)
        synthetic = random_as(data, synthetic, as_method)
        res = evaluate(synthetic, "convnet", eval_preset, seeds=list(range(eval_seeds)), device=device,
                       test_data=data, method=as_method)
    else:
        res = evaluate(synthetic, "convnet", eval_preset, seeds=list(range(eval_seeds)), device=device,
                       test_data=data, augmentation=augmentation)
    losses = [r["loss"] for r in runner.history if "loss" in r]
    own = as_method is None and method != "random"
    krr = {**krr_own_kernel(data, synthetic, method, device), **replay_own_schedule(data, synthetic, device)} if own else {}
    return {**krr, "dataset": data.info.name, "method": method, "ipc": ipc, "seed": seed,
            "accuracies": list(res.accuracies), "mean": res.mean, "std": res.std,
            "distill_s": round(distill_s, 1), "iterations": runner.method.iteration,
            "artefacts_made_s": round(artefacts_s, 1) if made else 0.0, "artefact_costs_s": artefact_costs,
            "planned_iterations": runner.method.total_iterations, "budget_s": budget_s,
            "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
            "eval_s": round(res.wall_time_s, 1), "eval_preset": res.preset,
            "eval_augmentation": res.config["augmentation"], "eval_lr": res.config["lr"], "test_images": res.test_images,
            "eval_optimizer": res.config["optimizer"], "eval_convnet_norm": res.config["convnet_norm"],
            **({"eval_as": as_method} if as_method else {}),
            "preset": preset, "device": res.device, "data_source": data.source,
            "config": {k: v for k, v in synthetic.meta.config.items()}, "threads": torch.get_num_threads(),
            "load_avg": os.getloadavg(), "cpu_count": os.cpu_count(), "torch": torch.__version__, "when": time.strftime("%Y-%m-%d %H:%M"),
            "overrides": overrides, "command": COMMAND}


def cell_label(row: dict) -> str:
    """'random', or 'random [dsa]' for a row evaluated under another augmentation than its method's own."""
    if row.get("eval_as"):
        return f"{row['method']} [as {row['eval_as']}]"
    own = EvalConfig().resolve(row["dataset"], "convnet", row["method"]).augmentation
    aug = eval_augmentation(row)
    return row["method"] if aug == own else f"{row['method']} [{aug}]"


def write_table(rows: list[dict], command: str, preset: str = "quick") -> None:
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        cells.setdefault((r["dataset"], cell_label(r), r["ipc"]), []).append(r)
    randoms = {(d, i): np.concatenate([x["accuracies"] for x in v]) for (d, m, i), v in cells.items() if m == "random"}
    same_protocol: dict[tuple, list[float]] = {}  # protocol_key -> random-real accuracies trained that way
    for r in rows:
        if r["method"] == "random":
            same_protocol.setdefault(protocol_key(r), []).extend(r["accuracies"])
    devices = sorted({r.get("device", f"{platform.machine()} CPU") for r in rows})
    lines = [f"# Distillation methods beside random real, {preset} preset, ConvNet, {', '.join(devices)}", "",
             f"Command: `{command}`  ",
             f"Machine: {', '.join(devices)}; torch {sorted({r.get('torch', torch.__version__) for r in rows})}. "
             "Jobs shared the machine, so wall times are noisy (load average recorded per row in the .jsonl).", "",
             "Accuracy: mean ± population std over all (distillation seed × evaluation network) pairs, ddcore.evaluate "
             f"{sorted({r.get('eval_preset', 'quick') for r in rows})} protocol; every set is evaluated with its "
             "method's own protocol (augmentation, learned lr, soft labels, ZCA). 'random real': random real images "
             "under random's own protocol (DC augmentation), 'vs random': (ours − random) / random std at the same "
             "IPC. 'same protocol': random real images trained the way this set is (same augmentation and ZCA space, "
             "the lr a method starts from), DD-Ranking's fair baseline; '–' where not measured. 'random [dsa]' rows "
             "are those baselines. 'published': the paper's ConvNet number, or where the papers report none, their own "
             "network's, named in brackets (DD: LeNet / AlexNet; KIP-FC: a fully connected network), with no 'vs "
             "published' σ (our column is a ConvNet's); '(cut)': the budget stopped the distillation before its "
             "planned iterations, so that gap measures the budget as well as the method.", "",
             "| dataset | method | IPC | accuracy % | n | target | random real % | vs random (σ) | random, same "
             "protocol % | vs same protocol (σ) | published | vs published (σ) | distill s (iters done/planned) | eval s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def versus(acc: np.ndarray, base) -> tuple[str, str]:
        if base is None or len(base) == 0:
            return "–", "–"
        base = np.asarray(base)
        sig = f"{(acc.mean() - base.mean()) / base.std():+.1f}" if base.std() > 1e-6 else "–"
        return f"{base.mean():.1f} ± {base.std():.1f}", sig

    for (d, m, i), v in sorted(cells.items()):
        acc = np.concatenate([x["accuracies"] for x in v])
        method = v[0]["method"]
        rnd_txt, sig = versus(acc, randoms.get((d, i))) if method != "random" else ("–", "–")
        same_txt, same_sig = (versus(acc, same_protocol.get(protocol_key(v[0]))) if method != "random"
                              else ("–", "–"))
        target = TARGETS.get((d, m, i)) if preset == "quick" else None  # the targets are for quick
        tgt = "–" if target is None else (f"≥{target:.0f} " + ("met" if acc.mean() >= target else "NOT met"))
        dist = ", ".join(f"{x['distill_s']:.0f}" for x in v)
        its = ", ".join(f"{x['iterations']}/{x.get('planned_iterations', x['iterations'])}" for x in v)
        if method == "random":
            dist, its = "–", "no distillation"
        finished = all(x["iterations"] >= x.get("planned_iterations", x["iterations"]) for x in v)
        pub, vs_pub = published(d, method, i, acc.mean(), finished) if m == method else ("–", "–")
        lines.append(f"| {d} | {m} | {i} | {acc.mean():.1f} ± {acc.std():.1f} | {len(acc)} | {tgt} | {rnd_txt} "
                     f"| {sig} | {same_txt} | {same_sig} | {pub} | {vs_pub} | {dist} ({its}) | "
                     f"{', '.join(str(x['eval_s']) for x in v)} |")
    TABLE.write_text("\n".join(lines + krr_table(rows) + replay_table(rows)) + "\n")


def replay_table(rows: list[dict]) -> list[str]:
    """DD under its own evaluation: its learned schedule replayed, beside random real replayed the same way."""
    replayed = sorted((r for r in rows if r.get("replay")), key=lambda r: (r["dataset"], r["method"], r["ipc"]))
    if not replayed:
        return []
    lines = ["", "## DD under its own evaluation", "",
             "DD's reported numbers come from networks that take exactly its learned steps (image group i mod G, step "
             "size lr_i) from a fresh random initialisation, not from the DC recipe. 'replayed': that schedule on the "
             "network the set was distilled with (ddcore/evaluation/replay.py; 3 initialisations, full test set); "
             "'random real, same schedule': three random real sets replayed with the set's own step sizes (one "
             "initialisation each).", "",
             "| dataset | method | IPC | steps (groups) | replayed % | random real, same schedule % | vs random (σ) | "
             "published |", "|---|---|---|---|---|---|---|---|"]
    for r in replayed:
        base = np.asarray(r["replay_random"]["accuracies"])
        sig = f"{(r['replay']['mean'] - base.mean()) / base.std():+.1f}" if base.std() > 1e-6 else "–"
        pub = published(r["dataset"], r["method"], r["ipc"], r["replay"]["mean"])[0]
        lines.append(f"| {r['dataset']} | {r['method']} | {r['ipc']} | {r['replay']['steps']} ({r['replay']['groups']}) "
                     f"| {r['replay']['mean']:.1f} ± {r['replay']['std']:.1f} | {base.mean():.1f} ± {base.std():.1f} "
                     f"| {sig} | {pub} |")
    return lines


def published_krr(dataset: str, method: str, ipc: int) -> str:
    """The paper's KRR number for the kernel table where the published table has one ('(KRR)'), else the number of
    its own network, named in brackets."""
    try:
        from ddcore.published import lookup

        rows = lookup(dataset, method, ipc, "convnet_krr")
    except Exception:  # the table is optional for this benchmark
        rows = []
    r, what = (rows[0], "KRR") if rows else (published_row(dataset, method, ipc), None)
    if r is None:
        return "–"
    text = f"{r.mean:.1f}" + (f" ± {r.std:.1f}" if r.std is not None else "")
    return f"{text} ({what or r.architecture}{', unverified' if r.uncertain else ''})"


def krr_table(rows: list[dict]) -> list[str]:
    """Kernel methods under their own KRR evaluation, beside random real under the same kernel."""
    kernel_rows = sorted((r for r in rows if r.get("krr") and r.get("krr_random")),
                         key=lambda r: (r["dataset"], r["method"], r["ipc"]))
    if not kernel_rows:
        return []
    lines = ["", "## Kernel methods under their own evaluation", "",
             "KRR test accuracy with the kernel the method distils with: a closed-form kernel (KIP's) on the full test set, "
             "one exact number per set; the random-feature ConvNet kernel (FRePo's, RFAD's; 4 random ConvNets, one draw) "
             "on the evaluation's 2,000 test images (column 'test'), "
             "beside three random real sets under the same kernel (mean ± population std); 'finite network': the "
             "method's own finite network of the kernel's shape, output centred at initialisation, 3 seeds, beside "
             "three random real sets trained the same way (one network each), '–' where the method has none or the row "
             "was measured before it existed. fc_wide (KIP-FC's): width 1024, NTK parameterisation, 3000 full-batch "
             "gradient steps on the squared error, full test set (ddcore/evaluation/wide_fc.py); convnet_wide (RFAD's): "
             "a width-128 ConvNet without normalisation, RFAD's finite recipe (label-scaled squared error, SGD with "
             "momentum, lr scaled by 1024 / 128 and weight decay by 128 / 1024, at most 1000 steps, the best of them "
             "on 100 real training images per class), "
             "on the 2,000 test images (ddcore/evaluation/wide_conv.py). 'published' "
             "is the paper's KRR number with the ConvNet kernel where the published table has one, else the number of its "
             "own network (in brackets: fc is KIP-FC's finite network, convnet a trained ConvNet).", "",
             "| dataset | method | IPC | KRR % | random real, same kernel % | vs random (σ) | finite network % "
             "| random real, same network % | vs random (σ) | published | test | kernel |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def versus(value: float, accuracies) -> tuple[str, str]:
        base = np.asarray(accuracies)
        sig = f"{(value - base.mean()) / base.std():+.1f}" if base.std() > 1e-6 else "–"
        return f"{base.mean():.1f} ± {base.std():.1f}", sig

    for r in kernel_rows:
        base, sig = versus(r["krr"]["mean"], r["krr_random"]["accuracies"])
        net, net_base, net_sig = "–", "–", "–"
        finite, finite_random = r.get("finite") or r.get("wide_fc"), r.get("finite_random") or r.get("wide_fc_random")
        if finite:  # rows from before RFAD's network stored KIP's under 'wide_fc'
            net = f"{finite['mean']:.1f} ± {finite['std']:.1f} ({finite.get('architecture', 'fc_wide')})"
            net_base, net_sig = versus(finite["mean"], finite_random["accuracies"])
        pub_txt = published_krr(r["dataset"], r["method"], r["ipc"])
        lines.append(f"| {r['dataset']} | {r['method']} | {r['ipc']} | {r['krr']['mean']:.1f} | {base} | {sig} | {net} "
                     f"| {net_base} | {net_sig} | {pub_txt} | {r['krr'].get('test_images', '–')} | {r['krr']['kernel']} |")
    return lines


def at_todays_preset(row: dict, preset: str) -> bool:
    """Whether a row's set was distilled with the settings `preset` gives today (an override, or a preset changed
    since, such as CAFE's outer-loop cap, makes its time another configuration's)."""
    from ddcore.data import get_dataset_info
    from ddcore.methods import make_config

    today = json.loads(json.dumps(dataclasses.asdict(make_config(row["method"], get_dataset_info(row["dataset"]), row["ipc"], preset))))
    return all(today[k] == v for k, v in row.get("config", {}).items() if k in today)


def seconds_per_iteration(rows: list[dict], preset: str) -> dict[tuple[str, str, int], float]:
    """(method, data family, IPC) -> median distillation seconds per iteration over the one-thread CPU rows distilled
    at today's `preset`: the tables of ddcore/estimates.py (prerequisites such as expert trajectories are timed apart
    and left out; coreset selections have their own table there)."""
    from ddcore.data import get_dataset_info
    from ddcore.estimates import family
    from ddcore.methods import method_class

    cells: dict[tuple[str, str, int], list[float]] = {}
    for r in rows:
        if (not r.get("iterations") or r.get("threads", 1) != 1 or "cuda" in str(r.get("device") or "")
                or method_class(r["method"]).family == "coreset" or not at_todays_preset(r, preset)):
            continue
        info = get_dataset_info(r["dataset"])
        cells.setdefault((r["method"], family(info.channels, info.image_size), r["ipc"]), []).append(
            r["distill_s"] / r["iterations"])
    return {k: round(float(np.median(v)), 3 if np.median(v) < 1 else 2) for k, v in sorted(cells.items())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", nargs="+", default=DEFAULT_CELLS,
                   help="dataset:method:ipc (default: the priority cells, then every registered distillation method)")
    p.add_argument("--distill-seeds", nargs="+", type=int, default=[0])
    p.add_argument("--eval-seeds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy shared CPU)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--preset", default="quick", choices=("live", "quick", "paper"),
                   help="the methods' preset (live: DM's classroom preset, results in methods-accuracy-live.*)")
    p.add_argument("--eval-preset", default=None, choices=("quick", "paper"),
                   help="evaluation protocol (default: the same as --preset)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="method overrides for every cell")
    p.add_argument("--budget-s", type=float, default=900.0, help="stop distilling after this many seconds")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--table-only", action="store_true", help="rewrite the .md from the .jsonl and stop")
    p.add_argument("--estimates", action="store_true",
                   help="print the preset's seconds per iteration, as ddcore/estimates.py holds them, and stop")
    p.add_argument("--out-dir", default=str(RESULTS), help="where the .jsonl and .md go")
    p.add_argument("--save-sets", default=None, help="folder to save each distilled set in (.safetensors)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    global JSONL, TABLE
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.preset == "quick" else f"-{args.preset}"
    JSONL, TABLE = out / f"methods-accuracy{suffix}.jsonl", out / f"methods-accuracy{suffix}.md"
    eval_preset = args.eval_preset or ("quick" if args.preset == "live" else args.preset)  # live: no own protocol
    rows = [json.loads(line) for line in JSONL.read_text().splitlines()] if JSONL.exists() else []
    done = {(r["dataset"], cell_label(r), r["ipc"], r["seed"]) for r in rows}
    command = COMMAND
    if args.estimates:
        table = seconds_per_iteration(rows, args.preset)
        for method in dict.fromkeys(m for m, _, _ in table):
            print("    " + " ".join(f'("{m}", "{f}", {i}): {v},' for (m, f, i), v in table.items() if m == method))
        return
    if args.table_only:
        write_table(rows, f"python -m benchmarks.methods_accuracy --preset {args.preset} --resume --cells …  "
                          "(several runs; each row's command line is in the .jsonl)", args.preset)
        return
    unknown = sorted({c.split(":")[1] for c in args.cells} - set(list_methods()))
    if unknown:
        p.error(f"unknown method(s) {', '.join(unknown)}; registered: {', '.join(list_methods())}")
    for cell in args.cells:
        ds, method, ipc, *rest = cell.split(":")
        augmentation = rest[0] if rest else "auto"
        data = load_dataset(ds)
        # random real sets are cheap and their spread is mostly the choice of images: 3 choices
        seeds = sorted(set(args.distill_seeds) | {0, 1, 2}) if method == "random" else args.distill_seeds
        for seed in seeds:
            label = method if augmentation == "auto" else cell_label(
                {"dataset": data.info.name, "method": method, "eval_augmentation": augmentation,
                 "eval_as": augmentation[len(AS_PREFIX):] if augmentation.startswith(AS_PREFIX) else None})
            if args.resume and (data.info.name, label, int(ipc), seed) in done:
                continue
            row = run_cell(data, method, int(ipc), seed, args.eval_seeds, args.device, overrides, args.budget_s,
                           args.preset, eval_preset, Path(args.save_sets) if args.save_sets else None, augmentation)
            print(json.dumps({k: row[k] for k in ("dataset", "method", "ipc", "seed", "mean", "std", "distill_s")}),
                  flush=True)
            with JSONL.open("a") as f:
                f.write(json.dumps(row) + "\n")
            rows.append(row)
            write_table(rows, command, args.preset)


if __name__ == "__main__":
    main()
