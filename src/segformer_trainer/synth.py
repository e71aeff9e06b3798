"""Synthetic semantic-segmentation dataset in TAO's SegFormer layout (numpy + PIL only).

``generate(out_dir, ...)`` writes::

    out_dir/images/{train,val,test}/NNNNN.png   RGB
    out_dir/masks/{train,val,test}/NNNNN.png    single channel, class id per pixel
    out_dir/synth.json                          the generator's parameters

Class 0 is the background; every other class is a *texture*, not a colour or a shape: objects of
random shape (ellipse, rotated rectangle, triangle, blob) are filled with a two-colour pattern
whose colours are drawn at random per object, so colour alone does not tell the classes apart.
The pattern family cycles with the class id (stripes, checkerboard, speckle noise, dots) and its
spatial frequency grows with every cycle; orientation and phase are random, so 90-degree rotations
keep labels valid. The background is a smooth random two-colour field with faint distractor
stripes; objects overlap (later ones occlude earlier ones), may run off the border, and are partly
covered by background-coloured bands; a global colour/contrast jitter and Gaussian noise are added.

Every image is drawn from its own generator seeded by ``(seed, split, index)``: the output is
deterministic for a seed, and e.g. the val split does not change when ``num_train`` does.

This module must import nothing but numpy and PIL (the lean AutoML engine calls it).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SPLITS = ("train", "val", "test")
PATTERNS = ("stripes", "checker", "speckle", "dots")
OUTLIER_COLOUR_P = 0.2  # share of objects whose hue is not their class's typical one

DEFAULTS = {
    "num_train": 480,
    "num_val": 64,
    "num_test": 32,
    "num_classes": 4,
    "img_size": 64,
    "seed": 0,
}


def class_pattern(class_id: int) -> tuple[str, int]:
    """(pattern family, frequency level) of a foreground class."""
    return PATTERNS[(class_id - 1) % len(PATTERNS)], (class_id - 1) // len(PATTERNS)


def _texture(kind: str, level: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A [0, 1] pattern of the given family covering a size x size canvas."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    theta = rng.uniform(0, math.pi)
    u = xx * math.cos(theta) + yy * math.sin(theta)
    v = -xx * math.sin(theta) + yy * math.cos(theta)
    jitter = rng.uniform(0.85, 1.15)
    if kind == "stripes":
        period = (5.0 + 3.0 * level) * jitter
        t = 0.5 + 0.5 * np.sin(2 * math.pi * u / period + rng.uniform(0, 2 * math.pi))
    elif kind == "checker":
        cell = (4.0 + 2.0 * level) * jitter
        t = ((np.floor(u / cell + rng.uniform(0, 1)) + np.floor(v / cell + rng.uniform(0, 1))) % 2).astype(np.float32)
    elif kind == "speckle":
        block = 2 + level
        small = rng.uniform(0, 1, size=(size // block + 1, size // block + 1)).astype(np.float32)
        t = np.kron(small, np.ones((block, block), dtype=np.float32))[:size, :size]
    else:  # dots
        period = (6.0 + 3.0 * level) * jitter
        phase = rng.uniform(0, 2 * math.pi, size=2)
        t = (np.cos(2 * math.pi * u / period + phase[0]) * np.cos(2 * math.pi * v / period + phase[1]) > 0.35)
        t = t.astype(np.float32)
    return t.astype(np.float32)


def _smooth_field(size: int, rng: np.random.Generator, cells: int = 4) -> np.ndarray:
    small = (rng.uniform(0, 1, size=(cells, cells)) * 255).astype(np.uint8)
    big = Image.fromarray(small, mode="L").resize((size, size), Image.BICUBIC)
    return np.asarray(big, dtype=np.float32) / 255.0


def _shape_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy = rng.uniform(-0.05, 1.05, size=2) * size
    r = rng.uniform(0.15, 0.32) * size
    shape = rng.integers(0, 4)
    if shape == 0:  # ellipse
        ry = r * rng.uniform(0.6, 1.4)
        draw.ellipse([cx - r, cy - ry, cx + r, cy + ry], fill=1)
    else:
        if shape == 1:  # rotated rectangle
            angles = np.array([45, 135, 225, 315], dtype=np.float64) * math.pi / 180
            radii = np.full(4, r) * np.array([1, rng.uniform(0.5, 1.5), 1, 1])
            radii[3] = radii[1]
        elif shape == 2:  # triangle
            angles = np.array([90, 210, 330], dtype=np.float64) * math.pi / 180
            radii = r * rng.uniform(0.8, 1.3, size=3)
        else:  # blob
            n = 10
            angles = np.linspace(0, 2 * math.pi, n, endpoint=False)
            radii = r * rng.uniform(0.6, 1.3, size=n)
        rot = rng.uniform(0, 2 * math.pi)
        pts = [(cx + rad * math.cos(a + rot), cy + rad * math.sin(a + rot)) for a, rad in zip(angles, radii)]
        draw.polygon(pts, fill=1)
    return np.asarray(canvas, dtype=bool)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """One HSV colour (all in [0, 1]) as float RGB in [0, 255]."""
    i = int(h * 6.0) % 6
    f = h * 6.0 - math.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.asarray(rgb, dtype=np.float32) * 255.0


def _object_colours(cls: int, num_classes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Dark/light colour pair: class-typical hue most of the time, any hue sometimes."""
    if rng.uniform() < OUTLIER_COLOUR_P:
        hue = rng.uniform()
    else:
        spacing = 1.0 / (num_classes - 1)
        hue = ((cls - 1) * spacing + rng.uniform(-0.3, 0.3) * spacing) % 1.0
    sat = rng.uniform(0.45, 1.0)
    dark = _hsv(hue, sat, rng.uniform(0.15, 0.45))
    light = _hsv(hue, sat * rng.uniform(0.5, 1.0), rng.uniform(0.7, 1.0))
    return dark, light


def _background_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    hue = rng.uniform()
    sat = rng.uniform(0.0, 0.35) if rng.uniform() < 0.7 else rng.uniform(0.35, 1.0)
    a = _hsv(hue, sat, rng.uniform(0.3, 0.9))
    b = _hsv((hue + rng.uniform(-0.1, 0.1)) % 1.0, sat, rng.uniform(0.3, 0.9))
    return a, b


def make_sample(size: int, num_classes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One (image HxWx3 uint8, mask HxW uint8) pair."""
    # Background: smooth two-colour field with faint distractor stripes.
    a, b = _background_colours(rng)
    field = _smooth_field(size, rng)[..., None]
    img = a * (1 - field) + b * field
    distract = _texture("stripes", int(rng.integers(0, 3)), size, rng)[..., None]
    img = img + (distract - 0.5) * rng.uniform(0, 25)
    mask = np.zeros((size, size), dtype=np.uint8)

    for _ in range(int(rng.integers(2, 5))):
        cls = int(rng.integers(1, num_classes))
        kind, level = class_pattern(cls)
        shape = _shape_mask(size, rng)
        if not shape.any():
            continue
        t = _texture(kind, level, size, rng)[..., None]
        dark, light = _object_colours(cls, num_classes, rng)
        obj = dark * (1 - t) + light * t
        img = np.where(shape[..., None], obj, img)
        mask[shape] = cls

    # Partial occlusion by background-like bands.
    if rng.uniform() < 0.5:
        band = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(band)
        x0, y0, x1, y1 = rng.uniform(0, size, size=4)
        draw.line([(x0, y0), (x1, y1)], fill=1, width=int(rng.integers(2, max(3, size // 10))))
        band_mask = np.asarray(band, dtype=bool)
        colour = _background_colours(rng)[0]
        img = np.where(band_mask[..., None], colour, img)
        mask[band_mask] = 0

    # Global colour/contrast jitter and sensor noise.
    gain = rng.uniform(0.85, 1.15, size=3).astype(np.float32)
    offset = rng.uniform(-15, 15)
    mean = img.mean()
    contrast = rng.uniform(0.8, 1.15)
    img = (img - mean) * contrast + mean
    img = img * gain + offset
    img = img + rng.normal(0, rng.uniform(3, 8), size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), mask


def generate(
    out_dir: str | Path,
    num_train: int = DEFAULTS["num_train"],
    num_val: int = DEFAULTS["num_val"],
    num_test: int = DEFAULTS["num_test"],
    num_classes: int = DEFAULTS["num_classes"],
    img_size: int = DEFAULTS["img_size"],
    seed: int = DEFAULTS["seed"],
) -> Path:
    """Write the dataset under ``out_dir`` and return its root (``dataset.segment.root_dir``)."""
    if num_classes < 2 or num_classes > 255:
        raise ValueError("num_classes must be in [2, 255]")
    if img_size < 8:
        raise ValueError("img_size must be >= 8")
    counts = {"train": num_train, "val": num_val, "test": num_test}
    if any(n < 0 for n in counts.values()):
        raise ValueError("split sizes must be >= 0")
    root = Path(out_dir)
    for split_idx, split in enumerate(SPLITS):
        img_dir = root / "images" / split
        mask_dir = root / "masks" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        mask_dir.mkdir(parents=True, exist_ok=True)
        for i in range(counts[split]):
            rng = np.random.default_rng([int(seed), split_idx, i])
            img, mask = make_sample(img_size, num_classes, rng)
            Image.fromarray(img, mode="RGB").save(img_dir / f"{i:05d}.png")
            Image.fromarray(mask, mode="L").save(mask_dir / f"{i:05d}.png")
    info = {
        "generator": "segformer_trainer.synth",
        "num_classes": num_classes,
        "img_size": img_size,
        "seed": seed,
        "splits": counts,
        "classes": ["background"] + [
            f"{class_pattern(c)[0]}_{class_pattern(c)[1]}" for c in range(1, num_classes)
        ],
    }
    (root / "synth.json").write_text(json.dumps(info, indent=2) + "\n")
    return root
