"""Draw a heatmap over the image the model saw: the frame zero-padded to its centred square, the grid
upsampled bilinearly to that square, a colour map blended on top, a labelled colour bar (what it measures,
the map's range at its ends) on the right and the whole caption (method, score, the heuristic note) under
it, wrapped to the width. Any image size: the square is drawn at the image's side within
``MIN_SIDE``..``MAX_SIDE`` (or the side asked for), and the type, the bar and the caption scale with it.
Pillow only."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from medsearch.explain import NOTE
from medsearch.explain.explain import Heatmap
from medsearch.indexer.pixels import pad_to_square

MIN_SIDE, MAX_SIDE = 448, 1024
"""The drawn square's side: the image's own side, clamped to this range."""
BAR_LABEL = "where the query lands (this map's range)"
_STOPS = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float32)
"""Colour map stops, low to high (inferno-like): dark for the lowest value, pale yellow for the highest."""


def colours(values: np.ndarray) -> np.ndarray:
    """(...) floats in [0, 1] -> (..., 3) uint8 RGB along ``_STOPS``, linearly between stops."""
    scaled = np.clip(values, 0.0, 1.0) * (len(_STOPS) - 1)
    low = np.minimum(scaled.astype(np.int64), len(_STOPS) - 2)
    part = (scaled - low)[..., None]
    return np.round(_STOPS[low] * (1 - part) + _STOPS[low + 1] * part).astype(np.uint8)


def upsample(grid: np.ndarray, side: int) -> np.ndarray:
    """(g, g) float32 -> (side, side) float32, bilinear, each cell centred on its patch."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(grid, dtype=np.float32), mode="F")
    return np.asarray(image.resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32)


def font_for(side: int) -> Any:
    """Pillow's built-in scalable font at a size that reads at ``side`` pixels."""
    from PIL import ImageFont

    return ImageFont.load_default(size=max(12, side // 34))


def caption_of(heatmap: Heatmap) -> str:
    return f"{heatmap.method}, score {heatmap.score:.3f}. {NOTE}"


def wrap(text: str, font: Any, width: int) -> list[str]:
    """``text`` in lines no wider than ``width`` pixels in ``font`` (a longer single word keeps its line);
    the lines joined by spaces give ``text`` back."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def overlay_png(pixels: np.ndarray, heatmap: Heatmap, alpha: float = 0.5, side: int | None = None) -> bytes:
    """PNG bytes: ``pixels`` ((H, W) or (H, W, 3) float32 in [0, 1], the frame that was explained),
    padded to the square (``side`` pixels; default the image's side within ``MIN_SIDE``..``MAX_SIDE``),
    with ``heatmap`` over it, a labelled colour bar and the whole caption."""
    from PIL import Image, ImageDraw

    side = side or int(np.clip(max(pixels.shape[:2]), MIN_SIDE, MAX_SIDE))
    font = font_for(side)
    square = pad_to_square(np.clip(pixels, 0.0, 1.0))
    grey = square if square.ndim == 3 else np.repeat(square[..., None], 3, axis=2)
    base = Image.fromarray(np.round(grey * 255).astype(np.uint8)).resize((side, side), Image.Resampling.BICUBIC)
    values = upsample(heatmap.grid, side)
    low, high = float(heatmap.grid.min()), float(heatmap.grid.max())
    heat = colours((values - low) / (high - low) if high > low else np.zeros_like(values))
    blended = np.asarray(base, dtype=np.float32) * (1 - alpha) + heat.astype(np.float32) * alpha
    line = int(font.size * 1.35)
    bar = _colour_bar(side, low, high, font)
    lines = wrap(caption_of(heatmap), font, side + bar.width - 8)
    canvas = Image.new("RGB", (side + bar.width, side + line * len(lines) + 8), (255, 255, 255))
    canvas.paste(Image.fromarray(np.round(blended).astype(np.uint8)), (0, 0))
    canvas.paste(bar, (side, 0))
    pen = ImageDraw.Draw(canvas)
    for number, text in enumerate(lines):
        pen.text((4, side + 4 + number * line), text, fill=(0, 0, 0), font=font)
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()


def _colour_bar(side: int, low: float, high: float, font: Any) -> Any:
    """The bar's column, ``side`` high: the highest value at the top, its value above the ramp and the
    lowest below, and ``BAR_LABEL`` written upwards beside the ramp."""
    from PIL import Image, ImageDraw

    line = int(font.size * 1.35)
    ramp_width = max(14, side // 32)
    values = [f"{high:.3g}", f"{low:.3g}"]
    width = int(max(font.getlength(v) for v in values)) + line + ramp_width + 16
    column = Image.new("RGB", (width, side), (255, 255, 255))
    ramp = np.linspace(1.0, 0.0, side - 2 * line - 8)[:, None].repeat(ramp_width, axis=1)
    column.paste(Image.fromarray(colours(ramp)), (8, line + 4))
    pen = ImageDraw.Draw(column)
    pen.text((4, 2), values[0], fill=(0, 0, 0), font=font)
    pen.text((4, side - line), values[1], fill=(0, 0, 0), font=font)
    label = Image.new("RGB", (side - 2 * line - 8, line), (255, 255, 255))
    ImageDraw.Draw(label).text((0, 0), _fitted(BAR_LABEL, font, label.width), fill=(0, 0, 0), font=font)
    column.paste(label.rotate(90, expand=True), (8 + ramp_width + 6, line + 4))
    return column


def _fitted(text: str, font: Any, width: int) -> str:
    """``text``, or its first words that fit ``width`` (the bar of a very small square)."""
    words = text.split(" ")
    while len(words) > 1 and font.getlength(" ".join(words)) > width:
        words.pop()
    return " ".join(words)
