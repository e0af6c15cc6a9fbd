"""DC, DSA and DM on tiny problems: losses fall, resume is exact, distances and DM's zero loss by hand."""
from __future__ import annotations

import pytest
import torch

from ddcore.augment import apply_dsa, plan_dsa
from ddcore.checkpoint import state_from_bytes, state_to_bytes
from ddcore.data import LoadedDataset, load_dataset
from ddcore.methods import create_method, list_methods, make_config
from ddcore.methods.matching import apply_class_plans, class_plans, distance_wb, get_loops, match_loss

TINY_NET = {"width": 8, "depth": 2}


@pytest.fixture(scope="module")
def tiny() -> LoadedDataset:
    """MNIST with 12 training images per class (the methods sample real batches from these)."""
    d = load_dataset("mnist")
    g = torch.Generator().manual_seed(0)
    return LoadedDataset(d.info, d.train.subset_per_class(12, g), d.test.subset_per_class(5, g), "tiny mnist")


def make(name: str, data: LoadedDataset, ipc: int = 2, seed: int = 0, **overrides):
    overrides.setdefault("batch_real", 8)
    return create_method(name, data, ipc, preset="paper", seed=seed, device="cpu", model_kwargs=TINY_NET, **overrides)


def test_registered_with_presets(tiny):
    assert {"dc", "dsa", "dm"} <= set(list_methods())
    for name in ("dc", "dsa", "dm"):
        paper = make_config(name, tiny.info, 10, "paper")
        quick = make_config(name, tiny.info, 10, "quick")
        assert quick.iterations < paper.iterations
    dc, dm = make_config("dc", tiny.info, 1, "paper"), make_config("dm", tiny.info, 50, "paper")
    assert (dc.iterations, dc.lr_img, dc.lr_net, dc.batch_real, dc.init, dc.dsa) == (1000, 0.1, 0.01, 256, "noise", False)
    assert (dm.iterations, dm.lr_img, dm.batch_real, dm.init, dm.dsa) == (20000, 1.0, 256, "real", True)
    dsa = make_config("dsa", tiny.info, 1, "paper")
    assert (dsa.init, dsa.dsa) == ("real", True)


def test_loops_follow_the_reference_and_extend_it():
    assert [get_loops(i) for i in (1, 10, 20, 30, 40, 50)] == [(1, 1), (10, 50), (20, 25), (30, 20), (40, 15), (50, 10)]
    assert get_loops(5) == (5, 50) and get_loops(100) == (100, 5)


def test_gradient_distance_by_hand():
    real = [torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([3.0, 4.0])]
    syn = [torch.tensor([[2.0, 0.0], [1.0, 0.0]]), torch.tensor([1.0, 1.0])]
    # row 0: cos = 1 -> 0; row 1: cos = 0 -> 1; the bias (1-D) counts 0
    assert match_loss(syn, real, "ours").item() == pytest.approx(1.0, abs=1e-5)
    assert match_loss(syn, real, "mse").item() == pytest.approx(1 + 0 + 1 + 1 + 4 + 9)
    r, s = torch.tensor([1.0, 0, 0, 1, 3, 4]), torch.tensor([2.0, 0, 1, 0, 1, 1])
    assert match_loss(syn, real, "cos").item() == pytest.approx(1 - float(r @ s) / float(r.norm() * s.norm()), abs=1e-5)
    conv_r, conv_s = torch.ones(2, 1, 1, 2), torch.tensor([1.0, 1.0, -1.0, -1.0]).view(2, 1, 1, 2)
    assert distance_wb(conv_r, conv_s).item() == pytest.approx(0 + 2, abs=1e-5)  # channels: cos 1 and cos -1


def test_batched_siamese_augmentation_equals_per_class():
    torch.manual_seed(0)
    x = torch.randn(6 * 3, 1, 12, 12)
    plans = class_plans("color_crop_cutout_flip_scale_rotate", list(range(100, 106)), x.shape, None)
    batched = apply_class_plans(x, plans, 3)
    single = torch.cat([apply_dsa(x[c * 3:(c + 1) * 3], plan_dsa("color_crop_cutout_flip_scale_rotate", x.shape,
                                                                   seed=100 + c)) for c in range(6)])
    assert torch.allclose(batched, single, atol=1e-6)


@pytest.mark.parametrize("name", ["dc", "dsa", "dm"])
def test_loss_falls(tiny, name):
    extra = {"outer_loop": 2, "inner_loop": 1} if name != "dm" else {}
    m = make(name, tiny, ipc=2, init="noise", lr_img=1.0 if name == "dm" else 0.5, iterations=8, **extra)
    losses = [m.step()["loss"] for _ in range(8)]
    assert sum(losses[-3:]) < sum(losses[:3]), losses


@pytest.mark.parametrize("name", ["dc", "dm"])
def test_resume_equals_uninterrupted(tiny, name):
    extra = {"outer_loop": 2, "inner_loop": 2} if name == "dc" else {}
    straight = make(name, tiny, seed=3, iterations=4, dsa=True, **extra)
    for _ in range(4):
        straight.step()
    first = make(name, tiny, seed=3, iterations=4, dsa=True, **extra)
    first.step(), first.step()
    state = state_from_bytes(state_to_bytes(first.state_dict()))  # through the file format
    resumed = make(name, tiny, seed=3, iterations=4, dsa=True, **extra)
    resumed.load_state_dict(state)
    resumed.step(), resumed.step()
    assert resumed.iteration == straight.iteration == 4
    assert torch.allclose(resumed.images, straight.images, atol=1e-6)
    assert torch.equal(resumed.images, straight.images)


def test_dm_identical_real_and_synthetic_gives_zero_loss(tiny):
    """With IPC = all images of a class and a real batch of all of them, both means are the same."""
    d = load_dataset("mnist")
    g = torch.Generator().manual_seed(1)
    exact = LoadedDataset(d.info, d.train.subset_per_class(4, g), d.test.subset_per_class(2, g), "4 per class")
    for dsa in (False, True):  # siamese: the same transform on both sides keeps them identical
        m = create_method("dm", exact, 4, preset="paper", device="cpu", model_kwargs=TINY_NET, batch_real=4, dsa=dsa,
                          init="real")
        assert m.step()["loss"] < 1e-9


def test_dm_class_groups_and_fast_real_pass_give_the_same_step(tiny, monkeypatch):
    """The CPU speed-ups change the order of the work, not the step: synthetic classes in groups of one vs all
    at once, and the real side through fast_embed vs net.embed (channels_last mode takes the plain path)."""
    import ddcore.methods.dm as dm

    def one_step(group: int, mode: str) -> torch.Tensor:
        monkeypatch.setattr(dm, "SYN_CHUNK_CPU", group)
        m = make("dm", tiny, ipc=3, seed=5, init="real", lr_img=1.0, momentum_img=0.0, speed_mode=mode)
        m.step()
        return m.images.detach().clone()

    grouped, whole = one_step(1, "fp32"), one_step(10_000, "fp32")
    plain = one_step(10_000, "channels_last")
    assert torch.allclose(grouped, whole, atol=1e-5)
    assert torch.allclose(whole, plain, atol=1e-4)
    assert not torch.equal(whole, make("dm", tiny, ipc=3, seed=5, init="real").images.detach())  # it did move


@pytest.mark.parametrize("name", ["dc", "dsa"])
def test_dc_fast_cpu_passes_give_the_same_step(tiny, name):
    """DC/DSA's real gradients and inner loop through models/fast_cpu.py (fp32) vs the module's own passes
    (channels_last mode): the same images after an iteration with two matchings and one inner loop. A smooth
    activation and width 16 (NNPACK's layers) make the comparison tight (a ReLU kink amplifies rounding)."""
    kwargs = {"width": 16, "depth": 2, "activation": "swish"}

    def one_step(mode: str) -> torch.Tensor:
        m = create_method(name, tiny, 2, preset="paper", seed=4, device="cpu", model_kwargs=kwargs, batch_real=12,
                          outer_loop=2, inner_loop=3, init="real", lr_img=1.0, speed_mode=mode)
        m.step()
        return m.images.detach().clone()

    fast, plain = one_step("fp32"), one_step("channels_last")
    start = create_method(name, tiny, 2, preset="paper", seed=4, device="cpu", model_kwargs=kwargs, init="real").images
    moved = (plain - start).abs().max()
    assert moved > 1e-3
    assert (fast - plain).abs().max() < 1e-3 * moved


def test_bf16_on_a_cpu_without_bf16_is_refused_clearly(tiny):
    from ddcore.device import cpu_has_bf16

    if cpu_has_bf16():
        pytest.skip("this CPU has native bfloat16")
    with pytest.raises(ValueError, match="bfloat16 instructions"):
        make("dm", tiny, speed_mode="bf16")
