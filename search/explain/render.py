"""Draw a heatmap over the image the model saw: the frame zero-padded to its centred square, the grid
upsampled bilinearly to that square, a colour map blended on top, a colour bar with the map's range on
the right and the heuristic label underneath. Pillow only."""

from __future__ import annotations

import io

import numpy as np
from medsearch.explain import NOTE
from medsearch.explain.explain import Heatmap
from medsearch.indexer.pixels import pad_to_square

DISPLAY_SIDE = 448
"""Side of the drawn square in pixels (the frame is resized to it, up or down)."""
BAR_WIDTH = 56
CAPTION_HEIGHT = 30
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


def overlay_png(pixels: np.ndarray, heatmap: Heatmap, alpha: float = 0.5) -> bytes:
    """PNG bytes: ``pixels`` ((H, W) or (H, W, 3) float32 in [0, 1], the frame that was explained),
    padded to the square, with ``heatmap`` over it, a colour bar and the heuristic label."""
    from PIL import Image, ImageDraw

    square = pad_to_square(np.clip(pixels, 0.0, 1.0))
    grey = square if square.ndim == 3 else np.repeat(square[..., None], 3, axis=2)
    base = Image.fromarray(np.round(grey * 255).astype(np.uint8)).resize(
        (DISPLAY_SIDE, DISPLAY_SIDE), Image.Resampling.BICUBIC)
    values = upsample(heatmap.grid, DISPLAY_SIDE)
    low, high = float(heatmap.grid.min()), float(heatmap.grid.max())
    heat = colours((values - low) / (high - low) if high > low else np.zeros_like(values))
    blended = np.asarray(base, dtype=np.float32) * (1 - alpha) + heat.astype(np.float32) * alpha
    canvas = Image.new("RGB", (DISPLAY_SIDE + BAR_WIDTH, DISPLAY_SIDE + CAPTION_HEIGHT), (255, 255, 255))
    canvas.paste(Image.fromarray(np.round(blended).astype(np.uint8)), (0, 0))
    _colour_bar(canvas, low, high)
    pen = ImageDraw.Draw(canvas)
    pen.text((4, DISPLAY_SIDE + 3), f"{heatmap.method}, score {heatmap.score:.3f}. {NOTE}"[:110], fill=(0, 0, 0))
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()


def _colour_bar(canvas: object, low: float, high: float) -> None:
    """A vertical bar right of the square, the highest value at the top, labelled with ``low``/``high``."""
    from PIL import Image, ImageDraw

    ramp = np.linspace(1.0, 0.0, DISPLAY_SIDE - 40)[:, None].repeat(14, axis=1)
    bar = Image.fromarray(colours(ramp))
    canvas.paste(bar, (DISPLAY_SIDE + 8, 20))  # type: ignore[attr-defined]
    pen = ImageDraw.Draw(canvas)  # type: ignore[arg-type]
    pen.text((DISPLAY_SIDE + 4, 4), f"{high:.3g}", fill=(0, 0, 0))
    pen.text((DISPLAY_SIDE + 4, DISPLAY_SIDE - 16), f"{low:.3g}", fill=(0, 0, 0))
