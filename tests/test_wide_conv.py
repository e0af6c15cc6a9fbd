"""RFAD's finite-network evaluation (ddcore/evaluation/wide_conv.py on the loop of kernel_network.py): a ConvNet of the
kernel's shape with RFAD's initialisation, centred at initialisation, trained by RFAD's recipe with early stopping
on real training images, offered by the evaluate task, the CLI and the Evaluate page."""
from __future__ import annotations

import math

import pytest
import torch

from ddcore.data import LoadedDataset
from ddcore.evaluation.kernel_network import CentredModule, CentredRecipe, train_centred
from ddcore.evaluation.wide_conv import RFAD_WIDTH, evaluate_wide_conv, gaussian_init_, rfad_hypers, validation_split
from ddcore.methods import create_method
from ddcore.models import create_model
from tests.methodkit import tiny_mnist


@pytest.fixture(scope="module")
def tiny() -> LoadedDataset:
    return tiny_mnist(20, 10)


def test_rfads_finite_hyperparameters_and_initialisation_by_hand() -> None:
    """The table of yolky/RFAD utils.get_best_finite_hypers, at the nearest IPC it lists; N(0, 2/fan_in) weights
    and N(0, 0.1^2) biases as its Conv2d_gaussian and GaussianLinear draw them."""
    assert rfad_hypers("mnist", 10)[:3] == (1e-2, 8.0, 1e-3)
    assert rfad_hypers("cifar10", 1)[:3] == (1e-3, 8.0, 0.0)
    assert rfad_hypers("cifar10", 20)[:3] == rfad_hypers("cifar10", 10)[:3]  # |log 2| < |log 2.5|
    assert rfad_hypers("cifar10", 40)[:3] == rfad_hypers("cifar10", 50)[:3]
    assert "nearest to cifar10 IPC 20" in rfad_hypers("cifar10", 20)[3]
    assert rfad_hypers("tinyimagenet", 1)[:3] == rfad_hypers("cifar10", 1)[:3]  # not in RFAD's table: CIFAR-10's
    torch.manual_seed(0)
    net = gaussian_init_(create_model("convnet", 3, 10, 32, width=256, norm="none"))
    conv2 = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][1]
    assert conv2.in_channels == 256
    assert conv2.weight.std().item() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.02)
    assert conv2.bias.std().item() == pytest.approx(0.1, rel=0.2) and abs(conv2.bias.mean().item()) < 0.03
    centred = CentredModule(net)
    x = torch.randn(4, 3, 32, 32)
    assert centred.start(x).abs().mean() > 0.01 and torch.allclose(centred.forward(x), torch.zeros(4, 10), atol=1e-5)


def test_training_stops_once_the_validation_score_stops_rising_and_keeps_the_best_network(tiny) -> None:
    """With the training images as the validation split, accuracy reaches 100 % and cannot rise: training stops
    `patience` steps after the first 100 %, and the network it returns scores what was recorded for it."""
    s = create_method("random", tiny, 2, seed=0).synthetic()
    x = s.images.float()
    y = torch.nn.functional.one_hot(s.labels.long(), 10).float() - 0.1
    torch.manual_seed(0)
    net = CentredModule(gaussian_init_(create_model("convnet", 1, 10, 28, width=32, norm="none")))
    recipe = CentredRecipe(steps=400, lr=0.05, momentum=0.9, label_scale=8.0, loss_factor=1 / (10 * 64),
                           check_every=10, patience=30)
    curves: dict[str, list] = {}
    out = train_centred(net, x, y, recipe, validation=(x, s.labels), curves=curves, tag="0")
    assert out.best_validation == 100.0 and out.steps_done == out.best_step + 30 < 400
    assert curves["loss_0"][-1] < 0.6 * curves["loss_0"][0]  # the squared error fell (~0.090 -> ~0.047)
    kept = 100.0 * float((net.forward(x).argmax(1) == s.labels).float().mean())
    assert kept == 100.0 and curves["valid_acc_0"][curves["valid_step_0"].index(out.best_step)] == 100.0
    # the loss reported is the kept network's own (by hand), not that of the 30 steps trained past it
    with torch.no_grad():
        by_hand = float(((net.forward(x) - 8.0 * y) ** 2).sum(1).mean()) / (10 * 64)
    assert out.final_loss == pytest.approx(by_hand, rel=1e-4) and out.final_loss > curves["loss_0"][-1] * 1.01, \
        (out.final_loss, curves["loss_0"][-3:])
    with pytest.raises(ValueError, match="at least 1"):
        CentredRecipe(steps=0, lr=0.1)
    with pytest.raises(ValueError, match="diverged"):
        train_centred(net, x, y, CentredRecipe(steps=50, lr=1e4, label_scale=8.0))


def test_the_wide_convnet_learns_a_set_and_reports_its_recipe(tiny) -> None:
    """A real subset trains a width-32 network well above chance on the test images; the learning rate is RFAD's
    scaled by 1024 / width; the validation split is real training images in the set's pixel space; a set larger
    than one full batch is refused."""
    s = create_method("random", tiny, 2, seed=0).synthetic()
    result = evaluate_wide_conv(s, seeds=[0, 1], width=32, steps=200, test_data=tiny, validation_per_class=5)
    assert result.architecture == "convnet_wide" and result.test_images == 100 and len(result.accuracies) == 2
    assert result.mean > 30.0  # chance is 10 %
    assert result.lr == pytest.approx(1e-3 * RFAD_WIDTH / 32)  # mnist IPC 2: RFAD's IPC 1 row
    assert result.settings["label_scale"] == 8.0 and result.settings["validation_images"] == 50
    assert all(k <= d for k, d in zip(result.settings["kept_step"], result.settings["steps_done"]))
    stored = result.as_eval_result("x", 20, 1.0, "quick")
    assert result.settings["weight_decay"] == pytest.approx(1e-3 * 32 / RFAD_WIDTH)  # lr x wd as RFAD's
    assert stored.architecture == "convnet_wide" and stored.config["weight_decay"] == result.settings["weight_decay"]
    assert stored.accuracies == list(result.accuracies) and len(result.settings["cut"]) == 2
    vx, vy = validation_split(tiny, 5, False, torch.device("cpu"))
    assert vx.shape == (50, 1, 28, 28) and torch.equal(torch.bincount(vy, minlength=10), torch.full((10,), 5))
    big = (torch.zeros(501, 1, 28, 28), torch.arange(501) % 10)
    with pytest.raises(ValueError, match="at most 500 images"):
        evaluate_wide_conv(big, test_data=tiny, dataset="mnist", method="random")


def test_the_evaluate_task_runs_rfads_finite_network_with_its_own_recipe(tiny, tmp_path) -> None:
    """'convnet_wide' is an evaluation like any other: its own recipe (no training option reaches it, one key per
    result), sets of up to 500 images, the result stored with the network it describes."""
    from ddcore.platform.records import Subject
    from ddcore.platform.store import Store
    from ddcore.tasks.evaluate import EvalSpec, prepare_spec

    liked = {"augmentation": "dsa", "optimizer": "adam"}
    spec, name = prepare_spec(EvalSpec(Subject.random("mnist", 1, 0), "convnet_wide", seeds=2, options=liked),
                              Store(tmp_path))
    assert spec.options == {} and spec.seeds == 2 and "convnet_wide" in name
    # random real trained like a ZCA method's sets (RFAD's on CIFAR-10) keeps that pixel space, as KRR does
    spec, _ = prepare_spec(EvalSpec(Subject.random("mnist", 1, 0), "convnet_wide", options={**liked, "zca_space": True}),
                           Store(tmp_path))
    assert spec.options == {"zca_space": True}
    with pytest.raises(ValueError, match="wide ConvNet trains by full-batch gradient descent.*up to 500 images"):
        prepare_spec(EvalSpec(Subject.random("mnist", 51, 0), "convnet_wide"), Store(tmp_path))


def test_progress_moves_at_least_once_a_second_when_a_percent_of_the_steps_takes_longer(tiny) -> None:
    """A wide ConvNet's step on 500 images takes ~2 s on a CPU, so 1% of 1000 steps is ~20 s: progress is also
    reported between the 1% marks once a second has passed (here each step is made to take 0.35 s)."""
    import time

    from ddcore.evaluation.result import EvaluationCancelled

    class SlowSteps(CentredModule):
        def backward(self, *args, **kwargs):
            time.sleep(0.35)
            return super().backward(*args, **kwargs)

    s = create_method("random", tiny, 1, seed=0).synthetic()
    y = torch.nn.functional.one_hot(s.labels.long(), 10).float()
    net = SlowSteps(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10)))
    reported: list[tuple[float, float]] = []
    started = time.monotonic()
    with pytest.raises(EvaluationCancelled):
        train_centred(net, s.images.float(), y, CentredRecipe(steps=1000, lr=0.01),
                      progress=lambda f: reported.append((f, time.monotonic())),
                      should_stop=lambda: time.monotonic() - started > 4.5)
    steps = [round(f * 1000) for f, _ in reported]
    gaps = [b - a for (_, a), (_, b) in zip(reported, reported[1:])]
    assert steps[0] == 0 and any(n % 10 for n in steps), steps  # reports between the 1% marks (every 10 steps)
    assert len(reported) >= 3 and max(gaps) < 2.5, gaps  # a second, then the step under way (0.35 s)
