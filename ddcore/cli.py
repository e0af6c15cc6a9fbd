"""The command line: `python -m ddcore datasets | models | methods | show | distill | evaluate | privacy | continual | nas`.

Every subcommand is a thin layer over the library; errors print one clear line and exit 2.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from .output_paths import check_outputs, write_json
from .registry import PluginError, UnknownNameError

Handler = Callable[[argparse.Namespace], int]


def _listing(kind: str) -> Handler:
    def run(args: argparse.Namespace) -> int:
        from . import catalog

        rows = {"datasets": catalog.dataset_rows, "models": catalog.model_rows, "methods": catalog.method_rows}[kind]()
        print(catalog.format_rows(rows))
        return 0
    return run


def _show(args: argparse.Namespace) -> int:
    from .catalog import describe_set

    if args.png:  # a device, a missing folder or an unwritable one: said plainly, before drawing
        check_outputs(png=(args.png, {"overwrite": True}))
    print(describe_set(args.file, args.png, args.scale, overwrite=args.overwrite))
    return 0


def _export(args: argparse.Namespace) -> int:
    from .atomic import write_atomic
    from .synthetic import SyntheticSet

    out = Path(args.out or Path(args.file).with_suffix("").name + "-tensors.zip")
    if out.resolve() == Path(args.file).resolve():
        raise ValueError(f"{out} is the set file itself; write the tensors elsewhere with --out")
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it, or --out to write elsewhere")
    check_outputs(out=(out, {"overwrite": True}))
    write_atomic(out, SyntheticSet.load(args.file).to_torch_zip())
    print(f"wrote {out} (images.pt, labels.pt, meta.json, and lr.pt when the set learned one)")
    return 0


def _parse_overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value, got '{pair}'")
        key, raw = pair.split("=", 1)
        key = key.strip()
        if not key:
            raise ValueError(f"--set expects key=value, got '{pair}' (no key)")
        if key in out:
            raise ValueError(f"--set names {key} twice; give it once")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


class _BarRecorder:
    """The CLI's recorder: a tqdm bar with the latest loss."""

    def __init__(self, bar) -> None:
        self.bar = bar

    def progress(self, done: float, total: float, message: str = "") -> None:
        self.bar.total = int(total) or self.bar.total
        self.bar.n = int(done)
        self.bar.refresh()

    def metrics(self, row: dict) -> None:
        if "loss" in row:
            self.bar.set_postfix(loss=f"{row['loss']:.4g}", refresh=False)

    def images(self, images, labels, class_names) -> None:
        pass

    def state(self, status: str) -> None:
        pass


def _distill(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .data import load_dataset
    from .methods.base import DivergenceError
    from .platform.recorder import EventControl
    from .platform.store import Store
    from .tasks.base import Cancelled
    from .tasks.distill import DistillSpec, distil, validate

    overrides = _parse_overrides(args.set)
    for key in ("iterations", "init"):
        flag = getattr(args, key)
        if flag is not None:
            if key in overrides and overrides[key] != flag:
                raise ValueError(f"--{key} {flag} and --set {key}={overrides[key]} disagree; give one of them")
            overrides[key] = flag
    spec = DistillSpec(dataset=args.dataset, method=args.method, ipc=args.ipc, preset=args.preset,
                       overrides=overrides, architecture=args.arch, seed=args.seed, device=args.device,
                       data_root=args.data_root, eval_every=args.eval_every, evaluate_after=False)
    validate(spec)  # name and range errors before any loading
    if args.eval_every is not None and args.eval_every < 1:
        raise ValueError(f"--eval-every is a number of iterations, at least 1, not {args.eval_every}")
    unused = [flag for flag, given in (("--eval-krr", args.eval_krr), ("--json", args.json),
                                       ("--eval-arch", args.eval_arch != ["convnet"]),
                                       ("--eval-preset", args.eval_preset != "quick"),
                                       ("--eval-seeds", args.eval_seeds is not None)) if given]
    if unused and not args.eval:
        raise ValueError(f"{', '.join(unused)} describe{'s' if len(unused) == 1 else ''} the evaluation after the run; "
                         "add --eval to run it")
    if args.eval:
        _check_evaluation(args)
    out = Path(args.out or f"{args.dataset}_{args.method}_ipc{args.ipc}_seed{args.seed}.ddset")
    problem = _out_problem(out)
    if problem:  # said before the run, not after it
        print(f"error: --out {out}: {problem}", file=sys.stderr)
        return 2
    check_outputs(out=(out, {"overwrite": args.overwrite}),
                  out_picture=(out.with_suffix(".png"), {"overwrite": args.overwrite}))
    if args.json and Path(args.json).resolve() in (out.resolve(), out.with_suffix(".png").resolve()):
        raise ValueError(f"--json {args.json} is where the set (or its picture) goes; write the record elsewhere")
    data = load_dataset(args.dataset, root=args.data_root)
    print(f"{data.info.display_name} from {data.source}", file=sys.stderr)
    store = run_id = None
    if not args.no_store:  # the run is kept like the app's, so the Gallery shows it
        store = Store()
        run_id = store.create_run(spec.stored(), status="queued").id
    bar = tqdm(desc=f"{args.method} IPC {args.ipc}", unit="it", disable=args.quiet)
    control = EventControl()
    where = f"; stored as run {run_id} in {store.root}" if store is not None else ""
    try:
        with _stop_on_signals(control):
            runner, outcome = distil(spec, data, store=store, run_id=run_id, recorder=_BarRecorder(bar),
                                     control=control)
    except KeyboardInterrupt:  # a second Ctrl-C: distil saved the set in the store (resumable), not --out
        print("\ninterrupted", file=sys.stderr)
        return 130
    except Cancelled as e:  # stopped while an artefact it needs (experts, a feature network) was being made
        if store is not None and run_id:
            store.update_run(run_id, status="stopped", message=f"{e} before the run began.")
        print(f"\n{e}; no set yet (what was trained so far is not kept)", file=sys.stderr)
        return 130
    except DivergenceError as e:  # the method's last good set is still worth having: save it, then say so
        bar.close()
        kept = _save_set(e.runner.result(), out)
        print(f"error: {e}\nthe last good set (iteration {e.runner.method.iteration}) is saved as {kept}{where}",
              file=sys.stderr)
        return 2
    finally:
        bar.close()
    result = runner.result()
    out = _save_set(result, out)
    print(f"saved {out} and {out.with_suffix('.png')} ({result.meta.iteration} iterations, "
          f"{result.meta.elapsed_s:.1f} s){where}")
    if control.stop_requested and not runner.done:  # Ctrl-C or SIGTERM: the set so far is saved, and says so
        print(f"stopped at iteration {result.meta.iteration} of {runner.method.total_iterations}", file=sys.stderr)
        return 130
    if args.eval:
        return _evaluate_set(result, args, data)
    return 0


def _out_problem(out: Path) -> str:
    """Why a set cannot be named `out` (empty when it can): its grid PNG goes beside it with the suffix .png, so a
    set named *.png would be overwritten by its own picture. Whether the path can be written: check_outputs."""
    if out.suffix.lower() == ".png":
        return "a set file cannot end in .png (its grid picture is written as <name>.png beside it); use .ddset"
    return ""


def _save_set(result, out: Path) -> Path:
    """The set file and its grid PNG beside it (smaller, or none, for a set too large to draw: the set is what
    matters, and it is saved first). Where `out` fails after all (the disk filled during the run), the set goes to
    the studio's home instead, and the path it went to is returned."""
    try:
        result.save(out)
    except OSError as e:
        from .paths import home_dir

        rescue = home_dir() / "rescued" / f"{int(time.time())}-{out.name}"
        rescue.parent.mkdir(parents=True, exist_ok=True)
        result.save(rescue)  # if this fails too, the error says so (and a stored run keeps its set)
        print(f"warning: could not write {out} ({e.strerror or e}); the set is saved as {rescue}", file=sys.stderr)
        out = rescue
    for scale in (2, 1):
        try:
            out.with_suffix(".png").write_bytes(result.to_png_grid(scale=scale))
            return out
        except ValueError as e:  # too many pixels for a picture
            reason = str(e)
        except OSError as e:  # the set is saved; its picture is a convenience
            reason = e.strerror or str(e)
            break
    print(f"note: {out} is saved; its grid picture is not ({reason})", file=sys.stderr)
    return out


def _check_evaluation(args: argparse.Namespace) -> None:
    """The evaluation's architectures, preset and seeds, checked before any training (a bad one found after an
    hour's distillation, or after the first architecture, wastes it)."""
    from .evaluation.api import MAX_SEEDS
    from .evaluation.protocol import get_preset
    from .models import MODELS

    for arch in args.eval_arch:
        base = arch[: -len("_krr")] if arch.endswith("_krr") else arch
        if base not in MODELS:
            MODELS.get(base)  # raises with the close matches
    get_preset(args.eval_preset)
    if args.eval_seeds is not None and not 1 <= args.eval_seeds <= MAX_SEEDS:
        raise ValueError(f"--eval-seeds/--seeds is a number of networks from 1 to {MAX_SEEDS}, not {args.eval_seeds}")


@contextlib.contextmanager
def _stop_on_signals(control):
    """Ctrl-C or SIGTERM ends a CLI distillation at the next safe point (within an iteration for long ones), so the
    set so far reaches --out (with --no-store it was lost); a second Ctrl-C quits at once."""
    def handler(signum, frame):
        if control.event.is_set():
            raise KeyboardInterrupt
        control.event.set()
        # os.write, not print: the signal may land inside the progress bar's own write to stderr
        os.write(2, b"\nstopping: saving the set as it is (Ctrl-C again to quit at once)\n")

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _evaluate_set(synthetic, args: argparse.Namespace, data=None) -> int:
    """Every evaluation the CLI offers, on `data`'s test split when given (an image folder has no name to load by)."""
    from .evaluate import evaluate

    for arch in args.eval_arch:
        res = evaluate(synthetic, arch, preset=args.eval_preset, seeds=args.eval_seeds, device=args.device,
                       test_data=data)
        print(f"{arch}: {res.mean:.2f} ± {res.std:.2f} % over {len(res.seeds)} seeds "
              f"({args.eval_preset} preset, {res.wall_time_s:.1f} s on {res.device})")
        if args.json:
            write_json(args.json, res.to_dict())
    if synthetic.meta.config.get("learned_step_sizes"):  # DD's own evaluation: its schedule, replayed (milliseconds)
        from .evaluation import get_preset as preset_of
        from .evaluation.replay import evaluate_replay

        replay = evaluate_replay(synthetic, seeds=args.eval_seeds or 3, device=args.device,
                                 test_limit=preset_of(args.eval_preset).test_limit, test_data=data)
        print(f"DD's schedule replayed ({replay.steps} learned steps on {replay.architecture} from fresh "
              f"initialisations): {replay.mean:.2f} ± {replay.std:.2f} % over {len(replay.seeds)} seeds "
              f"on {replay.test_images} test images")
    if getattr(args, "eval_krr", False):
        from .evaluation import get_preset
        from .evaluation.krr import evaluate_krr
        from .methods import METHODS

        method = synthetic.meta.method
        kernel = METHODS.get(method).eval_krr_kernel if method in METHODS else "convnet"  # the method's own kernel
        krr = evaluate_krr(synthetic, architecture=kernel, device=args.device, seeds=args.eval_seeds or 3,
                           test_limit=get_preset(args.eval_preset).test_limit,  # the same test images as the networks
                           test_data=data)
        where = f"{krr.models} random ConvNets per seed" if krr.models else krr.kernel
        print(f"KRR ({where}): {krr.mean:.2f} ± {krr.std:.2f} % over {len(krr.seeds)} seeds "
              f"on {krr.test_images} test images")
        finite = METHODS.get(method).eval_finite_network if method in METHODS else None
        if finite is not None:  # a kernel method's finite network: one of the kernel's shape in its kernel regime
            from .evaluation.kernel_network import FINITE_NETWORKS, evaluate_finite_network, finite_network_max_set

            if len(synthetic.images) > finite_network_max_set(finite):
                print(f"{FINITE_NETWORKS[finite]}: not trained; it trains on at most "
                      f"{finite_network_max_set(finite):,} images in one full batch, this set has "
                      f"{len(synthetic.images):,}")
                return 0
            net = evaluate_finite_network(finite, synthetic, seeds=args.eval_seeds or 3, device=args.device,
                                          test_limit=get_preset(args.eval_preset).test_limit, test_data=data)
            print(f"{FINITE_NETWORKS[finite]} ({net.description}): {net.mean:.2f} ± {net.std:.2f} % over {len(net.seeds)} "
                  f"seeds on {net.test_images} test images")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .synthetic import SyntheticSet

    _check_evaluation(args)
    synthetic = SyntheticSet.load(args.file)
    data = None
    if args.data_root is not None:
        from .data import load_dataset

        shape = {"image_size": synthetic.images.shape[-1], "channels": synthetic.images.shape[1]} \
            if synthetic.meta.dataset == "folder" else {}  # a folder is read at the set's own size
        data = load_dataset(synthetic.meta.dataset, root=args.data_root, **shape)
        stats = (*data.info.mean, *data.info.std)
        if not all(abs(a - b) < 1e-4 for a, b in zip(synthetic.meta.mean + synthetic.meta.std, stats)):
            print(f"warning: {args.file} was distilled from data with another mean and std than {data.source}; "
                  "evaluating on it anyway", file=sys.stderr)
    elif synthetic.meta.dataset == "folder":
        print(f"error: {args.file} was distilled from an image folder; name that folder (or zip) with --data-root",
              file=sys.stderr)
        return 2
    return _evaluate_set(synthetic, args, data)


class _StudyBar(_BarRecorder):
    """A study's bar: units of work, with what it is doing now."""

    def progress(self, done: float, total: float, message: str = "") -> None:
        super().progress(done, total, message)
        if message:
            self.bar.set_postfix_str(message[:60], refresh=True)


def _run_study(spec, device: str, quiet: bool):
    """A study (ddcore.tasks.study) run here without the job queue, kept in the store like the app's: a stored result
    is reused; an artefact it needs that is not stored is made first, with a bar of its own."""
    from tqdm import tqdm

    from .platform.recorder import EventControl
    from .platform.store import Store
    from .tasks import TaskContext, producer_of, task_for

    store = Store()
    task = task_for(spec)
    prepared = task.prepare(spec, store)
    if prepared.reused is not None:
        print(f"stored result reused ({prepared.name}; key {prepared.key} in {store.root})", file=sys.stderr)
        return prepared.reused
    artefacts = {}
    for requirement in task.requires(prepared.spec):
        record = store.get_artefact(requirement.key())
        if record is None:
            producer = producer_of(requirement.kind)
            made = producer.prepare(producer.spec_for(requirement, device), store)
            if made.reused is None:
                with tqdm(desc=requirement.label or requirement.kind, disable=quiet) as bar:
                    producer.run(made.spec, TaskContext(store=store, recorder=_StudyBar(bar), control=EventControl()))
            record = store.get_artefact(requirement.key())
        artefacts[requirement.kind] = record
    with tqdm(desc=prepared.name[:60], disable=quiet) as bar:
        return task.run(prepared.spec, TaskContext(store=store, recorder=_StudyBar(bar), control=EventControl(),
                                                   artefacts=artefacts))


def _continual(args: argparse.Namespace) -> int:
    from .tasks.continual import ContinualSpec

    spec = ContinualSpec(args.dataset, tuple(args.methods), args.ipc, args.steps, args.orders, args.preset, args.finetune,
                         args.arch, args.data_root, args.device)
    result = _run_study(spec, args.device, args.quiet)
    print(f"{result.dataset}: {result.steps} steps, IPC {result.ipc}, {len(result.seeds)} class order(s), "
          f"{result.preset} preset ({result.notes}); accuracy on the classes seen so far, mean ± std over the orders")
    print(f"{'memory':<10}" + "".join(f"{'step ' + str(s + 1):>16}" for s in range(result.steps))
          + f"{'memory s':>10}{'learner s':>11}")
    summary = {"key": result.key, "dataset": result.dataset, "ipc": result.ipc, "steps": result.steps,
               "orders": result.seeds, "preset": result.preset, "class_orders": result.class_orders, "device": result.device,
               "wall_time_s": result.wall_time_s, "methods": {}}
    for m, method in enumerate(result.methods):
        acc = result.accuracy[m]
        cost = result.cost(method)
        cells = "".join(f"{acc[:, s].mean():>9.1f} ± {acc[:, s].std():<4.1f}" for s in range(result.steps))
        print(f"{method:<10}{cells}{cost['memory_s']:>10.1f}{cost['learner_s']:>11.1f}")
        row = {"per_step_mean": acc.mean(0).round(2).tolist(), "per_step_std": acc.std(0).round(2).tolist(),
               "final_mean": round(result.final(method)[0], 2), "final_std": round(result.final(method)[1], 2),
               "final_per_order": acc[:, -1].round(2).tolist(), **{k: round(v, 1) for k, v in cost.items()},
               "forgetting_mean": round(float(result.forgetting(method).mean()), 2)}
        if result.finetuned:
            row["finetune_final_mean"], row["finetune_final_std"] = (round(v, 2) for v in result.final(method, True))
            row["finetune_forgetting_mean"] = round(float(result.forgetting(method, True).mean()), 2)
        summary["methods"][method] = row
    print(f"(seconds per class order; the study took {result.wall_time_s:.0f} s on {result.device}; stored as {result.key})")
    if args.json:
        write_json(args.json, summary)
    return 0


def _nas_proxies(names: list[str], dataset: str, ipc: int) -> list[str]:
    """'dm' -> 'run:<id>' of the newest finished stored DM run at this dataset and IPC; coresets and run:<id> as given."""
    from .methods import METHODS
    from .platform.store import Store

    out = []
    for name in names:
        key = name.strip().lower()
        if key.startswith("run:") or key not in METHODS or getattr(METHODS.get(key), "family", "") == "coreset":
            out.append(name)
            continue
        runs = [r for r in Store().list_runs(dataset=dataset) if r.method == key and r.ipc == ipc and r.status == "done"
                and r.fingerprint]
        if not runs:
            raise ValueError(f"no finished {key} run of {dataset} at IPC {ipc} is stored: distil one first "
                             f"(python -m ddcore distill --dataset {dataset} --method {key} --ipc {ipc})")
        newest = max(runs, key=lambda r: r.created)
        print(f"proxy {key}: run {newest.id} ({newest.name})", file=sys.stderr)
        out.append(f"run:{newest.id}")
    return out


def _nas(args: argparse.Namespace) -> int:
    from .nas import GRIDS
    from .tasks.nas import NasSpec

    if args.grid not in GRIDS:
        raise ValueError(f"Unknown grid '{args.grid}'. Choose one of: {', '.join(GRIDS)}")
    grid = GRIDS[args.grid]
    options = {k: tuple(getattr(args, k) or getattr(grid, k)) for k in ("widths", "depths", "norms", "activations", "poolings")}
    spec = NasSpec(args.dataset, tuple(_nas_proxies(args.proxy, args.dataset, args.ipc)), args.ipc, **options,
                   budget=args.budget, top_k=tuple(args.top_k), bootstrap=args.bootstrap, data_root=args.data_root,
                   device=args.device)
    result = _run_study(spec, args.device, args.quiet)
    print(f"{result.dataset}: {len(result.architectures)} ConvNets, {result.budget} budget ({result.notes}); "
          f"rank correlation of proxy and whole-data accuracy, {int(100 * 0.95)} % bootstrap intervals over the architectures")
    print(f"{'proxy':<44}{'subset':>8}{'Spearman':>24}{'Kendall':>24}{'time saved':>12}")
    for p, label in enumerate(result.proxies):
        for c in (c for c in result.correlations if c["proxy"] == label):
            print(f"{label[:43]:<44}{c['subset']:>8}{c['spearman']:>8.2f} [{c['spearman_low']:5.2f}, {c['spearman_high']:5.2f}]"
                  f"{c['kendall']:>8.2f} [{c['kendall_low']:5.2f}, {c['kendall_high']:5.2f}]{result.time_saved(p):>11.1f}x")
    print(f"whole data: {result.whole_images:,} images per architecture, {result.whole_seconds.sum():.0f} s in all; "
          f"proxies {', '.join(f'{s.sum():.0f} s' for s in result.proxy_seconds)}; stored as {result.key}")
    if args.json:
        write_json(args.json, {
            "key": result.key, "dataset": result.dataset, "budget": result.budget, "grid": result.grid,
            "architectures": result.architectures, "proxies": result.proxies, "proxy_specs": result.proxy_specs,
            "whole_accuracy": result.whole_accuracy.round(2).tolist(), "whole_seconds": result.whole_seconds.round(2).tolist(),
            "proxy_accuracy": result.proxy_accuracy.round(2).tolist(), "proxy_seconds": result.proxy_seconds.round(2).tolist(),
            "proxy_make_seconds": result.proxy_make_seconds, "correlations": result.correlations, "device": result.device,
            "wall_time_s": result.wall_time_s})
    return 0


def _privacy(args: argparse.Namespace) -> int:
    from .platform.store import Store
    from .tasks.privacy import PrivacySpec, estimate_seconds
    from .tasks.privacy import validate as validate_privacy

    changes = _parse_overrides(args.set)
    for name in ("methods", "runs", "baselines", "epsilons", "attacks", "ipc", "shadows", "split_seed", "device"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    dataset = changes.pop("dataset", args.dataset)  # --set dataset=... as --dataset
    spec = validate_privacy(PrivacySpec.preset(args.preset, dataset, **changes))
    estimate = estimate_seconds(spec)
    shadows_stored = not spec.lira or Store().get_artefact(spec.shadow_requirement().key()) is not None
    print(f"estimated cost on a 2-core CPU: about {estimate['study'] / 60:.0f} min"
          + ("" if shadows_stored else f" plus {estimate['shadows'] / 60:.0f} min of shadow models"), file=sys.stderr)
    result = _run_study(spec, spec.device, args.quiet)
    print(format_privacy(result))
    if args.json:
        write_json(args.json, result.to_dict())
    return 0


def format_privacy(result) -> str:
    """A plain-text table: one row per target, AUC and TPR at 1% FPR with 95% intervals per attack."""
    from .privacy.attacks import ATTACK_TITLES

    lines = [f"{result.split['members']} members / {result.split['non_members']} non-members, "
             f"{result.shadows.get('count', 0)} shadow models, {result.spec['bootstrap']} bootstrap resamples; "
             f"{result.total_s:.0f} s on {result.device}"]
    for attack in result.attacks:
        lines.append(f"\n{ATTACK_TITLES[attack]}")
        lines.append(f"  {'target':28s} {'imgs':>5s} {'test acc %':>10s} {'AUC [95% CI]':>22s} {'TPR@1%FPR [95% CI]':>24s} {'cost s':>8s}")
        for t in result.targets:
            m = t.attacks[attack]
            lines.append(f"  {t.label[:28]:28s} {t.images:5d} {t.test_accuracy:10.1f} "
                         f"{m.auc.value:8.3f} [{m.auc.low:.3f}, {m.auc.high:.3f}] "
                         f"{100 * m.tpr_at_1.value:9.1f}% [{100 * m.tpr_at_1.low:.1f}, {100 * m.tpr_at_1.high:.1f}] {t.cost_s:8.1f}")
    return "\n".join(lines)


def _add_eval_options(p: argparse.ArgumentParser, prefix: str = "") -> None:
    p.add_argument(f"--{prefix}arch", dest="eval_arch", nargs="+", default=["convnet"], help="architectures")
    p.add_argument(f"--{prefix}preset", dest="eval_preset", default="quick",
                   help="quick | paper | custom-e<epochs>-t<test images or all>-<none|auto|dsa|dc>, e.g. custom-e10-t500-none")
    p.add_argument(f"--{prefix}seeds", dest="eval_seeds", type=int, default=None, help="networks to train")
    p.add_argument("--json", default=None, help="also write the (last) evaluation record to this JSON file")
    p.add_argument(f"--{prefix}krr", dest="eval_krr", action="store_true",
                   help="also report kernel ridge regression's accuracy with the set's method's own kernel (the "
                        "random-feature NNGP kernel of the ConvNet; KIP's closed-form FC NTK for kip_fc sets), which "
                        "the kernel methods' papers report beside the trained network's; for kip_fc and rfad sets "
                        "also the method's finite network, one of the kernel's shape trained in its kernel regime "
                        "(KIP's wide FC network, seconds to minutes; RFAD's wide ConvNet, minutes to tens of minutes "
                        "per seed on a CPU)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ddcore", description="DD Studio's engine: dataset distillation.")
    sub = parser.add_subparsers(dest="command", required=True)
    for kind in ("datasets", "models", "methods"):
        sub.add_parser(kind, help=f"list the {kind} with one-line descriptions").set_defaults(func=_listing(kind))

    show = sub.add_parser("show", help="print a set file's summary and write its grid PNG")
    show.add_argument("file")
    show.add_argument("--png", default=None, help="where to write the grid (default: beside the file)")
    show.add_argument("--scale", type=int, default=2, choices=range(1, 9), metavar="{1..8}")
    show.add_argument("--overwrite", action="store_true", help="replace an existing PNG at that path")
    show.set_defaults(func=_show)

    export = sub.add_parser("export", help="a set file as the tensors the field's code loads (images.pt, labels.pt, "
                                           "lr.pt in a zip; unclipped, torch.load(weights_only=True))")
    export.add_argument("file")
    export.add_argument("--out", default=None, help="the zip to write (default: <set name>-tensors.zip here)")
    export.add_argument("--overwrite", action="store_true")
    export.set_defaults(func=_export)

    distill = sub.add_parser("distill", help="distil a dataset into a synthetic set")
    distill.add_argument("--dataset", default="mnist")
    distill.add_argument("--method", default="dm")
    distill.add_argument("--ipc", type=int, default=10)
    distill.add_argument("--preset", default="quick", help="quick | paper")
    distill.add_argument("--iterations", type=int, default=None)
    distill.add_argument("--init", choices=["real", "noise"], default=None)
    distill.add_argument("--arch", default="convnet", help="architecture the method trains/matches with")
    distill.add_argument("--seed", type=int, default=0)
    distill.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    distill.add_argument("--data-root", default=None)
    distill.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="method config overrides")
    distill.add_argument("--eval-every", type=int, default=None)
    distill.add_argument("--out", default=None, help="set file to write (.ddset; its grid picture goes beside it "
                         "as .png)")
    distill.add_argument("--overwrite", action="store_true", help="replace an existing set file (and picture) there")
    distill.add_argument("--eval", action="store_true", help="evaluate the final set")
    distill.add_argument("--quiet", action="store_true")
    distill.add_argument("--no-store", action="store_true", help="do not keep the run in the studio's store "
                         "($DDCORE_HOME), only the --out file")
    _add_eval_options(distill, "eval-")
    distill.set_defaults(func=_distill)

    pv = sub.add_parser("privacy", help="membership inference on networks trained on distilled data (a privacy study)")
    pv.add_argument("--dataset", default="mnist")
    pv.add_argument("--preset", default="quick", help="quick | paper | tiny")
    pv.add_argument("--methods", nargs="*", default=None, help="distil these from the members (real and noise init each)")
    pv.add_argument("--runs", nargs="*", default=None, help="stored runs distilled from this split's members")
    pv.add_argument("--baselines", nargs="*", default=None, help="members random herding dpsgd")
    pv.add_argument("--epsilons", nargs="*", type=float, default=None, help="DP-SGD budgets")
    pv.add_argument("--attacks", nargs="*", default=None, help="loss confidence lira-offline lira-online")
    pv.add_argument("--ipc", type=int, default=None)
    pv.add_argument("--shadows", type=int, default=None)
    pv.add_argument("--split-seed", dest="split_seed", type=int, default=None)
    pv.add_argument("--device", default=None)
    pv.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="other study settings, e.g. epochs=10")
    pv.add_argument("--json", default=None, help="also write the result to this JSON file")
    pv.add_argument("--quiet", action="store_true")
    pv.set_defaults(func=_privacy)

    ev = sub.add_parser("evaluate", help="train fresh networks on a set file and report test accuracy")
    ev.add_argument("file")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--data-root", default=None,
                    help="where the set's dataset lives (only that root); needed for a set made from an image folder")
    _add_eval_options(ev)
    ev.set_defaults(func=_evaluate)
    cl = sub.add_parser("continual", help="class-incremental learning with a memory per method (a stored study)")
    cl.add_argument("--dataset", default="mnist")
    cl.add_argument("--methods", nargs="+", default=["random", "herding", "dm"], help="memory methods")
    cl.add_argument("--ipc", type=int, default=10, help="memory images per class seen so far")
    cl.add_argument("--steps", type=int, default=5)
    cl.add_argument("--orders", type=int, default=3, help="class orders (seeds 0..orders-1)")
    cl.add_argument("--preset", default="quick", help="quick | paper | tiny")
    cl.add_argument("--finetune", action="store_true", help="also a network fine-tuned step to step (forgetting)")
    cl.add_argument("--arch", default="convnet", help="the learners' architecture")
    cl.add_argument("--device", default="auto")
    cl.add_argument("--data-root", default=None)
    cl.add_argument("--json", default=None, help="write a summary (per step, final, costs) to this JSON file")
    cl.add_argument("--quiet", action="store_true")
    cl.set_defaults(func=_continual)

    nas = sub.add_parser("nas", help="distilled data as a proxy for architecture search (a stored study)")
    nas.add_argument("--dataset", default="mnist")
    nas.add_argument("--proxy", nargs="+", default=["random"],
                     help="run:<id> (a stored set), a coreset made here (random, herding, kcenter), or a method name "
                          "(its newest finished stored run at this dataset and IPC)")
    nas.add_argument("--ipc", type=int, default=10)
    nas.add_argument("--grid", default="quick", help="quick (12 ConvNets) | factors (36) | dc720 (the DC paper's 720)")
    nas.add_argument("--widths", nargs="+", type=int, default=None, help="override the grid's widths")
    nas.add_argument("--depths", nargs="+", type=int, default=None)
    nas.add_argument("--norms", nargs="+", default=None)
    nas.add_argument("--activations", nargs="+", default=None)
    nas.add_argument("--poolings", nargs="+", default=None)
    nas.add_argument("--budget", default="quick", help="quick | paper | tiny")
    nas.add_argument("--top-k", nargs="+", type=int, default=[5, 10])
    nas.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals")
    nas.add_argument("--device", default="auto")
    nas.add_argument("--data-root", default=None)
    nas.add_argument("--json", default=None, help="write the accuracies and correlations to this JSON file")
    nas.add_argument("--quiet", action="store_true")
    nas.set_defaults(func=_nas)

    sw = sub.add_parser("sweep", help="a grid of distillations and their evaluations, here or on a Ray cluster")
    sw.add_argument("--datasets", nargs="+", default=["mnist"])
    sw.add_argument("--methods", nargs="+", default=["dm"])
    sw.add_argument("--ipcs", nargs="+", type=int, default=[1])
    sw.add_argument("--seeds", type=int, default=1, help="seeds per cell (0..seeds-1)")
    sw.add_argument("--presets", nargs="+", default=["quick"])
    sw.add_argument("--iterations", type=int, default=None, help="the same number of iterations for every cell")
    sw.add_argument("--arch", nargs="+", default=["convnet"], help="evaluate each set on these networks")
    sw.add_argument("--eval-preset", default="quick",
                    help="quick | paper | custom-e<epochs>-t<test images or all>-<none|auto|dsa|dc>")
    sw.add_argument("--no-baseline", action="store_true", help="skip the random-real baseline")
    sw.add_argument("--name", default="")
    sw.add_argument("--ray-address", default=None, help="run the cells on this Ray cluster (default: RAY_ADDRESS if "
                                                        "set, else this machine)")
    sw.add_argument("--device", default="auto")
    sw.add_argument("--estimate", action="store_true", help="print the cost estimate and stop")
    sw.add_argument("--json", default=None, help="write the table to this JSON file")
    sw.add_argument("--quiet", action="store_true")
    sw.set_defaults(func=_sweep)
    return parser


def _sweep(args: argparse.Namespace) -> int:
    """A sweep through a job queue of its own (the cells are jobs; a cluster runs them when one is named)."""
    from tqdm import tqdm

    from .platform.queue import JobManager
    from .platform.ray_executor import RayExecutor, cluster_address
    from .platform.store import Store
    from .tasks.sweep import SweepSpec, estimate_sweep, summary_table
    from .tasks.sweep import validate as validate_sweep

    address = args.ray_address or cluster_address()
    if args.seeds < 1:
        raise ValueError(f"--seeds is the number of seeds per cell, at least 1, not {args.seeds}")
    spec = SweepSpec(tuple(args.datasets), tuple(args.methods), tuple(args.ipcs), tuple(range(args.seeds)),
                     tuple(args.presets), tuple(args.arch), args.eval_preset,
                     overrides={"iterations": args.iterations} if args.iterations is not None else {},
                     baseline=not args.no_baseline, label=args.name, device=args.device,
                     executor="ray" if address else "local")
    validate_sweep(spec)  # names and numbers before the estimate, which would otherwise price a grid that cannot run
    store = Store()
    executors = {"ray": RayExecutor(address)} if address else {}
    manager = JobManager(store, executors=executors)
    try:
        at_once = executors["ray"].capacity("cpu") if address else manager.slots["cpu"]
        estimate = estimate_sweep(spec, store, parallel=at_once or 1)
        when = (f"about {estimate.wall_s / 60:.1f} min with {estimate.parallel} job(s) at once" if estimate.wall_s is not None
                else f"no estimate (nothing measured here for {', '.join(estimate.unknown)})")
        print(f"{estimate.cells} cell(s), {estimate.evaluations} evaluation(s): {when}", file=sys.stderr)
        if args.estimate:
            return 0
        job = manager.submit(spec)
        with tqdm(total=estimate.cells, desc=job.snapshot().name[:60], disable=args.quiet) as bar:
            try:
                while not job.finished.wait(1.0):
                    snap = job.snapshot()
                    bar.n = round(snap.iteration, 2)
                    bar.set_postfix_str(snap.message)
            except KeyboardInterrupt:
                manager.stop(job.id)
                job.finished.wait(120)
                raise
        snap = job.snapshot()
        if snap.status != "done":
            raise RuntimeError(f"the sweep {snap.status}: {snap.message}")
        table = summary_table(snap.result.cells)
        columns = list(dict.fromkeys(k for row in table for k in row))
        print("\t".join(columns))
        for row in table:
            print("\t".join("" if row.get(c) is None else str(row.get(c)) for c in columns))
        print(f"({len(snap.result.cells)} cells in {snap.result.wall_s:.0f} s on "
              f"{'the Ray cluster at ' + address if address else 'this machine'}; stored in {store.root})", file=sys.stderr)
        if args.json:
            write_json(args.json, {"summary": table, "wall_s": snap.result.wall_s})
        return 0
    finally:
        manager.shutdown(wait=30)
        for executor in executors.values():
            executor.shutdown()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # a result file is checked before the work: a previous result is replaced, anything else is refused
        check_outputs(json=(getattr(args, "json", None), {"replaces_json": True}))
        return args.func(args)
    except BrokenPipeError:  # e.g. `python -m ddcore models | head`
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (UnknownNameError, PluginError, ValueError, FileNotFoundError, RuntimeError, KeyError, LookupError) as e:
        text = e.args[0] if isinstance(e, KeyError) and e.args else e  # a KeyError's str() adds quotes
        print(f"error: {text}", file=sys.stderr)
        return 2
    except sqlite3.OperationalError as e:  # the store's database: a full disk, a read-only or locked home
        from .paths import home_dir

        print(f"error: the studio's store in {home_dir()} cannot be used: {e}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: not enough memory for this input (it is larger than this machine can hold)", file=sys.stderr)
        return 2
    except OSError as e:  # an unwritable output, a full disk, a folder where a file was expected
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        print(f"error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
