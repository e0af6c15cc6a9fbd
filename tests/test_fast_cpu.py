"""The CPU fast path for no-grad ConvNet passes gives the module's own numbers, and steps aside where it
does not apply (batchnorm, other families, other dtypes)."""
from __future__ import annotations

import pytest
import torch

from ddcore.models import create_model
from ddcore.models.fast_cpu import fast_embed, fast_logits, supports_fast_cpu


@pytest.mark.parametrize("name,channels,size", [("convnet", 1, 28), ("convnet", 3, 32), ("convnetd4", 3, 32),
                                                ("convnetw32", 1, 28), ("convnetnp", 3, 32), ("convnetmp", 1, 28)])
def test_same_features_and_logits_as_the_module(name: str, channels: int, size: int) -> None:
    torch.manual_seed(0)
    net = create_model(name, channels, 10, size)
    x = torch.randn(70, channels, size, size)  # 70: chunks of 32 plus a remainder
    with torch.no_grad():
        assert supports_fast_cpu(net, x)
        want_f, want_y = net.embed(x), net(x)
        got_f, got_y = fast_embed(net, x), fast_logits(net, x)
    assert got_f.shape == want_f.shape and got_y.shape == want_y.shape
    scale = want_f.abs().max()
    assert (got_f - want_f).abs().max() <= 1e-4 * scale  # Winograd rounds differently; nothing more
    assert torch.equal(got_y.argmax(1), want_y.argmax(1)) or (got_y - want_y).abs().max() < 1e-3


def test_odd_feature_maps_pool_like_avgpool() -> None:
    """A 7x7 map (MNIST-size ConvNet-3 without the 1-channel padding) drops the last row and column."""
    torch.manual_seed(1)
    net = create_model("convnet", 3, 10, 28)
    x = torch.randn(5, 3, 28, 28)
    with torch.no_grad():
        assert torch.allclose(fast_embed(net, x), net.embed(x), rtol=1e-4, atol=1e-4)


def test_steps_aside_where_it_does_not_apply() -> None:
    x = torch.randn(4, 3, 32, 32)
    bn = create_model("convnetbn", 3, 10, 32)
    vgg = create_model("vgg11", 3, 10, 32)
    net = create_model("convnet", 3, 10, 32)
    with torch.no_grad():
        assert not supports_fast_cpu(bn, x)  # batchnorm: statistics of the whole batch
        assert not supports_fast_cpu(vgg, x)
        assert not supports_fast_cpu(net, x.double())
        assert torch.equal(fast_logits(vgg.eval(), x), vgg(x))
    out = fast_embed(net, x.clone().requires_grad_(True))  # a no-grad pass whatever the caller's mode
    assert out.grad_fn is None
