"""IDC: dataset condensation with efficient synthetic-data parameterisation (Kim et al., ICML 2022).

Multi-formation: each stored image is decoded into factor x factor full-size images (ddcore/multiformation.py), so
a storage budget of IPC images per class trains on IPC x factor^2. The stored images are learned by gradient
matching on the decoded ones: for each class, a real batch and the class's decoded images get the same
augmentation, and the squared (or absolute) difference of the convolution layers' gradients is minimised
(ddcore/methods/matching.py's match_loss). Unlike DC, the matching network is trained on real data between
image updates (n_data real images per inner step), so gradients come from networks trained on real data.

Hyperparameters: snu-mllab/Efficient-Dataset-Condensation argument.py (defaults), misc/reproduce.py (per-dataset
settings) and condense.py (the loop); the code is ours. Simplified: the network's real-data training uses the
augmentation without CutMix; sizes the factor does not divide are zero-padded in normalised space.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..augment import dsa_augment
from ..multiformation import decode, decode_labels, encode_real
from . import register_method
from .base import PresetRule
from .matching import MatchingConfig, MatchingMethod, class_seeds, cross_entropy, match_loss

_ARGS = "snu-mllab/Efficient-Dataset-Condensation argument.py"
_REPRODUCE = "snu-mllab/Efficient-Dataset-Condensation misc/reproduce.py"


@dataclass
class IDCConfig(MatchingConfig):
    """Paper preset: IDC's argument.py defaults with misc/reproduce.py (niter 2000 outer iterations of inner_loop 100,
    factor 2 as the README's commands, metric 'mse' and lr_img 5e-3 for CIFAR, n_data 500)."""

    iterations: int = 2000  # reproduce.py: niter 2000 (n_iter = niter * 100 // inner_loop)
    init: str = "mix"  # 'mix': factor^2 shrunk real images per stored image; 'real' (argparse 'random') or 'noise'
    formation_factor: int = 2  # -f/--factor: the README's commands use 2 (1 is IDC-I)
    lr_img: float = 5e-3  # --lr_img, SGD with momentum --mom_img 0.5 on the stored images
    batch_real: int = 64  # --batch_real per class
    batch_syn_max: int = 128  # --batch_syn_max decoded images per class per matching step
    inner_loop: int = 100  # --inner_loop image updates (each over all classes) per outer iteration
    metric: str = "mse"  # reproduce.py: mse for CIFAR and SVHN, l1 for MNIST and FashionMNIST
    aug_type: str = "color_crop_cutout"  # --aug_type: the siamese augmentation of the matching step
    n_data: int = 500  # --n_data real images the network trains on after each inner step
    lr_net: float = 0.01  # --lr, SGD momentum 0.9, weight decay 5e-4, batch 64 for the network
    batch_net: int = 64  # --batch_size


@register_method
class IDC(MatchingMethod):
    name = "idc"
    title = "IDC (multi-formation gradient matching)"
    family = "gradient matching"  # the published-methods table's family for idc
    explanation = ("Small images carry most of what a classifier needs, so each stored synthetic image is cut into "
                   "four and every quarter is blown up to a full-size training image: the same storage holds four "
                   "times as many training images. The stored images are learned by gradient matching, as in DC, "
                   "on the decoded images, with a network that is meanwhile trained on real data, so the gradients "
                   "resemble those of real training.")
    objective = (r"\min_{\mathcal{S}}\ D\Big(\nabla_\theta \ell\big(\mathcal{A}(f(\mathcal{S})); \theta\big),\ "
                 r"\nabla_\theta \ell\big(\mathcal{A}(\mathcal{T}); \theta\big)\Big)")
    symbols = (r"$f$: multi-formation, decoding each stored image into $n^2$ smaller ones upsampled to full size; "
               r"$\theta$: networks trained on real data for a while; $D$: a distance between gradients.")
    loss_meaning = "Distance between the gradients of decoded synthetic images and of real images."
    paper = ("Jang-Hyun Kim, Jinuk Kim, Seong Joon Oh, Sangdoo Yun, Hwanjun Song, Joonhyun Jeong, Jung-Woo Ha and "
             "Hyun Oh Song. Dataset Condensation via Efficient Synthetic-Data Parameterization. ICML 2022.")
    paper_url = "https://arxiv.org/abs/2205.14959"
    # IDC's test.py trains on the decoded images with DSA (argument.py sets dsa=True for every small dataset; it adds
    # CutMix, which ddcore's evaluation does not have)
    eval_augmentation = "dsa"
    colour = "#FF6692"  # the published-methods table's colour for idc
    Config = IDCConfig
    preset_rules = (
        PresetRule("*", {"metric": "l1", "lr_img": 1e-4}, f"{_REPRODUCE}: MNIST and FashionMNIST",
                   datasets=("mnist", "fashionmnist")),
        PresetRule("*", {"aug_type": "color_crop"}, f"{_REPRODUCE}: MNIST with factor > 1 (cutout does not help)",
                   datasets=("mnist",)),
        PresetRule("*", {"n_data": 2000}, f"{_REPRODUCE}: CIFAR", datasets=("cifar10", "cifar100")),
        PresetRule("quick", {"iterations": 40, "inner_loop": 10, "n_data": 128, "batch_real": 32},
                   "quick (measured in results/methods-accuracy.md): 40 outer iterations of 10 inner steps (IDC: 2000 of 100) with 128 real "
                   "images of network training per inner step; measured on one core of a 2-core CPU (ddcore/estimates.py): "
                   "15-50 s per iteration, 10 min (IPC 1) to 33 min (IPC 10)"),
        PresetRule("quick", {"lr_img": 1e-3}, "quick (measured in results/methods-accuracy.md): 5x fewer image updates than 1e-4 needs on "
                   "digits (reproduce.py) at 250x fewer steps", datasets=("mnist", "fashionmnist")),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.config.formation_factor < 1 or self.config.inner_loop < 1:
            raise ValueError("formation_factor and inner_loop must be at least 1")
        lo = torch.tensor([(0 - m) / s for m, s in zip(self.info.mean, self.info.std)], device=self.device)
        hi = torch.tensor([(1 - m) / s for m, s in zip(self.info.mean, self.info.std)], device=self.device)
        self._box = lo.view(1, -1, 1, 1), hi.view(1, -1, 1, 1)

    def initial_images(self) -> torch.Tensor:
        f = int(self.config.formation_factor)
        if f < 1:  # said here: the base class draws the images before this class's own checks run
            raise ValueError(f"formation_factor must be at least 1 (1: no multi-formation), not {f}")
        if self.config.init not in ("mix", "real", "noise"):
            raise ValueError(f"init must be 'mix', 'real' or 'noise', not '{self.config.init}'")
        if self.config.init != "mix" or f == 1:  # a mix of one image per stored image is a real image
            return super().initial_images() if self.config.init != "mix" else self.real_initial_images(self.rng(stream=999))
        g = self.rng(stream=999)
        return torch.cat([encode_real(self.data.normalize(self.data.train.images[
            self.data.train.sample_class(k, self.ipc * f * f, g)]), f) for k in range(self.info.num_classes)])

    # ------------------------------------------------------------------ decoding
    def decoded(self, images: torch.Tensor | None = None) -> torch.Tensor:
        return decode(self.images if images is None else images, self.config.formation_factor)

    def _class_syn(self, c: int, g: torch.Generator) -> torch.Tensor:
        """The class's decoded images, at most batch_syn_max of them (IDC's synset.sample)."""
        dec = self.decoded(self.images[c * self.ipc:(c + 1) * self.ipc])
        if len(dec) > self.config.batch_syn_max:
            dec = dec[torch.randperm(len(dec), generator=g)[: self.config.batch_syn_max].to(self.device)]
        return dec

    # ------------------------------------------------------------------ one outer iteration
    def _step(self) -> dict[str, float]:
        c, k = self.config, self.info.num_classes
        g_real, g_aug, g_syn, g_net = self.rng(1), self.rng(3), self.rng(4), self.rng(5)
        net = self.network(self.rng(2))
        net.train()
        params = list(net.parameters())
        for p in params:
            p.requires_grad_(True)
        matched = [i for i, p in enumerate(params) if p.ndim > 2]  # IDC: no bias/norm (1-D) or fc (2-D) gradients
        opt_net = torch.optim.SGD(params, lr=c.lr_net, momentum=0.9, weight_decay=5e-4)
        with torch.no_grad():  # condense.py clamps the stored images to valid pixels every outer iteration
            self.images.copy_(torch.maximum(torch.minimum(self.images, self._box[1]), self._box[0]))
        total = 0.0
        for _ in range(c.inner_loop):
            real_blocks = self.real_blocks(c.batch_real, g_real)
            seeds = class_seeds(k, g_aug)
            for cls in range(k):
                real = real_blocks[cls]
                syn = self._class_syn(cls, g_syn)
                if c.aug_type != "none":  # the same transform for both batches (DiffAug(batch=True))
                    real = dsa_augment(real, c.aug_type, seed=seeds[cls])
                    syn = dsa_augment(syn, c.aug_type, seed=seeds[cls])
                g_r = torch.autograd.grad(cross_entropy(net(real), torch.full((len(real),), cls, device=self.device)),
                                          [params[i] for i in matched])
                g_s = torch.autograd.grad(cross_entropy(net(syn), torch.full((len(syn),), cls, device=self.device)),
                                          [params[i] for i in matched], create_graph=True)
                loss = match_loss(list(g_s), [g.detach() for g in g_r], c.metric)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward(inputs=[self.images])
                self.optimizer.step()
                total += float(loss.detach())
            self._train_on_real(net, opt_net, g_net)
        return {"loss": total / (k * c.inner_loop)}

    def _train_on_real(self, net: nn.Module, opt: torch.optim.Optimizer, g: torch.Generator) -> None:
        """One pass over n_data random real images (condense.py's train_epoch with n_data), augmented per sample."""
        c = self.config
        n = len(self.data.train)
        idx = torch.randperm(n, generator=g)[: min(c.n_data, n)]
        strategy = "_".join(op for op in c.aug_type.split("_") if op != "cutout") or "none"
        for part in idx.split(c.batch_net):
            x = self.normalize_u8(self._train_u8[part.to(self.device)])
            if strategy != "none":
                x = dsa_augment(x, strategy, seed=None, generator=g)
            opt.zero_grad(set_to_none=True)
            cross_entropy(net(x), self.data.train.labels[part].to(self.device)).backward()
            opt.step()

    # ------------------------------------------------------------------ outputs
    def decoded_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The images a network trains on (IPC x factor^2 per class) and their labels."""
        return self.decoded().detach().cpu(), decode_labels(self.labels.cpu(), self.config.formation_factor)
