"""Images holding two drawn shapes, beside images of one, for negation queries on the trained tiny model
("a red circle without a blue square"): the shapes of ``tests.tiny_siglip``, each drawn in its own half."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tests.tiny_siglip import CLASS_CAPTIONS, _draw_shape

SHAPES = ("red_circle", "blue_square", "yellow_triangle", "white_cross")
"""The shapes drawn in a box (stripes fill the canvas, the dot needs a white one)."""
HALF = 48


def caption(shape: str) -> str:
    """The shape's main caption: "a red circle"."""
    return CLASS_CAPTIONS[shape][0]


def draw(shapes: tuple[str, ...], rng: np.random.Generator) -> Image.Image:
    """One RGB image, ``HALF`` high, with each of ``shapes`` in its own ``HALF`` x ``HALF`` square on a
    dark background, in random order, with noise."""
    grey = int(rng.integers(0, 61))
    order = list(shapes)
    rng.shuffle(order)
    image = Image.new("RGB", (HALF * len(order), HALF), (grey, grey, grey))
    for slot, shape in enumerate(order):
        tile = Image.new("RGB", (HALF, HALF), (grey, grey, grey))
        _draw_shape(ImageDraw.Draw(tile), shape, (HALF, HALF), rng)
        image.paste(tile, (slot * HALF, 0))
    noise = rng.normal(0.0, 6.0, size=(image.height, image.width, 3))
    return Image.fromarray(np.clip(np.asarray(image, np.float32) + noise, 0, 255).astype(np.uint8), mode="RGB")


def write_gallery(folder: Path, per_kind: int, seed: int) -> dict[str, frozenset[str]]:
    """``per_kind`` PNGs of each single shape and of each pair of shapes in ``folder``: path -> shapes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    kinds = [(shape,) for shape in SHAPES] + list(combinations(SHAPES, 2))
    out = {}
    for kind in kinds:
        for index in range(per_kind):
            path = folder / f"{'+'.join(kind)}_{index:03d}.png"
            draw(kind, rng).save(path)
            out[str(path.resolve())] = frozenset(kind)
    return out
