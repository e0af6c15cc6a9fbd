"""ZCA whitening of images, as used by KIP and MTT (Cazenavette et al. 2022).

Why: MTT (and KIP) distil CIFAR in ZCA-whitened space, which sharpens edges and removes the
pixel correlations that otherwise dominate the matching loss; synthetic images are stored
whitened and turned back into pictures with the inverse transform.

Formula (matched to kornia.enhance.zca, `zca_mean` / `linear_transform` / `ZCAWhitening`,
kornia/kornia kornia/enhance/zca.py, which MTT calls as `ZCAWhitening(eps=0.1, compute_inv=True)`
and fits on the whole training set; GeorgeCazenavette/mtt-distillation utils.py `get_dataset`):
    X: N x D (images flattened), mu = mean over samples,
    Sigma = (X - mu)^T (X - mu) / (N - 1)           (kornia default unbiased=True)
    Sigma = U diag(S) U^T,
    T     = U diag(1 / sqrt(S + eps)) U^T           (eps added to the eigenvalues before sqrt)
    T_inv = U diag(sqrt(S + eps)) U^T
    apply(x)  = (x - mu) T,   invert(z) = z T_inv + mu
kornia's inverse is `linear_transform(z, T_inv, -mu T)` = (z + mu T) T_inv = z T_inv + mu.
Note MTT fits ZCA on un-normalised [0, 1] images (`ToTensor()` only) when `--zca` is set.

Differences from kornia: the covariance is accumulated in chunks in float64 and decomposed with
`torch.linalg.eigh` (symmetric) instead of float32 `svd`; tiny negative eigenvalues from round-off
are clipped to 0 (SVD would report |lambda|). Matrices are stored in float32.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .atomic import atomic_path

Tensor = torch.Tensor

__all__ = ["ZCA", "clear_zca_cache", "dataset_zca", "fit_zca", "get_zca"]


@dataclass
class ZCA:
    """A fitted ZCA transform over flattened C*H*W features."""

    mean: Tensor  # (D,)
    transform: Tensor  # (D, D), symmetric
    inverse: Tensor  # (D, D), symmetric
    eps: float = 0.1
    fitted_on: str = ""  # what the caller says the fit saw (dataset_zca: the data's key and image count)

    @property
    def num_features(self) -> int:
        return int(self.mean.numel())

    @classmethod
    def fit(
        cls,
        images: Tensor,
        eps: float = 0.1,
        chunk_size: int = 2048,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> "ZCA":
        """Fit on float images (N, C, H, W) or (N, D); memory stays O(chunk*D + D^2).

        50,000 x 3072 (CIFAR) takes roughly 1 TFLOP in float64: tens of seconds to minutes
        on a few CPU cores, seconds on a GPU (pass device='cuda').
        """
        if images.dim() < 2 or images.shape[0] < 2:
            raise ValueError(f"ZCA needs at least 2 samples as (N, ...), got shape {tuple(images.shape)}")
        if not images.is_floating_point():
            raise TypeError("ZCA.fit expects float images (scale uint8 data first, e.g. /255)")
        n = images.shape[0]
        flat = images.reshape(n, -1)
        work = torch.device(device) if device is not None else flat.device
        d = flat.shape[1]

        total = torch.zeros(d, dtype=dtype, device=work)
        for start in range(0, n, chunk_size):
            total += flat[start:start + chunk_size].to(work, dtype).sum(dim=0)
        mean = total / n

        cov = torch.zeros(d, d, dtype=dtype, device=work)
        for start in range(0, n, chunk_size):
            block = flat[start:start + chunk_size].to(work, dtype) - mean
            cov.addmm_(block.T, block)
        cov /= n - 1
        cov = (cov + cov.T) / 2  # exact symmetry for eigh

        evals, evecs = torch.linalg.eigh(cov)
        evals = evals.clamp_min(0) + eps
        transform = (evecs * evals.rsqrt()) @ evecs.T
        inverse = (evecs * evals.sqrt()) @ evecs.T
        out_device = flat.device
        return cls(
            mean=mean.to(out_device, torch.float32),
            transform=transform.to(out_device, torch.float32),
            inverse=inverse.to(out_device, torch.float32),
            eps=float(eps),
        )

    def _check(self, x: Tensor) -> Tensor:
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.num_features:
            raise ValueError(f"ZCA was fitted on {self.num_features} features per image, got {flat.shape[1]}")
        return flat

    def apply(self, x: Tensor) -> Tensor:
        """Whiten: (x - mean) @ T, same shape and dtype as x; differentiable w.r.t. x."""
        flat = self._check(x)
        mean = self.mean.to(flat.device, flat.dtype)
        out = (flat - mean) @ self.transform.to(flat.device, flat.dtype)
        return out.reshape(x.shape)

    def invert(self, z: Tensor) -> Tensor:
        """Back to image space: z @ T_inv + mean."""
        flat = self._check(z)
        out = flat @ self.inverse.to(flat.device, flat.dtype) + self.mean.to(flat.device, flat.dtype)
        return out.reshape(z.shape)

    __call__ = apply

    def to(self, device: torch.device | str) -> "ZCA":
        return ZCA(self.mean.to(device), self.transform.to(device), self.inverse.to(device), self.eps, self.fitted_on)

    def save(self, path: str | Path) -> Path:
        """Write a .safetensors file (no pickle)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {
            "mean": self.mean.detach().cpu().contiguous(),
            "transform": self.transform.detach().cpu().contiguous(),
            "inverse": self.inverse.detach().cpu().contiguous(),
        }
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"eps": repr(self.eps), "format": "ddcore.zca/1",
                                                   "fitted_on": self.fitted_on})
        return path

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> "ZCA":
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            if meta.get("format") != "ddcore.zca/1":
                raise ValueError(f"{path} is not a ddcore ZCA file")
            tensors = {k: f.get_tensor(k) for k in ("mean", "transform", "inverse")}
        return cls(eps=float(meta["eps"]), fitted_on=str(meta.get("fitted_on", "")), **tensors).to(device)


def fit_zca(images: Tensor, eps: float = 0.1, **kwargs) -> ZCA:
    """Function form of `ZCA.fit`."""
    return ZCA.fit(images, eps=eps, **kwargs)


_CACHE: dict[tuple[str, float, str], ZCA] = {}


def _file_name(name: str, eps: float) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name.strip().lower())
    return f"zca-{safe}-eps{eps:g}.safetensors"


def get_zca(
    name: str,
    fit_fn: Callable[[], Tensor],
    eps: float = 0.1,
    cache_dir: str | Path | None = None,
    fitted_on: str = "",
) -> ZCA:
    """The ZCA of dataset `name`, fitted once per process (and per `cache_dir` when given).

    `fit_fn()` returns the float training images and is only called on a miss. Key: the
    lower-cased name and eps; the caller must make `name` identify the data (e.g. include the
    preprocessing), since nothing here can tell two data sets of the same name apart. With
    `fitted_on`, a cached fit that does not record the same is refitted (a file written before
    the name identified the data, e.g. one fitted on the embedded subset under the full data's name).
    """
    key = (name.strip().lower(), float(eps), fitted_on)
    if key in _CACHE:
        return _CACHE[key]
    file = Path(cache_dir) / _file_name(name, eps) if cache_dir is not None else None
    zca: ZCA | None = None
    if file is not None and file.exists():
        try:
            zca = ZCA.load(file)
        except (OSError, ValueError, KeyError, SafetensorError):
            zca = None  # a corrupt cache file costs a refit, never a crash
        if zca is not None and fitted_on and zca.fitted_on != fitted_on:
            zca = None
    if zca is None:
        zca = ZCA.fit(fit_fn(), eps=eps)
        zca.fitted_on = fitted_on
        if file is not None:
            try:
                zca.save(file)
            except OSError:
                pass  # read-only cache only costs speed
    _CACHE[key] = zca
    return zca


def dataset_zca(data) -> ZCA:
    """The one ZCA the studio uses for a dataset (distillation, experts and evaluation must agree): fitted on
    its normalised training images, cached on disk under the cache folder."""
    from .paths import cache_dir

    return get_zca(data.info.data_key, lambda: data.normalize(data.train.images), cache_dir=cache_dir() / "zca",
                   fitted_on=f"{data.info.data_key}: {len(data.train.labels)} training images")


def clear_zca_cache() -> None:
    """Forget the per-process fits (tests, or after the data changed)."""
    _CACHE.clear()
