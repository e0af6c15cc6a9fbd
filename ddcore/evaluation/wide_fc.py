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
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import torch

from .fc_kernel import relu_fc_kernel

WIDE_FC = "fc_wide"  # its name where architectures are listed (the Evaluate page, the store)
MAX_SET = 1_000  # images: 3000 full-batch steps of a width-1024 network on 1,000 MNIST images take minutes on a CPU


@dataclass(frozen=True)
class WideFCResult:
    """Test accuracy of wide FC networks trained on a set, one per seed."""

    dataset: str
    method: str
    ipc: int | None
    width: int
    steps: int
    depth: int
    lr: float
    seeds: tuple[int, ...]
    accuracies: tuple[float, ...]
    mean: float
    std: float
    final_losses: tuple[float, ...]
    test_images: int
    confusion: tuple[tuple[int, ...], ...] = ()  # rows: true class, columns: predicted; summed over the seeds
    class_names: tuple[str, ...] = ()
    device: str = "cpu"
    curves: dict[str, list] = field(default_factory=dict)  # the trainer's layout: 'epoch' (here: step), loss_s, train_acc_s

    @property
    def description(self) -> str:
        return (f"width-{self.width} fully connected ReLU network, {self.depth} hidden layer(s), NTK parameterisation, "
                f"{self.steps} full-batch gradient steps on the squared error, output centred at initialisation")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_eval_result(self, set_id: str, num_images: int, wall_time_s: float, preset: str) -> Any:
        """The same numbers as an EvalResult (architecture 'fc_wide'), so the store and the Evaluate page keep it like
        any other evaluation."""
        from .api import library_versions
        from .result import EvalResult, per_class_percent

        return EvalResult(set_id=set_id, dataset=self.dataset, method=self.method, ipc=self.ipc, num_images=num_images,
                          architecture=WIDE_FC, preset=preset,
                          config={"network": self.description, "width": self.width, "steps": self.steps,
                                  "depth": self.depth, "lr": self.lr, "final_losses": list(self.final_losses)},
                          seeds=list(self.seeds), accuracies=list(self.accuracies), mean=self.mean, std=self.std,
                          wall_time_s=round(wall_time_s, 3), train_time_s=round(wall_time_s, 3), test_time_s=0.0,
                          device=self.device, versions=library_versions(), test_images=self.test_images,
                          class_names=list(self.class_names),
                          curves=dict(self.curves), confusion=[list(r) for r in self.confusion],
                          per_class_accuracy=per_class_percent(self.confusion),
                          class_stats_over="all seeds")


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


def evaluate_wide_fc(data: Any, seeds: int | Sequence[int] = 3, width: int = 1024, steps: int = 3000,
                     device: str | torch.device = "cpu", test_limit: int | None = None, *, dataset: str | None = None,
                     method: str | None = None, test_data: Any = None,
                     should_stop: Callable[[], bool] | None = None,
                     progress: Callable[[float], None] | None = None) -> WideFCResult:
    """Train one wide FC network per seed on the set (a SyntheticSet or an (images, labels) pair with dataset=) and
    test it. The network takes the depth and variances of the kernel the set was distilled with (KIP's config), or
    KIP's defaults (one hidden layer, W_std sqrt(2), b_std 0.1). Targets: hard labels centred one-hot, a kernel
    method's learned labels as they are, another method's soft labels (logits for cross-entropy) as their softmax
    minus 1/K. `progress(fraction)` is called every 1% of the training."""
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
    x_s, zca = in_pixel_space(prep, loaded, False)
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
    accs, losses = [], []
    seed_list = _seed_list(seeds, 3)
    k = info.num_classes
    confusion = torch.zeros(k, k, dtype=torch.long)
    every = max(1, steps // 100)
    curves: dict[str, list] = {"epoch": [s for s in range(steps) if s % every == 0]}
    hard = y.argmax(1)
    for n_done, seed in enumerate(seed_list):
        net = WideFC(x.shape[1], info.num_classes, width, depth, w_var, b_var,
                     torch.Generator().manual_seed(seed), dev)
        opt = torch.optim.SGD(net.params, lr=lr)
        start = net.start(x)
        for step in range(steps):
            if should_stop is not None and should_stop():  # every step: one takes up to ~0.5 s on a CPU at 1,000 images
                from .result import EvaluationCancelled

                raise EvaluationCancelled("wide FC evaluation stopped")
            out = net.forward(x, start)
            loss = 0.5 * ((out - y) ** 2).sum(1).mean()
            if step % every == 0:
                if not torch.isfinite(loss):
                    raise ValueError(f"the wide FC network's training diverged (loss {float(loss)}) at step {step}")
                if progress is not None:
                    progress((n_done + step / steps) / len(seed_list))
                curves.setdefault(f"loss_{seed}", []).append(round(float(loss.detach()), 8))
                curves.setdefault(f"train_acc_{seed}", []).append(round(100.0 * float((out.argmax(1) == hard).float().mean()), 3))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            pred = torch.cat([net.forward(test_x[i:i + 2000]) for i in range(0, len(test_x), 2000)])
        accs.append(100.0 * float((pred.argmax(1) == test_y).float().mean()))
        confusion += confusion_matrix(pred.argmax(1).cpu(), test_y.cpu(), k)
        losses.append(float(loss.detach()))
    mean, std = mean_std(accs)
    return WideFCResult(dataset=info.name, method=prep.method, ipc=prep.ipc, width=width, steps=steps, depth=depth,
                        lr=lr, seeds=tuple(seed_list), accuracies=tuple(accs), mean=mean, std=std,
                        final_losses=tuple(losses), test_images=int(test_x.shape[0]),
                        confusion=tuple(tuple(int(v) for v in row) for row in confusion.tolist()), curves=curves,
                        class_names=tuple(info.class_names), device=_device_name(dev))
