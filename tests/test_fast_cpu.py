"""The CPU fast paths for ConvNet passes (no-grad, and first-order training) give the module's own numbers,
and step aside where they do not apply (batchnorm, other families, other dtypes)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ddcore.models import create_model
from ddcore.models.fast_cpu import chunked_backward, fast_embed, fast_forward, fast_logits, supports_fast_cpu


def breadth(*values):
    """A further architecture for the same check: only in the full run (the fast tier keeps the first cases)."""
    return pytest.param(*values, marks=pytest.mark.slow)


@pytest.mark.parametrize("name,channels,size", [("convnet", 1, 28), ("convnet", 3, 32), breadth("convnetd4", 3, 32),
                                                breadth("convnetw32", 1, 28), breadth("convnetnp", 3, 32),
                                                breadth("convnetmp", 1, 28)])
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
    assert (got_y - want_y).abs().max() <= 1e-4 * want_y.abs().max()  # measured: at most 1.1e-5 of the scale


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


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).norm() / want.norm().clamp_min(1e-12))


@pytest.mark.parametrize("name,channels,size", [("convnetaswish", 1, 28), ("convnetaswishbn", 3, 32),
                                                breadth("convnetaswish", 3, 32), breadth("convnetas", 3, 28)])
def test_chunked_gradients_equal_autograd_of_the_module(name: str, channels: int, size: int) -> None:
    """With a smooth activation every parameter's gradient agrees to ~1e-5 (Winograd rounding, nothing more)."""
    torch.manual_seed(0)
    net = create_model(name, channels, 10, size)
    params = list(net.parameters())
    x, y = torch.randn(70, channels, size, size), torch.randint(0, 10, (70,))
    assert supports_fast_cpu(net, x) == ("bn" not in name)
    want = torch.autograd.grad(F.cross_entropy(net(x), y), params)

    result = chunked_backward(net, x, y, F.cross_entropy, params)
    assert max(_relative_error(g, w) for g, w in zip(result.grads, want) if w.ndim > 1) < 1e-4
    with torch.no_grad():
        logits = net(x)
    assert _relative_error(result.logits, logits) < 1e-4
    assert float(result.loss) == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-4)
    net.zero_grad(set_to_none=True)
    assert chunked_backward(net, x, y, F.cross_entropy, chunk=16).grads is None  # accumulates like loss.backward()
    assert max(_relative_error(p.grad, w) for p, w in zip(params, want) if w.ndim > 1) < 1e-4


@pytest.mark.parametrize("name,channels,size", [("convnet", 1, 28), ("convnet", 3, 32), breadth("convnet", 3, 28),
                                                breadth("convnetd4", 3, 32), breadth("convnetw32", 1, 28),
                                                breadth("convnetnp", 3, 16), breadth("convnetmp", 1, 28),
                                                breadth("convnetal", 3, 32), breadth("convnetln", 3, 32)])
def test_chunked_gradients_of_relu_nets_agree_within_rounding_of_the_kinks(name: str, channels: int, size: int) -> None:
    """ReLU nets: Winograd's ~4e-6 rounding flips the odd activation that sits at zero, which moves the gradients
    of the early layers by up to ~3e-3 of their norm (oneDNN in fp32 is itself 4e-4 from float64 here). Every
    weight gradient still points the same way (cosine > 0.9999); a wrong backward gives errors of order 1."""
    torch.manual_seed(0)
    net = create_model(name, channels, 10, size)
    params = list(net.parameters())
    x, y = torch.randn(70, channels, size, size), torch.randint(0, 10, (70,))
    want = torch.autograd.grad(F.cross_entropy(net(x), y), params)
    got = chunked_backward(net, x, y, F.cross_entropy, params).grads
    for g, w in zip(got, want):
        if w.ndim > 1:
            assert _relative_error(g, w) < 1e-2
            assert F.cosine_similarity(g.flatten(), w.flatten(), dim=0) > 0.9999


def test_input_gradient_through_the_fast_forward() -> None:
    torch.manual_seed(2)
    for channels, size in ((1, 28), (3, 32)):
        net = create_model("convnetaswish", channels, 10, size)
        x = torch.randn(20, channels, size, size, requires_grad=True)
        want = torch.autograd.grad(net(x).square().sum(), x)[0]
        got = torch.autograd.grad(fast_forward(net, x).square().sum(), x)[0]
        assert _relative_error(got, want) < 1e-4


def test_a_gradient_of_a_gradient_is_refused_not_wrong() -> None:
    """DC's synthetic side needs second order; the fast backward is first-order only and must say so."""
    net = create_model("convnet", 3, 10, 32)
    x = torch.randn(4, 3, 32, 32, requires_grad=True)
    with pytest.raises(RuntimeError, match="first-order only"):
        torch.autograd.grad(fast_forward(net, x).square().sum(), list(net.parameters()), create_graph=True)
    g = torch.autograd.grad(fast_forward(net, x).square().sum(), list(net.parameters()))  # first order: fine
    assert all(t.grad_fn is None for t in g)


def test_training_passes_step_aside_for_batchnorm_and_other_families() -> None:
    torch.manual_seed(3)
    x, y = torch.randn(6, 3, 32, 32), torch.randint(0, 10, (6,))
    for name in ("convnetbn", "vgg11"):
        net = create_model(name, 3, 10, 32)
        params = list(net.parameters())
        want = torch.autograd.grad(F.cross_entropy(net(x), y), params)
        got = chunked_backward(net, x, y, F.cross_entropy, params).grads
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got, want))
