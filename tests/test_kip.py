"""KIP with the closed-form FC kernel (ddcore/evaluation/fc_kernel.py, ddcore/methods/kip.py): the kernel against
a wide random network's empirical NTK and NNGP, its loss falls on a tiny problem, checkpoint + resume equals an
uninterrupted run, and learned labels leave as regression targets."""
from __future__ import annotations

import math

import pytest
import torch

from ddcore.data import LoadedDataset
from ddcore.evaluation.fc_kernel import relu_fc_kernel
from ddcore.methods import create_method
from tests.methodkit import straight_and_resumed, tiny_mnist


@pytest.fixture(scope="module")
def tiny() -> LoadedDataset:
    return tiny_mnist(20, 10)


def kip(data: LoadedDataset, seed: int = 0, **overrides):
    return create_method("kip_fc", data, 2, preset="quick", seed=seed,
                         **{"iterations": 40, "batch_real": 100, **overrides})


def test_the_closed_form_kernel_matches_a_wide_random_network() -> None:
    """One hidden layer of width 20000 in NTK parameterisation (W_std sqrt(2), b_std 0.1): its output covariance
    over many draws is the NNGP, and its parameter-gradient products are the NTK, within sampling error."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 12, generator=g, dtype=torch.float64)
    x[1] = -0.5 * x[0] + 0.1 * x[1]  # an obtuse pair as well
    width, w_std, b_std, d = 20000, math.sqrt(2.0), 0.1, x.shape[1]
    w1 = torch.randn(d, width, generator=g, dtype=torch.float64, requires_grad=True)
    b1 = torch.randn(width, generator=g, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(width, generator=g, dtype=torch.float64, requires_grad=True)
    b2 = torch.randn((), generator=g, dtype=torch.float64, requires_grad=True)

    def f(inputs: torch.Tensor) -> torch.Tensor:
        h = w_std * inputs @ w1 / math.sqrt(d) + b_std * b1
        return w_std * torch.relu(h) @ w2 / math.sqrt(width) + b_std * b2

    grads = []
    for i in range(len(x)):
        grads.append(torch.cat([t.reshape(-1) for t in torch.autograd.grad(f(x[i:i + 1]).sum(), (w1, b1, w2, b2))]))
    empirical_ntk = torch.stack(grads) @ torch.stack(grads).T
    ntk = relu_fc_kernel(x, x, depth=1)
    assert torch.allclose(empirical_ntk, ntk, rtol=0.05, atol=0.02), (empirical_ntk, ntk)
    # the NNGP: the hidden layer's E[relu relu] by Monte Carlo over 400000 units, times w_std^2, plus b_std^2
    many = 400_000
    hidden = torch.relu(w_std * x @ torch.randn(d, many, generator=g, dtype=torch.float64) / math.sqrt(d)
                        + b_std * torch.randn(many, generator=g, dtype=torch.float64))
    empirical_nngp = w_std ** 2 * hidden @ hidden.T / many + b_std ** 2
    assert torch.allclose(empirical_nngp, relu_fc_kernel(x, x, depth=1, kind="nngp"), rtol=0.03, atol=0.01)
    assert torch.allclose(relu_fc_kernel(x, x, depth=0), 2 * x @ x.T / d + 0.01)  # no hidden layer: linear


def test_the_kernel_has_finite_gradients_on_its_diagonal() -> None:
    x = torch.randn(5, 30, dtype=torch.float64, requires_grad=True)
    relu_fc_kernel(x, x, depth=3).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_kip_loss_falls_and_its_krr_fits_the_real_batch(tiny) -> None:
    m = kip(tiny)
    records = [m.step() for _ in range(40)]
    losses = [r["loss"] for r in records]
    assert sum(losses[-8:]) < 0.8 * sum(losses[:8]), losses
    assert records[-1]["krr_batch_accuracy"] > 50  # 20 support images predicting 100 real ones; chance is 10
    assert not m.synthetic().soft_labels


def test_kip_regresses_mean_centred_labels_at_the_papers_mnist_learning_rate(tiny) -> None:
    """The paper's experimental details: mean-centred one-hot labels (KIP.ipynb's one_hot(center=True) too) and
    Adam lr 0.01 on MNIST (0.04 on CIFAR-10, the notebook's default); centring can be switched off."""
    m = kip(tiny)
    assert m.config.lr_img == 0.01 and m.optimizer.param_groups[0]["lr"] == 0.01
    assert torch.allclose(m.targets.sum(1), torch.zeros(20, dtype=torch.float64), atol=1e-12)
    assert float(m.targets.max()) == pytest.approx(0.9)
    plain = kip(tiny, center_labels=False)
    assert float(plain.targets.min()) == 0.0 and float(plain.targets.sum()) == 20.0
    assert create_method("kip_fc", tiny, 2, preset="quick", lr_img=0.04).config.lr_img == 0.04  # an override wins


def test_kip_checkpoint_and_resume_equal_an_uninterrupted_run(tiny) -> None:
    straight, resumed = straight_and_resumed(lambda: kip(tiny, seed=3, learn_labels=True), 6, 3)
    a, b = straight.synthetic(), resumed.synthetic()
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.soft_labels and a.labels.shape == (20, 10)  # learned labels: regression targets


def test_bad_settings_are_refused(tiny) -> None:
    with pytest.raises(ValueError, match="kernel must be"):
        kip(tiny, kernel="rbf")
    with pytest.raises(ValueError, match="kind must be"):
        relu_fc_kernel(torch.zeros(1, 2), torch.zeros(1, 2), kind="rbf")


def test_kips_own_kernel_is_offered_as_a_krr_evaluation(tiny, tmp_path) -> None:
    """'fc_krr': KRR with the closed-form FC NTK, KIP's paper's number, equal to a direct solve; the evaluation task
    accepts it though no network is named 'fc'."""
    import torch.nn.functional as F

    from ddcore.evaluation.krr import evaluate_krr, krr_predict
    from ddcore.platform.records import Subject
    from ddcore.platform.store import Store
    from ddcore.tasks.evaluate import EvalSpec, prepare_spec

    m = kip(tiny)
    for _ in range(20):
        m.step()
    s = m.synthetic()
    result = evaluate_krr(s, architecture="fc", seeds=3, test_data=tiny, test_limit=None)
    tx, ty = tiny.normalized_split("test")
    direct = krr_predict(relu_fc_kernel(tx, s.images), relu_fc_kernel(s.images, s.images),
                         F.one_hot(s.labels.long(), 10).double() - 0.1, 1e-6)
    assert result.mean == pytest.approx(100.0 * float((direct.argmax(1) == ty).float().mean()))
    assert result.seeds == (0,) and result.reg == 1e-6 and "fully connected" in result.kernel  # one exact number
    assert result.mean > 50  # chance is 10
    deeper = kip(tiny, depth=3, kernel="nngp")  # a KIP set made with other kernel settings is scored with them
    deeper.step()
    own = evaluate_krr(deeper.synthetic(), architecture="fc", test_data=tiny, test_limit=None)
    s3 = deeper.synthetic()
    direct3 = krr_predict(relu_fc_kernel(tx, s3.images, depth=3, kind="nngp"),
                          relu_fc_kernel(s3.images, s3.images, depth=3, kind="nngp"),
                          F.one_hot(s3.labels.long(), 10).double() - 0.1, 1e-6)
    assert own.mean == pytest.approx(100.0 * float((direct3.argmax(1) == ty).float().mean()))
    assert "depth 3" in own.kernel and "kind nngp" in own.kernel
    spec, name = prepare_spec(EvalSpec(Subject.random("mnist", 1, 0), architecture="fc_krr"), Store(tmp_path))
    assert "fc_krr" in name


def test_the_cli_reports_a_kip_sets_krr_with_kips_kernel(tiny, tmp_path, capsys) -> None:
    from ddcore.cli import main

    m = kip(tiny)
    m.step()
    path = m.synthetic().save(tmp_path / "kip.ddset")
    assert main(["evaluate", str(path), "--preset", "custom-e1-t100-auto", "--seeds", "1", "--device", "cpu",
                 "--krr"]) == 0
    out = capsys.readouterr().out
    assert "KRR (closed-form NTK of an infinitely wide fully connected ReLU network" in out, out
    assert "Wide FC network (width-1024 fully connected ReLU network, 1 hidden layer(s), NTK parameterisation" in out
    assert "% over 1 seeds on 100 test images" in out.split("Wide FC network")[1]


def test_krr_evaluations_take_a_fair_baselines_pixel_space_and_nothing_else(tiny, tmp_path) -> None:
    """A random-real baseline 'trained like' a ZCA method's sets, on a KRR architecture: whitened (support and test),
    which equals evaluating its whitened copy; the training recipe, meaningless for KRR, leaves the key."""
    import dataclasses

    from ddcore.evaluation.krr import KRR_PROTOCOL, evaluate_krr
    from ddcore.methods.random import random_real_set
    from ddcore.platform.records import Subject
    from ddcore.platform.store import Store
    from ddcore.synthetic import SyntheticSet
    from ddcore.tasks.evaluate import EvalSpec, prepare_spec
    from ddcore.zca import dataset_zca

    raw = random_real_set(tiny, 2, 0)
    white = SyntheticSet(dataset_zca(tiny).apply(raw.images), raw.labels,
                         dataclasses.replace(raw.meta, config={**raw.meta.config, "zca": True}))
    asked = evaluate_krr(raw, architecture="fc", test_data=tiny, test_limit=None, zca_space=True)
    assert asked.zca and asked.mean == pytest.approx(evaluate_krr(white, architecture="fc", test_data=tiny,
                                                                  test_limit=None).mean)
    assert asked.mean != pytest.approx(evaluate_krr(raw, architecture="fc", test_data=tiny, test_limit=None).mean)
    liked = {"augmentation": "dsa", "optimizer": "adam", "convnet_norm": "none", "zca_space": True}
    spec, _ = prepare_spec(EvalSpec(Subject.random("mnist", 1, 0), "fc_krr", seeds=5, options=liked), Store(tmp_path))
    assert spec.options == {"zca_space": True, "krr_protocol": KRR_PROTOCOL} and spec.seeds == 1


def test_a_wide_fc_network_trained_in_its_kernel_regime_predicts_like_kips_kernel(tiny) -> None:
    """KIP's finite-network evaluation (ddcore/evaluation/wide_fc.py): a wide FC network of the kernel's shape, its
    output centred at initialisation, trained by full-batch gradient descent on the squared error, fits the set
    and predicts the test images nearly as kernel ridge regression with the NTK does (the infinite-width limit)."""
    import torch.nn.functional as F

    from ddcore.evaluation.krr import krr_predict
    from ddcore.evaluation.wide_fc import WideFC, evaluate_wide_fc

    m = kip(tiny)
    for _ in range(10):
        m.step()
    s = m.synthetic()
    result = evaluate_wide_fc(s, seeds=[0], width=2048, steps=600, test_data=tiny)
    assert result.final_losses[0] < 1e-4 and result.test_images == 100
    tx, ty = tiny.normalized_split("test")
    x = s.images.flatten(1)
    kernel_pred = krr_predict(relu_fc_kernel(tx.flatten(1).double(), x.double()),
                              relu_fc_kernel(x.double(), x.double()), F.one_hot(s.labels.long(), 10).double() - 0.1,
                              1e-6).argmax(1)
    kernel_acc = 100.0 * float((kernel_pred == ty).float().mean())
    assert abs(result.mean - kernel_acc) <= 5.0, (result.mean, kernel_acc)  # 5 of 100 test images
    net = WideFC(784, 10, 64, 1, 2.0, 0.01, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert net.start(x).abs().mean() > 0.1 and torch.equal(net.forward(x), torch.zeros(20, 10))  # f0 taken away
    with pytest.raises(ValueError, match="at least 1"):
        evaluate_wide_fc(s, steps=0, test_data=tiny)
    # a cross-entropy method's soft labels are logits: regressed as their distribution, as sharp logits equal hard labels
    hard = evaluate_wide_fc((s.images, s.labels), seeds=[0], width=256, steps=100, test_data=tiny, dataset="mnist",
                            method="random")
    logits = 30.0 * F.one_hot(s.labels.long(), 10).float()
    soft = evaluate_wide_fc((s.images, logits), seeds=[0], width=256, steps=100, test_data=tiny, dataset="mnist",
                            method="datm")
    assert soft.mean == pytest.approx(hard.mean, abs=1.0)
    nngp = kip(tiny, kernel="nngp").synthetic()
    with pytest.raises(ValueError, match="NNGP kernel"):
        evaluate_wide_fc(nngp, test_data=tiny)


def test_the_wide_fc_evaluation_is_keyed_by_its_own_recipe_and_refuses_large_sets(tiny, tmp_path) -> None:
    from ddcore.platform.records import Subject
    from ddcore.platform.store import Store
    from ddcore.tasks.evaluate import EvalSpec, prepare_spec

    liked = {"augmentation": "dsa", "optimizer": "adam"}
    spec, name = prepare_spec(EvalSpec(Subject.random("mnist", 1, 0), "fc_wide", seeds=2, options=liked), Store(tmp_path))
    assert spec.options == {} and spec.seeds == 2 and "fc_wide" in name  # no training option applies to it
    with pytest.raises(ValueError, match="up to 1,000 images"):
        prepare_spec(EvalSpec(Subject.random("mnist", 101, 0), "fc_wide"), Store(tmp_path))
    with pytest.raises(ValueError, match="whole training set"):
        prepare_spec(EvalSpec(Subject.whole("mnist"), "fc_wide"), Store(tmp_path))
