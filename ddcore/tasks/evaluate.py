"""The evaluate task: train fresh networks on a set (a stored run's, random real images, or the whole
training set) and store the result keyed to the content measured."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

from ..data.info import variant_label
from ..platform.records import EvaluationRecord, Subject, evaluation_key
from . import register_task
from .base import Cancelled, Prepared, Resources, Task, TaskContext, spec_from_dict, spec_to_dict

if TYPE_CHECKING:
    from ..platform.store import Store
    from ..synthetic import SyntheticSet


@dataclass(frozen=True)
class EvalSpec:
    """What to evaluate and how; `key()` identifies the result in the store (so it is reused)."""

    kind: ClassVar[str] = "evaluate"
    subject: Subject
    architecture: str = "convnet"
    preset: str = "quick"
    seeds: int | None = None  # None: the preset's number of seeds (filled in by prepare)
    device: str = "auto"
    options: dict[str, Any] = field(default_factory=dict)  # EvalConfig field overrides, e.g. {"epochs_no_aug": 5}

    def key(self) -> str:
        if self.seeds is None or (self.subject.kind != "whole" and not self.subject.fingerprint):
            raise ValueError("an evaluation's key needs its prepared spec (seeds and the set's fingerprint)")
        return evaluation_key(self.subject, self.architecture, self.preset, self.seeds, self.options)

    def to_dict(self) -> dict[str, Any]:
        return spec_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvalSpec":
        return spec_from_dict(cls, {**data, "subject": Subject.from_dict(data["subject"])})


def random_baseline(dataset: str, ipc: int, seed: int, method: str, preset: str = "quick",
                    architecture: str = "convnet", device: str = "auto") -> EvalSpec:
    """The random-real baseline a `method` set is shown beside: the same number of random real images trained the way
    that set is (its augmentation, optimiser, ConvNet norm and pixel space: DD-Ranking's rule, issue #20), so the gap
    measures the images, not the protocol. Random real's own protocol where the method's is the same (DC, DD, the
    coresets), so that stored result is reused. An unknown method or dataset gets random's own protocol."""
    from ..evaluation.protocol import trained_like

    try:
        like = trained_like(method, dataset, preset, int(ipc))
    except (KeyError, LookupError, ValueError):
        like = {}
    return EvalSpec(Subject.random(dataset, int(ipc), int(seed)), architecture=architecture, device=device,
                    options=like)


KRR_SUFFIX = "_krr"  # 'convnet_krr': kernel ridge regression with that network's random-feature kernel (the
# published table's name for the KRR numbers the kernel methods' papers report beside the finite network's)


MAX_KRR_SUPPORT = 5_000  # images: the support kernel is N x N in float64 (5,000: 200 MB; the whole of MNIST: 29 GB)


def krr_base(architecture: str) -> str | None:
    """The network whose random-feature kernel a '<net>_krr' evaluation uses, or None for a trained network."""
    return architecture[: -len(KRR_SUFFIX)] if architecture.endswith(KRR_SUFFIX) else None


def subject_set(subject: Subject, store: "Store", data: Any = None) -> "SyntheticSet":
    """The images an evaluation subject stands for."""
    from ..data import load_dataset

    if subject.kind == "run":
        assert subject.run_id is not None
        synthetic = store.load_set(subject.run_id)
        if synthetic is None:
            raise FileNotFoundError(f"Run {subject.run_id} has no stored set to evaluate yet")
        return synthetic
    data = data if data is not None and data.info.name == subject.dataset else load_dataset(subject.dataset)
    if subject.kind == "whole":
        return whole_set(data)
    from ..methods.random import random_real_set

    return random_real_set(data, int(subject.ipc or 1), subject.seed)


def whole_set(data: Any) -> "SyntheticSet":
    """The whole training set as a SyntheticSet (the upper reference line)."""
    from ..synthetic import SetMeta, SyntheticSet

    meta = SetMeta.for_dataset(data.info, "whole", 0, notes="the whole training set")
    return SyntheticSet(data.normalize(data.train.images), data.train.labels.clone(), meta)


def recipe_options(method: str) -> dict[str, Any]:
    """The options that name a method's own training recipe when it is not the DC reference's (FRePo: Adam, no
    norm), so its evaluations are keyed by it: one stored before the method declared its recipe is not reused."""
    from ..evaluation.protocol import recipe_fields

    fields = recipe_fields(method)
    return {} if fields == recipe_fields("random") else fields


def prepare_spec(spec: EvalSpec, store: "Store", data: Any = None) -> tuple[EvalSpec, str]:
    """Validate names and ranges, resolve the seeds and the subject's content; returns (spec, display name)."""
    from ..data import get_dataset_info
    from ..evaluation.api import set_fingerprint
    from ..evaluation.kernel_network import FINITE_NETWORKS, finite_network_max_set
    from ..evaluation.krr import CLOSED_FORM, KRR_PROTOCOL
    from ..evaluation.protocol import get_preset
    from ..evaluation.replay import REPLAY
    from ..models import MODELS

    base = krr_base(spec.architecture)
    # a kernel method's finite network (KIP's FC, RFAD's ConvNet): its own recipe, whatever the preset's
    wide = spec.architecture in FINITE_NETWORKS
    replay = spec.architecture == REPLAY  # DD's own evaluation: its learned schedule on its own network
    schedule_of = str(spec.options.get("schedule_of") or "") if replay else ""
    if replay:  # no training option applies: the schedule is the recipe
        spec = replace(spec, options={})
    if base not in CLOSED_FORM and not wide and not replay:  # a closed-form kernel ('fc_krr') names no network
        MODELS.entry(base or spec.architecture)
    if base is not None:  # KRR trains nothing: of a training recipe only the pixel space applies (one key per result)
        spec = replace(spec, options={k: v for k, v in spec.options.items() if k == "zca_space" and v},
                       seeds=1 if base in CLOSED_FORM else spec.seeds)  # a closed-form kernel: one exact number
    config = get_preset(spec.preset)
    if spec.options:
        config = config.with_(**spec.options)
    if base is not None:  # after the recipe check: a key-only mark, so a result of an older KRR protocol is not reused
        spec = replace(spec, options={**spec.options, "krr_protocol": KRR_PROTOCOL})
    seeds = config.num_seeds if spec.seeds is None else int(spec.seeds)
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, not {seeds}")
    subject = spec.subject
    if subject.kind == "run":
        record = store.get_run(subject.run_id or "")
        if record is None:
            raise KeyError(f"No run {subject.run_id!r} to evaluate")
        if not record.fingerprint:  # the store remembers what save_set wrote: no set file read per page poll
            raise FileNotFoundError(f"Run {record.id} has no stored set to evaluate yet")
        subject = Subject.run(record.id, record.dataset, record.fingerprint, record.set_iteration, record.ipc)
        target = f"{record.name} (iteration {record.set_iteration or 0:,})"
        spec = replace(spec, options={**recipe_options(record.method), **spec.options})
    else:
        get_dataset_info(subject.dataset)
        if subject.kind == "random":
            synthetic = subject_set(subject, store, data)
            subject = Subject.random(subject.dataset, int(subject.ipc or 1), subject.seed,
                                     set_fingerprint(synthetic.images, synthetic.labels))
        target = subject.label
    if wide:  # its own recipe: of a training recipe only the pixel space applies (as for KRR), one key per result
        spec = replace(spec, options={k: v for k, v in spec.options.items() if k == "zca_space" and v})
    if replay:
        spec = replace(spec, options=replay_options(subject, schedule_of, store, target))
    if krr_base(spec.architecture) is not None or wide:
        support = None if subject.kind == "whole" else int(subject.ipc or 1) * get_dataset_info(subject.dataset).num_classes
        limit = finite_network_max_set(spec.architecture) if wide else MAX_KRR_SUPPORT
        if support is None or support > limit:
            title = FINITE_NETWORKS[spec.architecture] if wide else ""
            what = (f"The {title[:1].lower()}{title[1:]} trains by full-batch gradient descent on" if wide
                    else "KRR solves an N x N kernel of")
            raise ValueError(f"{what} the set's images; it takes sets of up to {limit:,} images here, not "
                             f"{'the whole training set' if support is None else f'{support:,}'}. "
                             "Evaluate a smaller set, or train a network on it instead.")
    variant = test_variant(subject.dataset, data)
    spec = replace(spec, subject=replace(subject, variant=variant), seeds=seeds)
    return spec, f"Evaluate {target}{variant_label({'variant': variant})} on {spec.architecture} ({spec.preset})"


def loaded_variant(dataset: str, data: Any = None) -> str | None:
    """The variant of the data an evaluation of `dataset` trains and tests on here: the data at hand's, else the one
    `load_dataset` gives (loaded, so a plan made before data was added is caught; the evaluation loads it anyway)."""
    from ..data import has_subset, load_dataset

    if data is not None and data.info.name == dataset:
        return data.info.variant
    return load_dataset(dataset).info.variant if has_subset(dataset) else None


def test_variant(dataset: str, data: Any = None) -> str | None:
    """The variant of `dataset` an evaluation would train and test with: the data at hand's, else what this machine
    loads ('subset': the embedded subset's test images, so its results are kept apart from the full data's)."""
    from ..data import local_variant

    return data.info.variant if data is not None and data.info.name == dataset else local_variant(dataset)


def replay_options(subject: Subject, schedule_of: str, store: "Store", target: str) -> dict[str, Any]:
    """The options of a replayed-schedule evaluation: none for a DD run (it replays its own schedule); for random
    real images, the DD run whose schedule they replay and that run's set fingerprint (a run that went on has a new
    schedule, so a new key)."""
    if subject.kind == "whole":
        raise ValueError("The whole training set has no learned schedule to replay: replay a DD set, or random real "
                         "images with a DD run's schedule.")
    source_id = subject.run_id if subject.kind == "run" else schedule_of
    source = store.get_run(source_id) if source_id else None
    if source is None or source.method != "dd":
        what = f"{target} is a {source.method.upper()} set" if subject.kind == "run" and source is not None \
            else "random real images need a stored DD run's schedule (options: schedule_of=<run id>)"
        raise ValueError(f"DD's replayed schedule replays the step sizes DD learned, so it evaluates DD sets: {what}.")
    if subject.kind == "run":
        return {}
    if source.dataset != subject.dataset or source.ipc != subject.ipc:
        raise ValueError(f"A schedule replays on a set of its own shape: run {source.id} is {source.dataset} at IPC "
                         f"{source.ipc}, the random real set {subject.dataset} at IPC {subject.ipc}.")
    if not source.fingerprint:
        raise FileNotFoundError(f"Run {source.id} has no stored set (and schedule) yet")
    return {"schedule_of": source.id, "schedule_fingerprint": source.fingerprint}


def _loaded(ctx: TaskContext, synthetic: Any) -> Any:
    """The server's loaded dataset when it is the set's (no second load), else None: the evaluation loads it."""
    return ctx.data if ctx.data is not None and ctx.data.info.name == synthetic.meta.dataset else None


@register_task
class EvaluateTask(Task):
    kind = "evaluate"
    title = "Evaluation"
    Spec = EvalSpec
    controls = frozenset({"stop"})
    portable = True  # reads the run it measures (or the dataset)

    def resources(self, spec: EvalSpec) -> Resources:
        """Evaluation networks are small: two evaluations share one GPU."""
        return Resources(cpus=1.0, gpus=0.5 if str(spec.device).startswith("cuda") else 0.0)

    def prepare(self, spec: EvalSpec, store: "Store") -> Prepared:
        spec, name = prepare_spec(spec, store)
        key = spec.key()
        return Prepared(spec, name, run_id=spec.subject.run_id, reused=store.get_evaluation(key), key=key)

    def other_runs_read(self, spec: EvalSpec) -> tuple[str, ...]:
        """Random real replaying a DD run's schedule reads that run's set: it travels with the job to a worker."""
        return (str(spec.options["schedule_of"]),) if spec.options.get("schedule_of") else ()

    def run(self, spec: EvalSpec, ctx: TaskContext) -> EvaluationRecord:
        from ..evaluation import EvaluationCancelled, evaluate
        from ..evaluation.api import set_fingerprint
        from ..evaluation.kernel_network import FINITE_NETWORKS, evaluate_finite_network
        from ..evaluation.replay import REPLAY

        ctx.recorder.progress(0, 0, "Preparing the set…")
        if loaded_variant(spec.subject.dataset, ctx.data) != spec.subject.variant:
            raise RuntimeError(f"{spec.subject.dataset} here is no longer the data this evaluation was queued for (the "
                               "embedded subset, or the full data under a data root); restart the Studio if you added "
                               "data while it ran, then evaluate it again")
        synthetic = subject_set(spec.subject, ctx.store, ctx.data)
        if spec.subject.fingerprint and set_fingerprint(synthetic.images, synthetic.labels) != spec.subject.fingerprint:
            raise RuntimeError(f"the images of {spec.subject.label} changed since this evaluation was queued "
                               "(the run went on); evaluate it again")
        start = time.monotonic()

        def progress(info: dict[str, Any]) -> None:
            if isinstance(info.get("fraction"), (int, float)):
                ctx.recorder.progress(round(100 * float(info["fraction"]), 1), 100.0)

        try:
            base = krr_base(spec.architecture)
            if base is not None:  # no training: a linear solve on random networks' features, seconds on a CPU
                from ..evaluation.krr import evaluate_krr
                from ..evaluation.protocol import get_preset

                data = _loaded(ctx, synthetic)
                # the preset's test images: quick's 2,000, paper's full test set (as the kernel papers report)
                krr = evaluate_krr(synthetic, architecture=base, seeds=int(spec.seeds or 1), device=spec.device,
                                   test_data=data, test_limit=get_preset(spec.preset).test_limit,
                                   should_stop=lambda: ctx.control.stop_requested,
                                   zca_space=bool(spec.options.get("zca_space")))
                from ..device import resolve_device
                from ..evaluation.api import _device_name

                result = krr.as_eval_result(set_fingerprint(synthetic.images, synthetic.labels), len(synthetic.images),
                                            time.monotonic() - start, _device_name(resolve_device(spec.device)))
            elif spec.architecture in FINITE_NETWORKS:  # a kernel method's finite network, in its kernel regime
                from ..evaluation.protocol import get_preset

                data = _loaded(ctx, synthetic)
                net = evaluate_finite_network(spec.architecture, synthetic, seeds=int(spec.seeds or 1),
                                              device=spec.device, test_data=data,
                                              test_limit=get_preset(spec.preset).test_limit,
                                              should_stop=lambda: ctx.control.stop_requested,
                                              progress=lambda f: ctx.recorder.progress(round(100 * f, 1), 100.0),
                                              zca_space=bool(spec.options.get("zca_space")))
                result = net.as_eval_result(set_fingerprint(synthetic.images, synthetic.labels), len(synthetic.images),
                                            time.monotonic() - start, spec.preset)
            elif spec.architecture == REPLAY:  # DD's own evaluation: its learned steps from fresh initialisations
                result = self._replay(spec, ctx, synthetic, start)
            else:
                result = evaluate(synthetic, spec.architecture, spec.preset, seeds=spec.seeds, device=spec.device,
                                  progress=progress, should_stop=lambda: ctx.control.stop_requested, **spec.options)
        except EvaluationCancelled as e:
            raise Cancelled("Evaluation cancelled") from e
        ctx.recorder.progress(1, 1, f"{time.monotonic() - start:.1f} s")
        if spec.subject.kind == "run" and ctx.store.get_run(spec.subject.run_id or "") is None:
            raise Cancelled("The run was deleted while it was being evaluated")
        return ctx.store.save_evaluation(spec.key(), spec.subject, spec.architecture, spec.preset, int(spec.seeds or 1),
                                         result)

    @staticmethod
    def _replay(spec: EvalSpec, ctx: TaskContext, synthetic: Any, start: float) -> Any:
        """The set replays its own learned schedule, or (random real) that of the DD run named in its options."""
        from ..evaluation.api import set_fingerprint
        from ..evaluation.protocol import get_preset
        from ..evaluation.replay import evaluate_replay, schedule_of

        source_id = spec.options.get("schedule_of")
        source = synthetic if source_id is None else ctx.store.load_set(str(source_id))
        if source is None:
            raise FileNotFoundError(f"Run {source_id} has no stored set (and schedule) any more")
        if source_id is not None and set_fingerprint(source.images, source.labels) != spec.options.get("schedule_fingerprint"):
            raise RuntimeError(f"run {source_id} went on since this evaluation was queued (its schedule changed); "
                               "evaluate again")
        data = _loaded(ctx, synthetic)
        replayed = evaluate_replay(synthetic, seeds=int(spec.seeds or 1), device=spec.device, test_data=data,
                                   test_limit=get_preset(spec.preset).test_limit,
                                   schedule=schedule_of(source.meta.config), architecture=source.meta.architecture,
                                   model_kwargs=dict(source.meta.config.get("model_kwargs") or {}),
                                   should_stop=lambda: ctx.control.stop_requested,
                                   progress=lambda f: ctx.recorder.progress(round(100 * f, 1), 100.0))
        return replayed.as_eval_result(set_fingerprint(synthetic.images, synthetic.labels), len(synthetic.images),
                                       time.monotonic() - start, spec.preset, schedule_source=source_id)
