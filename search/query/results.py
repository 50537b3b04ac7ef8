"""Turning ranked hits into results with their paths and metadata, and the vector of a query target
(a stored id, an indexed file, or a file embedded now)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.errors import NotFound
from medsearch.indexer.embedder import Embedder
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.readers import read_file
from medsearch.query.scoring import probability
from medsearch.storage import queries
from medsearch.storage.store import Store


@dataclass
class Result:
    """One hit. ``score`` is the cosine; ``probability`` the model's pairwise sigmoid (text queries);
    ``fields`` the image's sidecar and saved-label fields, typed as imported."""

    rank: int
    id: int
    path: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    probability: float | None = None
    group: dict[str, Any] | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for optional in ("probability", "group"):
            if data[optional] is None:
                del data[optional]
        return data


def hydrate(store: Store, hits: list[tuple[int, float]], offset: int = 0,
            calibration: tuple[float, float] | None = None) -> list[Result]:
    """Results with paths, metadata and fields for ``hits``; rows deleted meanwhile are dropped."""
    ids = [image_id for image_id, _score in hits]
    rows = queries.images_by_id(store, ids)
    extra = queries.fields_by_id(store, ids)
    results: list[Result] = []
    for image_id, score in hits:
        if image_id not in rows:
            continue
        path, metadata = rows[image_id]
        prob = float(probability(score, *calibration)) if calibration else None
        results.append(Result(offset + len(results) + 1, image_id, path, score, metadata, prob,
                              fields=extra.get(image_id, {})))
    return results


def stored_vector(store: Store, image_id: int) -> np.ndarray:
    """The stored (dim,) float32 vector of an image id. Raises NotFound."""
    vector = queries.vector_of_id(store, image_id)
    if vector is None:
        raise NotFound(f"No image with id {image_id} in the store.")
    return vector


def vector_of_path(store: Store, path: Path) -> np.ndarray | None:
    """The stored vector of an indexed file (its first frame by number), or None when not indexed."""
    return queries.vector_of_path(store, str(path.resolve()))


def embed_file(embedder: Embedder, path: Path, options: ReadOptions | None = None) -> np.ndarray:
    """Read, preprocess and embed a file outside the store (its representative frame). Raises
    UnreadableFile."""
    frames = read_file(path, options or ReadOptions())
    pixels = embedder.preprocessor(frames[0].pixels)
    return embedder.embed_images(pixels[np.newaxis])[0]
