"""CAFE (and IDM) on tiny problems: CAFE's layer-wise distance and discrimination loss by hand, the features it
aligns, the loss falls on a held-out network, checkpoint + resume equals an uninterrupted run."""
from __future__ import annotations

import pytest
import torch

from ddcore.data import LoadedDataset, get_dataset_info
from ddcore.methods import create_method, make_config
from ddcore.methods.cafe import class_mean_distance, discrimination_loss, layer_features
from ddcore.models import create_model
from tests.methodkit import TINY_NET, straight_and_resumed, tiny_mnist

TINY_CAFE = {"iterations": 8, "batch_real": 8, "test_per_class": 8, "max_outer_loop": 4, "max_inner_loop": 3,
             "watch": 3}


@pytest.fixture(scope="module")
def tiny() -> LoadedDataset:
    return tiny_mnist(20, 5)


def test_cafe_layerwise_distance_and_discrimination_by_hand() -> None:
    # 2 classes; real: 2 per class, synthetic: 1 per class; features are 2-D
    real = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 4.0]])  # class means (2, 0) and (0, 3)
    syn = torch.tensor([[2.0, 1.0], [1.0, 3.0]])
    assert class_mean_distance(real, syn, 2).item() == pytest.approx(1.0 + 1.0)  # (0,-1) and (-1, 0) squared
    # logits of real image i: its inner products with the synthetic class centres (2, 1) and (1, 3)
    logits = real @ syn.T
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 0, 1, 1]), reduction="sum")
    assert discrimination_loss(real, torch.tensor([0, 0, 1, 1]), syn, 2).item() == pytest.approx(expected.item())
    # feature maps (N, C, H, W) are compared per position as well
    fm_r, fm_s = torch.zeros(4, 1, 2, 2), torch.ones(2, 1, 2, 2)
    assert class_mean_distance(fm_r, fm_s, 2).item() == pytest.approx(8.0)


def test_cafe_aligns_each_blocks_activation_and_the_pooled_output() -> None:
    net = create_model("convnet", 1, 10, 28)
    feats = layer_features(net, torch.randn(2, 1, 28, 28))
    assert [tuple(f.shape[1:]) for f in feats] == [(128, 32, 32), (128, 16, 16), (128, 8, 8), (128, 4, 4)]
    x = torch.randn(3, 1, 28, 28)
    assert torch.allclose(layer_features(net, x)[-1].flatten(1), net.embed(x), atol=1e-6)


def cafe(data, seed=0, **overrides):
    return create_method("cafe", data, 2, preset="paper", seed=seed, model_kwargs=TINY_NET, **{**TINY_CAFE, **overrides})


def test_cafe_loss_falls_on_a_held_out_network(tiny) -> None:
    m = cafe(tiny, lr_img=0.05)
    real = m.real_batches(8, torch.Generator().manual_seed(9))

    def held_out() -> float:
        net = m.network(torch.Generator().manual_seed(123))
        middle, output = m.alignment_loss(net, real, m.images)
        return float((middle + output).detach())

    before = held_out()
    for _ in range(8):
        m.step()
    assert held_out() < 0.7 * before


def test_cafe_checkpoint_and_resume_equal_an_uninterrupted_run(tiny) -> None:
    straight, resumed = straight_and_resumed(lambda: cafe(tiny, seed=2, iterations=4, lr_milestones=(2,), dsa=True), 4, 2)
    assert torch.equal(straight.images, resumed.images)


def test_cafe_presets_and_schedule(tiny) -> None:
    paper = make_config("cafe", get_dataset_info("cifar10"), 10, "paper")
    assert (paper.iterations, paper.lr_img, paper.lr_milestones, paper.layer_weights, paper.inner_weight) == \
        (2000, 0.1, (1200, 1600, 1800), (0.1, 0.1, 1.0, 1.0), 0.01)
    m = cafe(tiny, lr_milestones=(1, 3))
    lrs = []
    for _ in range(4):
        lrs.append(m._lr())
        m.iteration += 1
    assert lrs == [0.1, 0.05, 0.05, 0.025]


# ---------------------------------------------------------------------- IDM
TINY_IDM = {"iterations": 12, "batch_real": 8, "trained_bs": 16, "net_generate_interval": 4, "net_num": 3,
            "model_train_steps": 2}


def idm(data, seed=0, **overrides):
    return create_method("idm", data, 2, preset="quick", seed=seed, model_kwargs=TINY_NET, **{**TINY_IDM, **overrides})


def test_idm_queue_grows_every_interval_and_keeps_at_most_net_num(tiny) -> None:
    m = idm(tiny, net_num=5, meter_reset=6)
    assert len(m.queue) == 3  # the reference starts with three networks
    sizes = [m.step()["networks"] for _ in range(9)]
    assert sizes == [4, 4, 4, 4, 5, 5, 5, 5, 5]  # +1 at iterations 0 and 4; 8 would make 6 > net_num: the oldest leaves
    assert sum(member["seen"] for member in m.queue) > 0  # networks train on real data
    assert m.accuracy({"correct": 3, "seen": 4}) == 75.0 and m.accuracy({"correct": 0, "seen": 0}) == 0.0


def test_idm_matches_partitioned_images_and_its_sets_decode(tiny) -> None:
    m = idm(tiny, iterations=1)
    m.step()
    s = m.synthetic()
    assert len(s) == 20 and s.meta.config["formation_factor"] == 2  # stored images; evaluation trains on 80


def test_idm_loss_falls_on_a_held_out_network(tiny) -> None:
    m = idm(tiny, lr_img=1.0, dsa=False)
    real = m.real_batches(8, torch.Generator().manual_seed(9))
    from ddcore.multiformation import decode

    def held_out() -> float:
        net = create_model("convnet", 1, 10, 28, **TINY_NET)
        with torch.no_grad():
            r = net.embed(real).view(10, 8, -1).mean(1)
            s = net.embed(decode(m.images.detach(), 2)).view(10, 8, -1).mean(1)
        return float(((r - s) ** 2).sum())

    torch.manual_seed(5)
    before = held_out()
    for _ in range(12):
        m.step()
    torch.manual_seed(5)
    assert held_out() < 0.8 * before


def test_idm_checkpoint_and_resume_equal_an_uninterrupted_run(tiny) -> None:
    straight, resumed = straight_and_resumed(lambda: idm(tiny, seed=4, iterations=6), 6, 3)
    assert torch.equal(straight.images, resumed.images)
    assert [m["seen"] for m in straight.queue] == [m["seen"] for m in resumed.queue]


def test_idm_presets() -> None:
    cifar = get_dataset_info("cifar10")
    one, ten, fifty = (make_config("idm", cifar, i, "paper") for i in (1, 10, 50))
    assert (one.net_generate_interval, one.batch_real, one.ce_weight) == (5, 5000, 0.5)
    assert (ten.net_generate_interval, ten.batch_real, ten.lr_img, ten.formation_factor) == (30, 256, 0.2, 2)
    assert fifty.ce_weight == 0.1
