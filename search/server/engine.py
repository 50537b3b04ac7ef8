"""What the routes share: the opened ``Medsearch`` (store + model), and the locks that make it safe
under concurrent requests.

The store's in-memory FAISS index is caught up (``Store.catch_up``) inside every search when another
process has committed new rows; FAISS searches may run concurrently but adds may not, so every call that
touches the index or the text cache holds ``index_lock``. That part is fast (a flat search, a SQLite
read); the slow part, the model, runs outside it: text queries through a micro-batcher whose one thread
owns the text tower, uploads under ``model_lock``."""

from __future__ import annotations

import inspect
import threading
from typing import Any

import numpy as np
from sqlalchemy import select

from indexer.frames import ReadOptions
from indexer.memory_read import read_bytes
from indexer.preprocess import PREPROCESSING_VERSION
from search.api import Medsearch
from search.query import Result, metadata_of
from search.server.batching import TextBatcher
from search.server.security import served_path
from search.server.thumbnails import ThumbnailCache
from storage.errors import InvalidQuery, NotFound
from storage.models import Image
from storage.store import ModelRecord

SEARCH_FILTERS = ("where", "min_score", "min_prob")
"""Query parameters passed on to ``Medsearch.search`` when (and only when) it accepts them."""


class ServerEngine:
    """The model and store opened once at start-up. Methods raise the library's errors."""

    def __init__(self, medsearch: Medsearch, batch_window_s: float = 0.005) -> None:
        self.medsearch = medsearch
        self.index_lock = threading.Lock()
        self.model_lock = threading.Lock()
        self.thumbnails = ThumbnailCache()
        self.batcher = TextBatcher(self._embed_texts, window_s=batch_window_s)
        accepted = inspect.signature(medsearch.search).parameters
        self.filters = tuple(name for name in SEARCH_FILTERS if name in accepted)

    def start(self) -> None:
        """Load the model now (not on the first request) and refuse a store built by another model.
        Raises ModelUnavailable, ModelMismatch."""
        embedder = self.medsearch.embedder
        store = self.medsearch.store
        if store.model_record() is not None:
            store.bind_model(ModelRecord(embedder.model_id, embedder.revision, embedder.dim,
                                         PREPROCESSING_VERSION))
        with self.index_lock:
            self.medsearch.texts  # noqa: B018 - created once here, used under the lock afterwards

    def close(self) -> None:
        self.batcher.close()
        self.medsearch.close()

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        with self.model_lock:
            return self.medsearch.embedder.embed_texts(texts)

    def search(self, text: str, k: int, offset: int, filters: dict[str, Any]) -> list[Result]:
        """Text-to-image search; ``filters`` holds only names from ``self.filters``. Raises InvalidQuery,
        StoreError, ModelUnavailable."""
        unknown = sorted(set(filters) - set(self.filters))
        if unknown:
            raise InvalidQuery(f"This server does not support the parameter(s): {', '.join(unknown)}.")
        if not text.strip():
            raise InvalidQuery("the search text is empty")
        vector = self.batcher.embed(text)
        with self.index_lock:
            self._remember_text(text, vector)
            if "where" in filters:
                filters = {**filters, "where": [filters["where"]]}
            return self.medsearch.search(text, k=k, offset=offset, **filters)

    def _remember_text(self, text: str, vector: np.ndarray) -> None:
        """Put the batcher's vector in the text cache, so ``Medsearch.search`` finds it there."""
        memory = self.medsearch.texts.memory
        memory[text] = vector
        memory.move_to_end(text)
        while len(memory) > self.medsearch.texts.capacity:
            memory.popitem(last=False)

    def similar_to_id(self, image_id: int, k: int, offset: int) -> list[Result]:
        """Images closest to a stored image's vector. Raises NotFound."""
        with self.index_lock:
            return self.medsearch.similar(image_id, k=k, offset=offset)

    def similar_to_bytes(self, data: bytes, filename: str, k: int, offset: int) -> list[Result]:
        """Images closest to an uploaded image, decoded and embedded in memory. Raises UnreadableFile."""
        frames = read_bytes(data, ReadOptions(), filename)
        embedder = self.medsearch.embedder
        with self.model_lock:
            vector = embedder.embed_images(embedder.preprocessor(frames[0].pixels)[np.newaxis])[0]
        with self.index_lock:
            return self.medsearch.rank(vector, k, offset)

    def item(self, image_id: int) -> dict[str, Any]:
        """One image's id, path and typed metadata (never the identity column). Raises NotFound."""
        with self.medsearch.store.sessions() as session:
            row = session.scalar(select(Image).where(Image.id == image_id))
            if row is None:
                raise NotFound(f"No image with id {image_id} in the store.")
            return {"id": row.id, "path": row.path, "metadata": metadata_of(row)}

    def thumbnail(self, image_id: int, size: int) -> bytes:
        """PNG bytes of an image's thumbnail. Raises NotFound, Forbidden (outside the roots)."""
        with self.medsearch.store.sessions() as session:
            stored = session.scalar(select(Image.path).where(Image.id == image_id))
        if stored is None:
            raise NotFound(f"No image with id {image_id} in the store.")
        return self.thumbnails.get(served_path(self.medsearch.store, stored), size)

    def info(self) -> dict[str, Any]:
        facts = self.medsearch.info()
        facts["server"] = {"filters": list(self.filters)}
        return facts
