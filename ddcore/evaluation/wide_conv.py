"""A wide ConvNet trained in its kernel regime: RFAD's finite-network evaluation.

RFAD (Loo et al., NeurIPS 2022) distils with the NNGP kernel of a ConvNet without normalisation and reports, beside
KRR with that kernel, a finite ConvNet of the same shape trained on the set (yolky/RFAD eval_distilled_set.py
--run_finite --use_best_hypers and training.py train_network): weights N(0, 2 / fan_in) and biases N(0, 0.1^2)
(models.py Conv2d_gaussian, GaussianLinear), the output at initialisation subtracted, the mean squared error to the
labels times a label scale, weight decay towards the initial weights, SGD with momentum 0.9, full batch, the
validation accuracy on real training images every 100 steps, and the best network kept once 500 steps bring no
better one (at most 20,000). Learning rate, label scale and weight decay per dataset and IPC: utils.py
get_best_finite_hypers. The code is ours.

On a CPU the network is narrower than RFAD's width 1024 (128 by default). In standard parameterisation the
network's tangent kernel grows with its width, so the learning rate is scaled by 1024 / width to keep the
linearised network's training the same, and the weight decay by width / 1024 so that its pull per step (lr x wd)
stays RFAD's. The validation split is 100 images per class (RFAD: 500); training stops after at most 1000 steps
(RFAD: 20,000), and a network kept at the last step is marked as cut. The network is the studio's ConvNet, the one
RFAD's kernel here is computed with: on 28 x 28 images its first layer pads by 3 (the DC reference's), RFAD's by 1.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch

from .kernel_network import CentredModule, CentredRecipe, KernelNetworkResult, predict, train_centred

WIDE_CONV = "convnet_wide"  # its name where architectures are listed (the Evaluate page, the store)
RFAD_WIDTH = 1024  # eval_distilled_set.py --net_width
MAX_SET = 500  # images, trained on in one full batch (RFAD's batch is 513); IPC 50 on ten classes
_SOURCE = "yolky/RFAD utils.py get_best_finite_hypers(use_label_scale=True)"
# (dataset, IPC): (learning rate at width 1024, label scale, weight decay towards the initial weights)
RFAD_FINITE = {
    ("mnist", 1): (1e-3, 8.0, 1e-3), ("mnist", 10): (1e-2, 8.0, 1e-3), ("mnist", 50): (1e-2, 8.0, 0.0),
    ("fashionmnist", 1): (1e-3, 8.0, 0.0), ("fashionmnist", 10): (1e-2, 8.0, 1e-3), ("fashionmnist", 50): (1e-3, 2.0, 0.0),
    ("svhn", 1): (1e-3, 16.0, 0.0), ("svhn", 10): (1e-2, 8.0, 0.0), ("svhn", 50): (1e-2, 2.0, 0.0),
    ("cifar10", 1): (1e-3, 8.0, 0.0), ("cifar10", 10): (1e-3, 2.0, 0.0), ("cifar10", 50): (1e-2, 2.0, 0.0),
    ("cifar100", 1): (1e-1, 8.0, 0.0), ("cifar100", 10): (1e-1, 2.0, 0.0),
}


def rfad_hypers(dataset: str, ipc: int | None) -> tuple[float, float, float, str]:
    """(lr at width 1024, label scale, weight decay, where they come from) for a dataset and IPC: RFAD's table, at
    the nearest IPC it lists for the dataset (CIFAR-10's for a dataset it does not list)."""
    name = dataset if any(d == dataset for d, _ in RFAD_FINITE) else "cifar10"
    listed = sorted(i for d, i in RFAD_FINITE if d == name)
    want = max(1, int(ipc or 1))
    nearest = min(listed, key=lambda i: (abs(math.log(i / want)), i))
    note = f"{_SOURCE}, {name} IPC {nearest}" + ("" if (name, nearest) == (dataset, want) else f" (nearest to {dataset} IPC {want})")
    return (*RFAD_FINITE[(name, nearest)], note)


def gaussian_init_(net: torch.nn.Module) -> torch.nn.Module:
    """RFAD's Conv2d_gaussian / GaussianLinear: weights N(0, 2 / fan_in), biases N(0, 0.1^2)."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.normal_(0.0, (2.0 / m.weight[0].numel()) ** 0.5)
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.1)
    return net


def validation_split(loaded: Any, per_class: int, zca: bool, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """`per_class` real training images of each class (generator seed 0: the same for every set), normalised and in
    the set's pixel space."""
    g = torch.Generator().manual_seed(0)
    split = loaded.train
    idx = torch.cat([ix[torch.randperm(len(ix), generator=g)[:per_class]] for ix in split.class_indices]).sort().values
    images = loaded.normalize(split.images[idx])
    if zca:
        from ..zca import dataset_zca

        images = dataset_zca(loaded).apply(images)
    return images.to(device), split.labels[idx].to(device)


def evaluate_wide_conv(data: Any, seeds: int | Sequence[int] = 3, width: int = 128, steps: int = 1000,
                       device: str | torch.device = "cpu", test_limit: int | None = None, *,
                       validation_per_class: int = 100, dataset: str | None = None, method: str | None = None,
                       test_data: Any = None, should_stop: Callable[[], bool] | None = None,
                       progress: Callable[[float], None] | None = None, zca_space: bool = False) -> KernelNetworkResult:
    """Train one ConvNet (no normalisation) of RFAD's kernel's shape per seed on the set (a SyntheticSet or an
    (images, labels) pair with dataset=) by RFAD's finite recipe, for at most `steps` steps (RFAD: 20,000; a step of
    100 MNIST images at width 128 takes ~0.45 s on one CPU thread), and test the best one by validation accuracy.
    Targets as for KRR (hard labels centred one-hot, a kernel method's learned labels as they are). A raw set is
    trained in ZCA space with `zca_space` (random real beside a whitened method's sets), as evaluate_krr does.
    `progress(fraction)` is called every 1% of the steps and at least once a second."""
    from ..data import get_dataset_info, load_dataset
    from ..device import resolve_device
    from ..models import create_model
    from .api import _device_name, _prepare, _seed_list, check_set, in_pixel_space, test_tensors
    from .krr import krr_targets
    from .result import mean_std
    from .trainer import confusion_matrix

    if width < 1 or steps < 1 or validation_per_class < 1:
        raise ValueError("width, steps and validation images per class must be at least 1")
    prep = _prepare(data, dataset, method, None)
    info = test_data.info if test_data is not None else get_dataset_info(prep.dataset)
    check_set(prep.images, prep.labels, info)
    if len(prep.images) > MAX_SET:
        raise ValueError(f"the wide ConvNet trains on at most {MAX_SET:,} images in one full batch, as RFAD's does; "
                         f"this set has {len(prep.images):,}")
    dev = resolve_device(device)
    loaded = test_data if test_data is not None else load_dataset(info.name)
    x_s, zca = in_pixel_space(prep, loaded, zca_space)
    x = x_s.to(dev).float()
    test_x, test_y = test_tensors(loaded, dev, test_limit, zca)
    valid = validation_split(loaded, validation_per_class, zca, dev)
    y = krr_targets(prep.labels.to(dev), info.num_classes, prep.method).float()
    lr_1024, label_scale, decay_1024, source = rfad_hypers(info.name, prep.ipc)
    k = info.num_classes
    weight_decay = decay_1024 * width / RFAD_WIDTH  # lr x wd as RFAD's (see above)
    recipe = CentredRecipe(steps=steps, lr=lr_1024 * RFAD_WIDTH / width, momentum=0.9, weight_decay=weight_decay,
                           label_scale=label_scale, loss_factor=1.0 / (k * label_scale ** 2),
                           check_every=min(100, steps), patience=500)
    seed_list = _seed_list(seeds, 3)
    accs, losses, stopped, kept, valid_accs = [], [], [], [], []
    confusion = torch.zeros(k, k, dtype=torch.long)
    curves: dict[str, list] = {"epoch": [s for s in range(steps) if s % max(1, steps // 100) == 0]}
    for n_done, seed in enumerate(seed_list):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = gaussian_init_(create_model("convnet", info.channels, k, info.image_size, width=width,
                                                 norm="none")).to(dev)
        net = CentredModule(module)
        outcome = train_centred(net, x, y, recipe, validation=valid, chunk=256, curves=curves, tag=str(seed),
                                should_stop=should_stop, progress=None if progress is None else
                                (lambda f, n=n_done: progress((n + f) / len(seed_list))))
        pred = predict(net, test_x, chunk=256).argmax(1)
        accs.append(100.0 * float((pred == test_y).float().mean()))
        confusion += confusion_matrix(pred.cpu(), test_y.cpu(), k)
        losses.append(outcome.final_loss)
        stopped.append(outcome.steps_done)
        kept.append(outcome.best_step)
        valid_accs.append(outcome.best_validation)
    mean, std = mean_std(accs)
    return KernelNetworkResult(
        dataset=info.name, method=prep.method, ipc=prep.ipc, architecture=WIDE_CONV,
        description=(f"width-{width} ConvNet without normalisation (RFAD's kernel's shape), output centred at "
                     f"initialisation, trained by RFAD's finite recipe (full-batch SGD with momentum on the label-"
                     f"scaled squared error, early stopping on {len(valid[0]):,} real training images)"),
        width=width, steps=steps, lr=recipe.lr, seeds=tuple(seed_list), accuracies=tuple(accs), mean=mean, std=std,
        final_losses=tuple(losses), test_images=int(test_x.shape[0]),
        settings={"label_scale": label_scale, "weight_decay": weight_decay, "momentum": recipe.momentum,
                  "rfad_lr_at_width_1024": lr_1024, "rfad_weight_decay_at_width_1024": decay_1024,
                  "hyperparameters": source, "validation_images": len(valid[0]), "steps_done": stopped,
                  "kept_step": kept, "validation_accuracy": valid_accs,
                  "cut": [k_step == steps for k_step in kept]},  # the best network was the last: more steps might help
        confusion=tuple(tuple(int(v) for v in row) for row in confusion.tolist()), curves=curves,
        class_names=tuple(info.class_names), device=_device_name(dev))
