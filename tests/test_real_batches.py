"""A matching method's real batch never repeats an image. The reference's get_images cuts a permutation at n, so a
class with fewer images than batch_real (a small folder, a subset, a privacy study's members) is taken whole, once;
every matching method runs on such uneven classes, and DM's loss is then the distance of the whole classes' means."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ddcore.augment import apply_dsa, plan_dsa
from ddcore.data import LoadedDataset, get_dataset_info
from ddcore.data.split import ImageSplit
from ddcore.estimates import cpu_estimate
from ddcore.methods import create_method, make_config
from ddcore.methods.cafe import class_mean_distance
from ddcore.methods.matching import apply_class_plans, class_means, class_plans, match_loss
from ddcore.tasks.privacy import PRESETS, PrivacySpec, distil_seconds_per_iteration, plan
from tests.methodkit import TINY_NET, tiny_mnist

SIZES = {0: 3, 1: 5}  # images in classes 0 and 1; the others keep 12


@pytest.fixture(scope="module")
def uneven() -> LoadedDataset:
    d = tiny_mnist(12, 3)
    keep = torch.cat([ix[: SIZES.get(c, len(ix))] for c, ix in enumerate(d.train.class_indices)])
    train = ImageSplit(d.train.images[keep], d.train.labels[keep], d.info.num_classes)
    assert train.class_counts() == [3, 5] + [12] * 8
    return LoadedDataset(d.info, train, d.test, "uneven tiny mnist")


def rows_of(x: torch.Tensor) -> list[tuple[float, ...]]:
    return sorted(tuple(r.tolist()) for r in x.flatten(1))


def test_a_small_class_is_taken_whole_and_no_image_repeats(uneven) -> None:
    m = create_method("dm", uneven, 1, preset="quick", model_kwargs=TINY_NET, batch_real=8)
    assert m.real_counts(8) == [3, 5] + [8] * 8
    blocks = m.real_blocks(8, torch.Generator().manual_seed(1))
    assert [len(b) for b in blocks] == [3, 5] + [8] * 8
    for c, block in enumerate(blocks):
        whole = m.normalize_u8(uneven.train.images[uneven.train.class_indices[c]])
        assert len(set(rows_of(block))) == len(block)  # no image twice
        assert set(rows_of(block)) <= set(rows_of(whole))  # and only the class's own
        if c in SIZES:
            assert rows_of(block) == rows_of(whole)  # a small class: every image, once
    # the one-class helper every method (and a plugin) has does the same
    one = m.real_batch(0, 8, torch.Generator().manual_seed(2)).cpu()
    assert rows_of(one) == rows_of(uneven.normalize(uneven.train.images[uneven.train.class_indices[0]]))


@pytest.mark.parametrize("architecture", ["convnet", "convnetbn"])  # batchnorm: each class's block its own batch
def test_dm_loss_on_small_classes_is_the_distance_of_the_whole_class_means(uneven, architecture) -> None:
    m = create_method("dm", uneven, 1, preset="paper", architecture=architecture, model_kwargs=TINY_NET, batch_real=64,
                      dsa=False)
    k = uneven.info.num_classes
    whole = [m.normalize_u8(uneven.train.images[ix]) for ix in uneven.train.class_indices]
    net = m.network(m.rng(2))  # the network step() draws for iteration 0
    net.train()
    with torch.no_grad():
        m.images.copy_(torch.stack([w.mean(0) for w in whole]))  # near the real means: a repeat would show
        expected = sum(float(((net.embed(whole[c]).mean(0) - net.embed(m.images[c:c + 1]).mean(0)) ** 2).sum())
                       for c in range(k)) / k
    assert m.step()["loss"] == pytest.approx(expected, rel=1e-4)


def test_dc_matches_each_class_on_the_gradient_of_its_whole_small_class(uneven) -> None:
    m = create_method("dc", uneven, 1, preset="paper", model_kwargs=TINY_NET, batch_real=64, outer_loop=1,
                      inner_loop=1, dis_metric="mse")
    k = uneven.info.num_classes
    net = m.network(m.rng(2))  # the network step() draws for iteration 0
    params = list(net.parameters())
    expected = 0.0
    for c in range(k):
        real = m.normalize_u8(uneven.train.images[uneven.train.class_indices[c]])
        g_real = torch.autograd.grad(F.cross_entropy(net(real), torch.full((len(real),), c)), params)
        g_syn = torch.autograd.grad(F.cross_entropy(net(m.images[c:c + 1].detach()), torch.tensor([c])), params)
        expected += float(match_loss(list(g_syn), list(g_real), "mse"))
    assert m.step()["loss"] == pytest.approx(expected / k, rel=2e-5)  # repeats of the small classes: 5e-4 off


@pytest.mark.parametrize("name, settings", [
    ("dc", {"outer_loop": 2, "inner_loop": 1}),
    ("dsa", {"outer_loop": 2, "inner_loop": 1}),
    ("dm", {"dsa": True}),
    ("cafe", {"dsa": True, "test_per_class": 8, "max_outer_loop": 2, "max_inner_loop": 2, "watch": 2}),
    ("idc", {"inner_loop": 1, "n_data": 16}),
    ("idm", {"trained_bs": 16, "net_generate_interval": 4, "net_num": 2, "model_train_steps": 1}),
])
def test_every_matching_method_steps_on_uneven_classes(uneven, name, settings) -> None:
    m = create_method(name, uneven, 1, preset="paper", model_kwargs=TINY_NET, **{"batch_real": 8, **settings})
    before = m.images.detach().clone()
    losses = [m.step()["loss"] for _ in range(2)]
    assert all(torch.isfinite(torch.tensor(losses))) and not torch.equal(before, m.images.detach())


def test_siamese_augmentation_of_uneven_blocks_equals_per_class() -> None:
    counts = [3, 1, 4, 2]
    x = torch.randn(sum(counts), 1, 12, 12, generator=torch.Generator().manual_seed(0))
    strategy = "color_crop_cutout_flip_scale_rotate"
    plans = class_plans(strategy, [200, 201, 202, 203], x.shape, None)
    single = torch.cat([apply_dsa(block, plan_dsa(strategy, x.shape, seed=200 + c))
                        for c, block in enumerate(x.split(counts))])
    assert torch.allclose(apply_class_plans(x, plans, counts), single, atol=1e-6)


def test_class_means_and_cafe_distance_of_uneven_blocks_by_hand() -> None:
    real = torch.tensor([[1.0, 0.0], [3.0, 0.0], [5.0, 0.0], [0.0, 4.0]])  # class 0: three rows, mean (3, 0); class 1: (0, 4)
    assert torch.equal(class_means(real, [3, 1]), torch.tensor([[3.0, 0.0], [0.0, 4.0]]))
    syn = torch.tensor([[2.0, 1.0], [1.0, 3.0]])
    assert class_mean_distance(real, syn, 2, [3, 1]).item() == pytest.approx((1 + 1) + (1 + 1))


def test_the_privacy_estimate_prices_the_real_batch_a_class_gives() -> None:
    info = get_dataset_info("mnist")
    for method in ("dm", "dc", "idm"):  # members >= batch_real: the measured row the Distill page shows
        assert distil_seconds_per_iteration(method, info, 10, "quick", make_config(method, info, 10, "quick"), 1000,
                                            1.0) == \
            cpu_estimate(method, info, 10, 1, "quick").per_iteration_s

    def distil_seconds(pool_per_class: int) -> float:
        spec = PrivacySpec(dataset="mnist", **{**PRESETS["quick"], "pool_per_class": pool_per_class})
        return sum(s for name, s in plan(spec) if name.startswith("Distil"))

    # DM quick takes 64 real images per class: 64 or more members cost the same, fewer cost less
    assert distil_seconds(10) < distil_seconds(64) < distil_seconds(128) == distil_seconds(256)


def test_full_classes_draw_exactly_what_they_drew_before() -> None:
    data = tiny_mnist(12, 3)  # every class holds more than the batch: checkpoints and recorded runs stay valid
    m = create_method("dm", data, 1, preset="quick", model_kwargs=TINY_NET, batch_real=8)
    g = torch.Generator().manual_seed(3)
    before = torch.cat([data.train.sample_class(c, 8, g) for c in range(data.info.num_classes)])
    assert torch.equal(m.real_batches(8, torch.Generator().manual_seed(3)), m.normalize_u8(data.train.images[before]))
    x = torch.randn(40, 1, 12, 12, generator=torch.Generator().manual_seed(4))
    plans = class_plans("color_crop_cutout_flip_scale_rotate", [7, 8, 9, 10], x.shape, None)
    assert torch.equal(apply_class_plans(x, plans, [10] * 4), apply_class_plans(x, plans, 10))
    with pytest.raises(ValueError, match="40 rows"):
        apply_class_plans(x, plans, [10, 10, 10, 9])
