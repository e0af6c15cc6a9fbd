"""Class-incremental learning with a memory of IPC images per class seen so far.

The protocol of the DM paper's continual-learning experiment (VICO-UoE/DatasetCondensation CL_DM.py,
read for reference): the classes arrive in steps in an order drawn from a seed (`np.random.seed(seed);
np.random.permutation(num_classes)`), each step's classes get IPC images in the memory (random real
images, herding, or a set distilled from that step's classes alone), and at every step a *fresh*
network is trained on the whole memory and tested on the test images of every class seen so far
(GDumb-style: it never sees anything but the memory). CL_DM.py trains it with DSA augmentation for all
memories, 1000 epochs and 3 networks; the quick preset here is a CPU-sized version of the same.

Beside it, optionally, one network is fine-tuned from step to step on the new classes' real images with
the earlier memory replayed, so users see forgetting: a class's accuracy drops from its best once its
real images are gone.

Everything accuracy-like is in percent. The tasks layer (ddcore/tasks/continual.py) stores the outcome.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from .data import LoadedDataset
from .device import resolve_device
from .evaluation.api import _device_name, test_tensors
from .evaluation.protocol import EvalConfig, ResolvedConfig
from .evaluation.result import EvaluationCancelled, library_versions
from .evaluation.trainer import predict, train_group
from .models import create_model

ProgressFn = Callable[[float, str], None]  # (units done, fractional allowed; message)
StopFn = Callable[[], bool]


class Stopped(RuntimeError):
    """The study was told to stop; nothing of it is kept."""


# ---------------------------------------------------------------------------------------------- presets
@dataclass(frozen=True)
class ContinualPreset:
    """How much work one study does: the distillation preset of each step's memory, and the learners."""

    name: str
    method_preset: str  # the preset of the methods that build each step's memory (quick | paper)
    learner: EvalConfig  # how the fresh network of each step is trained and tested
    finetune_epochs: int  # passes of the fine-tuned network over (new real images + replayed memory) per step
    finetune_per_class: int | None  # real training images per new class the fine-tuned network sees (None: all)
    note: str = ""
    method_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)  # method -> config fields


PRESETS: dict[str, ContinualPreset] = {
    # Measured on the shared 2-core CPU (benchmarks/results/continual.md): a fresh ConvNet on 100 MNIST images,
    # 50 passes with DSA, takes ~17 s; 50 passes put a random-real IPC-10 MNIST set at 88 % (the quick
    # evaluation preset's 100 passes: 1-2 points more, twice the time). One network per step and order; the
    # spread comes from the class orders.
    "quick": ContinualPreset(
        "quick", "quick",
        EvalConfig(name="cl-quick", epochs=50, extra_final_epoch=False, augmentation="dsa", num_seeds=1,
                   test_limit=2000),
        finetune_epochs=10, finetune_per_class=200,
        note="learner: 50 passes with DSA, 1 network, 2000-image test subset; memory: the methods' quick presets, DM with "
             "200 iterations per step",
        # DM's quick preset runs 400 iterations; on one step's 2 classes an iteration takes ~0.13 s here, so 200 keep a
        # 5-step, 3-order study of three memories near a quarter of an hour (benchmarks/results/continual.md).
        method_overrides={"dm": {"iterations": 200}}),
    # For tests and a first look: seconds, not minutes (a learner this short says little).
    "tiny": ContinualPreset(
        "tiny", "quick",
        EvalConfig(name="cl-tiny", epochs=3, extra_final_epoch=False, augmentation="none", num_seeds=1, test_limit=300),
        finetune_epochs=1, finetune_per_class=20,
        note="learner: 3 passes without augmentation, 300 test images; DM 5 iterations, DC/DSA 1 per step, each matching "
             "on a width-32 ConvNet (DM: 16 real images per class) (a smoke test, not a measurement)",
        # the narrow matching network and small real batch: DM's memory was most of a tiny study's time (MNIST, random +
        # DM, 2 steps x 2 orders: 36 s before, 10 s after on a 2-core CPU), for a memory that only has to exist
        method_overrides={"dm": {"iterations": 5, "net_width": 32, "batch_real": 16},
                          "dc": {"iterations": 1, "net_width": 32}, "dsa": {"iterations": 1, "net_width": 32}}),
    # CL_DM.py: evaluate_synset with DSA for every memory, epoch_eval_train 1000 (Epoch + 1 passes, lr x0.1 at
    # Epoch // 2 + 1), batch 256, lr 0.01, num_eval 3 networks, the whole test set of the seen classes.
    "paper": ContinualPreset(
        "paper", "paper",
        EvalConfig(name="cl-paper", epochs=1000, augmentation="dsa", num_seeds=3),
        finetune_epochs=50, finetune_per_class=None,
        note="learner as CL_DM.py: 1000 epochs with DSA, 3 networks, the whole test set; memory: the methods' paper presets"),
}


def get_preset(name: str) -> ContinualPreset:
    if name not in PRESETS:
        raise ValueError(f"Unknown continual-learning preset '{name}'. Choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


# ---------------------------------------------------------------------------------------------- classes and steps
def class_order(num_classes: int, seed: int) -> list[int]:
    """The order the classes arrive in for one seed: CL_DM.py's `np.random.seed(seed_cl);
    np.random.permutation(num_classes)`, without touching numpy's global state."""
    return [int(c) for c in np.random.RandomState(int(seed)).permutation(int(num_classes))]


def split_steps(order: Sequence[int], steps: int) -> list[list[int]]:
    """The classes of each step: as even as possible, in arrival order (10 classes in 5 steps: 2 each; CL_DM.py
    drops the remainder, here the first steps take one more, so every class arrives)."""
    if int(steps) < 1:
        raise ValueError(f"steps must be at least 1, not {steps}")
    if int(steps) > len(order):
        raise ValueError(f"{steps} steps need at least {steps} classes; this dataset has {len(order)}")
    return [[int(c) for c in part] for part in np.array_split(np.asarray(order), int(steps))]


# ---------------------------------------------------------------------------------------------- memory
class MemoryRuleError(ValueError):
    """Something tried to put into the memory what the protocol forbids."""


class Memory:
    """The replay memory: at most `ipc` images of each class that has arrived, and nothing else.

    Every addition is checked, so a memory method that returns too many images, or images of a class that has
    not arrived yet, fails loudly instead of quietly inflating the results."""

    def __init__(self, ipc: int) -> None:
        if int(ipc) < 1:
            raise ValueError(f"IPC must be at least 1, not {ipc}")
        self.ipc = int(ipc)
        self.arrived: list[int] = []
        self._images: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []
        self._counts: dict[int, int] = {}

    def arrive(self, classes: Sequence[int]) -> None:
        again = [int(c) for c in classes if int(c) in self.arrived]
        if again:
            raise MemoryRuleError(f"classes {again} arrived already")
        self.arrived += [int(c) for c in classes]

    def add(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        labels = labels.detach().cpu().long()
        if images.shape[0] != labels.shape[0]:
            raise MemoryRuleError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        new = {int(c): int(n) for c, n in zip(*np.unique(labels.numpy(), return_counts=True))}
        early = sorted(c for c in new if c not in self.arrived)
        if early:
            raise MemoryRuleError(f"the memory cannot hold classes {early}: they have not arrived")
        over = {c: self._counts.get(c, 0) + n for c, n in new.items() if self._counts.get(c, 0) + n > self.ipc}
        if over:
            raise MemoryRuleError(f"the memory holds at most {self.ipc} images per class; this would make {over}")
        for c, n in new.items():
            self._counts[c] = self._counts.get(c, 0) + n
        self._images.append(images.detach().cpu().float())
        self._labels.append(labels)

    @property
    def budget(self) -> int:
        """Images allowed now: IPC per class that has arrived."""
        return self.ipc * len(self.arrived)

    def __len__(self) -> int:
        return sum(int(x.shape[0]) for x in self._labels)

    def counts(self) -> dict[int, int]:
        return dict(self._counts)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not self._images:
            raise MemoryRuleError("the memory is empty")
        return torch.cat(self._images), torch.cat(self._labels)


def fingerprint(images: torch.Tensor, labels: torch.Tensor) -> str:
    """12 hex digits over a set's tensors: what a learner trained on, to compare with the memory's."""
    h = hashlib.sha256()
    h.update(images.detach().cpu().float().contiguous().numpy().tobytes())
    h.update(labels.detach().cpu().long().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


# ---------------------------------------------------------------------------------------------- one step's memory
@dataclass(frozen=True)
class MemorySpec:
    """What the distillation runner needs to build one step's images (ddcore.runner.RunSpecLike)."""

    dataset: str
    method: str
    ipc: int
    preset: str
    seed: int
    device: str
    overrides: dict[str, Any] = field(default_factory=dict)
    architecture: str = "convnet"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    data_root: str | None = None
    eval_every: int | None = None
    eval_preset: str = "quick"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def step_memory(data: LoadedDataset, classes: Sequence[int], method: str, ipc: int, preset: str, seed: int,
                device: str, artefacts: Mapping[str, Any] | None = None, should_stop: StopFn | None = None,
                progress: Callable[[float], None] | None = None,
                overrides: Mapping[str, Any] | None = None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """IPC images of each of `classes`, made by `method` from those classes' training images only
    (the dataset restricted to them): normalised images, their labels in the whole dataset's ids, seconds."""
    from .runner import Runner

    start = time.perf_counter()
    sub = data.only_classes(list(classes))
    runner = Runner(MemorySpec(data.info.name, method, int(ipc), preset, int(seed), device, dict(overrides or {})), sub,
                    artefacts=dict(artefacts or {}))
    while not runner.done:
        if should_stop is not None and should_stop():
            raise Stopped("stopped while building the memory")
        runner.step()
        if progress is not None:
            progress(runner.method.iteration / max(1, runner.method.total_iterations))
    if runner.error:
        raise RuntimeError(runner.error)
    result = runner.result()
    to_global = torch.tensor([int(c) for c in classes])
    labels = to_global[result.hard_labels().long().cpu()]
    return result.images.detach().cpu().float(), labels, time.perf_counter() - start


# ---------------------------------------------------------------------------------------------- learners
@dataclass(frozen=True)
class LearnerOutcome:
    accuracy: float  # percent on the test images of the seen classes, mean over networks
    per_class: dict[int, float]  # percent per seen class
    seconds: float
    trained_on: str  # fingerprint of the images and labels the learner was given
    images: int


def _test_seen(data: LoadedDataset, nets: Any, seen: Sequence[int], device: torch.device, test_limit: int | None,
               should_stop: StopFn | None) -> tuple[float, dict[int, float]]:
    """Accuracy on the test images of the seen classes (a class-balanced subset when test_limit is set)."""
    test_x, test_y = test_tensors(data, device, test_limit)
    mask = torch.isin(test_y, torch.tensor(list(seen), device=test_y.device))
    x, y = test_x[mask], test_y[mask]
    try:
        preds = predict(nets, x, chunk=500 if device.type == "cpu" else 2000, should_stop=should_stop)
    except EvaluationCancelled as e:
        raise Stopped(str(e)) from e
    correct = (preds == y.unsqueeze(0)).float()  # (networks, N)
    per_class = {int(c): 100.0 * float(correct[:, y == c].mean()) for c in seen}
    return 100.0 * float(correct.mean()), per_class


def learner_config(preset: ContinualPreset, dataset: str, architecture: str) -> ResolvedConfig:
    return preset.learner.resolve(dataset, architecture)


def train_fresh(images: torch.Tensor, labels: torch.Tensor, data: LoadedDataset, seen: Sequence[int],
                architecture: str, config: ResolvedConfig, seeds: Sequence[int], device: torch.device,
                should_stop: StopFn | None = None, progress: Callable[[float], None] | None = None) -> LearnerOutcome:
    """Fresh networks (one per seed, all classes as outputs, as CL_DM.py) trained on (images, labels) alone."""
    info = data.info
    start = time.perf_counter()

    def build():
        return create_model(architecture, info.channels, info.num_classes, info.image_size)

    def report(d: dict) -> None:
        if progress is not None and isinstance(d.get("fraction"), (int, float)):
            progress(float(d["fraction"]))

    try:
        outcome = train_group(build, list(seeds), images, labels, config, device, info.num_classes, report,
                              should_stop, stage="continual")
    except EvaluationCancelled as e:
        raise Stopped(str(e)) from e
    acc, per_class = _test_seen(data, outcome.group, seen, device, config.test_limit, should_stop)
    return LearnerOutcome(acc, per_class, time.perf_counter() - start, fingerprint(images, labels), int(images.shape[0]))


class FinetunedLearner:
    """One network carried from step to step: at each step it trains on the new classes' real images (a seeded
    subset) plus the earlier memory replayed, then is tested on every class seen so far."""

    def __init__(self, data: LoadedDataset, architecture: str, preset: ContinualPreset, seed: int,
                 device: torch.device) -> None:
        from .evaluation.trainer import build_seeded

        info = data.info
        self.data, self.preset, self.seed, self.device = data, preset, int(seed), device
        self.net = build_seeded(lambda: create_model(architecture, info.channels, info.num_classes, info.image_size),
                                seed, device)
        self.config = replace(preset.learner, epochs=preset.finetune_epochs, extra_final_epoch=False,
                              lr_decay_epoch=-1, num_seeds=1).resolve(info.name, architecture)

    def step(self, new_classes: Sequence[int], replay: tuple[torch.Tensor, torch.Tensor] | None, seen: Sequence[int],
             step: int, should_stop: StopFn | None = None) -> LearnerOutcome:
        start = time.perf_counter()
        g = torch.Generator().manual_seed(self.seed * 1_000 + step)
        per = self.preset.finetune_per_class
        split = self.data.train
        idx = torch.cat([split.sample_class(c, min(per, len(split.class_indices[c])) if per else len(split.class_indices[c]), g)
                         for c in new_classes])
        images, labels = self.data.normalize(split.images[idx]), split.labels[idx]
        if replay is not None:
            images, labels = torch.cat([images, replay[0]]), torch.cat([labels, replay[1]])
        net = self.net
        try:  # train_group trains what `build` returns: here the one network, in place
            group = train_group(lambda: net, [self.seed * 1_000 + step], images, labels, self.config, self.device,
                                self.data.info.num_classes, None, should_stop, stage="finetune").group
        except EvaluationCancelled as e:
            raise Stopped(str(e)) from e
        acc, per_class = _test_seen(self.data, group, seen, self.device, self.config.test_limit, should_stop)
        return LearnerOutcome(acc, per_class, time.perf_counter() - start, fingerprint(images, labels), int(images.shape[0]))


# ---------------------------------------------------------------------------------------------- the whole protocol
@dataclass
class ContinualOutcome:
    """One study: every method, class order and step. Arrays are indexed [method, order, step(, class)]."""

    dataset: str
    methods: list[str]
    seeds: list[int]
    ipc: int
    steps: int
    preset: str
    architecture: str
    class_orders: list[list[int]]
    step_classes: list[list[list[int]]]  # [order][step] -> classes
    class_names: list[str]
    accuracy: np.ndarray  # (M, O, S) fresh learner, percent on the seen classes
    class_accuracy: np.ndarray  # (M, O, S, C) percent, NaN for classes not yet seen
    memory_seconds: np.ndarray  # (M, O, S)
    learner_seconds: np.ndarray  # (M, O, S)
    learner_images: np.ndarray  # (M, O, S) images the fresh learner trained on (= the memory's size)
    memory_images: np.ndarray  # (M, O, N, H, W, C) uint8, in arrival order: step s holds images [s*k*ipc, ...)
    memory_labels: np.ndarray  # (M, O, N)
    memory_step: np.ndarray  # (M, O, N): the step each image entered the memory
    finetune_accuracy: np.ndarray | None = None  # (M, O, S)
    finetune_class_accuracy: np.ndarray | None = None  # (M, O, S, C)
    finetune_seconds: np.ndarray | None = None
    learner: dict[str, Any] = field(default_factory=dict)  # the resolved learner config
    memory_fingerprints: list[list[list[str]]] = field(default_factory=list)  # [m][o][s]
    learner_fingerprints: list[list[list[str]]] = field(default_factory=list)
    device: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    wall_time_s: float = 0.0
    notes: str = ""
    created: float = field(default_factory=time.time)
    key: str = ""

    ARRAYS = ("accuracy", "class_accuracy", "memory_seconds", "learner_seconds", "learner_images", "memory_images",
              "memory_labels", "memory_step", "finetune_accuracy", "finetune_class_accuracy", "finetune_seconds")

    # ------------------------------------------------------------------ storage (ddcore.tasks.study)
    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in self.ARRAYS and k != "key"}

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in self.ARRAYS if getattr(self, k) is not None}

    @classmethod
    def from_stored(cls, data: dict[str, Any], arrays: dict[str, np.ndarray], record: Any) -> "ContinualOutcome":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known},
                   **{k: arrays.get(k) for k in cls.ARRAYS}, key=getattr(record, "key", ""))

    # ------------------------------------------------------------------ summaries
    @property
    def finetuned(self) -> bool:
        return self.finetune_accuracy is not None

    def final(self, method: str, finetune: bool = False) -> tuple[float, float]:
        """Mean and std over class orders of the last step's accuracy (percent)."""
        acc = self.finetune_accuracy if finetune else self.accuracy
        assert acc is not None
        last = acc[self.methods.index(method), :, -1]
        return float(last.mean()), float(last.std())

    def cost(self, method: str) -> dict[str, float]:
        """Seconds per class order: building the memory, training the fresh learners (all steps)."""
        m = self.methods.index(method)
        return {"memory_s": float(self.memory_seconds[m].sum(1).mean()),
                "learner_s": float(self.learner_seconds[m].sum(1).mean())}

    def forgetting(self, method: str, finetune: bool = False) -> np.ndarray:
        """(orders, classes): a class's best accuracy over the steps since it arrived minus its last one."""
        return forgetting(self.finetune_class_accuracy if finetune else self.class_accuracy, self.methods.index(method))


def forgetting(class_accuracy: np.ndarray | None, method: int) -> np.ndarray:
    assert class_accuracy is not None
    per = class_accuracy[method]  # (O, S, C)
    with np.errstate(all="ignore"):
        best = np.nanmax(per, axis=1)
    return best - per[:, -1, :]


def run_continual(data: LoadedDataset, methods: Sequence[str], ipc: int, steps: int, seeds: Sequence[int],
                  preset: ContinualPreset, *, architecture: str = "convnet", device: str = "auto",
                  artefacts: Mapping[str, Any] | None = None, finetune: bool = False,
                  progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> ContinualOutcome:
    """Every method on every class order: at each step the new classes arrive, the method adds IPC images of each
    to the memory (from those classes' training images only), and a fresh network trains on the memory alone.

    progress(units, message) counts units of work: per (method, order, step) one for the memory and one for the
    learner (two more with `finetune`); a fraction within a unit is reported as it goes."""
    wall = time.perf_counter()
    info = data.info
    dev = resolve_device(device)
    methods, seeds = list(methods), [int(s) for s in seeds]
    orders = [class_order(info.num_classes, s) for s in seeds]
    plan = [split_steps(o, steps) for o in orders]
    M, O, S, C = len(methods), len(seeds), int(steps), info.num_classes  # noqa: E741 (the arrays' axes)
    per_unit = 3 if finetune else 2
    config = learner_config(preset, info.name, architecture)
    accuracy = np.full((M, O, S), np.nan)
    class_acc = np.full((M, O, S, C), np.nan)
    mem_s, learn_s, learn_n = np.zeros((M, O, S)), np.zeros((M, O, S)), np.zeros((M, O, S), dtype=np.int64)
    ft_acc = np.full((M, O, S), np.nan) if finetune else None
    ft_class = np.full((M, O, S, C), np.nan) if finetune else None
    ft_s = np.zeros((M, O, S)) if finetune else None
    images_u8: list[list[np.ndarray]] = [[np.zeros(0)] * O for _ in range(M)]
    labels_all: list[list[np.ndarray]] = [[np.zeros(0)] * O for _ in range(M)]
    step_all: list[list[np.ndarray]] = [[np.zeros(0)] * O for _ in range(M)]
    mem_fp = [[[""] * S for _ in range(O)] for _ in range(M)]
    learn_fp = [[[""] * S for _ in range(O)] for _ in range(M)]
    done = 0.0

    def report(units: float, message: str) -> None:
        if progress is not None:
            progress(units, message)

    for m, method in enumerate(methods):
        for o, seed in enumerate(seeds):
            memory = Memory(ipc)
            tuned = FinetunedLearner(data, architecture, preset, seed, dev) if finetune else None
            chunks_u8, chunks_lab, chunks_step = [], [], []
            for s, classes in enumerate(plan[o]):
                label = f"{method}, order {o + 1}/{O}, step {s + 1}/{S}"
                replay = memory.tensors() if len(memory) else None  # before the new classes: what fine-tuning replays
                memory.arrive(classes)
                base = done
                images, labels, seconds = step_memory(
                    data, classes, method, ipc, preset.method_preset, seed * 1_000 + s, str(dev), artefacts,
                    should_stop, lambda f, base=base, label=label: report(base + f, f"{label}: building the memory"),
                    preset.method_overrides.get(method))
                memory.add(images, labels)
                mem_s[m, o, s] = seconds
                done += 1
                report(done, f"{label}: memory built")
                seen = [c for part in plan[o][: s + 1] for c in part]
                mem_x, mem_y = memory.tensors()
                mem_fp[m][o][s] = fingerprint(mem_x, mem_y)
                base = done
                out = train_fresh(mem_x, mem_y, data, seen, architecture, config,
                                  [seed * 100 + k for k in range(preset.learner.num_seeds)], dev, should_stop,
                                  lambda f, base=base, label=label: report(base + f, f"{label}: training a fresh network"))
                accuracy[m, o, s], learn_s[m, o, s], learn_n[m, o, s] = out.accuracy, out.seconds, out.images
                learn_fp[m][o][s] = out.trained_on
                for c, a in out.per_class.items():
                    class_acc[m, o, s, c] = a
                done += 1
                report(done, f"{label}: {out.accuracy:.1f} % on {len(seen)} classes")
                if tuned is not None:
                    assert ft_acc is not None and ft_class is not None and ft_s is not None
                    ft = tuned.step(classes, replay, seen, s, should_stop)
                    ft_acc[m, o, s], ft_s[m, o, s] = ft.accuracy, ft.seconds
                    for c, a in ft.per_class.items():
                        ft_class[m, o, s, c] = a
                    done += per_unit - 2
                    report(done, f"{label}: fine-tuned network {ft.accuracy:.1f} %")
                chunks_u8.append(_to_uint8(images, data))
                chunks_lab.append(labels.numpy())
                chunks_step.append(np.full(len(labels), s))
            images_u8[m][o] = np.concatenate(chunks_u8)
            labels_all[m][o] = np.concatenate(chunks_lab)
            step_all[m][o] = np.concatenate(chunks_step)
    return ContinualOutcome(
        dataset=info.name, methods=methods, seeds=seeds, ipc=int(ipc), steps=S, preset=preset.name,
        architecture=architecture, class_orders=orders, step_classes=plan, class_names=list(info.class_names),
        accuracy=accuracy, class_accuracy=class_acc, memory_seconds=mem_s, learner_seconds=learn_s,
        learner_images=learn_n, memory_images=np.stack([np.stack(r) for r in images_u8]),
        memory_labels=np.stack([np.stack(r) for r in labels_all]), memory_step=np.stack([np.stack(r) for r in step_all]),
        finetune_accuracy=ft_acc, finetune_class_accuracy=ft_class, finetune_seconds=ft_s,
        learner=config.to_dict(), memory_fingerprints=mem_fp, learner_fingerprints=learn_fp, device=_device_name(dev),
        versions=library_versions(), wall_time_s=round(time.perf_counter() - wall, 3), notes=preset.note)


def _to_uint8(images: torch.Tensor, data: LoadedDataset) -> np.ndarray:
    mean = torch.tensor(data.info.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.info.std).view(1, -1, 1, 1)
    unit = (images.detach().cpu().float() * std + mean).clamp(0, 1)
    return (unit * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def units(methods: int, orders: int, steps: int, finetune: bool = False) -> int:
    """Units of work `run_continual` reports progress in."""
    return methods * orders * steps * (3 if finetune else 2)


# Seconds measured on the shared 2-core CPU, one thread (benchmarks/results/continual.md), for the cost estimate
# shown before a study starts: a fresh learner per 100 memory images and 50 passes; one step's memory for 2 classes
# at IPC 10, per iteration of a distillation method, or in all for a coreset (other sizes scale with classes x IPC).
LEARNER_S_PER_100 = {"mnist": 17.0, "fashionmnist": 17.0, "cifar10": 25.0}
CORESET_S_PER_20 = {"random": 0.1, "herding": 1.0, "kcenter": 1.0}
ITERATION_S_PER_20 = {"dm": 0.13, "dc": 19.0, "dsa": 20.0}  # others count as DM


def estimate_seconds(dataset: str, methods: Sequence[str], ipc: int, steps: int, orders: int, num_classes: int,
                     preset: str = "quick", finetune: bool = False) -> float:
    """A rough cost of a study on this machine's CPU, from the rates above (slower when the machine is busy)."""
    from .data import get_dataset_info
    from .methods import METHODS

    p = get_preset(preset)
    passes = p.learner.epochs or 50
    learner = LEARNER_S_PER_100.get(dataset, 25.0) * passes / 50 * p.learner.num_seeds
    per_step = num_classes / max(1, steps)
    images = sum((s + 1) * per_step * ipc for s in range(steps))  # the learner at step s trains on s+1 steps' memory
    memory = 0.0
    for m in methods:
        if m in CORESET_S_PER_20 or m not in METHODS:
            memory += CORESET_S_PER_20.get(m, 1.0)
            continue
        iterations = (p.method_overrides.get(m) or {}).get("iterations")
        if iterations is None:
            iterations = METHODS.get(m).default_config(get_dataset_info(dataset), ipc, p.method_preset).iterations
        memory += ITERATION_S_PER_20.get(m, ITERATION_S_PER_20["dm"]) * int(iterations)
    memory *= steps * per_step * ipc / 20.0
    # the fine-tuned network: finetune_epochs passes over the new classes' real images (and the small replay) per step
    real = per_step * (p.finetune_per_class or 6000)
    tune = LEARNER_S_PER_100.get(dataset, 25.0) / (50 * 100) * p.finetune_epochs * real * steps if finetune else 0.0
    return orders * (len(methods) * (learner * images / 100.0 + tune) + memory)
