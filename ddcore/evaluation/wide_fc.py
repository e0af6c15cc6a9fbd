"""A wide fully connected network trained in its kernel regime: KIP's finite-network evaluation.

KIP (Nguyen, Chen & Lee, ICLR 2021) distils with the closed-form NTK of an infinitely wide fully connected ReLU network
(fc_kernel.py). Its finite-network numbers (KIP-FC in the KIP-ConvNet paper's Table 1, in the neural-network group)
come from networks of that family, not from ConvNets trained with cross-entropy, which is what the DC recipe would
measure. Here a network of the kernel's own shape (depth, W_std, b_std, NTK parameterisation, standard normal
weights) is trained by full-batch gradient descent on the mean squared error to the set's regression targets
(centred one-hot, or its learned labels), with its output at initialisation subtracted ("centring", as RFAD's finite
training does), so that a wide network's prediction tends to the kernel's. The step is n / lambda_max(NTK of the
set), stable for the linearised network.

Measured (MNIST IPC 1, KIP quick set, width 1024, 3000 steps, 2 seeds): 85.6 and 86.2 %, against KIP-FC's published
85.5 +- 0.1 %; the same set scores 22.7 % on ConvNets trained by the DC recipe.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch

from .fc_kernel import relu_fc_kernel
from .kernel_network import CentredRecipe, KernelNetworkResult, predict, squared_error, train_centred

WIDE_FC = "fc_wide"  # its name where architectures are listed (the Evaluate page, the store)
MAX_SET = 1_000  # images: 3000 full-batch steps of a width-1024 network on 1,000 MNIST images take minutes on a CPU


class WideFC:
    """An FC ReLU network in NTK parameterisation: h <- sqrt(w_var) W h / sqrt(fan_in) + sqrt(b_var) b, W and b
    standard normal; `forward` returns f(x) - f_0(x), the change since initialisation."""

    def __init__(self, in_features: int, out_features: int, width: int, depth: int, weight_var: float,
                 bias_var: float, generator: torch.Generator, device: torch.device) -> None:
        sizes = [in_features] + [width] * depth + [out_features]
        self.w_std, self.b_std = math.sqrt(weight_var), math.sqrt(bias_var)
        self.params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            self.params.append(torch.randn(fan_in, fan_out, generator=generator).to(device).requires_grad_())
            self.params.append(torch.randn(fan_out, generator=generator).to(device).requires_grad_())
        self.initial = [p.detach().clone() for p in self.params]

    def _apply(self, params: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        h = x
        layers = len(params) // 2
        for i in range(layers):
            w, b = params[2 * i], params[2 * i + 1]
            h = self.w_std * h @ w / math.sqrt(w.shape[0]) + self.b_std * b
            if i < layers - 1:
                h = torch.relu(h)
        return h

    def start(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self._apply(self.initial, x)

    def forward(self, x: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor:
        """f(x) - f_0(x); pass `start` = self.start(x) to reuse it across steps on the same inputs."""
        return self._apply(self.params, x) - (self.start(x) if start is None else start)

    def backward(self, x: torch.Tensor, start: torch.Tensor, target: torch.Tensor,
                 factor: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradients of factor * mean_i |f(x_i) - f_0(x_i) - target_i|^2 into .grad; (that loss, f - f_0), detached."""
        out = self.forward(x, start)
        loss = squared_error(factor)(out, target)
        loss.backward()
        return loss.detach(), out.detach()


def evaluate_wide_fc(data: Any, seeds: int | Sequence[int] = 3, width: int = 1024, steps: int = 3000,
                     device: str | torch.device = "cpu", test_limit: int | None = None, *, dataset: str | None = None,
                     method: str | None = None, test_data: Any = None,
                     should_stop: Callable[[], bool] | None = None,
                     progress: Callable[[float], None] | None = None, zca_space: bool = False) -> KernelNetworkResult:
    """Train one wide FC network per seed on the set (a SyntheticSet or an (images, labels) pair with dataset=) and
    test it. The network takes the depth and variances of the kernel the set was distilled with (KIP's config), or
    KIP's defaults (one hidden layer, W_std sqrt(2), b_std 0.1). Targets: hard labels centred one-hot, a kernel
    method's learned labels as they are, another method's soft labels (logits for cross-entropy) as their softmax
    minus 1/K. A raw set is trained in ZCA space with `zca_space`, as evaluate_krr does. `progress(fraction)` is
    called every 1% of the training."""
    from ..data import get_dataset_info, load_dataset
    from ..device import resolve_device
    from .api import _device_name, _prepare, _seed_list, check_set, in_pixel_space, test_tensors
    from .krr import KERNEL_SETTINGS, krr_targets
    from .result import mean_std
    from .trainer import confusion_matrix

    if width < 1 or steps < 1:
        raise ValueError("width and steps must be at least 1")
    prep = _prepare(data, dataset, method, None)
    info = test_data.info if test_data is not None else get_dataset_info(prep.dataset)
    check_set(prep.images, prep.labels, info)
    dev = resolve_device(device)
    loaded = test_data if test_data is not None else load_dataset(info.name)
    x_s, zca = in_pixel_space(prep, loaded, zca_space)
    test_x, test_y = test_tensors(loaded, dev, test_limit, zca)
    x = x_s.to(dev).flatten(1).float()
    test_x = test_x.flatten(1).float()
    if len(x) > MAX_SET:
        raise ValueError(f"the wide FC network trains on at most {MAX_SET:,} images by full-batch gradient descent; "
                         f"this set has {len(x):,}")
    y = krr_targets(prep.labels.to(dev), info.num_classes, prep.method).float()
    config = getattr(getattr(data, "meta", None), "config", None) or {}
    settings = {KERNEL_SETTINGS[k]: config[k] for k in KERNEL_SETTINGS if k in config}
    if settings.get("kind", "ntk") != "ntk":
        raise ValueError("this set was distilled with the NNGP kernel; a network trained in all its layers follows "
                         "the NTK, so it is not that kernel's finite network (use 'FC NTK KRR' instead)")
    depth, w_var, b_var = int(settings.get("depth", 1)), float(settings.get("weight_var", 2.0)), float(settings.get("bias_var", 0.01))
    with torch.no_grad():  # the linearised network's step bound: loss 0.5 mean_i |f(x_i) - y_i|^2 has Hessian NTK / n
        ntk = relu_fc_kernel(x.double(), x.double(), depth, w_var, b_var, "ntk")
        lr = len(x) / float(torch.linalg.eigvalsh(ntk).max())
    recipe = CentredRecipe(steps=steps, lr=lr)
    accs, losses = [], []
    seed_list = _seed_list(seeds, 3)
    k = info.num_classes
    confusion = torch.zeros(k, k, dtype=torch.long)
    curves: dict[str, list] = {"epoch": [s for s in range(steps) if s % max(1, steps // 100) == 0]}
    for n_done, seed in enumerate(seed_list):
        net = WideFC(x.shape[1], k, width, depth, w_var, b_var, torch.Generator().manual_seed(seed), dev)
        outcome = train_centred(net, x, y, recipe, curves=curves, tag=str(seed), should_stop=should_stop,
                                progress=None if progress is None else
                                (lambda f, n=n_done: progress((n + f) / len(seed_list))))
        pred = predict(net, test_x).argmax(1)
        accs.append(100.0 * float((pred == test_y).float().mean()))
        confusion += confusion_matrix(pred.cpu(), test_y.cpu(), k)
        losses.append(outcome.final_loss)
    mean, std = mean_std(accs)
    return KernelNetworkResult(
        dataset=info.name, method=prep.method, ipc=prep.ipc, architecture=WIDE_FC,
        description=(f"width-{width} fully connected ReLU network, {depth} hidden layer(s), NTK parameterisation, "
                     f"{steps} full-batch gradient steps on the squared error, output centred at initialisation"),
        width=width, steps=steps, lr=lr, seeds=tuple(seed_list), accuracies=tuple(accs), mean=mean, std=std,
        final_losses=tuple(losses), test_images=int(test_x.shape[0]), settings={"depth": depth},
        confusion=tuple(tuple(int(v) for v in row) for row in confusion.tolist()), curves=curves,
        class_names=tuple(info.class_names), device=_device_name(dev))
