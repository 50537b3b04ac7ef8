"""Explain one image against one query vector: the patch map of a method, with where it sits on the
padded square the model saw. The preprocessing is the embedder's own (``Embedder.preprocessor``), and the
model runs on the embedder's device and in its precision, so the map lines up with what was embedded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from medsearch.errors import InvalidQuery
from medsearch.explain import DEFAULT_METHOD, METHODS, NOTE

NEUTRAL_PROMPT = "an image"
"""LeGrad's neutral prompt: its gradient is taken off the query's, so what any text lights is not shown."""


@dataclass
class Heatmap:
    """``grid`` (g, g) float32 over the padded square, row 0 at the top; ``side`` the square's side and
    ``offset`` (left, top) / ``size`` (width, height) of the image inside it, in image pixels; ``score``
    the cosine of the image's embedding (recomputed now) to the query; ``heads`` (H, g, g) for ``values``."""

    method: str
    grid: np.ndarray
    side: int
    offset: tuple[int, int]
    size: tuple[int, int]
    score: float
    heads: np.ndarray | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the grid as nested lists of floats (rounded to 6 digits), plus the geometry."""
        data: dict[str, Any] = {
            "method": self.method, "note": NOTE, "score": round(self.score, 6),
            "grid_size": list(self.grid.shape), "grid": np.round(self.grid, 6).tolist(),
            "square_side": self.side, "image_offset": list(self.offset), "image_size": list(self.size),
        }
        if self.heads is not None:
            data["heads"] = np.round(self.heads, 6).tolist()
        return data


def check_method(method: str) -> str:
    """``method`` if it is one of ``METHODS``. Raises InvalidQuery."""
    if method not in METHODS:
        raise InvalidQuery(f"unknown explain method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def explain_pixels(embedder: Any, pixels: np.ndarray, query: np.ndarray, method: str = DEFAULT_METHOD,
                   neutral: np.ndarray | None = None) -> Heatmap:
    """The map of ``method`` for frame ``pixels`` ((H, W) or (H, W, 3) float32 in [0, 1]) and a unit
    ``query`` vector (D,) float32, e.g. a text's or a composed query's. ``neutral``: LeGrad's neutral
    prompt vector (D,); ``embedder``: a ``SiglipEmbedder`` (it needs the torch model). Raises InvalidQuery."""
    import torch

    check_method(method)
    model = getattr(embedder, "model", None)
    if model is None:
        raise InvalidQuery("this embedder has no SigLIP model to explain")
    batch = torch.from_numpy(embedder.preprocessor(pixels)[np.newaxis])
    batch = batch.to(embedder.device, dtype=embedder.dtype)
    text = torch.from_numpy(np.asarray(query, dtype=np.float32)).to(embedder.device, dtype=embedder.dtype)
    maps = _run(model, batch, text, method, neutral)
    height, width = pixels.shape[:2]
    side = max(height, width)
    embedding = maps.embedding / max(float(np.linalg.norm(maps.embedding)), 1e-12)
    return Heatmap(method, maps.grid, side, ((side - width) // 2, (side - height) // 2), (width, height),
                   float(embedding @ np.asarray(query, dtype=np.float32)), maps.heads)


def _run(model: Any, batch: Any, text: Any, method: str, neutral: np.ndarray | None) -> Any:
    """The ``methods`` function for ``method``, run; returns its ``Maps``."""
    import torch
    from medsearch.explain.methods import legrad_map, maskclip_map, value_maps

    if method == "values":
        return value_maps(model, batch, text)
    if method == "maskclip":
        return maskclip_map(model, batch, text)
    neutral_vector = None
    if neutral is not None:
        neutral_vector = torch.from_numpy(np.asarray(neutral, dtype=np.float32)).to(text.device, text.dtype)
    return legrad_map(model, batch, text, neutral_vector)
