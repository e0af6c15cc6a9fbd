"""ConvNet passes that are fast on a CPU: no-grad ones (DM's real side, test predictions) and first-order
training ones (DC/DSA's real gradients and inner loop, network training in evaluation).

Why: on the 2-core CPU a DM iteration is one no-grad pass of 2,560 real images; with PyTorch's default
(oneDNN, NCHW, batches of 256) it took 8.05 s per 2,560 MNIST images, the same as the reference's
whole iteration. Measured alternatives, one thread, MNIST ConvNet-3 (benchmarks/results/methods-speed.md):

- NNPACK's Winograd convolution for the 128->128 3x3 layers (PyTorch ships NNPACK; oneDNN offers no
  Winograd on AVX2): 17.5 ms vs 25 ms (oneDNN channels_last) / 35 ms (oneDNN NCHW) per 32x128x16x16;
- the 1-channel first layer as PyTorch's im2col + GEMM ("thnn") convolution: 2.3 ms vs 12 ms (oneDNN);
- chunks of 32 images, so a chunk's activations stay in cache: 3.9 s vs 4.4 s (chunks of 256);
- 2x2 average pooling as one contiguous add of row pairs, then one of column pairs: 2.3 ms vs 15.8 ms
  (avg_pool2d) per 32x128x32x32.
Together 3.4 s vs 8.05 s. Results equal `net.embed` to ~1e-5 relative (fp32 throughout; Winograd's
rounding differs from direct convolution's, as cuDNN's does on a GPU).

Training passes (`fast_forward`, `fast_features`, `chunked_backward`) use the same forward kernels inside autograd
Functions whose backward is written out: grad-input of a 3x3 convolution is NNPACK's Winograd convolution
of the output gradient with the flipped, transposed kernel; grad-weight stays with ATen (oneDNN, already
~60 GFLOP/s here); ReLU + 2x2 average pooling backward is one upsampling copy and one masked pass (ATen's
avg_pool2d_backward zero-fills, then scatters). Measured, one thread, gradient of a 256-image class batch
through MNIST ConvNet-3 (the real side of one DC class): 2.0-2.35 s with autograd, 1.1-1.2 s in chunks of
32 here. These backwards are first-order only (they refuse create_graph=True): DC's synthetic side, which needs
the gradient of a gradient, keeps the module's own forward.

Anything else (CUDA, batchnorm, other families) takes the module's own forward, so this is only ever a
faster route to the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from .convnet import ConvNet

CPU_CHUNK = 32  # images per chunk on a CPU (see above)

_NNPACK: bool | None = None


def nnpack_ready() -> bool:
    """NNPACK is compiled in and initialised (the call initialises it; direct calls fail before that)."""
    global _NNPACK
    if _NNPACK is None:
        try:
            _NNPACK = bool(torch._nnpack_available())
        except Exception:  # a build without it
            _NNPACK = False
    return _NNPACK


def supports_fast_cpu(net: nn.Module, x: torch.Tensor) -> bool:
    """True where fast_embed takes its own route: a ConvNet without batchnorm on float32 CPU tensors."""
    return (isinstance(net, ConvNet) and x.device.type == "cpu" and x.dtype == torch.float32
            and not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules()))


def _fast_conv_kind(conv: nn.Conv2d) -> str | None:
    """'nnpack' or 'thnn' where a stride-1 3x3 layer has a faster route here than its module, else None."""
    if not (conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros"
            and isinstance(conv.padding, tuple) and conv.kernel_size == (3, 3) and conv.padding[0] == conv.padding[1]):
        return None
    if conv.in_channels >= 16 and conv.padding[0] <= 1 and nnpack_ready():
        return "nnpack"
    if conv.in_channels <= 4:
        return "thnn"
    return None


def _conv_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, pad: int,
                  kind: str) -> torch.Tensor:
    if kind == "nnpack":
        return torch._nnpack_spatial_convolution(x, weight, bias, [pad, pad], [1, 1])
    return torch._C._nn.thnn_conv2d(x, weight, [3, 3], bias, [1, 1], [pad, pad])


def _conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    kind = _fast_conv_kind(conv)
    return conv(x) if kind is None else _conv_forward(x.contiguous(), conv.weight, conv.bias, conv.padding[0], kind)


def _avg_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """AvgPool2d(2, 2): add row pairs as two contiguous halves, then column pairs (5x faster than avg_pool2d)."""
    n, c, h, w = x.shape
    h2, w2 = h // 2, w // 2  # AvgPool2d drops an odd last row/column
    if (h, w) != (2 * h2, 2 * w2) or not x.is_contiguous():
        x = x[..., :2 * h2, :2 * w2].contiguous()
    rows = x.view(n, c, h2, 4 * w2)
    rows = rows[..., :2 * w2] + rows[..., 2 * w2:]
    return (rows[..., 0::2] + rows[..., 1::2]).mul_(0.25)


def _is_2x2_avg_pool(m: nn.Module) -> bool:
    return (isinstance(m, nn.AvgPool2d) and m.kernel_size in (2, (2, 2)) and m.stride in (2, (2, 2))
            and m.padding in (0, (0, 0)) and not m.ceil_mode)


def _features(net: ConvNet, x: torch.Tensor) -> torch.Tensor:
    for m in net.features:
        if isinstance(m, nn.Conv2d):
            x = _conv(x, m)
        elif _is_2x2_avg_pool(m):
            x = _avg_pool_2x2(x)
        else:
            x = m(x)
    return torch.flatten(x, 1)


def _chunked_features(net: ConvNet, x: torch.Tensor, chunk: int | None) -> torch.Tensor:
    return torch.cat([_features(net, part) for part in x.split(chunk or CPU_CHUNK)]) if len(x) else net.embed(x)


@torch.no_grad()
def fast_embed(net: nn.Module, x: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """net.embed(x) without autograd, chunked and with the fastest CPU kernels measured above."""
    return _chunked_features(net, x, chunk) if supports_fast_cpu(net, x) else net.embed(x)


@torch.no_grad()
def fast_logits(net: nn.Module, x: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """net(x) without autograd: the classifier on the fast features (falls back to net(x))."""
    return net.classifier(_chunked_features(net, x, chunk)) if supports_fast_cpu(net, x) else net(x)


# ----------------------------------------------------------------------------------------------
# First-order training passes
# ----------------------------------------------------------------------------------------------
def _first_order_only() -> None:
    """Backwards run with grad mode on only under create_graph=True; these cannot be differentiated again.

    (torch's once_differentiable raises only when its error node lies on the path being differentiated,
    which for a gradient w.r.t. the input it does not: the result would be silently incomplete.)"""
    if torch.is_grad_enabled():
        raise RuntimeError("fast_forward's backward is first-order only: for a gradient of a gradient "
                           "(create_graph=True) run the module itself, net(x)")


class _Conv3x3(torch.autograd.Function):
    """A stride-1 3x3 convolution: the fast forward above, a Winograd grad-input, ATen's grad-weight."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, pad: int,
                kind: str) -> torch.Tensor:
        x = x.contiguous()
        ctx.save_for_backward(x, weight)
        ctx.pad, ctx.kind, ctx.has_bias = pad, kind, bias is not None
        return _conv_forward(x, weight, bias, pad, kind)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        _first_order_only()
        x, weight = ctx.saved_tensors
        pad, grad_out = ctx.pad, grad_out.contiguous()
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = None
        if need_x and ctx.kind == "nnpack":  # pad <= 1, so the full correlation needs padding 2 - pad
            flipped = weight.transpose(0, 1).flip(2, 3).contiguous()
            grad_x = torch._nnpack_spatial_convolution(grad_out, flipped, None, [2 - pad, 2 - pad], [1, 1])
            need_x = False
        if not (need_x or need_w or need_b):
            return grad_x, None, None, None, None
        bias_sizes = [weight.shape[0]] if ctx.has_bias else None
        gx, gw, gb = torch.ops.aten.convolution_backward(grad_out, x, weight, bias_sizes, [1, 1], [pad, pad], [1, 1],
                                                         False, [0, 0], 1, [need_x, need_w, need_b and ctx.has_bias])
        return (grad_x if grad_x is not None else gx), gw, gb, None, None


def _pool_backward(grad_out: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """AvgPool2d(2, 2)'s input gradient: each output gradient / 4 on its 2x2 window (zero on a dropped edge)."""
    n, c, h, w = shape
    h2, w2 = grad_out.shape[-2:]
    # columns first on the small tensor, then whole rows: 1.6x faster than one 6-d expand + copy
    cols = (grad_out * 0.25).unsqueeze(-1).expand(n, c, h2, w2, 2).reshape(n, c, h2, 2 * w2)
    up = cols.unsqueeze(3).expand(n, c, h2, 2, 2 * w2).reshape(n, c, 2 * h2, 2 * w2)
    if (h, w) != (2 * h2, 2 * w2):
        up = torch.nn.functional.pad(up, (0, w - 2 * w2, 0, h - 2 * h2))
    return up


class _AvgPool2x2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.shape = x.shape
        return _avg_pool_2x2(x)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> torch.Tensor:
        _first_order_only()
        return _pool_backward(grad_out, ctx.shape)


class _ReluAvgPool2x2(torch.autograd.Function):
    """ReLU then AvgPool2d(2, 2), keeping only the ReLU output for the backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        r = torch.relu(x)
        ctx.save_for_backward(r)
        return _avg_pool_2x2(r)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> torch.Tensor:
        _first_order_only()
        (r,) = ctx.saved_tensors
        return torch.ops.aten.threshold_backward(_pool_backward(grad_out, r.shape), r, 0)


def _train_features(net: ConvNet, x: torch.Tensor) -> torch.Tensor:
    mods = list(net.features)
    i = 0
    while i < len(mods):
        m = mods[i]
        if isinstance(m, nn.Conv2d) and (kind := _fast_conv_kind(m)) is not None:
            x = _Conv3x3.apply(x, m.weight, m.bias, m.padding[0], kind)
        elif isinstance(m, nn.ReLU) and i + 1 < len(mods) and _is_2x2_avg_pool(mods[i + 1]):
            x = _ReluAvgPool2x2.apply(x)
            i += 1
        elif _is_2x2_avg_pool(m):
            x = _AvgPool2x2.apply(x)
        else:
            x = m(x)
        i += 1
    return torch.flatten(x, 1)


def fast_features(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """net.embed(x) with autograd for first-order gradients (DM's synthetic side)."""
    if supports_fast_cpu(net, x) and len(x):
        return _train_features(net, x)
    return net.embed(x)


def fast_forward(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """net(x) with autograd for first-order gradients (a gradient of a gradient needs net(x) itself)."""
    if supports_fast_cpu(net, x) and len(x):
        return net.classifier(_train_features(net, x))
    return net(x)


MeanLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, targets) -> mean over the batch


@dataclass
class ChunkedPass:
    loss: torch.Tensor  # the batch's mean loss, detached
    logits: torch.Tensor  # the whole batch's logits, detached
    grads: list[torch.Tensor] | None  # with `params`: the gradients; else they went into .grad


def chunked_backward(net: nn.Module, x: torch.Tensor, targets: torch.Tensor, mean_loss: MeanLoss,
                     params: Sequence[torch.Tensor] | None = None, chunk: int | None = None) -> ChunkedPass:
    """Backpropagate mean_loss(net(x), targets) chunk by chunk: each chunk's mean weighted by its share of x.

    With `params` the gradients are returned (autograd.grad); without, they accumulate into .grad as
    loss.backward() would. Per-sample losses of a network without batchnorm are independent, so this is
    the whole batch's gradient, while a chunk's activations stay in cache between forward and backward.
    Measured, one thread, forward + backward of MNIST ConvNet-3: 10 images 58 -> 46 ms, 100 images
    704 -> 428 ms, 256 images 1950 -> 1005 ms (module's own passes -> here).
    """
    if not supports_fast_cpu(net, x) or not len(x):  # the module in one piece
        logits = net(x)
        loss = mean_loss(logits, targets)
        if params is not None:
            return ChunkedPass(loss.detach(), logits.detach(), list(torch.autograd.grad(loss, params)))
        loss.backward()
        return ChunkedPass(loss.detach(), logits.detach(), None)
    size = chunk or CPU_CHUNK
    total: list[torch.Tensor] | None = None
    losses, outs = [], []
    for start in range(0, len(x), size):
        part = slice(start, min(len(x), start + size))
        logits = fast_forward(net, x[part])
        loss = mean_loss(logits, targets[part]) * ((part.stop - part.start) / len(x))
        losses.append(loss.detach())
        outs.append(logits.detach())
        if params is None:
            loss.backward()
            continue
        grads = torch.autograd.grad(loss, params)
        total = list(grads) if total is None else [t.add_(g) for t, g in zip(total, grads)]
    return ChunkedPass(torch.stack(losses).sum(), torch.cat(outs), total)
