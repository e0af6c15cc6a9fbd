"""DSA: gradient matching with differentiable siamese augmentation (Zhao & Bilen, ICML 2021).

Reference: VICO-UoE/DatasetCondensation main.py with `--method DSA` (the same loop as DC, the real
and synthetic batch of each class get the same random transform, the inner-loop network trains on
augmented synthetic images) and readme.md (strategy per dataset, `--init real`).
"""
from __future__ import annotations

from dataclasses import dataclass

from . import register_method
from .dc import DC, DCConfig


@dataclass
class DSAConfig(DCConfig):
    init: str = "real"
    dsa: bool = True


@register_method
class DSA(DC):
    name = "dsa"
    title = "Differentiable Siamese Augmentation (DSA)"
    family = "gradient matching"
    explanation = ("Gradient matching as in DC, but every real batch and the matching synthetic batch are "
                   "first transformed with the same random augmentation (crop, scale, rotation, colour, "
                   "cutout, flip). Because the augmentation is differentiable, the synthetic images learn to "
                   "stay informative under augmentation, so networks can later be trained on them with "
                   "augmentation, which makes tiny synthetic sets generalise much better.")
    paper = "Bo Zhao and Hakan Bilen. Dataset Condensation with Differentiable Siamese Augmentation. ICML 2021."
    paper_url = "https://arxiv.org/abs/2102.08259"
    Config = DSAConfig
