"""No-grad ConvNet passes that are fast on a CPU: the real-image side of DM and test-set prediction.

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

Anything else (CUDA, batchnorm, other families) takes the module's own forward (without autograd),
so this is only ever a faster route to the same numbers.
"""
from __future__ import annotations

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


def _conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    plain = conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros"
    padding = list(conv.padding) if isinstance(conv.padding, tuple) else None
    if plain and padding is not None:
        if conv.in_channels >= 16 and conv.kernel_size == (3, 3) and max(padding) <= 1 and nnpack_ready():
            return torch._nnpack_spatial_convolution(x.contiguous(), conv.weight, conv.bias, padding, [1, 1])
        if conv.in_channels <= 4:
            return torch._C._nn.thnn_conv2d(x.contiguous(), conv.weight, list(conv.kernel_size), conv.bias, [1, 1], padding)
    return conv(x)


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

