"""Kernel ridge regression and the kernel methods (FRePo, RFAD) on tiny problems: KRR against a direct solve,
LAMB's first step by hand, losses fall, checkpoint + resume equals an uninterrupted run, the KRR evaluation, and
learned labels evaluated as regression targets."""
from __future__ import annotations

import pytest
import torch

from ddcore.data import LoadedDataset, load_dataset
from ddcore.evaluation.krr import (
    centered_one_hot,
    evaluate_krr,
    feature_krr_predict,
    he_normal_,
    krr_predict,
    network_features,
    nngp_kernel,
    nngp_krr_predict,
)
from ddcore.methods import create_method
from ddcore.methods.kernel import Lamb, cosine_lr, label_margin_loss
from tests.methodkit import TINY_NET, straight_and_resumed, tiny_mnist


@pytest.fixture(scope="module")
def tiny() -> LoadedDataset:
    return tiny_mnist(20, 10)


# ---------------------------------------------------------------------- the shared computation
def test_krr_prediction_equals_a_direct_solve() -> None:
    g = torch.Generator().manual_seed(0)
    f_s, f_t = torch.randn(6, 9, generator=g, dtype=torch.float64), torch.randn(4, 9, generator=g, dtype=torch.float64)
    y_s = torch.randn(6, 3, generator=g, dtype=torch.float64)
    k_ss, k_ts = f_s @ f_s.T, f_t @ f_s.T
    reg = 0.3
    lam = reg * torch.trace(k_ss) / 6
    direct = k_ts @ torch.linalg.inv(k_ss + lam * torch.eye(6, dtype=torch.float64)) @ y_s
    assert torch.allclose(krr_predict(k_ts, k_ss, y_s, reg), direct, atol=1e-10)
    assert torch.allclose(feature_krr_predict(f_t, f_s, y_s, reg), direct, atol=1e-10)
    # with (almost) no ridge, more features than points: KRR interpolates its own support set
    assert torch.allclose(feature_krr_predict(f_s, f_s, y_s, 1e-12), y_s, atol=1e-6)
    # ridge regression in feature space gives the same prediction (the kernel trick): W = (F^T F + lam I)^-1 F^T Y
    w = torch.linalg.solve(f_s.T @ f_s + lam * torch.eye(9, dtype=torch.float64), f_s.T @ y_s)
    assert torch.allclose(f_t @ w, direct, atol=1e-8)


def test_centered_labels_margin_and_schedule_by_hand() -> None:
    y = centered_one_hot(torch.tensor([2, 0]), 4)
    assert torch.allclose(y[0], torch.tensor([-0.25, -0.25, 0.75, -0.25]))
    # margin: top1 - top2 = 1 > 1/K = 0.25 -> clipped to 0.25; a tie -> 0
    assert torch.allclose(label_margin_loss(torch.tensor([[0.75, -0.25, -0.25, -0.25], [0.5, 0.5, 0.0, 0.0]])),
                          torch.tensor([-0.25, 0.0]))
    assert cosine_lr(1.0, 0, 100) == pytest.approx(1.0) and cosine_lr(1.0, 100, 100) == pytest.approx(0.1)
    assert cosine_lr(1.0, 50, 100) == pytest.approx(0.55)


def test_lambs_first_step_by_hand() -> None:
    """Step 1: Adam's bias-corrected direction is g / (|g| + eps) ~ sign(g); LAMB scales it by ||w|| / ||u||."""
    w = torch.tensor([3.0, -4.0], requires_grad=True)  # ||w|| = 5
    opt = Lamb([w], lr=0.1, eps=0.0)
    w.grad = torch.tensor([0.5, 2.0])
    opt.step()
    # u = (1, 1), ||u|| = sqrt(2): w - 0.1 * 5 / sqrt(2) * (1, 1)
    step = 0.1 * 5 / 2 ** 0.5
    assert torch.allclose(w.detach(), torch.tensor([3.0 - step, -4.0 - step]), atol=1e-6)


# ---------------------------------------------------------------------- FRePo
def frepo(data: LoadedDataset, seed: int = 0, **overrides):
    settings = {"iterations": 30, "batch_real": 64, "pool_size": 3, "max_online_updates": 4, "lr_img": 0.01,
                "online_batch": 8, **overrides}
    return create_method("frepo", data, 2, preset="paper", seed=seed, model_kwargs=TINY_NET, **settings)


def test_frepo_loss_falls(tiny) -> None:
    m = frepo(tiny)
    assert (m.config.use_flip, m.config.zca) == (False, False)  # the digits rule
    losses = [m.step()["kernel_loss"] for _ in range(30)]
    assert sum(losses[-8:]) < 0.85 * sum(losses[:8]), losses
    s = m.synthetic()
    assert s.soft_labels and s.labels.shape == (20, 10) and torch.equal(s.hard_labels(), m.labels)
    assert max(member["steps"] for member in m.pool) <= 5  # members are restarted after max_online_updates


def test_frepo_checkpoint_and_resume_equal_an_uninterrupted_run(tiny) -> None:
    kw = {"iterations": 6, "use_flip": True, "max_online_updates": 2}
    straight, resumed = straight_and_resumed(lambda: frepo(tiny, seed=4, **kw), 6, 3)
    a, b = straight.synthetic(), resumed.synthetic()
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def test_kernel_sets_are_evaluated_as_regression_targets() -> None:
    from ddcore.evaluation import paper_config, quick_config
    from ddcore.evaluation.protocol import method_soft_label_loss

    assert method_soft_label_loss("frepo") == "mse" and method_soft_label_loss("datm") == "ce"
    assert method_soft_label_loss("unknown") == "ce"
    assert paper_config().resolve("cifar10", "convnet", "frepo").soft_label_loss == "mse"
    assert quick_config().resolve("mnist", "convnet", "frepo").augmentation == "dsa"
    assert paper_config().with_(soft_label_loss="ce").resolve("cifar10", "convnet", "frepo").soft_label_loss == "ce"


def test_krr_evaluation_of_a_real_subset_beats_chance(tiny) -> None:
    from ddcore.methods.random import random_real_set

    s = random_real_set(tiny, 5, 0)
    flat = {**TINY_NET, "norm": "none"}
    result = evaluate_krr(s, models=2, seeds=2, test_data=tiny, test_limit=None, model_kwargs=flat)
    assert result.test_images == 100 and len(result.accuracies) == 2 and result.method == "random"
    assert result.mean > 40.0, result  # chance is 10%
    again = evaluate_krr(s, models=2, seeds=[1], test_data=tiny, test_limit=None, model_kwargs=flat)
    assert again.accuracies[0] == result.accuracies[1]  # a seed names its random networks
    # a cross-entropy method's soft labels are logits: regressed as their centred distribution (an MSE method's, as
    # FRePo's, as they are), so DATM's logits score as FRePo-style targets softmax - 1/K, not as raw logits
    g = torch.Generator().manual_seed(0)
    logits = 3.0 * torch.randn(len(s.labels), 10, generator=g) + 3.0 * torch.nn.functional.one_hot(s.labels.long(), 10)
    as_datm = evaluate_krr((s.images, logits), models=2, seeds=[1], test_data=tiny, test_limit=None, model_kwargs=flat,
                           dataset="mnist", method="datm")
    as_targets = evaluate_krr((s.images, logits.softmax(1) - 0.1), models=2, seeds=[1], test_data=tiny, test_limit=None,
                              model_kwargs=flat, dataset="mnist", method="frepo")
    raw = evaluate_krr((s.images, logits), models=2, seeds=[1], test_data=tiny, test_limit=None, model_kwargs=flat,
                       dataset="mnist", method="frepo")
    assert as_datm.accuracies == as_targets.accuracies != raw.accuracies
    from ddcore.evaluation.krr import krr_targets  # a distribution stays one; soft labels of unknown origin stay raw

    dist = logits.softmax(1)
    assert torch.allclose(krr_targets(dist, 10, "datm"), dist - 0.1) and torch.equal(krr_targets(logits, 10, None), logits)
    assert torch.equal(krr_targets(logits, 10, "tensors"), logits)


# ---------------------------------------------------------------------- RFAD
def rfad(data: LoadedDataset, seed: int = 0, **overrides):
    settings = {"iterations": 30, "batch_real": 128, "models": 2, "lr_img": 0.01, **overrides}
    return create_method("rfad", data, 2, preset="paper", seed=seed, model_kwargs={**TINY_NET, "width": 16}, **settings)


def test_rfad_kernel_is_the_nngp_estimate_by_hand() -> None:
    """Two one-layer 'networks' (a linear map, N(0, 2/fan_in)): the features side by side over sqrt(total width),
    the kernel 2 <phi, phi'> + 0.01, and the KRR prediction the same as the direct solve."""
    torch.manual_seed(0)
    nets = [he_normal_(torch.nn.Linear(3, 5)) for _ in range(2)]
    assert all(float(n.bias.detach().abs().sum()) == 0 for n in nets)
    x = torch.randn(4, 3)
    phi = network_features(nets, x)
    assert torch.allclose(phi, torch.cat([nets[0](x), nets[1](x)], 1) / 10 ** 0.5)
    k = nngp_kernel(phi, phi)
    assert torch.allclose(k, 2 * phi @ phi.T + 0.01)
    y = centered_one_hot(torch.tensor([0, 1, 2, 0]), 3).double()
    x_t = torch.randn(2, 3)
    phi_t = network_features(nets, x_t)
    k_reg = k.double() + 0.1 * torch.trace(k.double()) / 4 * torch.eye(4, dtype=torch.float64)
    direct = nngp_kernel(phi_t, phi).double() @ torch.linalg.inv(k_reg) @ y
    assert torch.allclose(nngp_krr_predict(phi_t.double(), phi.double(), y, 0.1), direct, atol=1e-8)


@pytest.mark.parametrize("platt", [False, True])
def test_rfad_loss_falls(tiny, platt) -> None:
    m = rfad(tiny, platt=platt, learn_labels=platt)
    losses = [m.step()["loss"] for _ in range(30)]
    assert sum(losses[-8:]) < 0.9 * sum(losses[:8]), losses
    s = m.synthetic()
    assert s.soft_labels == platt  # learned labels only when learn_labels
    if platt:
        assert float(m.log_temperature) != 0.0


def test_rfad_checkpoint_and_resume_equal_an_uninterrupted_run(tiny) -> None:
    kw = {"iterations": 4, "platt": True, "learn_labels": True}
    straight, resumed = straight_and_resumed(lambda: rfad(tiny, seed=2, **kw), 4, 2)
    a, b = straight.synthetic(), resumed.synthetic()
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert torch.equal(straight.log_temperature, resumed.log_temperature)


def test_the_cli_reports_krr_beside_the_trained_networks(tmp_path, capsys) -> None:
    from ddcore.cli import main
    from ddcore.methods.random import random_real_set

    path = random_real_set(load_dataset("mnist"), 1, 0).save(tmp_path / "r.ddset")
    assert main(["evaluate", str(path), "--preset", "custom-e1-t100-auto", "--seeds", "1", "--device", "cpu",
                 "--krr"]) == 0
    out = capsys.readouterr().out
    assert "convnet:" in out and "KRR (4 random ConvNets per seed):" in out and "over 1 seeds on 100 test images" in out
