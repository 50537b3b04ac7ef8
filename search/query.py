"""Top-k by cosine over the store's FAISS index, and turning hits into results with their metadata."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from indexer.embedder import Embedder
from indexer.frames import ReadOptions
from indexer.readers import read_file
from search.scoring import probability
from storage.errors import NotFound
from storage.models import METADATA_COLUMNS, Image
from storage.store import Store


@dataclass
class Result:
    """One hit. ``score`` is the cosine; ``probability`` the model's pairwise sigmoid (text queries)."""

    rank: int
    id: int
    path: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    probability: float | None = None
    group: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for optional in ("probability", "group"):
            if data[optional] is None:
                del data[optional]
        return data


def hydrate(store: Store, hits: list[tuple[int, float]], offset: int = 0,
            calibration: tuple[float, float] | None = None) -> list[Result]:
    """Results with paths and metadata for ``hits``; rows deleted meanwhile are dropped."""
    ids = [image_id for image_id, _score in hits]
    with store.sessions() as session:
        rows = {row.id: row for row in session.scalars(select(Image).where(Image.id.in_(ids)))}
    results: list[Result] = []
    for image_id, score in hits:
        row = rows.get(image_id)
        if row is None:
            continue
        prob = float(probability(score, *calibration)) if calibration else None
        results.append(Result(offset + len(results) + 1, image_id, row.path, score, metadata_of(row), prob))
    return results


def metadata_of(row: Image) -> dict[str, Any]:
    """The row's non-null metadata columns, JSON-ready (dates as ISO strings)."""
    data = {}
    for name in METADATA_COLUMNS:
        value = getattr(row, name)
        if value is None:
            continue
        data[name] = value.isoformat() if isinstance(value, dt.date) else value
    return data


def stored_vector(store: Store, image_id: int) -> np.ndarray:
    """The stored (dim,) vector of an image id. Raises NotFound."""
    with store.sessions() as session:
        blob = session.scalar(select(Image.embedding).where(Image.id == image_id))
    if blob is None:
        raise NotFound(f"No image with id {image_id} in the store.")
    return np.frombuffer(blob, dtype=np.float32).copy()


def vector_of_path(store: Store, path: Path) -> np.ndarray | None:
    """The stored vector of an indexed file (its first frame by number), or None when not indexed."""
    with store.sessions() as session:
        blob = session.scalar(select(Image.embedding).where(Image.path == str(path.resolve()))
                              .order_by(Image.frame_number).limit(1))
    return None if blob is None else np.frombuffer(blob, dtype=np.float32).copy()


def embed_file(embedder: Embedder, path: Path, options: ReadOptions | None = None) -> np.ndarray:
    """Read, preprocess and embed a file outside the store (its representative frame). Raises
    UnreadableFile."""
    frames = read_file(path, options or ReadOptions())
    pixels = embedder.preprocessor(frames[0].pixels)
    return embedder.embed_images(pixels[np.newaxis])[0]
