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
    """DC's defaults with refdc readme.md's DSA command: `--method DSA --init real` (main.py then sets
    dsa=True and the readme's strategy for the dataset, augment.default_strategy)."""

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
    objective = (r"\min_{\mathcal{S}}\ \mathbb{E}_{\theta_0,\,\omega}\Big[\sum_{t} D\big(\nabla_\theta "
                 r"\ell(\mathcal{A}_\omega(\mathcal{S}); \theta_t),\ \nabla_\theta "
                 r"\ell(\mathcal{A}_\omega(\mathcal{T}); \theta_t)\big)\Big]")
    symbols = (r"As DC, with $\mathcal{A}_\omega$: the same random augmentation (crop, flip, colour, ...) applied to "
               r"the real and the synthetic batch.")
    loss_meaning = "Gradient distance between augmented synthetic and equally augmented real batches."
    paper = "Bo Zhao and Hakan Bilen. Dataset Condensation with Differentiable Siamese Augmentation. ICML 2021."
    paper_url = "https://arxiv.org/abs/2102.08259"
    Config = DSAConfig
    eval_augmentation = "dsa"  # refdc main.py: a DSA set is evaluated with DSA (args.dc_aug_param = None, dsa)
    colour = "#EF553B"
    # preset_rules: DC's (inherited), the same quick preset measured for both
