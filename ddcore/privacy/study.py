"""The typed result of a privacy study: each target's accuracy and cost, each attack's measures and ROC
curve, and the nearest-neighbour gallery of each synthetic set. Plain data; arrays kept beside it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .metrics import AttackMeasures

TARGET_KINDS = {
    "members": "trained on the members themselves",
    "distilled": "trained on a set distilled from the members",
    "random": "trained on a random subset of the members of the same size",
    "herding": "trained on a herding coreset of the members of the same size",
    "dpsgd": "trained on the members with DP-SGD",
}


@dataclass(frozen=True)
class TargetResult:
    id: str  # e.g. members, dm-real, run-<id>, random, herding, dpsgd-eps8
    label: str
    kind: str  # a TARGET_KINDS key
    images: int  # training images the target saw
    test_accuracy: float  # percent
    train_s: float
    attacks: dict[str, AttackMeasures]
    make_s: float = 0.0  # making its training set (a distillation, a herding selection)
    method: str = ""
    init: str = ""
    run_id: str = ""
    epsilon: float | None = None  # DP-SGD: the privacy spent (delta in the study)
    noise_multiplier: float | None = None
    reused_run: bool = False  # a distillation found in the store rather than made for this study

    @property
    def cost_s(self) -> float:
        return self.make_s + self.train_s

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("id", "label", "kind", "images", "test_accuracy", "train_s", "make_s",
                                           "method", "init", "run_id", "epsilon", "noise_multiplier", "reused_run")}
        d["attacks"] = {a: m.to_dict() for a, m in self.attacks.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TargetResult":
        attacks = {a: AttackMeasures.from_dict(m) for a, m in d.get("attacks", {}).items()}
        return cls(**{**{k: v for k, v in d.items() if k != "attacks"}, "attacks": attacks})


@dataclass(frozen=True)
class PrivacyResult:
    spec: dict[str, Any]
    targets: tuple[TargetResult, ...]
    split: dict[str, Any]  # members, non_members, pool_per_class, seed
    shadows: dict[str, Any]  # count, epochs, fix_variance, seconds, reused
    neighbours: dict[str, dict[str, float]]  # target id -> {closer_to_member_pixel, ratio_pixel, ... _feature}
    total_s: float
    device: str
    arrays_: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    key: str = ""

    # ------------------------------------------------------------ reading
    def target(self, target_id: str) -> TargetResult:
        for t in self.targets:
            if t.id == target_id:
                return t
        raise KeyError(f"no target {target_id!r} in this study")

    def roc(self, target_id: str, attack: str) -> tuple[np.ndarray, np.ndarray]:
        return self.arrays_[f"roc__{target_id}__{attack}__fpr"], self.arrays_[f"roc__{target_id}__{attack}__tpr"]

    def synthetic_images(self, target_id: str) -> np.ndarray | None:
        return self.arrays_.get(f"images__{target_id}")

    def neighbour_images(self, target_id: str, space: str, group: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(images S×k×C×H×W uint8, distances S×k) of the nearest `group` ('member' | 'non_member') in `space`."""
        key = f"nn__{target_id}__{space}__{group}"
        if f"{key}__images" not in self.arrays_:
            return None
        return self.arrays_[f"{key}__images"], self.arrays_[f"{key}__distance"]

    @property
    def attacks(self) -> tuple[str, ...]:
        return tuple(self.spec.get("attacks", ()))

    # ------------------------------------------------------------ storing (ddcore.tasks.study)
    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "targets": [t.to_dict() for t in self.targets], "split": self.split,
                "shadows": self.shadows, "neighbours": self.neighbours, "total_s": self.total_s, "device": self.device}

    def arrays(self) -> dict[str, np.ndarray]:
        return self.arrays_

    @classmethod
    def from_stored(cls, data: dict[str, Any], arrays: dict[str, np.ndarray], record: Any) -> "PrivacyResult":
        return cls(spec=data["spec"], targets=tuple(TargetResult.from_dict(t) for t in data["targets"]),
                   split=data["split"], shadows=data["shadows"], neighbours=data["neighbours"],
                   total_s=float(data["total_s"]), device=data["device"], arrays_=arrays,
                   key=getattr(record, "key", ""))
