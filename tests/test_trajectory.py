"""Trajectory matching (MTT, TESLA, DATM) on tiny problems: the student reproduces the expert, the matching loss
by hand, TESLA's adjoint equals MTT's unrolled gradient, experts are reused (and not across a ZCA change),
checkpoint + resume equals an uninterrupted run, and the loss falls."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ddcore.data import load_dataset
from ddcore.experts import ExpertPlan, flat_parameters, train_experts
from ddcore.methods import create_method
from ddcore.methods.trajectory import FlatNet, Unroll, match, matching_loss, plan_batches, student_step
from ddcore.models import create_model
from ddcore.platform.queue import JobManager
from ddcore.platform.store import Store
from ddcore.tasks import resolve_artefacts
from ddcore.tasks.distill import DistillSpec

TINY = {"num_experts": 2, "expert_train_epochs": 3, "expert_per_class": 20, "expert_batch": 64, "syn_steps": 3,
        "expert_epochs": 1, "max_start_epoch": 2, "iterations": 6, "zca": False}


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


@pytest.fixture(scope="module")
def experts_home(tmp_path_factory):
    """One store for the tests that build methods directly: experts of one setting are trained once."""
    return Store(tmp_path_factory.mktemp("experts-home"))


def tiny_method(name: str, data, store: Store, **changes):
    from ddcore.methods import make_config, method_class

    cfg = make_config(name, data.info, 1, "quick", **{**TINY, **changes})
    artefacts = resolve_artefacts(method_class(name).requires(data.info, 1, cfg, "convnet"), store, "cpu", data)
    return cfg, artefacts


def test_a_one_step_student_with_the_experts_lr_lands_on_the_experts_next_parameters(mnist) -> None:
    """An expert trained one epoch of one full batch (no augmentation) takes exactly one SGD step; the student
    started at its epoch 0 with the same lr on the same images must land on its epoch 1."""
    x = mnist.normalize(mnist.train.images[:40]).double()
    y = mnist.train.labels[:40]
    build = lambda: create_model("mlp", 1, 10, 28).double()  # noqa: E731
    plan = ExpertPlan(experts=1, epochs=1, lr=0.05, batch=40, dsa_strategy="none", mode="loop")
    trajectory = train_experts(x, y, build, plan, torch.device("cpu"))[0]
    assert trajectory.shape[0] == 2
    net = FlatNet(build())
    end, _ = student_step(net, trajectory[0].clone().requires_grad_(True), x, y, torch.tensor(0.05, dtype=torch.float64),
                          create_graph=False)
    assert torch.allclose(end.detach(), trajectory[1], atol=1e-12, rtol=0)


def test_the_normalised_matching_loss_on_a_hand_built_case() -> None:
    start, target = torch.tensor([0.0, 0.0]), torch.tensor([3.0, 4.0])  # the expert moved 5
    assert matching_loss(torch.tensor([3.0, 0.0]), start, target) == pytest.approx(16 / 25)  # 4 short of 5
    assert matching_loss(target.clone(), start, target) == 0
    assert matching_loss(start.clone(), start, target) == 1  # a student that did not move


def test_teslas_adjoint_gradient_equals_mtts_unrolled_gradient() -> None:
    torch.manual_seed(0)
    net = FlatNet(create_model("convnet", 1, 10, 28, width=4, depth=2).double())
    theta0 = torch.cat([p.reshape(-1) for p in create_model("convnet", 1, 10, 28, width=4, depth=2).double().parameters()]).detach()
    target = theta0 + 0.01 * torch.randn_like(theta0)
    x = torch.randn(20, 1, 28, 28, dtype=torch.float64)
    hard, soft = torch.arange(10).repeat(2), torch.randn(20, 10, dtype=torch.float64)
    unroll = Unroll(plan_batches(20, 6, 8, torch.Generator().manual_seed(0)), lambda im, i: im.roll(i, dims=-1))
    lr = torch.tensor(0.05, dtype=torch.float64)
    for labels, learn in ((hard, False), (soft, True)):
        a = match(net, theta0, target, x, labels, lr, unroll, "unrolled", learn_labels=learn)
        b = match(net, theta0, target, x, labels, lr, unroll, "adjoint", learn_labels=learn)
        assert a.loss == pytest.approx(b.loss, rel=1e-12)
        scale = a.grad_images.abs().max()
        assert scale > 0 and (a.grad_images - b.grad_images).abs().max() <= 1e-10 * scale
        assert float(a.grad_lr) == pytest.approx(float(b.grad_lr), rel=1e-10)
        if learn:
            assert (a.grad_labels - b.grad_labels).abs().max() <= 1e-10 * a.grad_labels.abs().max()
    # the authors' code keeps the last adjoint for every step: close, but not the same gradient
    c = match(net, theta0, target, x, hard, lr, unroll, "adjoint_first_order")
    a = match(net, theta0, target, x, hard, lr, unroll, "unrolled")
    assert (a.grad_images - c.grad_images).abs().max() > 1e-6 * a.grad_images.abs().max()


def test_expert_artefacts_are_reused_and_a_zca_change_makes_new_ones(mnist, tmp_path) -> None:
    manager = JobManager(Store(tmp_path / "home"))
    try:
        # what is checked is which experts each run needs: one expert of two epochs and one iteration per run do
        small = {**TINY, "num_experts": 1, "expert_train_epochs": 2, "max_start_epoch": 1, "iterations": 1}

        def submit(method: str, **changes):
            return manager.submit(DistillSpec("mnist", method, 1, overrides={**small, **changes}, evaluate_after=False),
                                  data=mnist)

        first = submit("mtt")
        assert first.snapshot().waiting_for, "the experts are trained first, by a job of their own"
        assert manager.wait(first.id, 300).status == "done"
        second = submit("tesla")  # the same experts: no new training
        assert not second.snapshot().waiting_for
        assert manager.wait(second.id, 300).status == "done"
        third = submit("mtt", zca=True)
        assert third.snapshot().waiting_for, "whitened data needs experts trained on whitened data"
        assert manager.wait(third.id, 300).status == "done"
        experts = manager.store.list_artefacts("expert-trajectories")
        assert sorted(a.params["zca"] for a in experts) == [False, True]
        uses = {a.params["zca"]: manager.store.artefact_dependents(a.key) for a in experts}
        assert len(uses[False]) == 2 and len(uses[True]) == 1
    finally:
        manager.shutdown(wait=10)


@pytest.mark.parametrize("method", ["mtt", "tesla", "datm"])
def test_checkpoint_and_resume_equal_an_uninterrupted_run(mnist, experts_home, method) -> None:
    extra = {"current_max_start_epoch": 1, "expansion_end_iteration": 4} if method == "datm" else {}
    _, artefacts = tiny_method(method, mnist, experts_home, **extra)
    from ddcore.methods import make_config

    def fresh():
        return create_method(method, mnist, 1, make_config(method, mnist.info, 1, "quick", **TINY, **extra),
                             artefacts=artefacts)

    straight = fresh()
    for _ in range(4):
        straight.step()
    first = fresh()
    for _ in range(2):
        first.step()
    state = first.state_dict()
    resumed = fresh()
    resumed.load_state_dict(state)
    for _ in range(2):
        resumed.step()
    a, b = straight.synthetic(), resumed.synthetic()
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels) and a.lr == b.lr


def test_the_matching_loss_falls_on_a_tiny_problem(mnist, experts_home) -> None:
    cfg, artefacts = tiny_method("mtt", mnist, experts_home, iterations=16, max_start_epoch=1, lr_img=100.0)
    m = create_method("mtt", mnist, 1, cfg, artefacts=artefacts)
    losses = [m.step()["loss"] for _ in range(16)]  # it falls mostly in the first ten: the last five average ~0.79x
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5]), losses


def test_datm_grows_its_window_learns_labels_and_skips_bad_iterations(mnist, experts_home) -> None:
    cfg, artefacts = tiny_method("datm", mnist, experts_home, current_max_start_epoch=1, max_start_epoch=2,
                                 expansion_end_iteration=4, threshold=10.0)
    m = create_method("datm", mnist, 1, cfg, artefacts=artefacts)
    assert m.start_window() == (0, 1)
    labels0 = m.soft.detach().clone()
    for _ in range(4):
        m.step()
    assert m.start_window() == (0, 2)
    assert not torch.equal(labels0, m.soft.detach())  # the soft labels are learned
    assert m.synthetic().labels.shape == (10, 10)
    m.config.threshold = -1.0  # every loss exceeds it: nothing changes
    before = m.images.detach().clone()
    m.step()
    assert torch.equal(before, m.images.detach())


def test_bad_trajectory_settings_are_refused(mnist, experts_home) -> None:
    from ddcore.methods import make_config

    cfg, artefacts = tiny_method("mtt", mnist, experts_home)
    with pytest.raises(ValueError, match="pass the experts"):
        create_method("mtt", mnist, 1, make_config("mtt", mnist.info, 1, "quick", **dict(TINY, max_start_epoch=4)),
                      artefacts=artefacts)
    with pytest.raises(ValueError, match="gradient must be one of"):
        create_method("mtt", mnist, 1, make_config("mtt", mnist.info, 1, "quick", **dict(TINY, gradient="magic")),
                      artefacts=artefacts)
    assert flat_parameters(create_model("mlp", 1, 10, 28)).numel() != artefacts["expert-trajectories"].get(0, 0).numel()
    with pytest.raises(ValueError, match="parameters"):
        create_method("mtt", mnist, 1, cfg, architecture="mlp", artefacts=artefacts)


def test_a_trajectory_set_is_evaluated_with_its_own_protocol(mnist, experts_home) -> None:
    """The learned step size, the soft labels and the ZCA setting reach the evaluation and are recorded."""
    from ddcore.evaluation import evaluate

    cfg, artefacts = tiny_method("datm", mnist, experts_home, current_max_start_epoch=1, expansion_end_iteration=2)
    m = create_method("datm", mnist, 1, cfg, artefacts=artefacts)
    m.step()
    synthetic = m.synthetic()
    result = evaluate(synthetic, "convnet", "custom-e2-t100-none", seeds=1)
    assert result.config["lr_source"] == "learned" and result.config["lr"] == pytest.approx(synthetic.lr)
    assert result.config["extra"] == {"zca": False, "soft_labels": True}
    assert synthetic.meta.config["zca"] is False and synthetic.meta.method == "datm"


@pytest.mark.parametrize("method", ["mtt", "tesla"])
def test_a_stop_inside_an_iteration_changes_nothing_and_the_run_goes_on_exactly(mnist, experts_home, method) -> None:
    """Stop answers within one student step: the interrupted iteration leaves the set as it was, so carrying on
    afterwards gives what an uninterrupted run gives."""
    from ddcore.methods.base import StepInterrupted

    cfg, artefacts = tiny_method(method, mnist, experts_home)
    straight = create_method(method, mnist, 1, cfg, artefacts=artefacts)
    interrupted = create_method(method, mnist, 1, cfg, artefacts=artefacts)
    for m in (straight, interrupted):
        m.step()
    before = interrupted.images.detach().clone()
    polls = []
    interrupted.should_stop = lambda: polls.append(1) or len(polls) > 1  # stop at the second student step
    with pytest.raises(StepInterrupted):
        interrupted.step()
    assert interrupted.iteration == 1 and torch.equal(before, interrupted.images.detach())
    interrupted.should_stop = lambda: False
    straight.step()
    interrupted.step()
    assert torch.equal(straight.images.detach(), interrupted.images.detach()) and straight.lr == interrupted.lr
