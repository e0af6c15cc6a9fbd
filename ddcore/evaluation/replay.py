"""DD's own evaluation: replay the learned training schedule from fresh random initialisations.

DD (Wang et al., 2018) learns the images together with one step size per training step; its reported numbers
("unknown random initialisation": 79.5 +- 8.1 % on MNIST with 10 images per class) come from networks that take
exactly those steps, image group i % G with step size lr_i, from initialisations drawn fresh, not from networks
trained for hundreds of epochs with the DC recipe. This module replays a DD set's schedule (its config's
`learned_step_sizes`, `syn_steps`) on the network it was distilled with, one initialisation per seed, and can
replay the same schedule on any other set of the same shape (random real images: DD-Ranking's same-protocol
baseline). The network is built with the run's model options (DD records them in its config).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import torch

REPLAY = "dd_replay"  # the evaluation's architecture name in the store and on the Evaluate page


@dataclass(frozen=True)
class ReplayResult:
    """Test accuracy after replaying a learned schedule, one network per seed."""

    dataset: str
    method: str
    ipc: int | None
    architecture: str
    steps: int
    groups: int
    seeds: tuple[int, ...]
    accuracies: tuple[float, ...]
    mean: float
    std: float
    test_images: int
    device: str = "cpu"
    class_names: tuple[str, ...] = ()
    confusion: tuple[tuple[int, ...], ...] = ()  # rows: true class, columns: predicted; summed over the seeds
    model_kwargs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_eval_result(self, set_id: str, num_images: int, wall_time_s: float, preset: str,
                       schedule_source: str | None = None) -> Any:
        """The same numbers as an EvalResult (architecture 'dd_replay'), so the store and the Evaluate page keep it
        like any other evaluation; `schedule_source` names the DD set whose schedule a random real set replayed."""
        from .api import library_versions
        from .result import EvalResult, per_class_percent

        config = {"network": self.architecture, "steps": self.steps, "groups": self.groups,
                  "protocol": "DD's learned step sizes replayed from fresh initialisations (ddcore/evaluation/replay.py)"}
        if schedule_source:
            config["schedule_of"] = schedule_source
        return EvalResult(set_id=set_id, dataset=self.dataset, method=self.method, ipc=self.ipc, num_images=num_images,
                          architecture=REPLAY, preset=preset, config=config, seeds=list(self.seeds),
                          accuracies=list(self.accuracies), mean=self.mean, std=self.std,
                          wall_time_s=round(wall_time_s, 3), train_time_s=round(wall_time_s, 3), test_time_s=0.0,
                          device=self.device, versions=library_versions(), test_images=self.test_images,
                          class_names=list(self.class_names), confusion=[list(r) for r in self.confusion],
                          per_class_accuracy=per_class_percent(self.confusion),
                          class_stats_over="all seeds", model_kwargs=dict(self.model_kwargs))


MAX_STEPS = 10_000  # DD's own schedules have tens of steps (syn_steps x epochs)


def schedule_of(config: dict[str, Any]) -> tuple[list[float], int]:
    """(step sizes, syn_steps) of a DD set's config; a clear error for a set without a learned schedule."""
    sizes = config.get("learned_step_sizes")
    if not sizes:
        raise ValueError("this set has no learned step sizes to replay (only DD sets do)")
    if not isinstance(sizes, list) or len(sizes) > MAX_STEPS:  # a set file can say anything: a cap, not hours
        raise ValueError(f"a schedule is a list of at most {MAX_STEPS:,} step sizes")
    if not all(isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) for s in sizes):
        raise ValueError("the learned step sizes must be finite numbers")
    syn_steps = config.get("syn_steps", len(sizes))
    if isinstance(syn_steps, bool) or not isinstance(syn_steps, int) or not 1 <= syn_steps <= MAX_STEPS:
        raise ValueError(f"syn_steps must be a whole number from 1 to {MAX_STEPS:,}, not {syn_steps!r}")
    return [float(s) for s in sizes], syn_steps


def evaluate_replay(data: Any, seeds: int | Sequence[int] = 3, device: str | torch.device = "cpu",
                    test_limit: int | None = None, *, schedule: tuple[list[float], int] | None = None,
                    architecture: str | None = None, model_kwargs: dict[str, Any] | None = None,
                    test_data: Any = None, dataset: str | None = None, method: str | None = None,
                    should_stop: Callable[[], bool] | None = None,
                    progress: Callable[[float], None] | None = None) -> ReplayResult:
    """Replay `schedule` ((step sizes, syn_steps); default the set's own) on the set (a SyntheticSet or an
    (images, labels) pair with dataset=): from a fresh initialisation per seed, step i trains on image group
    i % G with step size lr_i (plain gradient descent on the cross-entropy, as DD distils), then the test images
    are classified. The network is `architecture` with `model_kwargs` (default: the set's own network and options,
    so a random real set replayed with a DD set's schedule takes both from that DD set). `should_stop` is polled
    every step, `progress(fraction)` called after each network."""
    from ..data import get_dataset_info, load_dataset
    from ..device import resolve_device
    from ..methods.dd import dd_groups
    from ..methods.trajectory import FlatNet, student_step
    from ..models import create_model
    from .api import _device_name, _prepare, _seed_list, check_set, in_pixel_space, test_tensors
    from .result import EvaluationCancelled, mean_std
    from .trainer import confusion_matrix

    prep = _prepare(data, dataset, method, None)
    info = test_data.info if test_data is not None else get_dataset_info(prep.dataset)
    check_set(prep.images, prep.labels, info)
    meta = getattr(data, "meta", None)
    sizes, syn_steps = schedule if schedule is not None else schedule_of(getattr(meta, "config", None) or {})
    if prep.labels.ndim != 1:
        raise ValueError("a schedule replays on hard labels (DD's sets have them); this set's labels are soft")
    k = info.num_classes
    ipc = len(prep.labels) // k
    class_major = torch.arange(k).repeat_interleave(max(ipc, 1))
    if ipc < 1 or len(prep.labels) != ipc * k or not torch.equal(prep.labels.cpu().long(), class_major):
        raise ValueError("a schedule replays on a class-balanced set laid out class by class, as DD stores its images "
                         "(a multi-formation set decodes to more images than it stores and cannot be replayed)")
    arch = architecture or getattr(meta, "architecture", None) or "convnet"
    if model_kwargs is None:
        model_kwargs = dict((getattr(meta, "config", None) or {}).get("model_kwargs") or {}) if architecture is None else {}
    dev = resolve_device(device)
    loaded = test_data if test_data is not None else load_dataset(info.name)
    x_s, zca = in_pixel_space(prep, loaded, False)
    test_x, test_y = test_tensors(loaded, dev, test_limit, zca)
    x, y = x_s.to(dev), prep.labels.to(dev)
    groups = [g.to(dev) for g in dd_groups(k, ipc, syn_steps)]
    accs = []
    confusion = torch.zeros(k, k, dtype=torch.long)
    seed_list = _seed_list(seeds, 3)
    for n_done, seed in enumerate(seed_list):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = create_model(arch, info.channels, k, info.image_size, **model_kwargs).to(dev)
        flat = FlatNet(net)
        theta = torch.cat([p.detach().reshape(-1) for p in net.parameters()]).requires_grad_(True)
        for i, lr in enumerate(sizes):
            if should_stop is not None and should_stop():
                raise EvaluationCancelled("replay stopped")
            idx = groups[i % len(groups)]
            theta, _ = student_step(flat, theta, x[idx], y[idx], torch.tensor(lr, device=dev), create_graph=False)
            theta = theta.detach().requires_grad_(True)
        with torch.no_grad():
            pred = torch.cat([flat(theta, test_x[j:j + 1000]).argmax(1) for j in range(0, len(test_x), 1000)])
        accs.append(100.0 * float((pred == test_y).float().mean()))
        confusion += confusion_matrix(pred.cpu(), test_y.cpu(), k)
        if progress is not None:
            progress((n_done + 1) / len(seed_list))
    mean, std = mean_std(accs)
    return ReplayResult(dataset=info.name, method=prep.method, ipc=ipc, architecture=arch, steps=len(sizes),
                        groups=len(groups), seeds=tuple(seed_list), accuracies=tuple(accs), mean=mean, std=std,
                        test_images=int(test_x.shape[0]), device=_device_name(dev),
                        class_names=tuple(info.class_names),
                        confusion=tuple(tuple(int(v) for v in row) for row in confusion.tolist()),
                        model_kwargs=dict(model_kwargs))
