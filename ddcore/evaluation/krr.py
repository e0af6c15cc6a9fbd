"""Kernel ridge regression (KRR): the prediction the kernel methods (FRePo, RFAD, KIP) distil with, and the
KRR evaluation their papers report beside the finite network's.

Why a second evaluation: a kernel method's set is optimised so that KRR on it predicts the real data, so its
papers report two numbers, KRR's and a trained network's (resources/published.csv: architecture
'convnet_krr' for the former). `evaluate_krr` gives the first with the random-feature approximation of a
ConvNet's NNGP kernel (RFAD, Loo et al., NeurIPS 2022): the features of a few randomly initialised networks,
concatenated and scaled, define the kernel K(x, x') = 2 <phi(x), phi(x')> + 0.01 (RFAD's; its regulariser 5e-3).

The prediction on targets t from a support set s with labels Y_s is

    K_ts (K_ss + lambda * tr(K_ss) / n * I)^-1 Y_s

(the regulariser scaled by the kernel's mean diagonal, as FRePo's `nfr`), computed with a linear solve, never an
inverse, and differentiable in K (the distillation methods back-propagate through it).
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import nn

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


def regularised(k_ss: torch.Tensor, reg: float) -> torch.Tensor:
    """K_ss + reg * mean(diag K_ss) * I: the regulariser follows the kernel's scale."""
    n = k_ss.shape[0]
    eye = torch.eye(n, dtype=k_ss.dtype, device=k_ss.device)
    return k_ss + abs(reg) * torch.trace(k_ss) / n * eye


def krr_predict(k_ts: torch.Tensor, k_ss: torch.Tensor, y_s: torch.Tensor, reg: float = 1e-6) -> torch.Tensor:
    """KRR's prediction (T, K) for targets with kernel rows k_ts (T, S) from support kernel k_ss (S, S), labels y_s."""
    alpha = torch.linalg.solve(regularised(k_ss, reg), y_s.to(k_ss.dtype))
    return k_ts @ alpha


def feature_krr_predict(feat_t: torch.Tensor, feat_s: torch.Tensor, y_s: torch.Tensor,
                        reg: float = 1e-6) -> torch.Tensor:
    """KRR with the linear kernel of features (FRePo's neural feature regression): phi_t phi_s^T ..."""
    return krr_predict(feat_t @ feat_s.T, feat_s @ feat_s.T, y_s, reg)


def centered_one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """One-hot minus 1/K: the regression targets of FRePo, RFAD, KIP and the KRR evaluation (mean-zero, so KRR needs
    no bias)."""
    return torch.nn.functional.one_hot(labels.long(), num_classes).float() - 1.0 / num_classes


# ---------------------------------------------------------------------- random-feature kernel of a network
def he_normal_(net: nn.Module) -> nn.Module:
    """NNGP-style random weights (RFAD's Conv2d_gaussian): N(0, 2 / fan_in) for every conv and linear weight, zero
    biases, so the features of a ReLU network keep their scale through depth."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0.0, (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.zero_()
    return net


def random_networks(build: Callable[[], nn.Module], models: int, seed: int | torch.Generator,
                    device: torch.device) -> list[nn.Module]:
    """`models` networks with NNGP-style random weights (he_normal_), drawn from `seed` (the same seed, the same
    networks), in eval mode with frozen parameters."""
    if isinstance(seed, torch.Generator):
        seed = int(torch.randint(0, 2**62, (1,), generator=seed))
    nets = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(models):
            net = he_normal_(build()).to(device)
            net.eval()
            for p in net.parameters():
                p.requires_grad_(False)
            nets.append(net)
    return nets


def network_features(nets: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """The networks' penultimate features side by side, divided by sqrt(total width): the random-feature estimate
    of the NNGP kernel is then a plain inner product."""
    feats = torch.cat([(net.embed(x) if hasattr(net, "embed") else net(x)).flatten(1) for net in nets], 1)
    return feats / feats.shape[1] ** 0.5


def nngp_kernel(f_a: torch.Tensor, f_b: torch.Tensor, weight_var: float = 2.0, bias_var: float = 0.01) -> torch.Tensor:
    """The random-feature NNGP kernel of a ReLU readout layer (RFAD: 2 <phi_a, phi_b> + 0.01)."""
    return weight_var * (f_a @ f_b.T) + bias_var


def nngp_krr_predict(f_t: torch.Tensor, f_s: torch.Tensor, y_s: torch.Tensor, reg: float) -> torch.Tensor:
    """KRR with the NNGP kernel of random features (RFAD's prediction)."""
    return krr_predict(nngp_kernel(f_t, f_s), nngp_kernel(f_s, f_s), y_s, reg)


def _chunked(fn: FeatureFn, x: torch.Tensor, chunk: int = 500) -> torch.Tensor:
    return torch.cat([fn(x[i:i + chunk]) for i in range(0, len(x), chunk)])


@dataclass(frozen=True)
class KRRResult:
    """KRR test accuracy of a set, one number per seed (each seed: other random networks)."""

    dataset: str
    method: str
    ipc: int | None
    architecture: str
    models: int
    reg: float
    seeds: tuple[int, ...]
    accuracies: tuple[float, ...]
    mean: float
    std: float
    test_images: int
    zca: bool
    kernel: str = "random-feature NNGP, 2 <phi, phi'> + 0.01 (features of networks with N(0, 2/fan_in) weights)"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_eval_result(self, set_id: str, num_images: int, wall_time_s: float, device: str) -> Any:
        """The same numbers as an EvalResult (architecture '<net>_krr', preset 'krr'), so the store, the Evaluate
        page and the published comparison treat KRR like any other evaluation."""
        from .api import library_versions
        from .result import EvalResult

        return EvalResult(set_id=set_id, dataset=self.dataset, method=self.method, ipc=self.ipc, num_images=num_images,
                          architecture=f"{self.architecture}_krr", preset="krr",
                          config={"kernel": self.kernel, "models": self.models, "reg": self.reg, "zca": self.zca},
                          seeds=list(self.seeds), accuracies=list(self.accuracies), mean=self.mean, std=self.std,
                          wall_time_s=round(wall_time_s, 3), train_time_s=0.0, test_time_s=round(wall_time_s, 3),
                          device=device, versions=library_versions(), test_images=self.test_images,
                          model_kwargs=dict(self.extra.get("model_kwargs", {})))


def krr_targets(labels: torch.Tensor, num_classes: int, method: str | None = None) -> torch.Tensor:
    """A set's labels as regression targets: hard labels centred one-hot; the soft labels of a registered method that
    trains on them with cross-entropy (TESLA, DATM: logits) as their distribution centred the same way (a row that
    is already a distribution is kept), so sharp logits score as the hard labels they stand for; learned labels of a
    method that regresses them (FRePo, RFAD, KIP), and soft labels of unknown origin, as they are."""
    from ..methods import METHODS
    from .protocol import method_soft_label_loss
    from .trainer import prepare_targets

    if labels.ndim == 1:
        return centered_one_hot(labels, num_classes)
    if method is not None and method.strip().lower() in METHODS and method_soft_label_loss(method) == "ce":
        return prepare_targets(labels, num_classes, "ce") - 1.0 / num_classes
    return labels.float()


# Bumped when what a stored KRR evaluation means changes, so the store does not reuse an older one (the evaluate task
# keys KRR results by it). 2: the preset's test images (was always 2,000); a cross-entropy method's logits regressed
# as their centred softmax (were raw).
KRR_PROTOCOL = 2

CLOSED_FORM = {  # kernels with no random networks: 'fc_krr' evaluates a set with KIP's own kernel
    "fc": ("closed-form NTK of an infinitely wide fully connected ReLU network, one hidden layer, W_std sqrt(2), "
           "b_std 0.1 (KIP's)", 1e-6),
}
# a set's config keys that set its closed-form kernel (KIP's), and the kernel function's names for them
KERNEL_SETTINGS = {"depth": "depth", "weight_var": "weight_var", "bias_var": "bias_var", "kernel": "kind"}


def evaluate_krr(data: Any, architecture: str = "convnet", models: int = 4, seeds: int | Sequence[int] = 3,
                 reg: float | None = None, device: str | torch.device = "cpu", test_limit: int | None = 2000, *,
                 dataset: str | None = None, method: str | None = None,
                 model_kwargs: dict[str, Any] | None = None, test_data: Any = None,
                 should_stop: Callable[[], bool] | None = None, zca_space: bool = False) -> KRRResult:
    """Test accuracy of KRR on the set (a SyntheticSet or an (images, labels) pair with dataset=) with the
    random-feature kernel of `models` random `architecture` networks per seed, or, for an architecture in
    CLOSED_FORM ('fc'), that exact kernel (no networks: one number, whatever the seeds). `reg` defaults to RFAD's 5e-3
    for random features and to the closed-form kernel's own (KIP's 1e-6). A set distilled in ZCA space
    (meta.config['zca']) is compared with whitened test images, as its network evaluation is; `zca_space` puts a raw
    set (random real trained like a ZCA method's sets) there too, as EvalConfig.zca_space does for networks."""
    from ..data import get_dataset_info, load_dataset
    from ..device import resolve_device
    from ..models import create_model
    from .api import _prepare, _seed_list, check_set, in_pixel_space, test_tensors
    from .result import mean_std

    if reg is not None and not (math.isfinite(reg) and reg >= 0):
        raise ValueError(f"reg is the ridge, a finite number from 0, not {reg}")
    if test_limit is not None and test_limit < 1:
        raise ValueError(f"test_limit is a number of test images from 1 (or None: all), not {test_limit}")
    prep = _prepare(data, dataset, method, None)
    info = test_data.info if test_data is not None else get_dataset_info(prep.dataset)
    check_set(prep.images, prep.labels, info)
    dev = resolve_device(device)
    # RFAD's networks have no normalisation layers (the NNGP kernel is that of a plain ReLU ConvNet)
    kwargs = {"norm": "none"} if model_kwargs is None and architecture == "convnet" else dict(model_kwargs or {})
    loaded = test_data if test_data is not None else load_dataset(info.name)
    x_s, zca = in_pixel_space(prep, loaded, zca_space)
    test_x, test_y = test_tensors(loaded, dev, test_limit, zca)
    x_s = x_s.to(dev)
    y_s = krr_targets(prep.labels.to(dev), info.num_classes, prep.method)
    if architecture in CLOSED_FORM:
        from .fc_kernel import relu_fc_kernel

        kernel, own_reg = CLOSED_FORM[architecture]
        reg = own_reg if reg is None else reg
        # a set distilled with this kernel under other settings (KIP's depth, variances, NTK or NNGP) is scored with them
        config = getattr(getattr(data, "meta", None), "config", None) or {}
        settings = {KERNEL_SETTINGS[k]: config[k] for k in KERNEL_SETTINGS if k in config}
        if settings:
            kernel += "; the set's own " + ", ".join(f"{k} {v}" for k, v in settings.items())
        with torch.no_grad():
            pred = krr_predict(relu_fc_kernel(test_x, x_s, **settings), relu_fc_kernel(x_s, x_s, **settings),
                               y_s.double(), reg)
        acc = 100.0 * float((pred.argmax(1) == test_y).float().mean())
        return KRRResult(dataset=info.name, method=prep.method, ipc=prep.ipc, architecture=architecture, models=0,
                         reg=reg, seeds=(0,), accuracies=(acc,), mean=acc, std=0.0, test_images=int(test_x.shape[0]),
                         zca=zca, kernel=kernel)
    reg = 5e-3 if reg is None else reg
    seed_list = _seed_list(seeds, 3)
    accs = []
    for seed in seed_list:
        if should_stop is not None and should_stop():
            from .result import EvaluationCancelled

            raise EvaluationCancelled("KRR evaluation stopped")
        nets = random_networks(lambda: create_model(architecture, info.channels, info.num_classes, info.image_size,
                                                    **kwargs), models, seed, dev)
        features = functools.partial(network_features, nets)
        with torch.no_grad():
            f_s = _chunked(features, x_s).double()
            f_t = _chunked(features, test_x).double()
            pred = nngp_krr_predict(f_t, f_s, y_s.double(), reg)
        accs.append(100.0 * float((pred.argmax(1) == test_y).float().mean()))
    mean, std = mean_std(accs)
    return KRRResult(dataset=info.name, method=prep.method, ipc=prep.ipc, architecture=architecture, models=models,
                     reg=reg, seeds=tuple(seed_list), accuracies=tuple(accs), mean=mean, std=std,
                     test_images=int(test_x.shape[0]), zca=zca, extra={"model_kwargs": kwargs})
