"""What the routes share: the opened ``Medsearch`` (store + model), and the locks that make it safe
under concurrent requests.

The store's in-memory FAISS index is caught up (``Store.catch_up``) inside every search when another
process has committed new rows; FAISS searches may run concurrently but adds may not, so every call that
touches the index or the text cache holds ``index_lock``. That part is fast (a flat search, a SQLite
read); the slow part, the model, runs outside it: text queries through a micro-batcher whose one thread
owns the text tower, uploads and label prompts under ``model_lock``: texts are embedded first and put in the
text cache, so nothing under ``index_lock`` waits for the model. Cohort writes (their own tables, in one
SQLite transaction each; the FAISS writer lock is not needed) are serialised by ``cohort_lock``, taken
before ``index_lock``."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select

from indexer.dicomweb.source import is_source
from indexer.frames import ReadOptions
from indexer.memory_read import read_bytes
from search.api import Medsearch
from search.cohort_criteria import check_column
from search.compose import parse_part
from search.labelsets import LabelSet
from search.query import Result, metadata_of
from search.server.batching import TextBatcher
from search.server.security import served_path
from search.server.thumbnails import ThumbnailCache
from search.server.wado import RemoteImages, viewer_url
from search.zeroshot import Classification, label_matrix, probabilities, stored_vectors, summarize
from storage.errors import InvalidQuery, NotFound
from storage.models import Image

SEARCH_FILTERS = ("where", "min_score", "min_prob", "group_by", "like", "unlike")
"""Query parameters passed on to ``Medsearch.search``."""


class ServerEngine:
    """The model and store opened once at start-up. Methods raise the library's errors."""

    def __init__(self, medsearch: Medsearch, batch_window_s: float = 0.005) -> None:
        self.medsearch = medsearch
        self.index_lock = threading.Lock()
        self.model_lock = threading.Lock()
        self.cohort_lock = threading.Lock()
        self.thumbnails = ThumbnailCache()
        self.remote_images = RemoteImages()
        self.batcher = TextBatcher(self._embed_texts, window_s=batch_window_s)
        self.filters = SEARCH_FILTERS

    def start(self) -> None:
        """Load the model now (not on the first request) and refuse a store built by another model.
        Raises ModelUnavailable, ModelMismatch."""
        self.medsearch.check_model()
        with self.index_lock:
            self.medsearch.texts  # noqa: B018 - created once here, used under the lock afterwards

    def close(self) -> None:
        self.batcher.close()
        self.remote_images.close()
        self.medsearch.close()

    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        with self.model_lock:
            return self.medsearch.embedder.embed_texts(list(texts))

    def search(self, text: str | None, k: int, offset: int, filters: dict[str, Any]) -> list[Result]:
        """Text and/or composed search (``like``/``unlike`` parts: texts or ``id:N``, never files);
        ``filters`` holds only names from ``self.filters``. Raises InvalidQuery, StoreError,
        ModelUnavailable."""
        filters = self._prepare(text, filters)
        with self.index_lock:
            return self.medsearch.search(text, k=k, offset=offset, **filters)

    def count(self, text: str | None, filters: dict[str, Any]) -> int:
        """How many images pass the filter and thresholds (``Medsearch.count``). Raises InvalidQuery."""
        if "group_by" in filters:
            raise InvalidQuery("count=true does not group: leave out group_by")
        filters = self._prepare(text, filters)
        with self.index_lock:
            return self.medsearch.count(text, **filters)

    def _prepare(self, text: str | None, filters: dict[str, Any]) -> dict[str, Any]:
        """Check the parameters, embed the query's texts (outside the index lock) and return the filters
        as ``Medsearch.search`` takes them."""
        unknown = sorted(set(filters) - set(self.filters))
        if unknown:
            raise InvalidQuery(f"This server does not support the parameter(s): {', '.join(unknown)}.")
        if text is not None and not text.strip():
            raise InvalidQuery("the search text is empty")
        parts = [parse_part(text)] if text is not None else []
        parts += [parse_part(p) for p in filters.get("like", ())]
        parts += [parse_part(p, sign=-1.0) for p in filters.get("unlike", ())]
        if not parts:
            raise InvalidQuery("the search text is empty: give q, or like parts")
        if any(part.kind == "image" for part in parts):
            raise InvalidQuery("image: parts name files, which this server does not read; use id:N")
        if "group_by" in filters:
            check_column(self.medsearch, filters["group_by"])
        self.prepare_texts([part.value for part in parts if part.kind == "text"])
        if "where" in filters:
            filters = {**filters, "where": [filters["where"]]}
        return filters

    def prepare_texts(self, texts: Sequence[str]) -> None:
        """Put the vectors of ``texts`` in the text cache, embedding the missing ones under the model lock
        (one text through the micro-batcher), so later calls under ``index_lock`` need no model."""
        cache = self.medsearch.texts
        with self.index_lock:
            missing = cache.missing(texts)
        if not missing:
            return
        one = len(missing) == 1
        vectors = self.batcher.embed(missing[0])[np.newaxis] if one else self._embed_texts(missing)
        with self.index_lock:
            cache.add(missing, vectors)

    def similar_to_id(self, image_id: int, k: int, offset: int, filters: dict[str, Any] | None = None) -> list[Result]:
        """Images closest to a stored image's vector; ``filters``: where (one expression), min_score,
        group_by. Raises NotFound, InvalidQuery."""
        filters = dict(filters or {})
        if "group_by" in filters:
            check_column(self.medsearch, filters["group_by"])
        if "where" in filters:
            filters["where"] = [filters["where"]]
        with self.index_lock:
            return self.medsearch.similar(image_id, k=k, offset=offset, **filters)

    def classify(self, ids: Sequence[int], labels: LabelSet, exclusive: bool) -> list[Classification]:
        """Zero-shot probabilities of stored images (by id only: the store's vectors, no file is read),
        one result per id in the given order. Raises NotFound for an unknown id."""
        self.prepare_texts([prompt for label in labels.labels for prompt in label.prompts])
        wanted = list(dict.fromkeys(ids))
        with self.index_lock:
            matrix = label_matrix(self.medsearch.text_vectors, labels)
        with self.medsearch.store.sessions() as session:
            found = {i: (path, vector) for chunk in stored_vectors(session, wanted)
                     for i, path, vector in zip(*chunk, strict=True)}
        missing = [str(i) for i in wanted if i not in found]
        if missing:
            raise NotFound(f"No image with id {', '.join(missing)} in the store.")
        embedder = self.medsearch.embedder
        probs = probabilities(np.vstack([found[i][1] for i in ids]), matrix, embedder.logit_scale,
                              embedder.logit_bias, exclusive)
        return [summarize(labels, row, i, found[i][0]) for i, row in zip(ids, probs, strict=True)]

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
            metadata = metadata_of(row)
            return {"id": row.id, "path": row.path, "metadata": metadata, "viewer_url": viewer_url(metadata)}

    def thumbnail(self, image_id: int, size: int) -> bytes:
        """PNG bytes of an image's thumbnail. Raises NotFound, Forbidden (outside the roots)."""
        with self.medsearch.store.sessions() as session:
            stored = session.scalar(select(Image.path).where(Image.id == image_id))
        if stored is None:
            raise NotFound(f"No image with id {image_id} in the store.")
        if is_source(stored):
            return self.thumbnails.cached((stored, 0, size), lambda: self.remote_images.png(stored, size))
        return self.thumbnails.get(served_path(self.medsearch.store, stored), size)

    def info(self) -> dict[str, Any]:
        facts = self.medsearch.info()
        facts["server"] = {"filters": list(self.filters)}
        return facts
