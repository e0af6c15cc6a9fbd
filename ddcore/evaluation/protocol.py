"""Evaluation protocols: the paper's (DC/DSA/DM reference) and a quick one for CPUs, as dataclasses.

Why a resolved config: a result is only comparable to a published number when every value that
shaped it is recorded, so `EvalConfig.resolve` turns the 'auto' fields into concrete values for one
set and architecture and the result stores that dict.

Reference values: refdc/utils.py `evaluate_synset` (SGD momentum 0.9, weight decay 5e-4, lr
`lr_net`=0.01, batch 256, `Epoch + 1` passes with lr x0.1 after pass `Epoch // 2 + 1`, optimiser
re-created at the decay so momentum restarts), refdc/main.py (300 epochs without augmentation,
1000 with DSA or DC augmentation; `get_daparam`: MNIST 'crop_scale_rotate', ConvNetBN 'crop_noise')
and main_DM.py (DM sets are always evaluated with DSA, 1000 epochs, 20 models).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ..augment import default_dc_strategy, default_strategy

AUGMENTATIONS = ("auto", "dsa", "dc", "none")


def method_augmentation(method: str) -> str:
    """The augmentation a method's sets are evaluated with under 'auto': the registered method class's
    `eval_augmentation` (ddcore/methods), else the published-only methods table's
    (resources/published_methods.csv: MTT, TESLA, ... distilled with DSA), else 'auto' (the DC paper's
    default). DSA and DM sets use DSA per their papers; DC and the coresets the DC paper's get_daparam."""
    if not (method or "").strip():
        return "auto"
    from ..methods import describe_method  # lazily: the methods import the evaluation package

    info = describe_method(method)
    return info.eval_augmentation if info is not None else "auto"


def method_soft_label_loss(method: str) -> str:
    """How a method's learned (soft) labels are trained on under 'auto': the registered class's
    `eval_soft_label_loss` ('mse' for the kernel methods, whose labels are regression targets), else 'ce'."""
    from ..methods import METHODS  # lazily, as method_augmentation

    key = (method or "").strip().lower()
    return METHODS.get(key).eval_soft_label_loss if key in METHODS else "ce"


def method_recipe(method: str) -> tuple[str, str]:
    """(optimizer, ConvNet norm) a method's sets are trained with under 'auto': the registered class's
    `eval_optimizer` and `eval_convnet_norm` (FRePo: Adam on a ConvNet without normalisation, its eval.py), else
    the DC reference's SGD on the network as it is."""
    from ..methods import METHODS  # lazily, as method_augmentation

    key = (method or "").strip().lower()
    if key not in METHODS:
        return "sgd", ""
    cls = METHODS.get(key)
    return cls.eval_optimizer, cls.eval_convnet_norm


OPTIMIZERS = ("auto", "sgd", "adam")


def recipe_fields(method: str) -> dict[str, Any]:
    """A method's training recipe as EvalConfig overrides (optimizer, convnet_norm)."""
    optimizer, norm = method_recipe(method)
    return {"optimizer": optimizer, "convnet_norm": norm or "own"}


def method_zca(method: str, dataset: str | None, preset: str = "quick", ipc: int = 10) -> bool:
    """Whether `method`'s sets on `dataset` under `preset` live in ZCA space (FRePo and MTT on CIFAR-10: yes; on MNIST:
    no). False for an unknown method or dataset, or one whose config has no `zca`."""
    from ..data import get_dataset_info
    from ..methods import METHODS, make_config

    key = (method or "").strip().lower()
    if not dataset or key not in METHODS:
        return False
    try:
        return bool(getattr(make_config(key, get_dataset_info(dataset), ipc, preset), "zca", False))
    except (KeyError, LookupError, ValueError):
        return False


def trained_like(method: str, dataset: str | None = None, preset: str = "quick", ipc: int = 10,
                 fixed_augmentation: bool = False) -> dict[str, Any]:
    """EvalConfig overrides that train any set (random real, DD-Ranking's fair baseline) the way `method`'s sets are
    trained under 'auto': its augmentation, optimiser and ConvNet norm, and (given the dataset) ZCA space where its
    sets on that dataset at that IPC under `preset` are whitened (MTT's paper preset: CIFAR-10 IPC 1 and 10, not 50).
    {} where that is random real's own protocol, so the plain baseline's stored result is reused.
    fixed_augmentation: the evaluation fixes one augmentation for every set (see `fixes_augmentation`), so it is not
    part of the recipe, and e.g. DM's and DC's baselines are then the same evaluation."""
    def recipe(name: str) -> dict[str, Any]:
        fields = recipe_fields(name)
        augmentation = method_augmentation(name)  # 'auto' (a plugin's default) resolves to the DC paper's, as random's
        return fields if fixed_augmentation else {"augmentation": "dc" if augmentation == "auto" else augmentation,
                                                  **fields}

    own = recipe(method)
    if method_zca(method, dataset, preset, ipc):
        return {**own, "zca_space": True}
    return {} if own == recipe("random") else own


def fixes_augmentation(preset: "str | EvalConfig | None", options: dict[str, Any] | None = None) -> bool:
    """Whether an evaluation under `preset` with these option overrides trains every set with one augmentation
    (a custom preset's 'none', 'dc' or 'dsa'), rather than each set's own ('auto': quick, paper)."""
    aug = (options or {}).get("augmentation", get_preset(preset).augmentation)
    return str(aug).strip().lower() != "auto"


@dataclass
class EvalConfig:
    """How fresh networks are trained on a set. 'auto'/None fields are filled in by `resolve`."""

    name: str = "custom"
    epochs: int | None = None  # None: epochs_no_aug, or epochs_aug when augmentation is on
    epochs_no_aug: int = 300
    epochs_aug: int = 1000
    extra_final_epoch: bool = True  # the reference loops `range(Epoch + 1)`: one pass more than Epoch
    lr: float | None = None  # None: the set's learned lr (if any and use_learned_lr) else default_lr
    default_lr: float = 0.01
    use_learned_lr: bool = True
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    lr_decay_epoch: int | None = None  # None: epochs // 2 + 1 (reference); -1: no decay
    lr_decay_factor: float = 0.1
    augmentation: str = "auto"  # auto: the method's declared eval_augmentation (method_augmentation), 'auto' there =
    # the DC paper's get_daparam (crop/scale/rotate/noise for the dataset and architecture, or none)
    dsa_strategy: str | None = None  # None: augment.default_strategy(dataset)
    dc_strategy: str | None = None  # None: augment.default_dc_strategy(dataset, architecture)
    num_seeds: int = 5
    test_limit: int | None = None  # None: the full test set; n: a fixed class-balanced subset of n
    soft_label_loss: str = "auto"  # 'ce' (soft cross-entropy on softmax(targets) unless rows are distributions), 'mse'
    # (regression on the raw targets: the kernel methods' learned labels), or 'auto': the method's eval_soft_label_loss
    optimizer: str = "auto"  # 'sgd' (the DC reference), 'adam' (FRePo's eval.py), or 'auto': the method's eval_optimizer
    adam_lr: float = 3e-4  # FRePo eval.py: learning_rate 0.0003 (used when the set has no learned lr and lr is None)
    adam_weight_decay: float = 0.0  # FRePo eval.py passes 3e-4, but optax.adam ignores it
    warmup_steps: int = 500  # FRePo eval.py: linear warm-up over 500 steps (at most half the steps), then cosine
    final_lr_fraction: float = 0.01  # FRePo eval.py: cosine_decay_schedule(alpha=0.01)
    convnet_norm: str = "auto"  # a plain 'convnet' network's norm: 'auto' the method's eval_convnet_norm, 'own' as is
    zca_space: bool = False  # True: a set in raw pixels (random real) is ZCA-whitened first, with the test images, as a
    # ZCA method's sets are (FRePo, MTT on CIFAR): DD-Ranking's same-protocol baseline. A whitened set stays as it is
    batch_seeds: str = "auto"  # 'auto' | 'vmap' | 'loop': train the seeds' networks together (torch.func) or in turn
    curve_points: int = 100  # training-curve samples kept per seed
    train_threads: int | None = -1  # CPU threads while training; -1: auto (1 for small batches), None: leave as is

    # ------------------------------------------------------------------ helpers
    def with_(self, **changes: Any) -> "EvalConfig":
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"EvalConfig has no field(s) {', '.join(unknown)}; it has {', '.join(sorted(known))}")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvalConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def resolve(self, dataset: str, architecture: str, method: str = "",
                learned_lr: float | None = None) -> "ResolvedConfig":
        """Concrete values for one set: augmentation, epochs, lr, decay epoch."""
        aug = self.augmentation.strip().lower()
        if aug not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {', '.join(AUGMENTATIONS)}, not '{self.augmentation}'")
        dsa_strategy = self.dsa_strategy or default_strategy(dataset)
        dc_strategy = self.dc_strategy or default_dc_strategy(dataset, architecture)
        if aug == "auto":
            aug = method_augmentation(method)
        if aug == "auto":
            aug = "dc"
        if aug == "dc" and dc_strategy == "none":
            aug = "none"
        strategy = dsa_strategy if aug == "dsa" else dc_strategy if aug == "dc" else "none"
        soft_loss = self.soft_label_loss.strip().lower()
        if soft_loss == "auto":
            soft_loss = method_soft_label_loss(method)
        optimizer = self.optimizer.strip().lower()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not '{self.optimizer}'")
        own_optimizer, own_norm = method_recipe(method)
        if optimizer == "auto":
            optimizer = own_optimizer
        norm = self.convnet_norm.strip().lower()
        norm = own_norm if norm == "auto" else "" if norm == "own" else norm
        if norm and architecture != "convnet":  # only the plain ConvNet: its variants fix their own norm
            norm = ""
        epochs = self.epochs if self.epochs is not None else (self.epochs_no_aug if aug == "none" else self.epochs_aug)
        if epochs < 1:
            raise ValueError(f"epochs must be at least 1, not {epochs}")
        lr = self.lr
        lr_source = "config"
        if lr is None:
            if self.use_learned_lr and learned_lr is not None and optimizer == "sgd":  # a learned lr is an SGD step
                lr, lr_source = float(learned_lr), "learned"
            elif optimizer == "adam":
                lr, lr_source = self.adam_lr, "default"
            else:
                lr, lr_source = self.default_lr, "default"
        if not lr > 0:
            raise ValueError(f"learning rate must be positive, not {lr}")
        decay = self.lr_decay_epoch if self.lr_decay_epoch is not None else epochs // 2 + 1
        if optimizer == "adam":
            decay = -1  # its schedule is the warm-up and cosine, step by step
        passes = epochs + 1 if self.extra_final_epoch else epochs
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        adam = optimizer == "adam"
        return ResolvedConfig(preset=self.name, epochs=epochs, passes=passes, lr=float(lr), lr_source=lr_source,
                              momentum=0.0 if adam else self.momentum,
                              weight_decay=self.adam_weight_decay if adam else self.weight_decay,
                              batch_size=self.batch_size, optimizer=optimizer,
                              warmup_steps=self.warmup_steps if adam else 0,
                              final_lr_fraction=self.final_lr_fraction if adam else 1.0, convnet_norm=norm,
                              lr_decay_epoch=int(decay), lr_decay_factor=self.lr_decay_factor, augmentation=aug,
                              strategy=strategy, test_limit=self.test_limit, soft_label_loss=soft_loss,
                              batch_seeds=self.batch_seeds, curve_points=self.curve_points,
                              train_threads=self.train_threads)


@dataclass
class ResolvedConfig:
    """Every value that shaped a result (recorded in it)."""

    preset: str
    epochs: int
    passes: int
    lr: float
    lr_source: str
    momentum: float
    weight_decay: float
    batch_size: int
    lr_decay_epoch: int  # after this pass (0-based) the lr is multiplied by lr_decay_factor; -1: never
    lr_decay_factor: float
    augmentation: str  # dsa | dc | none
    strategy: str
    test_limit: int | None
    soft_label_loss: str
    batch_seeds: str
    curve_points: int = 100
    train_threads: int | None = -1
    optimizer: str = "sgd"  # sgd: step decay at lr_decay_epoch; adam: warm-up then cosine to final_lr_fraction
    warmup_steps: int = 0
    final_lr_fraction: float = 1.0
    convnet_norm: str = ""  # the norm the plain ConvNet was built with ('' its own)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paper_config() -> EvalConfig:
    """The DC/DSA/DM reference protocol (refdc/utils.py evaluate_synset, main.py, main_DM.py)."""
    return EvalConfig(name="paper")


def quick_config() -> EvalConfig:
    """Classroom protocol for a 2-core CPU: the paper's optimiser, 6x/10x fewer passes, 1 seed, test subset.

    Chosen by measurement (benchmarks/README.md, results/coresets-speed-cifar10-ipc10.md): a ConvNet
    step on 100 CIFAR images costs about 0.9 s on the shared 2-core CPU (convolutions are 60% of it),
    so a CIFAR-10 IPC-10 evaluation with 50 passes takes ~52 s per seed; one seed keeps it under a
    minute (pass seeds=3 for a spread). 50 passes without / 100 with augmentation landed within ~2
    points of the paper protocol on the IPC-1 coresets (results/coresets-quick.md vs -paper.md); a
    fixed class-balanced 2000-image test subset (standard error ~1 point) cuts testing 5x.

    Adam (FRePo's recipe) gets lr 1e-3 instead of 3e-4: its 100 steps are 10-20x fewer than eval.py's 1000-2000.
    Measured on a FRePo MNIST IPC 10 set (2 networks): 91.3% with 3e-4 and 100 steps, 95.6% with 1e-3, 96.4% with
    3e-4 and 300 steps; on a CIFAR-10 IPC 1 set 32.3% and 31.5% (the same within noise).
    """
    return EvalConfig(name="quick", epochs_no_aug=50, epochs_aug=100, extra_final_epoch=False, num_seeds=1,
                      test_limit=2000, adam_lr=1e-3)


PRESETS: dict[str, Any] = {"paper": paper_config, "quick": quick_config}


CUSTOM_PREFIX = "custom-"


def custom_preset_name(epochs: int, test_limit: int | None = None, augmentation: str = "none",
                       lr: float | None = None, batch_size: int | None = None) -> str:
    """A self-describing preset name such as 'custom-e10-t500-none' (the paper optimiser with these values).

    Every process understands it (`get_preset` parses it), so results stored under it are reused only for
    the same values, and a job resubmitted after a restart still resolves."""
    aug = augmentation.strip().lower()
    if aug not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {', '.join(AUGMENTATIONS)}, not {augmentation!r}")
    if int(epochs) < 1:
        raise ValueError("epochs must be at least 1")
    parts = [f"custom-e{int(epochs)}", f"t{int(test_limit)}" if test_limit else "tall", aug]
    if lr is not None:
        parts.append("lr" + format(float(lr), ".6g").replace("-", "m"))  # '-' separates the parts
    if batch_size is not None:
        parts.append(f"b{int(batch_size)}")
    return "-".join(parts)


MAX_CUSTOM_EPOCHS = 100_000  # a custom preset's passes: the paper's is 1,000; more is a typo (it would run for days)


def parse_custom_preset(name: str) -> EvalConfig:
    """The EvalConfig a `custom_preset_name` stands for; a malformed name fails with the expected form."""
    parts = name[len(CUSTOM_PREFIX):].split("-")
    try:
        if len(parts) < 3 or not parts[0].startswith("e") or not parts[1].startswith("t"):
            raise ValueError
        changes: dict[str, Any] = {"name": name, "epochs": int(parts[0][1:]),
                                   "test_limit": None if parts[1] == "tall" else int(parts[1][1:]),
                                   "augmentation": parts[2], "extra_final_epoch": False, "num_seeds": 1,
                                   "adam_lr": 1e-3}  # few epochs: Adam's quick lr (see quick_config)
        for extra in parts[3:]:
            if extra.startswith("lr"):
                changes["lr"] = float(extra[2:].replace("m", "-"))
            elif extra.startswith("b"):
                changes["batch_size"] = int(extra[1:])
            else:
                raise ValueError
    except ValueError:
        raise ValueError(f"'{name}' is not a custom preset name (expected e.g. custom-e10-t500-none)") from None
    if changes["augmentation"] not in AUGMENTATIONS or not 1 <= changes["epochs"] <= MAX_CUSTOM_EPOCHS:
        raise ValueError(f"'{name}' names an invalid augmentation or epoch count (1 to {MAX_CUSTOM_EPOCHS:,})")
    if changes["test_limit"] is not None and changes["test_limit"] < 1:
        raise ValueError(f"'{name}': the test images (t) are at least 1, or 'tall' for the whole test set")
    lr = changes.get("lr")
    if lr is not None and not (math.isfinite(lr) and 0 < lr <= 1e6):
        raise ValueError(f"'{name}': the learning rate (lr) is above 0 and at most 1e6, not {lr:g}")
    if not 1 <= changes.get("batch_size", 1) <= 1_000_000:
        raise ValueError(f"'{name}': the batch size (b) is from 1 to 1,000,000")
    return paper_config().with_(**changes)


def get_preset(preset: "str | EvalConfig | None") -> EvalConfig:
    if preset is None:
        return quick_config()
    if isinstance(preset, EvalConfig):
        return preset
    key = str(preset).strip().lower()
    if key.startswith(CUSTOM_PREFIX):
        return parse_custom_preset(key)
    if key not in PRESETS:
        raise ValueError(
            f"Unknown evaluation preset '{preset}'. Choose one of: {', '.join(PRESETS)} (or pass an EvalConfig).")
    return PRESETS[key]()
