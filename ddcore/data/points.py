"""Toy datasets of points in the plane (two moons, circles, spirals, blobs), for the 2-D playground.

Why as ordinary datasets: the playground must distil them with the same registered methods, so a point
is stored the way every dataset stores an image: a uint8 tensor N×C×H×W, here a 2-channel 1×1 "image"
whose channels are the x and y coordinates, quantised to 256 steps across the plane's extent (steps of
2·EXTENT/255 ≈ 0.024, under two pixels on the playground's canvas). Normalisation is per channel as for
images, so a method sees centred coordinates and an MLP takes the points as they are. Nothing is read
from disk: the points are generated from a fixed seed, so every machine has them.
"""
from __future__ import annotations

import math

import numpy as np

from .info import DatasetInfo

PREFIX = "points-"
EXTENT = 3.0  # the plane shown and stored: [-EXTENT, EXTENT]²
TRAIN_POINTS = 1200
TEST_POINTS = 600
SEED = 20231  # fixed, so a link to the playground shows the same points everywhere


def _moons(n: int, g: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    half = n // 2
    t = g.uniform(0, math.pi, n)
    labels = (np.arange(n) >= half).astype(np.int64)
    x = np.where(labels == 0, np.cos(t), 1 - np.cos(t))
    y = np.where(labels == 0, np.sin(t), 0.5 - np.sin(t))
    xy = np.stack([x - 0.5, y - 0.25], 1) * 1.6
    return xy + g.normal(0, 0.15, xy.shape), labels


def _circles(n: int, g: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = (np.arange(n) % 2).astype(np.int64)
    t = g.uniform(0, 2 * math.pi, n)
    r = np.where(labels == 0, 2.2, 1.0) + g.normal(0, 0.18, n)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1), labels


def _spirals(n: int, g: np.random.Generator, arms: int = 3) -> tuple[np.ndarray, np.ndarray]:
    labels = (np.arange(n) % arms).astype(np.int64)
    r = g.uniform(0.15, 1.0, n)
    t = labels * (2 * math.pi / arms) + r * 1.75 * math.pi + g.normal(0, 0.12, n)
    xy = np.stack([r * np.cos(t), r * np.sin(t)], 1) * 2.6
    return xy, labels


def _blobs(n: int, g: np.random.Generator, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    labels = (np.arange(n) % k).astype(np.int64)
    angles = np.arange(k) * 2 * math.pi / k + math.pi / 4
    centres = 1.5 * np.stack([np.cos(angles), np.sin(angles)], 1)
    return centres[labels] + g.normal(0, 0.55, (n, 2)), labels


GENERATORS = {"moons": (_moons, ("upper moon", "lower moon"), "Two interleaved half-circles"),
              "circles": (_circles, ("outer ring", "inner ring"), "A ring around a disc"),
              "spirals": (_spirals, ("arm 1", "arm 2", "arm 3"), "Three interleaved spiral arms"),
              "blobs": (_blobs, ("blob 1", "blob 2", "blob 3", "blob 4"), "Four overlapping Gaussian blobs")}
DISPLAY_NAMES = {"moons": "Two moons (points)", "circles": "Circles (points)", "spirals": "Spirals (points)",
                 "blobs": "Blobs (points)"}


def to_uint8(xy: np.ndarray) -> np.ndarray:
    """Plane coordinates → the stored N×2×1×1 uint8 form (points outside the extent sit on its edge)."""
    unit = (np.clip(xy, -EXTENT, EXTENT) + EXTENT) / (2 * EXTENT)
    return np.round(unit * 255).astype(np.uint8).reshape(-1, 2, 1, 1)


def plane_from_unit(unit: np.ndarray) -> np.ndarray:
    """[0, 1] coordinates (a de-normalised point) → plane coordinates."""
    return np.asarray(unit, dtype=np.float64) * (2 * EXTENT) - EXTENT


def generate(kind: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'train': (uint8 N×2×1×1, labels), 'test': ...}: the same points on every call and machine."""
    make = GENERATORS[kind][0]
    g = np.random.default_rng(SEED)
    out = {}
    for split, n in (("train", TRAIN_POINTS), ("test", TEST_POINTS)):
        xy, labels = make(n, g)
        out[split] = (to_uint8(xy), labels)
    return out


def infos() -> list[DatasetInfo]:
    """One DatasetInfo per toy, with the per-channel mean/std of its stored training points."""
    out = []
    for kind, (_, class_names, description) in GENERATORS.items():
        train = generate(kind)["train"][0].reshape(-1, 2).astype(np.float64) / 255.0
        out.append(DatasetInfo(f"{PREFIX}{kind}", DISPLAY_NAMES[kind], 2, 1, len(class_names), class_names,
                               tuple(float(v) for v in train.mean(0)), tuple(max(float(v), 1e-3) for v in train.std(0)),
                               f"{description}: {TRAIN_POINTS:,} training and {TEST_POINTS:,} test points in the "
                               "plane, generated (no files)", extra={"points": True, "extent": EXTENT}))
    return out


def is_points(info: DatasetInfo) -> bool:
    return bool(info.extra.get("points"))
