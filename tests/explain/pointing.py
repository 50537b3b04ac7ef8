"""The pointing-game set: one class's shape drawn inside a known box on a plain background, at several
positions and sizes, on square and non-square canvases, and the two scores of a heatmap on it.

Boxes are given in canvas pixels ``[x0, y0, x1, y1)``; the heatmap lives on the padded square the model
saw (the canvas zero-padded to a centred square), so boxes are shifted by the padding before scoring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from tests.tiny_siglip import CANVAS_SIZES, CLASS_CAPTIONS

SHAPES = ("red_circle", "blue_square", "yellow_triangle", "white_cross")
"""The classes whose figure sits in a box (stripes fill the canvas, the black dot needs a white one)."""
COLOURS = {"red_circle": (220, 30, 30), "blue_square": (30, 60, 220), "yellow_triangle": (230, 210, 30),
           "white_cross": (240, 240, 240)}


@dataclass(frozen=True)
class Case:
    """One drawn image, its class's main caption and the box (canvas pixels) that holds the shape."""

    image: Image.Image
    class_name: str
    caption: str
    box: tuple[int, int, int, int]


def draw(class_name: str, size: tuple[int, int], box: tuple[int, int, int, int], grey: int) -> Image.Image:
    """An RGB canvas of ``size`` (width, height), plain ``grey``, with the shape filling ``box``."""
    image = Image.new("RGB", size, (grey, grey, grey))
    pen = ImageDraw.Draw(image)
    x0, y0, x1, y1 = box
    colour = COLOURS[class_name]
    if class_name == "red_circle":
        pen.ellipse([x0, y0, x1 - 1, y1 - 1], fill=colour)
    elif class_name == "blue_square":
        pen.rectangle([x0, y0, x1 - 1, y1 - 1], fill=colour)
    elif class_name == "yellow_triangle":
        pen.polygon([((x0 + x1) // 2, y0), (x0, y1 - 1), (x1 - 1, y1 - 1)], fill=colour)
    else:
        bar, mid_x, mid_y = max(3, (x1 - x0) // 4), (x0 + x1) // 2, (y0 + y1) // 2
        pen.rectangle([x0, mid_y - bar // 2, x1 - 1, mid_y + bar // 2], fill=colour)
        pen.rectangle([mid_x - bar // 2, y0, mid_x + bar // 2, y1 - 1], fill=colour)
    return image


def pointing_set(per_class: int = 12, seed: int = 0) -> list[Case]:
    """``per_class`` cases of every class in ``SHAPES``: canvas from ``CANVAS_SIZES``, box side 35-60 %
    of the short edge at a random position, background grey 0-60. The same seed draws the same set."""
    rng = np.random.default_rng(seed)
    cases = []
    for class_name in SHAPES:
        for _ in range(per_class):
            width, height = CANVAS_SIZES[int(rng.integers(len(CANVAS_SIZES)))]
            side = int(min(width, height) * rng.uniform(0.35, 0.6))
            x0, y0 = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
            box = (x0, y0, x0 + side, y0 + side)
            image = draw(class_name, (width, height), box, int(rng.integers(0, 61)))
            cases.append(Case(image, class_name, CLASS_CAPTIONS[class_name][0], box))
    return cases


def square_box(box: tuple[int, int, int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``box`` on a canvas of ``size`` (width, height) -> the same box on the centred padded square."""
    width, height = size
    side = max(width, height)
    left, top = (side - width) // 2, (side - height) // 2
    return box[0] + left, box[1] + top, box[2] + left, box[3] + top


def peak_in_box(grid: np.ndarray, box: tuple[int, int, int, int], side: int) -> bool:
    """Whether the centre of the grid's highest cell, in padded-square pixels, lies inside ``box``."""
    row, col = np.unravel_index(int(np.argmax(grid)), grid.shape)
    cell = side / grid.shape[0]
    x, y = (col + 0.5) * cell, (row + 0.5) * cell
    return box[0] <= x < box[2] and box[1] <= y < box[3]


def mass_in_box(grid: np.ndarray, box: tuple[int, int, int, int], side: int) -> float:
    """Share of the grid's positive mass inside ``box``, the grid spread over the ``side``-pixel square
    (each cell to its pixels). 0 when nothing is positive."""
    cells = Image.fromarray(np.clip(grid, 0, None).astype(np.float32), mode="F")
    pixels = np.asarray(cells.resize((side, side), Image.Resampling.NEAREST))
    total = float(pixels.sum())
    return float(pixels[box[1]:box[3], box[0]:box[2]].sum()) / total if total > 0 else 0.0


@dataclass(frozen=True)
class Score:
    """A method's figures on a pointing set: share of peaks inside the box, mean share of positive mass
    inside the box, and the mean share of the padded square the boxes cover (the mass of a flat map)."""

    pointing: float
    mass_in_box: float
    area_share: float

    def as_dict(self) -> dict[str, float]:
        return {"pointing": round(self.pointing, 4), "mass_in_box": round(self.mass_in_box, 4),
                "area_share": round(self.area_share, 4)}


def play(embedder: object, cases: list[Case], method: str) -> Score:
    """Explain every case's image for its caption with ``method`` and score the maps."""
    from medsearch.explain.service import explain_frame

    texts = embedder.embed_texts  # type: ignore[attr-defined]
    hits, masses, areas = [], [], []
    for case in cases:
        pixels = np.asarray(case.image, dtype=np.float32) / 255.0
        heatmap = explain_frame(embedder, pixels, texts([case.caption])[0], method, texts).heatmap
        box = square_box(case.box, case.image.size)
        hits.append(peak_in_box(heatmap.grid, box, heatmap.side))
        masses.append(mass_in_box(heatmap.grid, box, heatmap.side))
        areas.append((box[2] - box[0]) * (box[3] - box[1]) / heatmap.side**2)
    return Score(float(np.mean(hits)), float(np.mean(masses)), float(np.mean(areas)))
