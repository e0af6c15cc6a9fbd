"""Multi-formation (IDC, Kim et al., ICML 2022): each stored image holds factor x factor smaller images, decoded by
cutting it into a factor x factor grid and resizing every cell back to full size (bilinear).

Why a module of its own: the method decodes while it distils, the evaluation trains on the decoded images of a
stored set, and the Distill page shows both, so all three must decode the same way. A set records its factor in
meta.config['formation_factor']; its IPC counts stored images (the storage budget), not decoded ones.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

CONFIG_KEY = "formation_factor"


def decode(images: torch.Tensor, factor: int) -> torch.Tensor:
    """(N, C, H, W) stored images -> (N * factor^2, C, H, W) decoded ones; image i's cells are rows
    i*factor^2 ... (i+1)*factor^2 - 1, row-major (top-left first). Sizes that factor does not divide are padded
    with zeros (the normalised mean) at the bottom and right first, as IDC's decode_zoom pads."""
    factor = int(factor)
    if factor <= 1:
        return images
    n, c, h, w = images.shape
    cell = math.ceil(h / factor)
    padded = F.pad(images, (0, cell * factor - w, 0, cell * factor - h)) if h % factor or w % factor else images
    cells = padded.reshape(n, c, factor, cell, factor, cell).permute(0, 2, 4, 1, 3, 5).reshape(n * factor * factor,
                                                                                              c, cell, cell)
    return F.interpolate(cells, size=(h, w), mode="bilinear", align_corners=False)


def decode_labels(labels: torch.Tensor, factor: int) -> torch.Tensor:
    """Each decoded image keeps its stored image's label (hard or soft)."""
    return labels.repeat_interleave(int(factor) ** 2, dim=0) if factor > 1 else labels


def set_factor(config: Mapping[str, Any] | None) -> int:
    """The multi-formation factor a set's metadata records (1: the images are used as stored)."""
    return int((config or {}).get(CONFIG_KEY, 1) or 1)


def encode_real(images: torch.Tensor, factor: int) -> torch.Tensor:
    """IDC's 'mix' initialisation: factor^2 real images (N * factor^2, C, H, W), each shrunk into one cell of a stored
    image (N, C, H, W); decoding gives blurred versions of them back."""
    factor = int(factor)
    if factor <= 1:
        return images
    m, c, h, w = images.shape
    n = m // (factor * factor)
    out = images.new_zeros(n, c, h, w)
    rows = [h // factor + (1 if i < h % factor else 0) for i in range(factor)]
    cols = [w // factor + (1 if j < w % factor else 0) for j in range(factor)]
    k, top = 0, 0
    for i in range(factor):
        left = 0
        for j in range(factor):
            part = images[k * n:(k + 1) * n]
            out[:, :, top:top + rows[i], left:left + cols[j]] = F.interpolate(part, size=(rows[i], cols[j]))
            left += cols[j]
            k += 1
        top += rows[i]
    return out


def decode_uint8(images: np.ndarray, factor: int) -> np.ndarray:
    """decode() for display: uint8 N x H x W x C images in, uint8 (N * factor^2) x H x W x C out (as the page draws)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return decode(x, factor).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
