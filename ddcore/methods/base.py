"""The method contract: everything about a method is on its class, and adding a method is one file.

A method is a `DistillMethod` subclass decorated with `@register_method` (ddcore/methods/__init__.py;
files outside ddcore are found through the DDCORE_PLUGINS variable). Its class declares:

* identity and teaching text: `name`, `title`, `family`, `explanation`, `paper`, `paper_url`, and for the
  classroom `objective` (LaTeX), `symbols` and `loss_meaning` (what its plotted loss measures);
* how its sets are evaluated: `eval_augmentation` ('dsa' | 'dc' | 'none' | 'auto'), `eval_soft_label_loss`,
  `eval_optimizer` ('sgd' | 'adam') and `eval_convnet_norm`, which ddcore.evaluation.protocol applies where an
  evaluation asks for 'auto' (each paper's own protocol, recorded in the result), and `eval_krr_kernel`, the kernel
  of its KRR evaluation;
* an optional plot colour `colour` (app/plots.py; otherwise a stable colour from the registry order);
* `Config`, a dataclass of the paper's defaults (each field's source in a comment or its docstring),
  the preset names `presets` and the rules that make them, `preset_rules` (data, see `PresetRule`:
  each value names its source); the generic `default_config` applies the matching rules in order;
* `requires(info, ipc, config, architecture)`: the artefacts it needs before it can start (e.g. expert
  trajectories), as `Requirement`s; the platform produces or finds them and hands them to the
  constructor as `artefacts={kind: loaded object}`.

The method owns the synthetic set and advances one outer iteration per step(). Randomness is derived
from (seed, iteration), so a run resumed from a checkpoint continues exactly as an uninterrupted one.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Mapping

import torch

from ..data import LoadedDataset
from ..data.info import DatasetInfo
from ..models.layers import NORMS
from ..synthetic import SetMeta, SyntheticSet

PRESETS = ("quick", "paper")  # the default preset names: 'paper' = Config() as the paper has it
EVAL_AUGMENTATIONS = ("dsa", "dc", "none", "auto")
EVAL_OPTIMIZERS = ("sgd", "adam")
ANY_PRESET = "*"


@dataclass
class MethodConfig:
    """Fields every method has; methods subclass this with their paper's defaults."""

    iterations: int = 1
    init: str = "real"  # "real" (random real images of the class) or "noise" (standard normal)


@dataclass(frozen=True)
class PresetRule:
    """One row of a method's preset table: in `preset` (or every preset: '*'), for the datasets and IPCs
    it names (None: all), set `values` on the config. `source` says where the values come from: the
    reference code or readme, or the benchmark measurement that chose them. Rules apply in order, so a
    later rule overrides an earlier one for the same field."""

    preset: str
    values: Mapping[str, Any] = field(hash=False)  # (a read-only mapping; rules hash by everything else)
    source: str
    datasets: tuple[str, ...] | None = None
    ipcs: tuple[int, ...] | None = None
    min_ipc: int | None = None
    max_ipc: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))
        if self.datasets is not None:
            object.__setattr__(self, "datasets", tuple(d.strip().lower() for d in self.datasets))
        if self.ipcs is not None:
            object.__setattr__(self, "ipcs", tuple(int(i) for i in self.ipcs))
        if not self.source.strip():
            raise ValueError(f"preset rule {dict(self.values)} must name its source")
        if not self.values:
            raise ValueError("a preset rule must set at least one value")

    def matches(self, preset: str, dataset: str, ipc: int) -> bool:
        return ((self.preset == ANY_PRESET or self.preset == preset)
                and (self.datasets is None or dataset.strip().lower() in self.datasets)
                and (self.ipcs is None or ipc in self.ipcs)
                and (self.min_ipc is None or ipc >= self.min_ipc)
                and (self.max_ipc is None or ipc <= self.max_ipc))


def _frozen(value: Any) -> Any:
    """A hashable, JSON-able copy: lists become tuples, mappings sorted (key, value) tuples."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


@dataclass(frozen=True)
class Requirement:
    """An artefact a method needs before it starts, e.g. kind='expert-trajectories' with params
    (('architecture', 'convnet'), ('dataset', 'cifar10'), ('epochs', 50), ...).

    `params` are the sorted items that identify the artefact (two requirements with equal kind and
    params are the same artefact, whoever asks); `key()` is a short stable id of them for caches and
    stores; `label` is for people ('50 expert trajectories on CIFAR-10') and not part of the identity."""

    kind: str
    params: tuple[tuple[str, Any], ...] = ()
    label: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.kind.strip():
            raise ValueError("a requirement needs a kind")
        items = self.params.items() if isinstance(self.params, Mapping) else self.params
        object.__setattr__(self, "params", tuple(sorted(((str(k), _frozen(v)) for k, v in items),
                                                        key=lambda kv: kv[0])))

    @classmethod
    def from_dict(cls, kind: str, params: Mapping[str, Any], label: str = "") -> "Requirement":
        return cls(kind, tuple(params.items()), label)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.params)

    def key(self) -> str:
        """16 hex digits of sha256 over kind and params as JSON (stable across processes and machines)."""
        payload = json.dumps({"kind": self.kind, "params": [[k, v] for k, v in self.params]}, sort_keys=True,
                             separators=(",", ":"), default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def step_generator(seed: int, iteration: int, stream: int = 0) -> torch.Generator:
    """The CPU generator `DistillMethod.rng(stream)` gives at `iteration` of a run with `seed`."""
    g = torch.Generator()
    g.manual_seed((int(seed) * 1_000_003 + int(iteration) * 7_919 + int(stream)) % (2**63 - 1))
    return g


class MissingArtefactsError(ValueError):
    """A method was constructed without an artefact its `requires()` names."""


class StepInterrupted(Exception):
    """A long iteration noticed a stop request (`DistillMethod.should_stop`) and gave up before changing anything:
    the run stops where the previous iteration left it, so a resume repeats this iteration exactly."""


class DivergenceError(RuntimeError):
    """The loss became NaN/inf or exploded; the last good synthetic set is kept by the caller."""


class DistillMethod(ABC):
    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    family: ClassVar[str] = ""  # coreset | gradient matching | distribution matching | trajectory | kernel | ...
    explanation: ClassVar[str] = ""  # one plain-language paragraph for the UI
    objective: ClassVar[str] = ""  # the core objective as LaTeX (st.latex), in the review's notation
    symbols: ClassVar[str] = ""  # what the objective's symbols are, in plain words
    loss_meaning: ClassVar[str] = ""  # what the plotted loss measures, for the loss curve's caption
    paper: ClassVar[str] = ""  # citation
    paper_url: ClassVar[str] = ""
    # The augmentation its sets are evaluated with when an evaluation asks for 'auto': 'dsa' (DSA, DM and
    # the methods distilled with DSA), 'dc' (the DC paper's get_daparam for the dataset/architecture:
    # crop/scale/rotate/noise, or none), 'none', or 'auto' (the protocol's default for sets that declare
    # nothing, which is 'dc').
    eval_augmentation: ClassVar[str] = "auto"
    # How evaluation trains on the set's soft labels when it asks for 'auto': 'ce' (softmax of the labels as
    # logits: DATM, TESLA) or 'mse' (regression on the labels themselves: FRePo's and KIP's learned labels).
    eval_soft_label_loss: ClassVar[str] = "ce"
    # How evaluation trains networks on its sets when it asks for 'auto': the DC reference's recipe ('sgd':
    # momentum 0.9, lr 0.01, one step decay) or FRePo's script/eval.py ('adam': lr 3e-4, a linear warm-up then
    # cosine decay, no weight decay). Recorded in every result's config.
    eval_optimizer: ClassVar[str] = "sgd"
    # The normalisation of a plain 'convnet' evaluation network when it asks for 'auto' ('' keeps the network's
    # own instance norm): FRePo's eval.py evaluates without any ('batch' becomes 'identity' there).
    eval_convnet_norm: ClassVar[str] = ""
    # The kernel of the set's KRR evaluation (`evaluate_krr`'s architecture): 'convnet', the random-feature NNGP of
    # random ConvNets, or a closed-form one in krr.CLOSED_FORM ('fc': KIP's FC NTK, the kernel KIP distils with)
    eval_krr_kernel: ClassVar[str] = "convnet"
    # A kernel method's finite network, the other number its paper reports (an evaluation architecture in
    # evaluation.kernel_network.FINITE_NETWORKS: 'fc_wide' KIP-FC's, 'convnet_wide' RFAD's); None: no such network
    eval_finite_network: ClassVar[str | None] = None
    # True: an iteration changes the images as it goes (DC's outer loops), so step() keeps the state it started
    # from and puts it back when the iteration is interrupted; a resumed run then repeats the iteration exactly
    restores_on_interrupt: ClassVar[bool] = False
    colour: ClassVar[str | None] = None  # plot colour ('#rrggbb'); None: a stable one from the registry order
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    presets: ClassVar[tuple[str, ...]] = PRESETS  # preset names (see preset_rules for what they set)
    preset_rules: ClassVar[tuple[PresetRule, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Check the declarations when the class is defined, so a bad table fails at import, not mid-run."""
        super().__init_subclass__(**kwargs)
        where = f"method class {cls.__module__}.{cls.__qualname__}"
        if cls.eval_augmentation not in EVAL_AUGMENTATIONS:
            raise ValueError(f"{where}: eval_augmentation must be one of {', '.join(EVAL_AUGMENTATIONS)}, "
                             f"not {cls.eval_augmentation!r}")
        if cls.eval_soft_label_loss not in ("ce", "mse"):
            raise ValueError(f"{where}: eval_soft_label_loss must be 'ce' or 'mse', not {cls.eval_soft_label_loss!r}")
        if cls.eval_optimizer not in EVAL_OPTIMIZERS:
            raise ValueError(f"{where}: eval_optimizer must be one of {', '.join(EVAL_OPTIMIZERS)}, not "
                             f"{cls.eval_optimizer!r}")
        if cls.eval_convnet_norm and cls.eval_convnet_norm not in NORMS:
            raise ValueError(f"{where}: eval_convnet_norm must be '' or one of {', '.join(NORMS)}, not "
                             f"{cls.eval_convnet_norm!r}")
        if isinstance(cls.presets, str) or not cls.presets:
            raise ValueError(f"{where}: presets must be a non-empty tuple of names")
        known = {f.name for f in dataclasses.fields(cls.Config)}
        for rule in cls.preset_rules:
            if not isinstance(rule, PresetRule):
                raise TypeError(f"{where}: preset_rules holds {rule!r}, not a PresetRule")
            if rule.preset != ANY_PRESET and rule.preset not in cls.presets:
                raise ValueError(f"{where}: a preset rule names preset {rule.preset!r}, which is not one of "
                                 f"{', '.join(cls.presets)}")
            unknown = sorted(set(rule.values) - known)
            if unknown:
                raise ValueError(f"{where}: a preset rule sets {', '.join(unknown)}, which {cls.Config.__name__} "
                                 f"does not have")

    def __init__(self, data: LoadedDataset, ipc: int, config: MethodConfig | None = None, *,
                 architecture: str = "convnet", model_kwargs: dict[str, Any] | None = None,
                 seed: int = 0, device: str | torch.device = "cpu",
                 artefacts: Mapping[str, Any] | None = None) -> None:
        if ipc < 1:
            raise ValueError(f"IPC must be at least 1, not {ipc}")
        smallest = min(data.train.class_counts())
        if smallest < ipc:
            raise ValueError(f"IPC {ipc} needs at least {ipc} training images per class; the smallest class has {smallest}")
        self.data = data
        self.info: DatasetInfo = data.info
        self.ipc = ipc
        self.config = config if config is not None else self.default_config(data.info, ipc, "paper")
        if not isinstance(self.config, self.Config):
            raise TypeError(f"{self.name} expects a {self.Config.__name__}, got {type(self.config).__name__}")
        self.architecture = architecture
        self.model_kwargs = dict(model_kwargs or {})
        self.seed = int(seed)
        self.device = torch.device(device)
        self.artefacts: dict[str, Any] = dict(artefacts or {})  # requirement kind -> the loaded artefact
        missing = [r for r in self.requires(self.info, ipc, self.config, architecture) if r.kind not in self.artefacts]
        if missing:
            raise MissingArtefactsError(
                f"{self.name} needs {'; '.join(r.label or f'{r.kind} {dict(r.params)}' for r in missing)} before it "
                f"can start: resolve {self.name}.requires(...) and pass them as artefacts={{kind: artefact}}")
        self.iteration = 0
        self.elapsed_s = 0.0
        self.lr: float | None = None
        # set by the loop that drives the method (tasks/distill.py); methods whose iterations take seconds poll it and
        # raise StepInterrupted, so Stop answers within one of their inner steps
        self.should_stop: Any = lambda: False
        # also set by that loop: methods whose iterations take long report how far through one they are (0-1) at
        # safe points; the loop publishes progress and images there, and raises StepInterrupted for a stop or a
        # pause asked for meanwhile (see `restores_on_interrupt`)
        self.on_progress: Any = lambda fraction: None
        self.labels = torch.arange(self.info.num_classes).repeat_interleave(ipc).to(self.device)
        self.images = self.initial_images().to(self.device)

    # ------------------------------------------------------------------ prerequisites
    @classmethod
    def requires(cls, info: DatasetInfo, ipc: int, config: MethodConfig, architecture: str) -> tuple[Requirement, ...]:
        """The artefacts this run needs before it starts (none by default). The platform resolves each
        (produces it or finds it stored, by `Requirement.key()`) and passes them to the constructor as
        `artefacts={requirement.kind: loaded object}`."""
        return ()

    # ------------------------------------------------------------------ presets
    @classmethod
    def preset_names(cls) -> tuple[str, ...]:
        return tuple(cls.presets)

    @classmethod
    def check_preset(cls, preset: str) -> str:
        if preset not in cls.presets:
            raise ValueError(f"{cls.name} has presets {', '.join(cls.presets)}, not '{preset}'")
        return preset

    @classmethod
    def matching_rules(cls, info: DatasetInfo, ipc: int, preset: str) -> list[PresetRule]:
        cls.check_preset(preset)
        return [rule for rule in cls.preset_rules if rule.matches(preset, info.name, ipc)]

    @classmethod
    def default_config(cls, info: DatasetInfo, ipc: int, preset: str = "paper") -> MethodConfig:
        """Config() (the paper's defaults) with the preset's matching rules applied in order."""
        config = cls.Config()
        for rule in cls.matching_rules(info, ipc, preset):
            for key, value in rule.values.items():
                setattr(config, key, copy.deepcopy(value))
        return config

    @classmethod
    def config_sources(cls, info: DatasetInfo, ipc: int, preset: str = "paper") -> dict[str, str]:
        """Field -> the source of its value in this preset (the last matching rule that set it); fields
        no rule sets keep the Config default, whose source is in the Config class."""
        out: dict[str, str] = {}
        for rule in cls.matching_rules(info, ipc, preset):
            out.update({key: rule.source for key in rule.values})
        return out

    @classmethod
    def config_fields(cls) -> list[dataclasses.Field]:
        return list(dataclasses.fields(cls.Config))

    # ------------------------------------------------------------------ randomness
    def rng(self, stream: int = 0) -> torch.Generator:
        """A CPU generator for this iteration and stream: resumable because it depends only on its inputs."""
        return step_generator(self.seed, self.iteration, stream)

    def real_batch(self, cls: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """n normalised real images of one class, on the method's device; all of them, each once, when the class
        holds fewer (as the matching methods' `real_batches`)."""
        idx = self.data.train.sample_class(cls, min(int(n), len(self.data.train.class_indices[cls])), generator)
        return self.data.normalize(self.data.train.images[idx].to(self.device))

    def initial_images(self) -> torch.Tensor:
        g = self.rng(stream=999)
        c, s = self.info.channels, self.info.image_size
        if self.config.init == "noise":
            return torch.randn(self.info.num_classes * self.ipc, c, s, s, generator=g)
        if self.config.init != "real":
            raise ValueError(f"init must be 'real' or 'noise', not '{self.config.init}'")
        return self.real_initial_images(g)

    def real_initial_images(self, g: torch.Generator) -> torch.Tensor:
        """IPC random real images per class, normalised (whitened where the method distils in ZCA space)."""
        images = torch.cat([self.data.normalize(self.data.train.images[self.data.train.sample_class(k, self.ipc, g)])
                            for k in range(self.info.num_classes)])
        if getattr(self.config, "zca", False):  # methods that distil in ZCA space start from whitened real images
            from ..zca import dataset_zca

            images = dataset_zca(self.data).apply(images)
        return images

    # ------------------------------------------------------------------ the loop
    @property
    def total_iterations(self) -> int:
        return int(self.config.iterations)

    @property
    def done(self) -> bool:
        return self.iteration >= self.total_iterations

    def step(self) -> dict[str, float]:
        """Advance one outer iteration and return its metrics (always including 'loss')."""
        start = time.perf_counter()
        # a deep copy: the optimiser's state dict holds its live momentum tensors, which the step updates in place
        before = copy.deepcopy(self.state_dict()) if self.restores_on_interrupt else None
        try:
            metrics = self._step()
        except StepInterrupted:
            if before is not None:
                self.load_state_dict(before)
            self.elapsed_s += time.perf_counter() - start
            raise
        self.iteration += 1
        self.elapsed_s += time.perf_counter() - start
        loss = metrics.get("loss")
        if loss is not None and not (abs(loss) < 1e12):  # NaN fails every comparison
            raise DivergenceError(f"{self.name}: loss became {loss} at iteration {self.iteration}")
        if not torch.isfinite(self.images).all():
            raise DivergenceError(f"{self.name}: synthetic images became NaN/inf at iteration {self.iteration}")
        return metrics

    @abstractmethod
    def _step(self) -> dict[str, float]:
        """One outer iteration; update self.images (and self.labels / self.lr)."""

    # ------------------------------------------------------------------ outputs and checkpoints
    def synthetic(self) -> SyntheticSet:
        meta = SetMeta.for_dataset(self.info, self.name, self.ipc, config=asdict(self.config), seed=self.seed,
                                   iteration=self.iteration, elapsed_s=round(self.elapsed_s, 3),
                                   device=str(self.device), architecture=self.architecture)
        return SyntheticSet(self.images.detach().cpu().clone(), self.labels.detach().cpu().clone(), meta, self.lr)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly; subclasses add optimiser state."""
        return {"images": self.images.detach().cpu().clone(), "labels": self.labels.detach().cpu().clone(),
                "iteration": self.iteration, "elapsed_s": self.elapsed_s, "lr": self.lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["images"].shape) != tuple(self.images.shape):
            raise ValueError(f"checkpoint images have shape {tuple(state['images'].shape)}, "
                             f"this run expects {tuple(self.images.shape)}")
        with torch.no_grad():
            self.images = state["images"].to(self.device).clone().requires_grad_(self.images.requires_grad)
        self.labels = state["labels"].to(self.device).clone()
        self.iteration = int(state["iteration"])
        self.elapsed_s = float(state.get("elapsed_s", 0.0))
        self.lr = state.get("lr")

