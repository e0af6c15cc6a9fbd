"""Behaviour of ddcore.augment: DSA (differentiable, siamese) and the DC evaluation augmentation."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ddcore.augment import (
    DSA_OPS,
    DCAugParams,
    DSAParams,
    affine_warp,
    apply_dsa,
    cutout,
    dc_augment,
    default_dc_strategy,
    default_strategy,
    dsa_augment,
    parse_strategy,
    plan_dsa,
    rotation_theta,
    translate,
)
from ddcore.registry import UnknownNameError

FULL = "color_crop_cutout_flip_scale_rotate"
ELEMENTARY_CASES = ["color", "crop", "cutout", "flip", "scale", "rotate"]


def _images(n: int, size: int = 16, channels: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=g)


def _shift_reference(img: torch.Tensor, dh: int, dw: int, fill: torch.Tensor) -> torch.Tensor:
    """Independent version (pad with `fill`, slice): out[i, j] = img[i + dh, j + dw]."""
    c, h, w = img.shape
    pad = max(abs(dh), abs(dw))
    canvas = fill.view(c, 1, 1).expand(c, h + 2 * pad, w + 2 * pad).clone()
    canvas[:, pad:pad + h, pad:pad + w] = img
    return canvas[:, pad + dh:pad + dh + h, pad + dw:pad + dw + w]


# ---------------------------------------------------------------- strategy strings and errors
def test_none_and_empty_strategies_are_identity():
    x = _images(3)
    for strategy in ("none", "None", "", None):
        assert parse_strategy(strategy) == []
        assert torch.equal(dsa_augment(x, strategy, seed=5), x)
        assert torch.equal(dc_augment(x, strategy), x)


def test_unknown_op_error_lists_valid_ops():
    with pytest.raises(UnknownNameError) as info:
        dsa_augment(_images(2), "color_crpo", seed=1)
    message = str(info.value)
    assert "crpo" in message and "Did you mean: crop" in message
    for name in ("color", "crop", "cutout", "flip", "scale", "rotate"):
        assert name in message
    with pytest.raises(ValueError, match="Available: crop, scale, rotate, noise"):
        dc_augment(_images(2), "crop_blur")


def test_bad_aug_mode_is_refused():
    with pytest.raises(ValueError, match="aug_mode"):
        dsa_augment(_images(2), "flip", seed=0, params=DSAParams(aug_mode="X"))


def test_reference_defaults_and_per_dataset_strategies():
    p = DSAParams()
    assert (p.aug_mode, p.prob_flip, p.ratio_scale, p.ratio_rotate) == ("S", 0.5, 1.2, 15.0)
    assert (p.ratio_crop_pad, p.ratio_cutout, p.brightness, p.saturation, p.contrast) == (0.125, 0.5, 1.0, 2.0, 0.5)
    assert default_strategy("MNIST") == default_strategy("svhn") == "color_crop_cutout_scale_rotate"
    assert default_strategy("CIFAR10") == default_strategy("fashionmnist") == FULL
    assert DSA_OPS.get("color") == ("brightness", "saturation", "contrast")
    assert default_dc_strategy("MNIST") == "crop_scale_rotate"
    assert default_dc_strategy("CIFAR10") == "none"
    assert default_dc_strategy("MNIST", "ConvNetBN") == "crop_noise"
    d = DCAugParams()
    assert (d.crop, d.scale, d.rotate, d.noise) == (4, 0.2, 45, 0.001)


def test_mode_s_applies_one_op_mode_m_applies_all():
    shape = (4, 3, 16, 16)
    for seed in range(20):
        steps = plan_dsa(FULL, shape, seed=seed)
        fns = [s.fn for s in steps]
        assert fns in (["brightness", "saturation", "contrast"], ["crop"], ["cutout"], ["flip"], ["scale"], ["rotate"])
    chosen = {plan_dsa(FULL, shape, seed=s)[0].fn for s in range(60)}
    assert chosen == {"brightness", "crop", "cutout", "flip", "scale", "rotate"}  # the choice itself is seeded
    all_steps = [s.fn for s in plan_dsa(FULL, shape, seed=3, params=DSAParams(aug_mode="M"))]
    assert all_steps == ["brightness", "saturation", "contrast", "crop", "cutout", "flip", "scale", "rotate"]


# ---------------------------------------------------------------- differentiability
@pytest.mark.parametrize("op", ELEMENTARY_CASES)
@pytest.mark.parametrize("per_sample", [False, True])
def test_gradients_reach_the_images_through_every_op(op, per_sample):
    x = _images(4).requires_grad_(True)
    params = DSAParams(aug_mode="M", prob_flip=1.0)
    out = dsa_augment(x, op, seed=11, params=params, per_sample=per_sample)
    weights = torch.linspace(-1, 1, out.numel()).view_as(out)
    (out * weights).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
    for i in range(4):  # every image receives gradient, cutout only erases part of it
        assert x.grad[i].abs().sum() > 0


def test_gradients_flow_through_full_strategy_in_both_modes():
    for mode in ("S", "M"):
        x = _images(5).requires_grad_(True)
        dsa_augment(x, FULL, seed=2, params=DSAParams(aug_mode=mode)).pow(2).sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0


# ---------------------------------------------------------------- siamese seeding
def test_same_seed_same_transform_for_batches_of_different_sizes():
    real, syn = _images(7, seed=1), _images(3, seed=2)
    for mode in ("S", "M"):
        params = DSAParams(aug_mode=mode)
        for seed in range(12):
            out_syn = dsa_augment(syn, FULL, seed=seed, params=params)
            # syn's images inside a bigger, different batch get the very same transform
            out_mixed = dsa_augment(torch.cat([real, syn]), FULL, seed=seed, params=params)
            assert torch.allclose(out_mixed[7:], out_syn, atol=1e-6), (mode, seed)
            # and a whole batch shares one transform: identical images stay identical
            twins = dsa_augment(syn[:1].expand(5, -1, -1, -1).contiguous(), FULL, seed=seed, params=params)
            assert torch.allclose(twins, twins[:1].expand_as(twins), atol=1e-6)


def test_per_sample_variant_pairs_samples_by_index():
    real, syn = _images(9, seed=3), _images(4, seed=4)
    params = DSAParams(aug_mode="M")
    for seed in range(6):
        out_syn = dsa_augment(syn, FULL, seed=seed, params=params, per_sample=True)
        out_big = dsa_augment(torch.cat([syn, real]), FULL, seed=seed, params=params, per_sample=True)
        assert torch.allclose(out_big[:4], out_syn, atol=1e-6)
    rot = plan_dsa("rotate", (9, 3, 16, 16), seed=5, per_sample=True)[0].values["radians"]
    assert rot.shape == (9,) and rot.unique().numel() == 9  # distinct transforms inside a batch


def test_different_seeds_give_different_transforms():
    x = _images(4)
    outputs = [dsa_augment(x, FULL, seed=s, params=DSAParams(aug_mode="M")) for s in range(8)]
    for i in range(len(outputs)):
        for j in range(i + 1, len(outputs)):
            assert not torch.allclose(outputs[i], outputs[j])


def test_seeded_calls_leave_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    dsa_augment(_images(3), FULL, seed=42, params=DSAParams(aug_mode="M"))
    assert torch.equal(torch.rand(5), expected)


def test_unseeded_calls_use_the_given_generator_per_sample():
    x = _images(6)
    a = dsa_augment(x, "rotate", seed=None, generator=torch.Generator().manual_seed(7))
    b = dsa_augment(x, "rotate", seed=None, generator=torch.Generator().manual_seed(7))
    c = dsa_augment(x, "rotate", seed=None, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    rot = plan_dsa("rotate", x.shape, seed=None, generator=torch.Generator().manual_seed(1))[0].values["radians"]
    assert rot.unique().numel() == 6


def test_plan_can_be_replayed_on_another_batch():
    plan = plan_dsa(FULL, (5, 3, 16, 16), seed=9, params=DSAParams(aug_mode="M"))
    other = _images(5, seed=8)
    assert torch.equal(apply_dsa(other, plan), dsa_augment(other, FULL, seed=9, params=DSAParams(aug_mode="M")))


# ---------------------------------------------------------------- pixel-exact geometry
def test_forced_flip_mirrors_known_pixels():
    x = torch.arange(2 * 1 * 2 * 3, dtype=torch.float32).view(2, 1, 2, 3)
    out = dsa_augment(x, "flip", seed=0, params=DSAParams(prob_flip=1.0))
    assert out[0, 0].tolist() == [[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]
    assert torch.equal(out, x.flip(3))
    assert torch.equal(dsa_augment(x, "flip", seed=0, params=DSAParams(prob_flip=0.0)), x)


def test_rotation_by_90_degrees_matches_rot90():
    x = torch.arange(2 * 5 * 5, dtype=torch.float32).view(1, 2, 5, 5)
    theta = rotation_theta(torch.tensor([math.pi / 2]), 5, 5)
    out = affine_warp(x, theta)
    assert torch.allclose(out, torch.rot90(x, 1, dims=(2, 3)), atol=1e-4)
    # and a 2x2 corner marker moves to the expected corner
    img = torch.zeros(1, 1, 4, 4)
    img[0, 0, 0, 3] = 1.0  # top-right
    moved = affine_warp(img, rotation_theta(torch.tensor([math.pi / 2]), 4, 4))
    assert moved[0, 0, 0, 0] == pytest.approx(1.0, abs=1e-4) and moved.sum() == pytest.approx(1.0, abs=1e-4)


def test_dsa_rotate_moves_an_off_centre_blob_by_the_sampled_angle():
    size, c = 21, 10.0
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    blob = torch.exp(-((yy - c) ** 2 + (xx - (c + 6)) ** 2) / 3.0).view(1, 1, size, size).repeat(4, 2, 1, 1)
    params = DSAParams(aug_mode="M", ratio_rotate=90.0)
    for seed in range(5):
        plan = plan_dsa("rotate", blob.shape, seed=seed, params=params, per_sample=True)
        radians = plan[0].values["radians"]
        assert radians.abs().max() <= math.pi / 2
        out = apply_dsa(blob, plan)
        for i in range(4):
            mass = out[i, 0]
            cy, cx = (mass * yy).sum() / mass.sum() - c, (mass * xx).sum() / mass.sum() - c
            a = float(radians[i])  # output->input map [[cos, -sin], [sin, cos]] (x right, y down)
            assert cx == pytest.approx(6 * math.cos(a), abs=0.3) and cy == pytest.approx(-6 * math.sin(a), abs=0.3)


def test_crop_is_an_integer_shift_with_zero_fill():
    x = torch.arange(1 * 2 * 6 * 6, dtype=torch.float32).view(1, 2, 6, 6) + 1
    out = translate(x, torch.tensor([1]), torch.tensor([-2]))
    assert out[0, 0, 0].tolist() == [0.0, 0.0, 7.0, 8.0, 9.0, 10.0]
    assert torch.equal(out[0], _shift_reference(x[0], 1, -2, torch.zeros(2)))
    # through dsa_augment: every image is some shift in [-2, 2] (round(16 * 0.125) = 2)
    imgs = _images(6) + 1
    for seed in range(4):
        out = dsa_augment(imgs, "crop", seed=seed, per_sample=True)
        for i in range(6):
            matches = [(dh, dw) for dh in range(-2, 3) for dw in range(-2, 3)
                       if torch.equal(out[i], _shift_reference(imgs[i], dh, dw, torch.zeros(3)))]
            assert len(matches) == 1


def test_cutout_erases_one_box_of_the_reference_size():
    ones = torch.ones(8, 1, 16, 16)
    out = dsa_augment(ones, "cutout", seed=4, per_sample=True)
    for img in out[:, 0]:
        rows = (img == 0).any(dim=1).nonzero().flatten()
        cols = (img == 0).any(dim=0).nonzero().flatten()
        assert 0 < rows.numel() <= 8 and 0 < cols.numel() <= 8  # 16 * 0.5 = 8 pixels a side
        box = img[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert (box == 0).all() and int((img == 0).sum()) == box.numel()  # one solid rectangle
    direct = cutout(torch.ones(1, 1, 6, 6), torch.tensor([1]), torch.tensor([-1]), 3, 3)
    assert direct[0, 0, 1:4, 0:2].eq(0).all() and int(direct.eq(0).sum()) == 6


def test_scale_with_ratio_one_is_identity_and_color_ops_keep_their_invariants():
    x = _images(4)
    assert torch.allclose(dsa_augment(x, "scale", seed=0, params=DSAParams(ratio_scale=1.0)), x, atol=1e-5)
    out = apply_dsa(x, plan_dsa("color", x.shape, seed=3, params=DSAParams(aug_mode="M"), per_sample=True)[:1])
    shift = out - x  # brightness: a constant per image in [-0.5, 0.5]
    assert torch.allclose(shift, shift[:, :1, :1, :1].expand_as(shift), atol=1e-6)
    assert shift.abs().max() <= 0.5
    gray = x[:, :1].expand(-1, 3, -1, -1).contiguous()  # saturation leaves gray images alone
    sat = [s for s in plan_dsa("color", gray.shape, seed=1, params=DSAParams(aug_mode="M")) if s.fn == "saturation"]
    assert torch.allclose(apply_dsa(gray, sat), gray, atol=1e-6)
    con = [s for s in plan_dsa("color", x.shape, seed=1, params=DSAParams(aug_mode="M")) if s.fn == "contrast"]
    assert torch.allclose(apply_dsa(x, con).mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-5)


def test_float64_input_keeps_dtype():
    x = _images(3).double()
    assert dsa_augment(x, FULL, seed=1, params=DSAParams(aug_mode="M")).dtype == torch.float64


def test_a_plan_moves_to_a_device_whole_with_its_shapes_and_dtypes_and_keeps_sizes_on_the_host():
    """plan_on_device packs every sampled value into one copy per dtype (a GPU's blocking copies were the DM step's
    host stalls); checked here on the 'meta' device, which keeps shapes and dtypes but no numbers (the values
    themselves are checked against the CPU by test_cuda_matches_cpu_for_the_same_seed where CUDA is)."""
    from ddcore.augment import plan_on_device

    for per_sample in (False, True):
        plan = plan_dsa(FULL, (5, 3, 8, 8), seed=3, params=DSAParams(aug_mode="M"), per_sample=per_sample)
        moved = plan_on_device(plan, "meta")
        assert [s.fn for s in moved] == [s.fn for s in plan] and len(plan) == 8
        for before, after in zip(plan, moved):
            assert before.values.keys() == after.values.keys()
            for key, value in after.values.items():
                assert value.shape == before.values[key].shape and value.dtype == before.values[key].dtype
                assert value.device.type == ("cpu" if key in ("size_h", "size_w") else "meta"), (before.fn, key)
                assert before.values[key].device.type == "cpu"  # the plan itself is left as it was
    assert plan_on_device(plan, "cpu") is plan  # nothing to move: the same plan


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_for_the_same_seed():
    x = _images(6)
    for mode in ("S", "M"):
        for seed in range(6):
            cpu = dsa_augment(x, FULL, seed=seed, params=DSAParams(aug_mode=mode))
            gpu = dsa_augment(x.cuda(), FULL, seed=seed, params=DSAParams(aug_mode=mode))
            assert gpu.device.type == "cuda"
            assert torch.allclose(gpu.cpu(), cpu, atol=1e-4)
    out = dc_augment(x.cuda(), "crop_scale_rotate", generator=torch.Generator().manual_seed(0))
    assert out.device.type == "cuda" and torch.isfinite(out).all()


# ---------------------------------------------------------------- DC evaluation augmentation
def test_dc_crop_shifts_with_channel_mean_fill():
    x = _images(10, size=12, seed=5)
    out = dc_augment(x, "crop", generator=torch.Generator().manual_seed(0))
    fill = x.mean(dim=(0, 2, 3))
    for i in range(10):
        matches = [(dh, dw) for dh in range(-4, 4) for dw in range(-4, 4)
                   if torch.allclose(out[i], _shift_reference(x[i], dh, dw, fill))]
        assert len(matches) == 1


def test_dc_scale_matches_nearest_resize_and_centred_paste():
    x = _images(6, size=10, channels=1, seed=6)
    out = dc_augment(x, "scale", generator=torch.Generator().manual_seed(2), params=DCAugParams(scale=0.2))
    for i in range(6):
        found = False
        for h in range(8, 13):
            for w in range(8, 13):
                tmp = F.interpolate(x[i:i + 1], [h, w])[0]
                side = max(h, w, 10)
                canvas = torch.zeros(1, side, side)
                canvas[:, (side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = tmp
                start = (side - 10) // 2
                found |= torch.equal(out[i], canvas[:, start:start + 10, start:start + 10])
        assert found
    assert torch.equal(dc_augment(x, "scale", params=DCAugParams(scale=0.0)), x)


def test_dc_augment_batch_is_fast_deterministic_and_leaves_input_alone():
    x = _images(64, size=28, channels=1, seed=7)
    before = x.clone()
    a = dc_augment(x, "crop_scale_rotate", generator=torch.Generator().manual_seed(3))
    b = dc_augment(x, "crop_scale_rotate", generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, before) and torch.equal(a, b)
    assert a.shape == x.shape and torch.isfinite(a).all()
    changed = (a - x).flatten(1).abs().amax(dim=1) > 0
    assert changed.float().mean() > 0.5  # only zero shifts / zero angles / unit scales leave an image as is
    noisy = dc_augment(x, "noise", generator=torch.Generator().manual_seed(0))
    assert 0 < (noisy - x).std() < 0.01
