"""The kernels of an infinitely wide fully connected ReLU network, in closed form: KIP's FC kernels.

Why closed form: KIP (Nguyen, Chen & Lee, ICLR 2021) distils with the exact NTK of a fully connected network,
which for ReLU is the arc-cosine recursion below (Cho & Saul 2009; Jacot et al. 2018; neural_tangents' stax.Dense +
stax.Relu in NTK parameterisation compute the same). No network is drawn, so the kernel has no sampling noise,
and for flattened images it costs one matrix product and a few elementwise operations.

For inputs x, x' of dimension d, with weight variance s_w^2 and bias variance s_b^2, the first layer gives
    S(x, x') = s_w^2 <x, x'> / d + s_b^2,   NTK = S.
Each hidden ReLU layer then maps, with c = S(x, x') / sqrt(S(x, x) S(x', x')) = cos(theta),
    T    = sqrt(S(x, x) S(x', x')) (sin theta + (pi - theta) cos theta) / (2 pi)      E[relu(u) relu(v)]
    Tdot = (pi - theta) / (2 pi)                                                       E[relu'(u) relu'(v)]
    S   <- s_w^2 T + s_b^2,   NTK <- S + s_w^2 Tdot NTK
(the readout layer is the last such update). Computed in float64 with sin theta written as sqrt(1 - c^2), so the
gradients stay finite where c reaches 1 (a point with itself).
"""
from __future__ import annotations

import math

import torch


def relu_fc_kernel(x_a: torch.Tensor, x_b: torch.Tensor, depth: int = 1, weight_var: float = 2.0,
                   bias_var: float = 0.01, kind: str = "ntk") -> torch.Tensor:
    """The NTK ('ntk') or NNGP ('nngp') kernel (A, B) between the rows of x_a and x_b (any shape; flattened) of an
    infinitely wide fully connected ReLU network with `depth` hidden layers. KIP's defaults: W_std sqrt(2), b_std 0.1
    (weight_var 2, bias_var 0.01)."""
    if kind not in ("ntk", "nngp"):
        raise ValueError(f"kind must be 'ntk' or 'nngp', not {kind!r}")
    if depth < 0:
        raise ValueError("depth must be at least 0")
    a, b = x_a.flatten(1).double(), x_b.flatten(1).double()
    d = a.shape[1]
    cov = weight_var * (a @ b.T) / d + bias_var
    var_a = weight_var * (a * a).sum(1) / d + bias_var
    var_b = weight_var * (b * b).sum(1) / d + bias_var
    ntk = cov
    for _ in range(depth):
        norm = torch.sqrt(var_a[:, None] * var_b[None, :])
        c = (cov / norm).clamp(-1.0, 1.0 - 1e-12)
        theta = torch.arccos(c)
        t = norm * (torch.sqrt(1 - c * c) + (math.pi - theta) * c) / (2 * math.pi)
        t_dot = (math.pi - theta) / (2 * math.pi)
        cov = weight_var * t + bias_var
        ntk = cov + weight_var * t_dot * ntk
        var_a, var_b = weight_var * var_a / 2 + bias_var, weight_var * var_b / 2 + bias_var  # T(x, x) = S(x, x) / 2
    return ntk if kind == "ntk" else cov
