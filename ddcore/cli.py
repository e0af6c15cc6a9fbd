"""The command line: `python -m ddcore datasets | models | methods | show | distill | evaluate | privacy`.

Every subcommand is a thin layer over the library; errors print one clear line and exit 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

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

    print(describe_set(args.file, args.png, args.scale))
    return 0


def _parse_overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value, got '{pair}'")
        key, raw = pair.split("=", 1)
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
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
    from .platform.recorder import EventControl
    from .platform.store import Store
    from .tasks.distill import DistillSpec, distil, validate

    overrides = _parse_overrides(args.set)
    if args.iterations is not None:
        overrides["iterations"] = args.iterations
    if args.init is not None:
        overrides["init"] = args.init
    spec = DistillSpec(dataset=args.dataset, method=args.method, ipc=args.ipc, preset=args.preset,
                       overrides=overrides, architecture=args.arch, seed=args.seed, device=args.device,
                       data_root=args.data_root, eval_every=args.eval_every, evaluate_after=False)
    validate(spec)  # name and range errors before any loading
    data = load_dataset(args.dataset, root=args.data_root)
    print(f"{data.info.display_name} from {data.source}", file=sys.stderr)
    store = run_id = None
    if not args.no_store:  # the run is kept like the app's, so the Gallery shows it
        store = Store()
        run_id = store.create_run(spec.stored(), status="queued").id
    bar = tqdm(desc=f"{args.method} IPC {args.ipc}", unit="it", disable=args.quiet)
    control = EventControl()
    try:
        runner, outcome = distil(spec, data, store=store, run_id=run_id, recorder=_BarRecorder(bar), control=control)
    except KeyboardInterrupt:  # distil saved the set as it was and marked the store run stopped (resumable)
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        bar.close()
    result = runner.result()
    out = Path(args.out or f"{args.dataset}_{args.method}_ipc{args.ipc}_seed{args.seed}.ddset")
    result.save(out)
    out.with_suffix(".png").write_bytes(result.to_png_grid(scale=2))
    where = f"; stored as run {run_id} in {store.root}" if store is not None else ""
    print(f"saved {out} and {out.with_suffix('.png')} ({result.meta.iteration} iterations, "
          f"{result.meta.elapsed_s:.1f} s){where}")
    if args.eval:
        return _evaluate_set(result, args)
    return 0


def _evaluate_set(synthetic, args: argparse.Namespace) -> int:
    from .evaluate import evaluate

    for arch in args.eval_arch:
        res = evaluate(synthetic, arch, preset=args.eval_preset, seeds=args.eval_seeds, device=args.device)
        print(f"{arch}: {res.mean:.2f} ± {res.std:.2f} % over {len(res.seeds)} seeds "
              f"({args.eval_preset} preset, {res.wall_time_s:.1f} s on {res.device})")
        if args.json:
            Path(args.json).write_text(json.dumps(res.to_dict(), indent=1))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .synthetic import SyntheticSet

    return _evaluate_set(SyntheticSet.load(args.file), args)


def _privacy(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .data import load_dataset
    from .platform.recorder import EventControl
    from .platform.store import Store
    from .tasks import TaskContext
    from .tasks.privacy import PrivacySpec, PrivacyTask, estimate_seconds, shadow_requirement
    from .tasks.privacy import validate as validate_privacy

    changes = _parse_overrides(args.set)
    for name in ("methods", "runs", "baselines", "epsilons", "attacks", "ipc", "shadows", "split_seed", "device"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    spec = validate_privacy(PrivacySpec.preset(args.preset, args.dataset, **changes))
    store, task = Store(), PrivacyTask()
    prepared = task.prepare(spec, store)
    result = prepared.reused
    if result is None:
        estimate = estimate_seconds(spec)
        stored = not spec.lira or store.get_artefact(spec.shadow_requirement().key()) is not None
        print(f"{prepared.name}: about {estimate['study'] / 60:.0f} min"
              + ("" if stored else f" plus {estimate['shadows'] / 60:.0f} min of shadow models") + " on a 2-core CPU",
              file=sys.stderr)
        data = load_dataset(spec.dataset)
        bar = tqdm(total=100, unit="%", disable=args.quiet)
        ctx = TaskContext(store=store, recorder=_BarRecorder(bar), control=EventControl(), data=data)
        if spec.lira and not stored:
            from .tasks import resolve_artefacts

            bar.set_description("shadow models")
            resolve_artefacts([shadow_requirement(**{k: v for k, v in spec.shadow_requirement().as_dict().items()})],
                              store, spec.device, data, _BarRecorder(bar))
        bar.set_description("study")
        try:
            result = task.run(prepared.spec, ctx)
        finally:
            bar.close()
    else:
        print(f"{prepared.name}: stored result (key {result.key})", file=sys.stderr)
    print(format_privacy(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1))
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
    p.add_argument(f"--{prefix}preset", dest="eval_preset", default="quick", help="quick | paper")
    p.add_argument(f"--{prefix}seeds", dest="eval_seeds", type=int, default=None, help="networks to train")
    p.add_argument("--json", default=None, help="also write the (last) evaluation record to this JSON file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ddcore", description="DD Studio's engine: dataset distillation.")
    sub = parser.add_subparsers(dest="command", required=True)
    for kind in ("datasets", "models", "methods"):
        sub.add_parser(kind, help=f"list the {kind} with one-line descriptions").set_defaults(func=_listing(kind))

    show = sub.add_parser("show", help="print a set file's summary and write its grid PNG")
    show.add_argument("file")
    show.add_argument("--png", default=None, help="where to write the grid (default: beside the file)")
    show.add_argument("--scale", type=int, default=2)
    show.set_defaults(func=_show)

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
    distill.add_argument("--out", default=None, help="set file to write (.ddset)")
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
    _add_eval_options(ev)
    ev.set_defaults(func=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # e.g. `python -m ddcore models | head`
        return 0
    except (UnknownNameError, PluginError, ValueError, FileNotFoundError, RuntimeError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
