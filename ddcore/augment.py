"""Image augmentation for condensation: DSA (differentiable, siamese) and the DC evaluation one.

Why: DSA (Zhao & Bilen, ICML 2021) applies the *same* random transform to the real and the
synthetic batch so that matching gradients/features stays meaningful while the synthetic images
learn to be augmentation-invariant; every op must therefore be differentiable w.r.t. the images.
Maths and hyper-parameters follow VICO-UoE/DatasetCondensation utils.py (`ParamDiffAug`,
`DiffAugment`, `rand_scale`, `rand_rotate`, `rand_flip`, `rand_brightness`, `rand_saturation`,
`rand_contrast`, `rand_crop`, `rand_cutout`, `AUGMENT_FNS`; DC-paper `augment`, `get_daparam`).
The code is our own: every op is vectorised over the batch (no per-image Python loops).

Randomness (how we mirror the reference):
- Seeded call (`seed` an int): the reference re-seeds the global RNG with seed, seed+1, seed+2, ...
  before every random draw. We do the same with a *private* CPU `torch.Generator`, so the global
  RNG is never touched and the numbers are identical to the reference's CPU draws. As in the
  reference, the sampled parameters of sample 0 are used for the whole batch ("Siamese"), so two
  batches of *any* sizes get exactly the same transform for the same seed.
- `per_sample=True` with a seed (our batched variant): every sample gets its own parameters from
  the same re-seeded streams. torch's CPU streams are prefix-stable (the first k numbers of a draw
  of n equal a draw of k), so for batches of sizes n and m the first min(n, m) samples are paired:
  sample i of the real batch and sample i of the synthetic batch get the same transform.
- `seed=None`: the reference's non-siamese mode (seed=-1, used while training evaluation models):
  per-sample parameters drawn from `generator` (torch's default CPU generator when None).
Parameters are always drawn on CPU (or on `generator`'s device) and then moved, so a seed gives
the same transform on CPU and CUDA (the reference draws some ops on the GPU RNG instead).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from ddcore.registry import Registry

Tensor = torch.Tensor

__all__ = [
    "DSAParams", "DSAStep", "DSA_OPS", "parse_strategy", "plan_dsa", "apply_dsa", "dsa_augment",
    "default_strategy", "plan_on_device", "DCAugParams", "DC_OPS", "default_dc_strategy", "dc_augment",
    "affine_warp", "rotation_theta", "translate", "cutout",
]


# ----------------------------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------------------------
@dataclass
class DSAParams:
    """Reference `ParamDiffAug` defaults (utils.py)."""

    aug_mode: str = "S"  # 'S': one op sampled per call; 'M': every op of the strategy in turn
    prob_flip: float = 0.5
    ratio_scale: float = 1.2  # scale factor uniform in [1/ratio, ratio] per axis
    ratio_rotate: float = 15.0  # degrees, uniform in [-ratio, ratio]
    ratio_crop_pad: float = 0.125  # integer shift up to round(ratio*size) pixels, zero fill
    ratio_cutout: float = 0.5  # erased square is round(ratio*size) pixels a side
    brightness: float = 1.0  # x + (u - 0.5) * brightness
    saturation: float = 2.0  # (x - mean_c) * (u * saturation) + mean_c
    contrast: float = 0.5  # (x - mean_chw) * (u + contrast) + mean_chw


def default_strategy(dataset_name: str) -> str:
    """Reference per-dataset DSA strategy (readme.md): no flip for digits (MNIST, SVHN)."""
    if dataset_name.strip().lower() in ("mnist", "svhn"):
        return "color_crop_cutout_scale_rotate"
    return "color_crop_cutout_flip_scale_rotate"


# ----------------------------------------------------------------------------------------------
# Deterministic kernels (differentiable in x); the random ops below only pick their parameters
# ----------------------------------------------------------------------------------------------
def affine_warp(x: Tensor, theta: Tensor, mode: str = "bilinear", fill: Tensor | None = None) -> Tensor:
    """Resample x (N,C,H,W) with per-sample output->input affine maps theta (N,2,3).

    Uses normalised coordinates with align_corners=False (the reference's implicit default).
    Pixels that fall outside are `fill` (broadcastable to N,C,1,1), zero when None.
    """
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if fill is None:
        return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)
    out = F.grid_sample(x - fill, grid, mode=mode, padding_mode="zeros", align_corners=False)
    return out + fill


def rotation_theta(radians: Tensor, height: int, width: int) -> Tensor:
    """Output->input rotation about the image centre, (N,) angles -> (N,2,3).

    For square images this is the reference's [[cos, -sin, 0], [sin, cos, 0]]; the aspect terms
    keep the rotation rigid in pixels for non-square images.
    """
    cos, sin = torch.cos(radians), torch.sin(radians)
    zero = torch.zeros_like(radians)
    row_x = torch.stack([cos, -sin * (height / width), zero], dim=-1)
    row_y = torch.stack([sin * (width / height), cos, zero], dim=-1)
    return torch.stack([row_x, row_y], dim=-2)


def _diag_theta(scale_x: Tensor, scale_y: Tensor, shift_x: Tensor | None = None,
                shift_y: Tensor | None = None) -> Tensor:
    zero = torch.zeros_like(scale_x)
    tx = zero if shift_x is None else shift_x
    ty = zero if shift_y is None else shift_y
    return torch.stack([torch.stack([scale_x, zero, tx], -1), torch.stack([zero, scale_y, ty], -1)], -2)


def translate(x: Tensor, shift_h: Tensor, shift_w: Tensor) -> Tensor:
    """out[n, :, i, j] = x[n, :, i + shift_h[n], j + shift_w[n]], zero outside (integer shifts).

    The reference's rand_crop (pad by one zero pixel, clamp indices) is exactly this.
    """
    n, c, h, w = x.shape
    dev = x.device
    sh = shift_h.to(dev, torch.long).view(-1, 1)
    sw = shift_w.to(dev, torch.long).view(-1, 1)
    rows = (torch.arange(h, device=dev).view(1, h) + sh + 1).clamp(0, h + 1).expand(n, h)
    cols = (torch.arange(w, device=dev).view(1, w) + sw + 1).clamp(0, w + 1).expand(n, w)
    padded = F.pad(x, (1, 1, 1, 1))
    out = padded.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w + 2))
    return out.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


def cutout(x: Tensor, top: Tensor, left: Tensor, size_h: int, size_w: int) -> Tensor:
    """Zero the (size_h x size_w) box with corner (top[n], left[n]) in each image (clipped)."""
    n, _, h, w = x.shape
    dev = x.device
    top = top.to(dev, torch.long).view(-1, 1)
    left = left.to(dev, torch.long).view(-1, 1)
    rr = torch.arange(h, device=dev).view(1, h)
    cc = torch.arange(w, device=dev).view(1, w)
    in_rows = (rr >= top) & (rr < top + size_h)
    in_cols = (cc >= left) & (cc < left + size_w)
    keep = ~(in_rows.view(-1, h, 1) & in_cols.view(-1, 1, w))
    return x * keep.to(x.dtype).expand(n, h, w).unsqueeze(1)


# ----------------------------------------------------------------------------------------------
# Random parameter streams
# ----------------------------------------------------------------------------------------------
class _Draws:
    """Draws of k numbers; with a seed every draw first re-seeds (seed, seed+1, ...) like the reference."""

    def __init__(self, k: int, seed: int | None, generator: torch.Generator | None) -> None:
        self.k = k
        if seed is not None:
            self._gen = torch.Generator(device="cpu")
            self._next: int | None = int(seed)
        else:
            self._gen = generator if generator is not None else torch.default_generator
            self._next = None

    def _advance(self) -> None:
        if self._next is not None:
            self._gen.manual_seed(self._next)
            self._next += 1

    def uniform(self, k: int | None = None) -> Tensor:
        self._advance()
        return torch.rand(self.k if k is None else k, generator=self._gen, device=self._gen.device).cpu()

    def integers(self, low: int, high: int, k: int | None = None) -> Tensor:
        """Uniform integers in [low, high)."""
        self._advance()
        size = self.k if k is None else k
        return torch.randint(low, high, (size,), generator=self._gen, device=self._gen.device).cpu()


@dataclass(frozen=True)
class DSAStep:
    """One elementary op with its sampled values: each (1,) (whole batch) or (k,) (per sample)."""

    fn: str
    values: dict[str, Tensor] = field(default_factory=dict)


def _pixels(size: int, ratio: float) -> int:
    return int(size * ratio + 0.5)


# Samplers: (draws, params, H, W) -> values; the order of draws is the reference's.
def _sample_scale(d: _Draws, p: DSAParams, h: int, w: int) -> dict[str, Tensor]:
    lo, span = 1.0 / p.ratio_scale, p.ratio_scale - 1.0 / p.ratio_scale
    sx = d.uniform() * span + lo
    sy = d.uniform() * span + lo
    return {"sx": sx, "sy": sy}


def _sample_rotate(d: _Draws, p: DSAParams, h: int, w: int) -> dict[str, Tensor]:
    return {"radians": (d.uniform() - 0.5) * 2 * p.ratio_rotate / 180 * float(math.pi)}


def _sample_flip(d: _Draws, p: DSAParams, h: int, w: int) -> dict[str, Tensor]:
    return {"flip": d.uniform() < p.prob_flip}


def _sample_brightness(d: _Draws, p: DSAParams, h: int, w: int) -> dict[str, Tensor]:
    return {"shift": (d.uniform() - 0.5) * p.brightness}


def _sample_saturation(d: _Draws, p: DSAParams, h: int, w: int) -> dict[str, Tensor]:
    return {"factor": d.uniform() * p.saturation}


def _sample_contrast(d: _Draws, p: DSAParams, h: int, w: int) -> dict[str, Tensor]:
    return {"factor": d.uniform() + p.contrast}


def _sample_crop(d: _Draws, p: DSAParams, h: int, w: int) -> dict[str, Tensor]:
    max_h, max_w = _pixels(h, p.ratio_crop_pad), _pixels(w, p.ratio_crop_pad)
    shift_h = d.integers(-max_h, max_h + 1)
    shift_w = d.integers(-max_w, max_w + 1)
    return {"shift_h": shift_h, "shift_w": shift_w}


def _sample_cutout(d: _Draws, p: DSAParams, h: int, w: int) -> dict[str, Tensor]:
    size_h, size_w = _pixels(h, p.ratio_cutout), _pixels(w, p.ratio_cutout)
    # Reference: centre drawn in [0, size + (1 - cut % 2)), box starts at centre - cut // 2 and is
    # clipped to the image (its index clamping never adds rows outside that box).
    centre_h = d.integers(0, h + (1 - size_h % 2))
    centre_w = d.integers(0, w + (1 - size_w % 2))
    return {"top": centre_h - size_h // 2, "left": centre_w - size_w // 2,
            "size_h": torch.tensor([size_h]), "size_w": torch.tensor([size_w])}


def _per_sample(v: Tensor, n: int, like: Tensor) -> Tensor:
    """(1,) -> broadcast, (k>=n,) -> first n; float values take x's dtype."""
    if v.numel() != 1 and v.numel() < n:
        raise ValueError(f"augmentation plan has parameters for {v.numel()} samples but the batch has {n}")
    v = v.reshape(-1)[:n] if v.numel() != 1 else v.reshape(1).expand(n)
    dtype = like.dtype if v.is_floating_point() else v.dtype
    return v.to(device=like.device, dtype=dtype)


def _apply_scale(x: Tensor, v: dict[str, Tensor]) -> Tensor:
    n = x.shape[0]
    return affine_warp(x, _diag_theta(_per_sample(v["sx"], n, x), _per_sample(v["sy"], n, x)))


def _apply_rotate(x: Tensor, v: dict[str, Tensor]) -> Tensor:
    return affine_warp(x, rotation_theta(_per_sample(v["radians"], x.shape[0], x), x.shape[2], x.shape[3]))


def _apply_flip(x: Tensor, v: dict[str, Tensor]) -> Tensor:
    mask = _per_sample(v["flip"], x.shape[0], x).view(-1, 1, 1, 1)
    return torch.where(mask, x.flip(3), x)


def _apply_brightness(x: Tensor, v: dict[str, Tensor]) -> Tensor:
    return x + _per_sample(v["shift"], x.shape[0], x).view(-1, 1, 1, 1)


def _apply_saturation(x: Tensor, v: dict[str, Tensor]) -> Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * _per_sample(v["factor"], x.shape[0], x).view(-1, 1, 1, 1) + mean


def _apply_contrast(x: Tensor, v: dict[str, Tensor]) -> Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _per_sample(v["factor"], x.shape[0], x).view(-1, 1, 1, 1) + mean


def _apply_crop(x: Tensor, v: dict[str, Tensor]) -> Tensor:
    n = x.shape[0]
    return translate(x, _per_sample(v["shift_h"], n, x), _per_sample(v["shift_w"], n, x))


def _apply_cutout(x: Tensor, v: dict[str, Tensor]) -> Tensor:
    n = x.shape[0]
    return cutout(x, _per_sample(v["top"], n, x), _per_sample(v["left"], n, x),
                  int(v["size_h"].item()), int(v["size_w"].item()))


_Sampler = Callable[[_Draws, DSAParams, int, int], dict[str, Tensor]]
_Applier = Callable[[Tensor, dict[str, Tensor]], Tensor]

_ELEMENTARY: dict[str, tuple[_Sampler, _Applier]] = {
    "scale": (_sample_scale, _apply_scale),
    "rotate": (_sample_rotate, _apply_rotate),
    "flip": (_sample_flip, _apply_flip),
    "brightness": (_sample_brightness, _apply_brightness),
    "saturation": (_sample_saturation, _apply_saturation),
    "contrast": (_sample_contrast, _apply_contrast),
    "crop": (_sample_crop, _apply_crop),
    "cutout": (_sample_cutout, _apply_cutout),
}

#: Strategy tokens -> elementary ops, in the reference's `AUGMENT_FNS` order.
DSA_OPS: Registry[tuple[str, ...]] = Registry("DSA augmentation op")
DSA_OPS.add("color", ("brightness", "saturation", "contrast"), "random brightness, then saturation, then contrast")
DSA_OPS.add("crop", ("crop",), "random integer shift up to ratio_crop_pad of the size, zero fill")
DSA_OPS.add("cutout", ("cutout",), "zero a random ratio_cutout-sized square")
DSA_OPS.add("flip", ("flip",), "horizontal flip with probability prob_flip")
DSA_OPS.add("scale", ("scale",), "independent x/y zoom in [1/ratio_scale, ratio_scale]")
DSA_OPS.add("rotate", ("rotate",), "rotation by up to +-ratio_rotate degrees, zero fill")


def parse_strategy(strategy: str | None) -> list[str]:
    """'color_crop_flip' -> ['color', 'crop', 'flip']; 'none'/''/None -> []; unknown tokens fail clearly."""
    text = (strategy or "").strip().lower()
    if text in ("", "none"):
        return []
    tokens = text.split("_")
    for token in tokens:
        DSA_OPS.entry(token)  # UnknownNameError listing the valid ops
    return tokens


def plan_dsa(
    strategy: str,
    shape: torch.Size | tuple[int, ...],
    seed: int | None = None,
    params: DSAParams | None = None,
    generator: torch.Generator | None = None,
    per_sample: bool = False,
) -> list[DSAStep]:
    """Sample the random transform (ops and values) for a batch of `shape` (N,C,H,W); no pixels touched.

    Shared (siamese) values are (1,), per-sample ones (N,). See the module docstring for seeding.
    """
    p = params or DSAParams()
    tokens = parse_strategy(strategy)
    if p.aug_mode not in ("S", "M"):
        raise ValueError(f"Unknown DSA aug_mode '{p.aug_mode}'. Choose 'S' (one op per call) or 'M' (all ops).")
    if not tokens:
        return []
    n, h, w = int(shape[0]), int(shape[-2]), int(shape[-1])
    k = n if (seed is None or per_sample) else 1
    draws = _Draws(k, seed, generator)
    if p.aug_mode == "S":
        tokens = [tokens[int(draws.integers(0, len(tokens), k=1).item())]]
    steps: list[DSAStep] = []
    for token in tokens:
        for fn in DSA_OPS.get(token):
            steps.append(DSAStep(fn, _ELEMENTARY[fn][0](draws, p, h, w)))
    return steps


def apply_dsa(x: Tensor, plan: list[DSAStep]) -> Tensor:
    """Apply a sampled plan to x (N,C,H,W); differentiable w.r.t. x. Reusable on other batches."""
    if plan and x.device.type != "cpu":
        plan = plan_on_device(plan, x.device)
    for step in plan:
        x = _ELEMENTARY[step.fn][1](x, step.values)
    return x.contiguous() if plan else x


_HOST_VALUES = ("size_h", "size_w")  # read on the host (.item()) to size the cutout box: they stay there


def plan_on_device(plan: list[DSAStep], device: torch.device | str) -> list[DSAStep]:
    """The plan with its sampled values on `device`, moved in one copy per dtype rather than one per value.

    Why: each op moving its own few numbers to a GPU was a blocking host-to-device copy, ~20 per DM step on
    CIFAR-10 with DSA (an H200 profile: ~30 `aten::to` waits per step, 9 ms of host time). Values are packed
    into one buffer per dtype; on CUDA it is pinned and copied without blocking, so the host queues the
    augmentation and moves on. The numbers are the same: only where they live changes."""
    device = torch.device(device)
    packed: dict[torch.dtype, list[tuple[int, str, Tensor]]] = {}
    moved = [dict(step.values) for step in plan]
    changed = False
    for i, step in enumerate(plan):
        for key, value in step.values.items():
            if key in _HOST_VALUES or value.device == device:
                continue
            changed = True
            if value.device.type == "cpu":
                packed.setdefault(value.dtype, []).append((i, key, value))
            else:  # already on some other device (a plan reused across GPUs): moved as it is
                moved[i][key] = value.to(device)
    if not changed:
        return plan
    for items in packed.values():
        flat = torch.cat([v.reshape(-1) for _, _, v in items])
        if device.type == "cuda":  # pinned, so the copy need not block; elsewhere (MPS) a plain, blocking copy, as
            flat = flat.pin_memory().to(device, non_blocking=True)  # an unpinned source may be freed before it is read
        else:
            flat = flat.to(device)
        for (i, key, value), part in zip(items, flat.split([v.numel() for _, _, v in items])):
            moved[i][key] = part.view(value.shape)
    return [DSAStep(step.fn, values) for step, values in zip(plan, moved)]


def dsa_augment(
    x: Tensor,
    strategy: str,
    seed: int | None,
    params: DSAParams | None = None,
    generator: torch.Generator | None = None,
    per_sample: bool = False,
) -> Tensor:
    """Differentiable Siamese Augmentation of x (N,C,H,W), the reference's `DiffAugment`.

    Same `seed` -> same transform for any batch (whole-batch shared, like the reference); with
    `per_sample=True` sample i of any two batches is paired instead. `seed=None` -> independent
    per-sample transforms from `generator` (the reference's seed=-1).
    """
    plan = plan_dsa(strategy, x.shape, seed=seed, params=params, generator=generator, per_sample=per_sample)
    return apply_dsa(x, plan)


# ----------------------------------------------------------------------------------------------
# DC-paper evaluation augmentation (not differentiable in spirit; used to train eval models)
# ----------------------------------------------------------------------------------------------
@dataclass
class DCAugParams:
    """Reference `get_daparam` values."""

    crop: int = 4  # shift in [-crop, crop - 1] pixels, channel-mean fill
    scale: float = 0.2  # per-axis size factor in [1 - scale, 1 + scale], zero fill
    rotate: int = 45  # integer degrees in [-rotate, rotate - 1], fill = mean of channel means
    noise: float = 0.001  # additive Gaussian std


DC_OPS = ("crop", "scale", "rotate", "noise")


def default_dc_strategy(dataset_name: str, model_name: str = "ConvNet") -> str:
    """Reference `get_daparam`: 'crop_noise' for ConvNetBN, 'crop_scale_rotate' for MNIST, else 'none'."""
    if model_name.strip().lower() == "convnetbn":
        return "crop_noise"
    if dataset_name.strip().lower() == "mnist":
        return "crop_scale_rotate"
    return "none"


def _parse_dc(strategy: str | None) -> list[str]:
    text = (strategy or "").strip().lower()
    if text in ("", "none"):
        return []
    tokens = text.split("_")
    bad = [t for t in tokens if t not in DC_OPS]
    if bad:
        raise ValueError(f"Unknown DC augmentation op(s) {bad} in '{strategy}'. Available: {', '.join(DC_OPS)}.")
    return tokens


def _remap(x: Tensor, rows: Tensor, cols: Tensor, fill: Tensor | None) -> Tensor:
    """out[n, :, i, j] = x[n, :, rows[n, i], cols[n, j]]; a -1 index means `fill` (zero if None)."""
    n, c, h, w = x.shape
    out = x.gather(2, rows.clamp_min(0).view(n, 1, h, 1).expand(n, c, h, w))
    out = out.gather(3, cols.clamp_min(0).view(n, 1, 1, w).expand(n, c, h, w))
    valid = ((rows >= 0).view(n, 1, h, 1) & (cols >= 0).view(n, 1, 1, w))
    fill_value = torch.zeros((), dtype=x.dtype, device=x.device) if fill is None else fill
    return torch.where(valid, out, fill_value)


def _shift_index(size: int, shift: Tensor) -> Tensor:
    """Rows of a padded-then-cropped image: i + shift, -1 where that falls outside."""
    idx = torch.arange(size, device=shift.device).view(1, size) + shift.view(-1, 1)
    return torch.where((idx >= 0) & (idx < size), idx, torch.full_like(idx, -1))


def _zoom_index(size: int, new: Tensor, canvas: Tensor) -> Tensor:
    """Reference scalefun along one axis: nearest-resize to `new`, paste centred on a square
    canvas of side `canvas`, crop `size` centred (all offsets truncated like `int(.../2)`)."""
    offset = (canvas - size) // 2 - (canvas - new) // 2  # canvas row of output row 0, minus paste row
    pos = torch.arange(size, device=new.device).view(1, size) + offset.view(-1, 1)
    step = torch.tensor(float(size), dtype=torch.float32, device=new.device) / new.to(torch.float32).view(-1, 1)
    src = torch.floor(pos.to(torch.float32) * step).long().clamp(max=size - 1)  # F.interpolate 'nearest'
    inside = (pos >= 0) & (pos < new.view(-1, 1))
    return torch.where(inside, src, torch.full_like(src, -1))


def dc_augment(
    x: Tensor,
    strategy: str,
    generator: torch.Generator | None = None,
    params: DCAugParams | None = None,
) -> Tensor:
    """The DC paper's evaluation augmentation (reference `augment`), batched on tensors.

    Each image independently gets ONE op drawn uniformly from the strategy, as in the reference,
    with the reference's parameter ranges and fills. crop and scale reproduce the reference's
    pixels exactly for given parameters (index maps instead of per-image pad/interpolate/paste).
    Differences from the per-image numpy/scipy reference:
    - rotate resamples with bilinear `grid_sample` about the image centre instead of scipy's
      cubic spline `rotate(reshape=True)` + centre crop (which can also sit half a pixel off);
    - the scale width factor is relative to the width (the reference uses the height for both;
      identical for the square images used here);
    - random numbers come from `generator` (torch; default: torch's global CPU generator), not
      numpy's global RNG; every op draws values for the whole batch and only chosen images use them.
    Returns a new tensor; x is not modified (the reference writes into its input).
    """
    ops = _parse_dc(strategy)
    if not ops or x.shape[0] == 0:
        return x
    p = params or DCAugParams()
    n, c, h, w = x.shape
    gen = generator if generator is not None else torch.default_generator
    dev = x.device

    def uniform() -> Tensor:
        return torch.rand(n, generator=gen, device=gen.device).to(dev)

    def integers(low: int, high: int) -> Tensor:
        return torch.randint(low, high, (n,), generator=gen, device=gen.device).to(dev)

    choice = integers(0, len(ops))
    out = x.clone()
    channel_mean = x.detach().mean(dim=(0, 2, 3))  # batch statistics, as the reference

    for index, op in enumerate(ops):
        picked = (choice == index).nonzero(as_tuple=True)[0]
        if op == "crop":  # pad `crop` px of channel mean, crop at offset r in [0, 2*crop)
            rows = _shift_index(h, integers(0, 2 * p.crop) - p.crop)
            cols = _shift_index(w, integers(0, 2 * p.crop) - p.crop)
            if picked.numel():
                out[picked] = _remap(x[picked], rows[picked], cols[picked], channel_mean.view(1, c, 1, 1))
        elif op == "scale":  # nearest resize to (int(u*h), int(u'*w)), centred, zero fill
            new_h = torch.floor((uniform() * 2 * p.scale + 1 - p.scale) * h).long().clamp_min(1)
            new_w = torch.floor((uniform() * 2 * p.scale + 1 - p.scale) * w).long().clamp_min(1)
            canvas = torch.maximum(torch.maximum(new_h, new_w), torch.full_like(new_h, max(h, w)))
            rows, cols = _zoom_index(h, new_h, canvas), _zoom_index(w, new_w, canvas)
            if picked.numel():
                out[picked] = _remap(x[picked], rows[picked], cols[picked], None)
        elif op == "rotate":  # integer degrees, fill with the mean of the channel means
            degrees = integers(-p.rotate, p.rotate).to(x.dtype)
            theta = rotation_theta(degrees * (math.pi / 180), h, w)
            if picked.numel():
                fill = channel_mean.mean().view(1, 1, 1, 1)
                out[picked] = affine_warp(x[picked], theta[picked], mode="bilinear", fill=fill)
        else:  # noise
            noise = torch.randn((n, c, h, w), generator=gen, device=gen.device).to(dev, x.dtype)
            if picked.numel():
                out[picked] = x[picked] + p.noise * noise[picked]
    return out
