"""Pictures of the 2-D playground: decision regions, faint real points and the synthetic points over them.

Plain numpy/PIL, about 10 ms a frame: ten frames a second of a Plotly heatmap and scatter would cost the browser
more than the distillation costs the server. A frame must also stay well inside the page's 0.1 s refresh: a
Streamlit fragment asked to rerun while it is still running is cut short, so slow frames are never shown.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

# Okabe-Ito: told apart by most colour-blind viewers, and on a projector.
PALETTE = np.array([(230, 159, 0), (86, 180, 233), (0, 158, 115), (204, 121, 167), (213, 94, 0)], dtype=np.float64)
PANEL = 320  # pixels per side: two panels and the controls fit a 1280 × 720 window
WORK = 160  # regions are computed at this size, then scaled up (the network's grid is coarser still)


def class_colour(c: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in PALETTE[c % len(PALETTE)])  # type: ignore[return-value]


def _regions(probs: np.ndarray, size: int) -> Image.Image:
    """Each cell tinted by its predicted class, paler where the network is unsure, with the boundary drawn.
    Each class's probability is upsampled smoothly before the boundary is found (nearest-neighbour showed the
    network's grid as stairs)."""
    k = probs.shape[-1]
    colours = PALETTE[np.arange(k) % len(PALETTE)]
    up = np.stack([np.asarray(Image.fromarray(probs[..., c].astype(np.float32), mode="F")
                              .resize((WORK, WORK), Image.BILINEAR)) for c in range(k)], -1)
    winner = up.argmax(-1)
    confidence = np.take_along_axis(up, winner[..., None], -1)
    tint = up @ colours  # the expected colour
    pale = 255 - (255 - tint) * (0.25 + 0.35 * np.clip((confidence - 1 / k) / (1 - 1 / k), 0, 1))
    out = np.clip(pale, 0, 255).astype(np.uint8)
    edge = np.zeros(winner.shape, dtype=bool)
    edge[1:, :] |= winner[1:, :] != winner[:-1, :]
    edge[:, 1:] |= winner[:, 1:] != winner[:, :-1]
    out[edge] = (90, 90, 90)
    return Image.fromarray(out).resize((size, size), Image.BILINEAR)


def _pixels(xy: np.ndarray, extent: float, size: int) -> np.ndarray:
    px = (xy[:, 0] + extent) / (2 * extent) * (size - 1)
    py = (extent - xy[:, 1]) / (2 * extent) * (size - 1)
    return np.stack([px, py], 1)


def points_layer(xy: np.ndarray, labels: np.ndarray, extent: float, *, faint: bool, size: int = PANEL) -> Image.Image:
    """The real points as a transparent layer (drawn once per dataset, laid over every frame)."""
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    r = 1.6 if faint else 2.2
    for (x, y), c in zip(_pixels(xy, extent, size), labels):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(*class_colour(int(c)), 70 if faint else 190))
    return layer


def panel(probs: np.ndarray, real_points: Image.Image, extent: float, *, synthetic_xy: np.ndarray | None = None,
          synthetic_labels: np.ndarray | None = None) -> np.ndarray:
    """One square view of the plane (RGB uint8): regions, the real points, then the synthetic points on top."""
    size = real_points.size[0]
    canvas = _regions(probs, size).convert("RGBA")
    canvas.alpha_composite(real_points)
    draw = ImageDraw.Draw(canvas)
    if synthetic_xy is not None and synthetic_labels is not None:
        for (x, y), c in zip(_pixels(np.clip(synthetic_xy, -extent, extent), extent, size), synthetic_labels):
            draw.ellipse((x - 7, y - 7, x + 7, y + 7), fill=class_colour(int(c)), outline=(20, 20, 20), width=2)
    draw.rectangle((0, 0, size - 1, size - 1), outline=(190, 190, 190))
    return np.asarray(canvas.convert("RGB"))


def sparkline(values: Sequence[float], width: int = PANEL, height: int = 64) -> np.ndarray:
    """The loss so far as a small line (log scale when it spans decades), newest on the right."""
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    ys = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)
    draw.text((4, 2), "loss", fill=(120, 124, 140))
    if len(ys) >= 2:
        if ys.min() > 0 and ys.max() / ys.min() > 30:
            ys = np.log10(ys)
        lo, hi = float(ys.min()), float(ys.max())
        span = hi - lo or 1.0
        xs = np.linspace(30, width - 4, len(ys))
        pts = [(float(x), float(height - 6 - (y - lo) / span * (height - 16))) for x, y in zip(xs, ys)]
        draw.line(pts, fill=(228, 87, 46), width=2)
    return np.asarray(canvas)
