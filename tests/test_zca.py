"""Behaviour of ddcore.zca: kornia-compatible ZCA whitening, its inverse, storage and cache."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from ddcore.zca import ZCA, clear_zca_cache, fit_zca, get_zca


def _correlated_images(n: int, seed: int = 0, shape: tuple[int, ...] = (3, 4, 4)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, *shape, generator=g)
    return base + 0.7 * base.roll(1, dims=-1) + 0.3 * base.roll(1, dims=1)  # neighbouring pixels correlate


def test_whitened_training_data_has_identity_covariance():
    x = _correlated_images(600)
    zca = ZCA.fit(x, eps=1e-8)
    z = zca.apply(x).reshape(600, -1).double()
    cov = torch.cov(z.T)
    assert torch.allclose(cov, torch.eye(48, dtype=torch.float64), atol=2e-3)
    assert z.mean(dim=0).abs().max() < 1e-4


def test_matches_the_kornia_formula():
    x = _correlated_images(200, seed=1)
    eps = 0.1
    zca = ZCA.fit(x, eps=eps)
    flat = x.reshape(200, -1).double()
    cov = torch.cov(flat.T)  # unbiased (N - 1), as kornia's default
    # T = U (S + eps)^-1/2 U^T  <=>  T @ T = (Sigma + eps I)^-1, T symmetric
    t = zca.transform.double()
    assert torch.allclose(t, t.T, atol=1e-6)
    assert torch.allclose(t @ t, torch.linalg.inv(cov + eps * torch.eye(48, dtype=torch.float64)), atol=1e-3)
    assert torch.allclose(zca.inverse.double() @ t, torch.eye(48, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(zca.mean.double(), flat.mean(dim=0), atol=1e-6)
    # kornia's documented example: zca_whiten([[0,1],[1,0],[-1,0]]) (eps 1e-6)
    tiny = torch.tensor([[0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    expected = torch.tensor([[0.0, 1.1547], [1.0, -0.5773], [-1.0, -0.5773]])
    assert torch.allclose(ZCA.fit(tiny, eps=1e-6).apply(tiny), expected, atol=1e-4)


def test_invert_undoes_apply_on_new_images():
    zca = fit_zca(_correlated_images(300), eps=0.1)
    fresh = _correlated_images(5, seed=9)
    z = zca.apply(fresh)
    assert z.shape == fresh.shape
    assert torch.allclose(zca.invert(z), fresh, atol=1e-4)


def test_chunked_fit_equals_single_pass_and_fewer_samples_than_features_work():
    x = _correlated_images(30)  # N=30 < D=48: rank-deficient covariance
    a = ZCA.fit(x, eps=0.1, chunk_size=7)
    b = ZCA.fit(x, eps=0.1, chunk_size=10_000)
    assert torch.allclose(a.transform, b.transform, atol=1e-5)
    assert torch.isfinite(a.transform).all() and torch.isfinite(a.inverse).all()


def test_apply_is_differentiable_and_checks_shapes():
    zca = ZCA.fit(_correlated_images(100), eps=0.1)
    x = _correlated_images(2, seed=3).requires_grad_(True)
    zca.apply(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="48 features"):
        zca.apply(torch.rand(2, 3, 5, 5))
    with pytest.raises(TypeError, match="float"):
        ZCA.fit(torch.zeros(4, 3, 2, 2, dtype=torch.uint8))


def test_save_load_round_trip(tmp_path):
    zca = ZCA.fit(_correlated_images(100), eps=0.05)
    path = zca.save(tmp_path / "sub" / "cifar.safetensors")
    back = ZCA.load(path)
    assert back.eps == 0.05
    for name in ("mean", "transform", "inverse"):
        assert torch.equal(getattr(back, name), getattr(zca, name))
    other = tmp_path / "other.safetensors"
    save_file({"mean": torch.zeros(3)}, str(other))
    with pytest.raises(ValueError, match="not a ddcore ZCA file"):
        ZCA.load(other)


def test_get_zca_fits_once_per_name_and_eps_and_reuses_the_disk_cache(tmp_path):
    clear_zca_cache()
    calls: list[int] = []

    def fit_fn() -> torch.Tensor:
        calls.append(1)
        return _correlated_images(80)

    first = get_zca("TinySet", fit_fn, eps=0.1, cache_dir=tmp_path)
    assert get_zca("tinyset", fit_fn, eps=0.1, cache_dir=tmp_path) is first and len(calls) == 1
    get_zca("tinyset", fit_fn, eps=0.01, cache_dir=tmp_path)
    assert len(calls) == 2
    clear_zca_cache()

    def must_not_fit() -> torch.Tensor:
        raise AssertionError("the disk cache should have been used")

    again = get_zca("TinySet", must_not_fit, eps=0.1, cache_dir=tmp_path)
    assert torch.equal(again.transform, first.transform)
    (tmp_path / "zca-tinyset-eps0.1.safetensors").write_bytes(b"garbage")
    clear_zca_cache()
    refit = get_zca("TinySet", fit_fn, eps=0.1, cache_dir=tmp_path)  # corrupt file -> refit
    assert len(calls) == 3 and torch.allclose(refit.transform, first.transform)
    clear_zca_cache()
