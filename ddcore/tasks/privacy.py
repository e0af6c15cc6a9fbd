"""The privacy study: does a network trained on distilled data reveal which images the data came from?

Protocol (after Dong et al., "Privacy for Free", ICML 2022, and Carlini et al., "No Free Lunch in 'Privacy for
Free'", 2022, arXiv 2209.14987): a seeded pool of training images is split into members and non-members.
Targets are trained on (a) the members, (b) sets distilled from the members only (real and noise
initialisation reported apart), (c) a random member subset and (d) a herding coreset of the members of the
same size, and (e) the members with DP-SGD at a few budgets. Each target is attacked on every pool image
(loss and confidence thresholds, LiRA offline and online with shadow models) and measured with bootstrap
intervals; synthetic images are compared with their nearest members and non-members.

Two task kinds: `shadow-models` (an artefact: LiRA's shadow models on one split, reused by every study of
that split) and `privacy` (a study, ddcore.tasks.study).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..data.info import variant_label
from ..methods.base import Requirement
from ..privacy.attacks import ATTACK_TITLES, ATTACKS
from ..privacy.study import PrivacyResult, TargetResult
from . import register_task
from .base import Cancelled, Prepared, Task, TaskContext, check_same_data, spec_from_dict, spec_to_dict
from .study import StudyTask

if TYPE_CHECKING:
    import torch

    from ..data import LoadedDataset
    from ..platform.records import ArtefactRecord
    from ..platform.store import Store

SHADOW_KIND = "shadow-models"
MAX_BOOTSTRAP = 100_000  # resamples for the intervals: 10,000 is already generous
BASELINES = ("members", "random", "herding", "dpsgd")
LIRA = ("lira-offline", "lira-online")


def _setting(name: str, annotation: str, value: Any) -> Any:
    """One PrivacySpec field's value of its annotated type ('int', 'int | None', 'str', 'tuple[float, ...]'), by the
    rule method settings follow (ddcore.methods.checked_setting); a list's items each so."""
    from ..methods import checked_setting

    base = next(k.strip() for k in annotation.split("|") if k.strip() != "None")
    if base.startswith("tuple[") and value is not None:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = (value,)  # one name (methods=dm), one budget (epsilons=5): not the name's letters
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"privacy setting {name} is a list, not {value!r}")
        item = "float" if "float" in base else "str"
        return tuple(checked_setting("privacy", name, item, v) for v in value)
    if base.startswith("tuple["):
        raise ValueError(f"privacy setting {name} is a list, not None")
    return checked_setting("privacy", name, annotation, value)


@dataclass(frozen=True)
class PrivacySpec:
    """One privacy study; `PrivacySpec.preset('quick' | 'paper', dataset)` gives the sizes of a preset."""

    kind: ClassVar[str] = "privacy"
    dataset: str = "mnist"
    split_seed: int = 0
    pool_per_class: int = 100  # candidates per class; half members, half non-members
    ipc: int = 10  # size of the distilled sets (and of the random and herding subsets)
    methods: tuple[str, ...] = ("dm",)  # distilled from the members for this study, real and noise init each
    runs: tuple[str, ...] = ()  # stored runs distilled from this split's members
    baselines: tuple[str, ...] = BASELINES
    epsilons: tuple[float, ...] = (1.0, 8.0)  # DP-SGD budgets (delta = 1e-5)
    attacks: tuple[str, ...] = ATTACKS
    shadows: int = 8
    epochs: int = 20  # members target, shadow models, feature network
    dp_epochs: int = 10
    distill_preset: str = "quick"
    distill_iterations: int | None = None  # None: the preset's
    eval_preset: str = "quick"  # how targets on small sets (distilled, random, herding) are trained
    architecture: str = "convnet"
    test_limit: int | None = 2000  # test images for the targets' accuracy (None: all)
    bootstrap: int = 200
    neighbours: int = 3
    seed: int = 0  # training seed of the targets and the distillations
    device: str = "auto"

    def __post_init__(self) -> None:
        """Settings from JSON, the CLI's --set or a page, of their field's type or ValueError naming the setting:
        lists become tuples (hashable, comparable), one name a tuple of one (not of its letters), 2.0 an int."""
        for f in fields(self):
            object.__setattr__(self, f.name, _setting(f.name, str(f.type), getattr(self, f.name)))

    @classmethod
    def preset(cls, name: str, dataset: str = "mnist", **changes: Any) -> "PrivacySpec":
        """A preset's sizes with `changes` on top (a 'dataset' among them wins over the argument)."""
        if name not in PRESETS:
            raise ValueError(f"unknown privacy preset '{name}'; the presets are {', '.join(PRESETS)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown privacy setting(s) {', '.join(unknown)}; the settings are {', '.join(sorted(known))}")
        return cls(**{"dataset": dataset, **PRESETS[name], **changes})

    def to_dict(self) -> dict[str, Any]:
        return spec_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PrivacySpec":
        return spec_from_dict(cls, data)

    @property
    def members_per_class(self) -> int:
        """The pool's first half: the members target's images, and what the distillations see."""
        return int(self.pool_per_class) // 2

    @property
    def lira(self) -> bool:
        return any(a in LIRA for a in self.attacks)

    def split(self) -> Any:
        from ..data.subsets import MembershipSplit

        return MembershipSplit(self.dataset, self.pool_per_class, self.split_seed)

    def shadow_requirement(self) -> Requirement:
        """The shadow models of this study's split, of the data this machine loads for its dataset."""
        from ..data import local_variant

        return shadow_requirement(self.dataset, self.pool_per_class, self.split_seed, self.architecture, self.shadows,
                                  self.epochs, self.test_limit, local_variant(self.dataset))


PRESETS: dict[str, dict[str, Any]] = {
    # minutes on a 2-core CPU for MNIST / Fashion-MNIST (benchmarks/results/privacy-quick-mnist.md)
    "quick": {"pool_per_class": 100, "ipc": 10, "shadows": 8, "epochs": 20, "dp_epochs": 10, "epsilons": (1.0, 8.0),
              "distill_preset": "quick", "eval_preset": "quick", "bootstrap": 200, "test_limit": 2000},
    # the scale of Carlini et al. (dozens of shadow models, thousands of candidates): for a GPU
    "paper": {"pool_per_class": 1000, "ipc": 10, "shadows": 64, "epochs": 100, "dp_epochs": 50,
              "epsilons": (1.0, 4.0, 8.0, 16.0), "distill_preset": "paper", "eval_preset": "paper", "bootstrap": 1000,
              "test_limit": None, "methods": ("dc", "dsa", "dm")},
    # seconds: for tests and a first look at the page
    "tiny": {"pool_per_class": 10, "ipc": 1, "shadows": 2, "epochs": 2, "dp_epochs": 1, "epsilons": (8.0,),
             "distill_iterations": 3, "eval_preset": "custom-e2-t200-none", "bootstrap": 20, "test_limit": 200,
             "neighbours": 2},
}


def shadow_requirement(dataset: str, pool_per_class: int, split_seed: int, architecture: str, shadows: int,
                       epochs: int, test_limit: int | None, variant: str | None = None) -> Requirement:
    """LiRA's shadow models; `variant` ('subset': the embedded subset's pool, not the full data's) only when set,
    so the full data's shadow models keep the keys they were stored under."""
    return Requirement.from_dict(SHADOW_KIND, {
        "dataset": dataset, "pool_per_class": int(pool_per_class), "split_seed": int(split_seed),
        "architecture": architecture, "shadows": int(shadows), "epochs": int(epochs), "test_limit": test_limit,
        **({"variant": variant} if variant else {})},
        label=f"{shadows} shadow models ({architecture}, {epochs} epochs) on split {split_seed} of {dataset}"
              f"{variant_label({'variant': variant})} ({pool_per_class} images per class)")


# ---------------------------------------------------------------------------------------------- shadow models
@dataclass(frozen=True)
class ShadowSpec:
    kind: ClassVar[str] = "shadow-models"
    dataset: str
    pool_per_class: int
    split_seed: int
    architecture: str
    shadows: int
    epochs: int
    test_limit: int | None = 2000
    device: str = "auto"
    variant: str | None = None  # 'subset': made from the embedded subset (DatasetInfo.variant)

    def requirement(self) -> Requirement:
        return shadow_requirement(self.dataset, self.pool_per_class, self.split_seed, self.architecture, self.shadows,
                                  self.epochs, self.test_limit, self.variant)

    def to_dict(self) -> dict[str, Any]:
        return spec_to_dict(self)


@dataclass(frozen=True)
class ShadowScores:
    """What LiRA needs from the shadow models: who trained on which candidate, and their phi on each."""

    keep: np.ndarray  # (K, N) bool; candidates are the pool in the order members then non-members
    phi: np.ndarray  # (K, N)
    seconds: float
    key: str


@register_task
class ShadowModelsTask(Task):
    kind = "shadow-models"
    title = "Shadow models"
    Spec = ShadowSpec
    produces = SHADOW_KIND

    def prepare(self, spec: ShadowSpec, store: "Store") -> Prepared:
        _check_sizes(spec.dataset, spec.architecture, spec.pool_per_class, shadows=spec.shadows, epochs=spec.epochs)
        return Prepared(spec, f"Train {spec.requirement().label}", key=spec.requirement().key())

    def spec_for(self, requirement: Requirement, device: str) -> ShadowSpec:
        p = dict(requirement.params)
        return ShadowSpec(p["dataset"], p["pool_per_class"], p["split_seed"], p["architecture"], p["shadows"],
                          p["epochs"], p["test_limit"], device, p.get("variant"))

    def run(self, spec: ShadowSpec, ctx: TaskContext) -> "ArtefactRecord":
        from safetensors.torch import save_file

        from ..device import resolve_device
        from ..evaluation import EvaluationCancelled
        from ..privacy.shadows import shadow_membership, train_shadows
        from ..privacy.training import real_config

        data = ctx.dataset(spec.dataset, variant=spec.variant, check_variant=True)
        device = resolve_device(spec.device)
        images, labels = _pool(data, _pool_indices(data, spec.pool_per_class, spec.split_seed)[0], device)
        keep = shadow_membership(images.shape[0], spec.shadows, spec.split_seed)
        requirement = spec.requirement()
        folder = ctx.store.artefact_dir(requirement.key())
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()

        def save(k: int, net: Any) -> None:
            save_file({n: t.detach().cpu().contiguous() for n, t in net.state_dict().items()},
                      str(folder / f"shadow_{k:03d}.safetensors"))

        ctx.recorder.progress(0, 100, "Training shadow models…")
        try:
            phi = train_shadows(data, spec.architecture, images, labels, keep, real_config(spec.epochs, spec.test_limit),
                                spec.split_seed, device, progress=lambda f: ctx.recorder.progress(round(100 * f, 1), 100),
                                should_stop=lambda: ctx.control.stop_requested, on_model=save)
        except EvaluationCancelled as e:
            raise Cancelled("Shadow training stopped") from e
        seconds = time.perf_counter() - start
        np.savez_compressed(folder / "scores.npz", keep=keep, phi=phi, seconds=np.array(seconds))
        from .. import __version__

        return ctx.store.put_artefact(requirement.key(), SHADOW_KIND, requirement.label, dict(requirement.params),
                                      producer={"job": ctx.job_id, "kind": self.kind, "spec": spec.to_dict()},
                                      inputs=(f"dataset:{spec.dataset}:{data.source}",), code_version=__version__)

    def load_artefact(self, record: "ArtefactRecord", store: "Store") -> ShadowScores:
        with np.load(store.artefact_dir(record.key) / "scores.npz", allow_pickle=False) as z:
            return ShadowScores(z["keep"].astype(bool), z["phi"], float(z["seconds"]), record.key)


# ---------------------------------------------------------------------------------------------- the study
@register_task
class PrivacyTask(StudyTask):
    kind = "privacy"
    title = "Privacy study"
    Spec = PrivacySpec
    produces = "privacy-study"
    Result = PrivacyResult

    def identity(self, spec: PrivacySpec, store: "Store") -> tuple[PrivacySpec, Requirement]:
        if isinstance(spec, dict):
            spec = PrivacySpec.from_dict(spec)
        spec = validate(spec)
        runs = {run_id: _member_run(store, spec, run_id).fingerprint for run_id in spec.runs}
        params = {k: v for k, v in spec.to_dict().items() if k != "device"}
        params["run_fingerprints"] = runs
        what = ", ".join([*(m.upper() for m in spec.methods), *(f"run {r}" for r in spec.runs)]) or "baselines only"
        return spec, Requirement.from_dict(self.produces, params,
                                           label=f"Privacy of {what} on {spec.dataset} (IPC {spec.ipc}, split {spec.split_seed})")

    def requires(self, spec: PrivacySpec) -> tuple[Requirement, ...]:
        return (spec.shadow_requirement(),) if spec.lira else ()

    def run(self, spec: PrivacySpec, ctx: TaskContext) -> PrivacyResult:
        from ..evaluation import EvaluationCancelled

        try:
            return self.save(ctx, spec, *_study(spec, ctx))
        except EvaluationCancelled as e:
            raise Cancelled("Privacy study stopped") from e


def validate(spec: PrivacySpec) -> PrivacySpec:
    """Names and sizes, before anything is stored or trained."""
    from ..data import get_dataset_info
    from ..evaluation.protocol import get_preset
    from ..methods import describe_method, make_config

    info = get_dataset_info(spec.dataset)
    _check_sizes(spec.dataset, spec.architecture, spec.pool_per_class, shadows=spec.shadows if spec.lira else None,
                 epochs=spec.epochs)
    if not 1 <= spec.ipc <= spec.members_per_class:
        raise ValueError(f"IPC must be between 1 and the {spec.members_per_class} members per class of this split, "
                         f"not {spec.ipc}")
    for attack in spec.attacks:
        if attack not in ATTACKS:
            raise ValueError(f"unknown attack '{attack}'; the attacks are {', '.join(ATTACKS)}")
    if not spec.attacks:
        raise ValueError("choose at least one attack")
    for baseline in spec.baselines:
        if baseline not in BASELINES:
            raise ValueError(f"unknown baseline '{baseline}'; the baselines are {', '.join(BASELINES)}")
    if "dpsgd" in spec.baselines:
        if not spec.epsilons:
            raise ValueError("DP-SGD needs at least one privacy budget epsilon")
        if any(not (0 < e <= 1000) for e in spec.epsilons):
            raise ValueError(f"privacy budgets must lie in (0, 1000], not {', '.join(map(str, spec.epsilons))}")
        if spec.dp_epochs < 1:
            raise ValueError(f"DP-SGD epochs must be at least 1, not {spec.dp_epochs}")
    for method in spec.methods:
        described = describe_method(method)
        if described is None or described.family == "coreset":
            from ..methods import METHODS

            METHODS.entry(method)  # an unknown name: close matches
            raise ValueError(f"'{method}' selects real images rather than distilling them; the random and herding "
                             "baselines cover selection")
        make_config(method, info, spec.ipc, spec.distill_preset,
                    **({"iterations": spec.distill_iterations} if spec.distill_iterations else {}))
    get_preset(spec.eval_preset)
    if not 0 <= spec.bootstrap <= MAX_BOOTSTRAP or not 1 <= spec.neighbours <= 1000:
        raise ValueError(f"bootstrap must lie between 0 and {MAX_BOOTSTRAP:,} resamples and neighbours between 1 and "
                         f"1,000, not {spec.bootstrap:,} and {spec.neighbours:,}")
    if spec.seed < 0 or spec.split_seed < 0:
        raise ValueError(f"seeds are at least 0, not {min(spec.seed, spec.split_seed)}")
    if spec.distill_iterations is not None and spec.distill_iterations < 1:
        raise ValueError(f"distill_iterations is at least 1 (or null: the preset's), not {spec.distill_iterations}")
    if spec.test_limit is not None and spec.test_limit < info.num_classes:
        raise ValueError(f"test_limit must be at least one image per class ({info.num_classes})")
    if not (spec.methods or spec.runs or spec.baselines):
        raise ValueError("choose at least one target: a method to distil, a stored run or a baseline")
    return spec


def _check_sizes(dataset: str, architecture: str, pool_per_class: int, shadows: int | None, epochs: int) -> None:
    from ..data.subsets import MembershipSplit
    from ..models import MODELS

    MODELS.entry(architecture)
    MembershipSplit(dataset, int(pool_per_class)).check()
    if int(pool_per_class) > 5000:
        raise ValueError(f"a pool of {pool_per_class} images per class is larger than any supported dataset's class")
    if shadows is not None and not 2 <= int(shadows) <= 512:
        raise ValueError(f"LiRA needs 2 to 512 shadow models, not {shadows}")
    if not 1 <= int(epochs) <= 1000:
        raise ValueError(f"epochs must lie between 1 and 1000, not {epochs}")


def _member_run(store: "Store", spec: PrivacySpec, run_id: str) -> Any:
    """A stored run a study may attack: of this dataset, with a set, distilled from this split's members only."""
    from ..data.subsets import membership_of

    record = store.get_run(run_id)
    if record is None:
        raise KeyError(f"No run {run_id!r} in the store")
    if record.dataset != spec.dataset:
        raise ValueError(f"Run {record.name!r} is of {record.dataset}, not {spec.dataset}")
    if not record.fingerprint:
        raise ValueError(f"Run {record.name!r} has no stored set yet")
    check_same_data(store, record, spec.dataset)
    seen = membership_of(record.dataset, record.spec.get("subset"))
    wanted = spec.split()
    if seen is None or (seen.pool_per_class, seen.seed) != (wanted.pool_per_class, wanted.seed):
        where = "the whole training set" if seen is None else seen.label
        raise ValueError(f"Run {record.name!r} was distilled from {where}, which includes images outside the members "
                         f"of this split ({wanted.label}); attacking it would leak by construction. Distil from the "
                         "members instead (choose the method here, or distil with this split's subset)")
    return record


def _pool_indices(data: "LoadedDataset", pool_per_class: int, seed: int) -> tuple["torch.Tensor", int]:
    """The candidates' training indices, members first then non-members, and the number of members."""
    import torch

    from ..data.subsets import MembershipSplit

    members, others = MembershipSplit(data.info.name, pool_per_class, seed).indices(data)
    return torch.cat([members, others]), len(members)


def _pool(data: "LoadedDataset", idx: "torch.Tensor", device: Any) -> tuple["torch.Tensor", "torch.Tensor"]:
    """The candidates normalised on device, with their labels."""
    return data.normalize(data.train.images[idx]).to(device), data.train.labels[idx].to(device)


class _Stages:
    """Overall progress of a study from the fraction done of each planned stage (weights: estimated seconds)."""

    def __init__(self, recorder: Any, plan: list[tuple[str, float]]) -> None:
        self.recorder, self.plan = recorder, plan
        self.total = sum(w for _, w in plan) or 1.0
        self.done_before = 0.0
        self.current = 0

    def start(self, name: str) -> Any:
        names = [n for n, _ in self.plan]
        self.current = names.index(name)
        self.done_before = sum(w for _, w in self.plan[: self.current])
        weight = self.plan[self.current][1]
        label = name

        def report(fraction: float) -> None:
            done = self.done_before + weight * min(1.0, max(0.0, fraction))
            self.recorder.progress(round(100 * done / self.total, 1), 100, label)

        report(0.0)
        return report


SECONDS_PER_ITERATION = 0.6  # where ddcore/estimates.py has no row for the method and data: a DM quick iteration on
# 500 MNIST members, 1.2-1.8 s measured under load 3-7 on the 2-core CPU (results/privacy-quick-mnist.md), about half
# that on an idle one


def distil_seconds_per_iteration(method: str, info: Any, ipc: int, preset: str, config: Any, members_per_class: int,
                                 pixel_scale: float) -> float:
    """One iteration of `method` (its `config`) distilling the members: the measured row for its preset, priced at
    the real batch the members give (ddcore/estimates.py, as the Distill page estimates), else the DM figure above
    scaled by pixels."""
    from ..estimates import cpu_estimate, per_class_real_batch, real_batch_share

    sizes = [members_per_class] * info.num_classes
    measured = cpu_estimate(method, info, ipc, 1, preset, config=config, class_sizes=sizes)
    if measured is not None:
        return measured.per_iteration_s
    batch_real = per_class_real_batch(method, config)
    return SECONDS_PER_ITERATION * pixel_scale * (real_batch_share(batch_real, sizes, ipc) if batch_real else 1.0)


# MNIST image-passes a second of a ConvNet training on one thread (the job's), measured in the quick MNIST study
# (results/privacy-quick-mnist-2026-12-03.json, load 2-3 on the 2-core CPU): the members target 10,000 passes in
# 114 s and the 8 shadow models 80,000 in 897 s; the small-set targets 10,000 in 65-68 s (full batches of 100);
# DP-SGD with Opacus's per-example gradients 5,000 in 62-68 s. More pixels cost proportionally.
REAL_PASSES_PER_S = 90.0
SMALL_SET_PASSES_PER_S = 150.0
DP_SGD_PASSES_PER_S = 80.0


def plan(spec: PrivacySpec, image_pixels: int = 784) -> list[tuple[str, float]]:
    """The study's stages and their estimated seconds on one thread of the 2-core CPU the rates above were measured
    on."""
    from ..data import get_dataset_info
    from ..evaluation.protocol import get_preset
    from ..methods import make_config

    info = get_dataset_info(spec.dataset)
    scale = info.image_size ** 2 * info.channels / image_pixels
    members = spec.members_per_class * info.num_classes
    small = spec.ipc * info.num_classes
    train_rate, small_rate, dp_rate = (rate / scale for rate in
                                       (REAL_PASSES_PER_S, SMALL_SET_PASSES_PER_S, DP_SGD_PASSES_PER_S))
    small_cfg = get_preset(spec.eval_preset).with_(optimizer="sgd", convnet_norm="own")

    def small_training(method: str) -> float:
        return small * small_cfg.resolve(spec.dataset, spec.architecture, method).passes / small_rate + 2.0

    stages = [("Members target", members * spec.epochs / train_rate)]
    for method in spec.methods:
        overrides = {"iterations": spec.distill_iterations} if spec.distill_iterations else {}
        config = make_config(method, info, spec.ipc, spec.distill_preset, **overrides)
        iterations = int(getattr(config, "iterations", 1000))
        per_iteration = distil_seconds_per_iteration(method, info, spec.ipc, spec.distill_preset, config,
                                                     spec.members_per_class, scale)
        for init in ("real", "noise"):
            stages.append((f"Distil {method.upper()} ({init} init)", iterations * per_iteration))
            stages.append((f"Target on {method.upper()} ({init} init)", small_training(method)))
    for run_id in spec.runs:
        stages.append((f"Target on run {run_id}", small_training("dm")))
    if "random" in spec.baselines:
        stages.append(("Random subset target", small_training("random")))
    if "herding" in spec.baselines:
        stages.append(("Herding target", small_training("herding")))
    if "dpsgd" in spec.baselines:
        for eps in spec.epsilons:
            stages.append((f"DP-SGD at ε = {eps:g}", members * spec.dp_epochs / dp_rate))
    if spec.methods or spec.runs:
        stages.append(("Feature network for the neighbours", members * spec.epochs / train_rate))
    stages.append(("Attacks and intervals", 1.0 + 0.002 * spec.bootstrap * len(spec.attacks) * len(stages)))
    return stages


def estimate_seconds(spec: PrivacySpec) -> dict[str, float]:
    """Estimated seconds of the study ('study') and of its shadow models ('shadows', 0 when stored or unneeded)."""
    stages = plan(spec)
    from ..data import get_dataset_info

    info = get_dataset_info(spec.dataset)
    members = spec.members_per_class * info.num_classes
    per_shadow = stages[0][1]  # a shadow model trains like the members target, on half the pool
    return {"study": sum(w for _, w in stages), "shadows": per_shadow * spec.shadows if spec.lira else 0.0,
            "members": members}


def _study(spec: PrivacySpec, ctx: TaskContext) -> tuple[PrivacyResult, tuple[str, ...]]:
    import torch

    from ..device import resolve_device
    from ..evaluation.protocol import get_preset
    from ..methods.selection import herding_order
    from ..privacy.attacks import attack_scores, outputs_from_logits
    from ..privacy.metrics import measure, roc_curve, thin_curve
    from ..privacy.neighbours import features, nearest
    from ..privacy.training import logits_of, real_config, train_dp_sgd, train_target

    started = time.perf_counter()
    device = resolve_device(spec.device)
    data = ctx.dataset(spec.dataset)
    info = data.info
    stop = lambda: ctx.control.stop_requested  # noqa: E731
    stages = _Stages(ctx.recorder, plan(spec))
    pool_idx, n_members = _pool_indices(data, spec.pool_per_class, spec.split_seed)
    pool_x, pool_y = _pool(data, pool_idx, device)
    members_x, members_y = pool_x[:n_members], pool_y[:n_members]
    is_member = np.r_[np.ones(n_members, bool), np.zeros(len(pool_y) - n_members, bool)]
    shadows: Any = None
    inputs = [f"dataset:{spec.dataset}:{data.source}"]
    if spec.lira:
        record = ctx.artefacts.get(SHADOW_KIND) or ctx.store.get_artefact(spec.shadow_requirement().key())
        if record is None:  # called without the queue (the CLI): make them here
            from . import resolve_artefacts

            shadows = resolve_artefacts([spec.shadow_requirement()], ctx.store, spec.device, data)[SHADOW_KIND]
        else:
            shadows = ShadowModelsTask().load_artefact(record, ctx.store)
        inputs.append(f"artefact:{shadows.key}")

    # every target network trains by the same recipe (the DC reference's SGD on the network as it is), so the attacks
    # compare what the sets leak, not how differently their targets were trained
    small_cfg = get_preset(spec.eval_preset).with_(test_limit=spec.test_limit, num_seeds=1, optimizer="sgd",
                                                   convnet_norm="own")
    targets: list[TargetResult] = []
    arrays: dict[str, np.ndarray] = {}
    neighbours: dict[str, dict[str, float]] = {}
    synthetic_sets: dict[str, Any] = {}

    def attacked(target_id: str, label: str, kind: str, net: Any, images: int, accuracy: float, train_s: float,
                 **extra: Any) -> TargetResult:
        out = outputs_from_logits(logits_of(net, pool_x).cpu(), pool_y.cpu())
        measures = {}
        for attack in spec.attacks:
            scores = attack_scores(attack, out, None if shadows is None else shadows.phi,
                                   None if shadows is None else shadows.keep, fix_variance=spec.shadows < 64)
            measures[attack] = measure(scores[is_member], scores[~is_member], spec.bootstrap, seed=spec.seed)
            fpr, tpr = thin_curve(*roc_curve(scores[is_member], scores[~is_member]))
            arrays[f"roc__{target_id}__{attack}__fpr"] = fpr.astype(np.float32)
            arrays[f"roc__{target_id}__{attack}__tpr"] = tpr.astype(np.float32)
        result = TargetResult(target_id, label, kind, int(images), round(float(accuracy), 3), round(train_s, 2), measures,
                              **extra)
        targets.append(result)
        return result

    def small_target(target_id: str, label: str, kind: str, x: Any, y: Any, method: str, make_s: float,
                     stage: str, learned_lr: float | None = None, **extra: Any) -> None:
        cfg = small_cfg.resolve(spec.dataset, spec.architecture, method, learned_lr)
        trained = train_target(data, spec.architecture, x.to(device), y.to(device), cfg, spec.seed, device,
                               stages.start(stage), stop)
        attacked(target_id, label, kind, trained.net, len(y), trained.test_accuracy, trained.seconds,
                 make_s=round(make_s, 2), method=method, **extra)

    # (a) the members themselves: also the feature space of the herding baseline
    trained = train_target(data, spec.architecture, members_x, members_y, real_config(spec.epochs, spec.test_limit),
                           spec.seed, device, stages.start("Members target"), stop)
    members_net = trained.net
    if "members" in spec.baselines:
        attacked("members", "Members (all real)", "members", members_net, n_members, trained.test_accuracy, trained.seconds)

    # (b) distilled from the members: new runs (or identical stored ones) and the chosen stored runs
    for method in spec.methods:
        for init in ("real", "noise"):
            t0 = time.perf_counter()
            synthetic, run_id, reused = _distil_members(spec, method, init, data, ctx, stages.start(
                f"Distil {method.upper()} ({init} init)"))
            make_s = (synthetic.meta.elapsed_s if reused else time.perf_counter() - t0)
            tid = f"{method}-{init}"
            synthetic_sets[tid] = synthetic
            inputs.append(f"run:{run_id}")
            small_target(tid, f"{method.upper()}, {init} init", "distilled", synthetic.images, synthetic.labels, method,
                         make_s, f"Target on {method.upper()} ({init} init)", synthetic.lr, init=init, run_id=run_id,
                         reused_run=reused)
    for run_id in spec.runs:
        record = _member_run(ctx.store, spec, run_id)
        synthetic = ctx.store.load_set(run_id)
        if synthetic is None:
            raise FileNotFoundError(f"Run {run_id} has no stored set")
        tid = f"run-{run_id}"
        synthetic_sets[tid] = synthetic
        inputs.append(f"run:{run_id}:{record.fingerprint}")
        init = str(record.spec.get("overrides", {}).get("init", "real"))
        small_target(tid, f"{record.name}", "distilled", synthetic.images, synthetic.labels, record.method,
                     synthetic.meta.elapsed_s, f"Target on run {run_id}", synthetic.lr, init=init, run_id=run_id,
                     reused_run=True)

    # (c) random and (d) herding subsets of the members, of the distilled sets' size
    by_class = [torch.nonzero(members_y.cpu() == c).flatten() for c in range(info.num_classes)]
    if "random" in spec.baselines:
        gen = torch.Generator().manual_seed(spec.seed * 31 + 7)
        pick = torch.cat([ix[torch.randperm(len(ix), generator=gen)[: spec.ipc]] for ix in by_class])
        small_target("random", f"Random subset, {spec.ipc} per class", "random", members_x[pick].cpu(),
                     members_y[pick].cpu(), "random", 0.0, "Random subset target")
    if "herding" in spec.baselines:
        t0 = time.perf_counter()
        feats = features(members_net, members_x).cpu()
        pick = torch.cat([ix[torch.tensor(herding_order(feats[ix], spec.ipc), dtype=torch.long)] for ix in by_class])
        small_target("herding", f"Herding coreset, {spec.ipc} per class", "herding", members_x[pick].cpu(),
                     members_y[pick].cpu(), "herding", time.perf_counter() - t0, "Herding target")

    # (e) DP-SGD on the members
    if "dpsgd" in spec.baselines:
        for eps in spec.epsilons:
            dp = train_dp_sgd(data, spec.architecture, members_x, members_y, eps, spec.dp_epochs, spec.seed, device,
                              spec.test_limit, progress=stages.start(f"DP-SGD at ε = {eps:g}"), should_stop=stop)
            attacked(f"dpsgd-eps{eps:g}", f"DP-SGD, ε = {eps:g}", "dpsgd", dp.net, n_members, dp.test_accuracy, dp.seconds,
                     epsilon=round(float(dp.epsilon or eps), 3), noise_multiplier=dp.noise_multiplier)

    # nearest members and non-members of every synthetic image, in pixels and in features
    if synthetic_sets:
        outside = _outside_pool(data, spec, pool_idx)
        feature_net = train_target(data, spec.architecture, outside[0].to(device), outside[1].to(device),
                                   real_config(spec.epochs, spec.test_limit), spec.seed + 1, device,
                                   stages.start("Feature network for the neighbours"), stop).net
        pool_u8 = data.train.images[pool_idx].permute(0, 2, 3, 1).numpy()  # N×H×W×C, for the gallery
        pool_feats = features(feature_net, pool_x).cpu()
        for tid, synthetic in synthetic_sets.items():
            arrays[f"images__{tid}"] = synthetic.to_uint8()
            summary = {}
            for space, syn, ref in (("pixel", synthetic.images.cpu(), pool_x.cpu()),
                                    ("feature", features(feature_net, synthetic.images.to(device)).cpu(), pool_feats)):
                nn_ = nearest(syn, ref[:n_members], ref[n_members:], spec.neighbours)
                summary[f"closer_to_member_{space}"] = round(nn_.closer_to_member, 4)
                summary[f"ratio_{space}"] = round(nn_.distance_ratio, 4)
                for group, idx, dist, offset in (("member", nn_.member_index, nn_.member_distance, 0),
                                                 ("non_member", nn_.non_member_index, nn_.non_member_distance, n_members)):
                    arrays[f"nn__{tid}__{space}__{group}__images"] = pool_u8[idx + offset]
                    arrays[f"nn__{tid}__{space}__{group}__distance"] = dist.astype(np.float32)
            neighbours[tid] = summary
    stages.start("Attacks and intervals")(1.0)

    result = PrivacyResult(
        spec=spec.to_dict(), targets=tuple(targets),
        split={"members": int(n_members), "non_members": int(len(pool_y) - n_members),
               "pool_per_class": spec.pool_per_class, "seed": spec.split_seed},
        shadows={} if shadows is None else {"count": spec.shadows, "epochs": spec.epochs, "seconds": round(shadows.seconds, 2),
                                            "fix_variance": spec.shadows < 64},
        neighbours=neighbours, total_s=round(time.perf_counter() - started, 2), device=str(device), arrays_=arrays)
    return result, tuple(inputs)


def _outside_pool(data: "LoadedDataset", spec: PrivacySpec, pool_idx: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
    """As many training images as there are members, none of them in the pool: the feature network's data."""
    import torch

    taken = torch.zeros(len(data.train), dtype=torch.bool)
    taken[pool_idx] = True
    gen = torch.Generator().manual_seed(spec.split_seed * 13 + 5)
    per_class = spec.members_per_class
    picks = []
    for ix in data.train.class_indices:
        free = ix[~taken[ix]]
        picks.append(free[torch.randperm(len(free), generator=gen)[:per_class]])
    idx = torch.cat(picks)
    return data.normalize(data.train.images[idx]), data.train.labels[idx]


class _DistilRecorder:
    """Forwards a distillation's live images to the study's job, and its progress to the study's stage."""

    def __init__(self, recorder: Any, report: Any) -> None:
        self.recorder, self.report = recorder, report

    def progress(self, done: float, total: float, message: str = "") -> None:
        if total:
            self.report(done / total)

    def metrics(self, row: dict[str, Any]) -> None:
        pass

    def images(self, images: Any, labels: Any, class_names: Any) -> None:
        self.recorder.images(images, labels, class_names)

    def state(self, status: str) -> None:
        pass


def _distil_members(spec: PrivacySpec, method: str, init: str, data: "LoadedDataset", ctx: TaskContext,
                    report: Any) -> tuple[Any, str, bool]:
    """A set distilled from the members: an identical finished run from the store, else a new stored run."""
    from ..methods import method_class
    from ..methods.matching import MatchingMethod
    from .distill import DistillSpec, distil

    overrides: dict[str, Any] = {"init": init}
    if spec.distill_iterations:
        overrides["iterations"] = int(spec.distill_iterations)
    members = spec.members_per_class
    cls = method_class(method)
    if issubclass(cls, MatchingMethod):
        # The real batch the members give (real_counts: at most a class's images, each once), written into the run's
        # spec so that a run stored before that rule, whose batches drew the members again and again, is not reused.
        if getattr(cls.default_config(data.info, spec.ipc, spec.distill_preset), "batch_real", 0) > members:
            overrides["batch_real"] = members
    dspec = DistillSpec(dataset=spec.dataset, method=method, ipc=spec.ipc, preset=spec.distill_preset, overrides=overrides,
                        architecture=spec.architecture, subset=spec.split().subset(), seed=spec.seed, device=spec.device,
                        evaluate_after=False)
    wanted = dspec.stored()
    for record in ctx.store.list_runs(dataset=spec.dataset, method=method, ipc=spec.ipc, status="done"):
        if record.fingerprint and all(record.spec.get(k) == v for k, v in wanted.items() if k not in ("device", "data_root",
                                                                                                         "eval_every")):
            found = ctx.store.load_set(record.id)
            if found is not None:
                report(1.0)
                return found, record.id, True
    record = ctx.store.create_run(wanted, name=f"{method.upper()} IPC {spec.ipc}, {init} init, members of split "
                                                f"{spec.split_seed} (privacy)", status="queued")
    runner, outcome = distil(replace(dspec, run_id=record.id), data, store=ctx.store, run_id=record.id,
                             recorder=_DistilRecorder(ctx.recorder, report), control=ctx.control)
    if outcome.status != "done":
        raise Cancelled(f"Privacy study stopped during the {method.upper()} distillation (its run is kept, resumable)")
    return runner.result(), record.id, False


__all__ = ["ATTACK_TITLES", "BASELINES", "PRESETS", "PrivacySpec", "PrivacyTask", "ShadowModelsTask", "ShadowScores",
           "ShadowSpec", "estimate_seconds", "plan", "validate"]
