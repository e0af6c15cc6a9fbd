"""DD (unrolled meta-learning) on tiny problems: the unrolled gradient against finite differences, DD's image
groups, the loss falls, checkpoint + resume equals an uninterrupted run."""
from __future__ import annotations

import pytest
import torch

from ddcore.data import LoadedDataset, load_dataset
from ddcore.methods import create_method, make_config
from ddcore.methods.dd import dd_groups, softplus_inverse, unrolled_loss
from ddcore.methods.trajectory import FlatNet
from ddcore.models import create_model
from tests.methodkit import TINY_NET, straight_and_resumed, tiny_mnist


@pytest.fixture(scope="module")
def tiny() -> LoadedDataset:
    return tiny_mnist(20, 5)


def test_unrolled_gradient_equals_finite_differences_on_a_tiny_net() -> None:
    torch.manual_seed(0)
    net = create_model("mlp", 1, 3, 3).double()
    flat = FlatNet(net)
    theta0 = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    images = torch.randn(6, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    raw = torch.tensor([softplus_inverse(0.3), softplus_inverse(0.5), softplus_inverse(0.2)], dtype=torch.float64,
                       requires_grad=True)
    groups = dd_groups(3, 2, 2)
    real_x, real_y = torch.randn(10, 1, 3, 3, dtype=torch.float64), torch.randint(0, 3, (10,))

    def f(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return unrolled_loss(flat, theta0.clone().requires_grad_(True), x, labels, r, groups, real_x, real_y)

    g_x, g_r = torch.autograd.grad(f(images, raw), [images, raw])
    eps = 1e-6
    for pos in [(0, 0, 0, 0), (3, 0, 1, 2), (5, 0, 2, 1)]:
        e = torch.zeros_like(images)
        e[pos] = eps
        fd = (f(images.detach() + e, raw.detach()) - f(images.detach() - e, raw.detach())) / (2 * eps)
        assert float(g_x[pos]) == pytest.approx(float(fd.detach()), rel=1e-5, abs=1e-9)
    for i in range(3):
        e = torch.zeros_like(raw)
        e[i] = eps
        fd = (f(images.detach(), raw.detach() + e) - f(images.detach(), raw.detach() - e)) / (2 * eps)
        assert float(g_r[i]) == pytest.approx(float(fd.detach()), rel=1e-5, abs=1e-9)
    assert float(g_r.abs().min()) > 0  # every step size is learned


def test_image_groups_follow_dds_steps() -> None:
    # IPC 4, 2 steps: per class, slots 0 and 2 in step 0, 1 and 3 in step 1 (class-major rows)
    assert [g.tolist() for g in dd_groups(2, 4, 2)] == [[0, 2, 4, 6], [1, 3, 5, 7]]
    assert [g.tolist() for g in dd_groups(3, 1, 10)] == [[0, 1, 2]]  # IPC 1: one step of every image
    assert len(dd_groups(10, 10, 10)) == 10 and dd_groups(10, 10, 10)[3].tolist() == [c * 10 + 3 for c in range(10)]


def test_dd_loss_falls_and_learns_its_step_sizes(tiny) -> None:
    m = create_method("dd", tiny, 2, preset="paper", model_kwargs=TINY_NET, iterations=30, batch_real=64, lr_img=0.05)
    assert len(m.step_sizes) == 2 * 3 and m.step_sizes[0] == pytest.approx(0.02, rel=1e-5)
    losses = [m.step()["loss"] for _ in range(30)]
    assert sum(losses[-8:]) < 0.8 * sum(losses[:8]), losses
    assert len(set(round(v, 6) for v in m.step_sizes)) > 1
    assert m.synthetic().meta.config["learned_step_sizes"] == m.step_sizes


def test_dd_checkpoint_and_resume_equal_an_uninterrupted_run(tiny) -> None:
    def fresh():
        return create_method("dd", tiny, 2, preset="paper", seed=5, model_kwargs=TINY_NET, iterations=6, batch_real=32,
                             lr_img=0.05, decay_every=3)

    straight, resumed = straight_and_resumed(lambda: fresh(), 6, 3)
    assert torch.equal(straight.images, resumed.images) and straight.step_sizes == resumed.step_sizes


def test_dd_presets() -> None:
    d = load_dataset("mnist").info
    paper, quick = make_config("dd", d, 10, "paper"), make_config("dd", d, 10, "quick")
    assert (paper.iterations, paper.syn_steps, paper.distill_epochs, paper.lr_init, paper.init) == (23_200, 10, 3, 0.02,
                                                                                                   "noise")
    assert quick.iterations < paper.iterations


def test_replaying_a_learned_schedule_is_plain_gradient_descent_from_a_fresh_init(tiny) -> None:
    """DD's own evaluation (ddcore/evaluation/replay.py): the set's learned step sizes replayed from a seeded fresh
    network equal SGD without momentum on each step's image group, by hand; a set without a schedule is refused."""
    import torch.nn.functional as F

    from ddcore.evaluation.replay import evaluate_replay, schedule_of

    m = create_method("dd", tiny, 2, preset="quick", seed=0, architecture="mlp",
                      **{"iterations": 2, "batch_real": 50, "syn_steps": 2, "distill_epochs": 2})
    for _ in range(2):
        m.step()
    s = m.synthetic()
    sizes, syn_steps = schedule_of(s.meta.config)
    assert len(sizes) == 4 and syn_steps == 2 and sizes != [0.02] * 4  # learned, not the initial 0.02
    result = evaluate_replay(s, seeds=[3], test_data=tiny)
    assert result.steps == 4 and result.groups == 2 and result.architecture == "mlp"
    with torch.random.fork_rng(devices=[]):  # by hand: the same initialisation, SGD on groups 0, 1, 0, 1
        torch.manual_seed(3)
        net = create_model("mlp", 1, 10, 28)
    groups = dd_groups(10, 2, 2)
    for i, lr in enumerate(sizes):
        net.zero_grad()
        F.cross_entropy(net(s.images[groups[i % 2]]), s.labels[groups[i % 2]]).backward()
        with torch.no_grad():
            for p in net.parameters():
                p -= lr * p.grad
    tx, ty = tiny.normalized_split("test")
    with torch.no_grad():
        by_hand = 100.0 * float((net(tx).argmax(1) == ty).float().mean())
    assert result.mean == pytest.approx(by_hand)
    other = evaluate_replay(create_method("random", tiny, 2, seed=1).synthetic(), seeds=[3], test_data=tiny,
                            schedule=(sizes, syn_steps), architecture="mlp")  # random real, DD's schedule
    assert other.steps == 4 and 0 <= other.mean <= 100
    with pytest.raises(ValueError, match="width must be a whole number from 1"):  # the given model options reach the network
        evaluate_replay(create_method("random", tiny, 2, seed=1).synthetic(), seeds=[3], test_data=tiny,
                        schedule=(sizes, syn_steps), architecture="convnet", model_kwargs={"width": 0})
    with pytest.raises(ValueError, match="no learned step sizes"):
        evaluate_replay(create_method("random", tiny, 2, seed=1).synthetic(), test_data=tiny)
    order = torch.randperm(20, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="class by class"):  # its groups would mix classes
        evaluate_replay((s.images[order], s.labels[order]), test_data=tiny, dataset="mnist", schedule=(sizes, 2))


@pytest.mark.parametrize("config, message", [
    ({"learned_step_sizes": [0.01] * 10_001}, "at most 10,000 step sizes"),
    ({"learned_step_sizes": [0.01, float("nan")]}, "finite numbers"),
    ({"learned_step_sizes": [0.01, "fast"]}, "finite numbers"),
    ({"learned_step_sizes": [0.01], "syn_steps": 0}, "syn_steps must be"),
    ({"learned_step_sizes": [0.01], "syn_steps": 10**9}, "syn_steps must be"),
])
def test_a_crafted_schedule_is_refused(config, message) -> None:
    from ddcore.evaluation.replay import schedule_of

    with pytest.raises(ValueError, match=message):
        schedule_of(config)


def test_model_options_from_a_file_are_bounded() -> None:
    from ddcore.models import create_model

    with pytest.raises(ValueError, match="width must be a whole number from 1 to 2048"):
        create_model("convnet", 1, 10, 28, width=10**7)  # once allocated, exhausting memory
    with pytest.raises(ValueError, match="depth must be a whole number from 1 to 200"):
        create_model("convnet", 1, 10, 28, depth=True)
    assert create_model("convnet", 1, 10, 28, width=2048, depth=1) is not None
    import numpy as np

    assert create_model("convnet", 1, 10, 28, width=np.int64(16), depth=np.int32(2)).features is not None


def test_the_cli_reports_a_dd_sets_replayed_schedule(tiny, tmp_path, capsys) -> None:
    from ddcore.cli import main

    m = create_method("dd", tiny, 1, preset="quick", seed=0, architecture="mlp",
                      **{"iterations": 1, "batch_real": 50, "syn_steps": 1, "distill_epochs": 2})
    m.step()
    path = m.synthetic().save(tmp_path / "dd.ddset")
    assert main(["evaluate", str(path), "--arch", "mlp", "--preset", "custom-e1-t100-auto", "--seeds", "2",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "DD's schedule replayed (2 learned steps on mlp from fresh initialisations)" in out, out
    assert "over 2 seeds on 100 test images" in out.split("replayed")[1]
