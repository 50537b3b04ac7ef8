"""What the routes share: the opened ``Medsearch`` (store + model), and the locks that make it safe
under concurrent requests.

The store's in-memory FAISS index is caught up (``VectorIndex.catch_up``) inside every search when another
process has committed new rows; FAISS searches may run concurrently but adds may not, so every call that
touches the index or the text cache holds ``index_lock``. That part is fast (a flat search, a SQLite
read); the slow part, the model, runs outside it: text queries through a micro-batcher whose one thread
owns the text tower, uploads and label prompts under ``model_lock``: texts are embedded first and put in the
text cache, so nothing under ``index_lock`` waits for the model. Cohort writes (their own tables, in one
SQLite transaction each; the FAISS writer lock is not needed) are serialised by ``cohort_lock``, taken
before ``index_lock``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from medsearch.api import Medsearch
from medsearch.errors import InvalidQuery, NotFound
from medsearch.indexer.dicomweb.source import is_source
from medsearch.indexer.thumbnail import THUMBNAIL_SIZE
from medsearch.labels.labelsets import LabelSet
from medsearch.labels.zeroshot import Classification
from medsearch.query import units
from medsearch.query.results import Result
from medsearch.server.batching import TextBatcher
from medsearch.server.decoding import Decoder
from medsearch.server.limits import SERVER_MAX_PIXELS
from medsearch.server.security import served_path
from medsearch.server.thumbnails import ThumbnailCache
from medsearch.server.wado import RemoteImages, viewer_url

log = logging.getLogger(__name__)

SEARCH_FILTERS = ("where", "min_score", "min_prob", "group_by", "like", "unlike")
"""Query parameters passed on to ``Medsearch.search``."""


class ServerEngine:
    """The ``Medsearch`` opened once at start-up, with the locks, the text batcher and the thumbnail
    cache a server adds; every query and its validation is ``Medsearch``'s. Methods raise the library's
    errors."""

    def __init__(self, medsearch: Medsearch, batch_window_s: float = 0.005,
                 max_upload_pixels: int = SERVER_MAX_PIXELS) -> None:
        self.medsearch = medsearch
        self.index_lock = threading.Lock()
        self.model_lock = threading.Lock()
        self.cohort_lock = threading.Lock()
        self.decoder = Decoder(max_upload_pixels=max_upload_pixels)
        self.thumbnails = ThumbnailCache(render=self.decoder.thumbnail)
        self.remote_images = RemoteImages(render=self.decoder.bytes_thumbnail)
        self.batcher = TextBatcher(self._embed_texts, window_s=batch_window_s)
        self.filters = SEARCH_FILTERS
        self.warmed: int | None = None  # vectors read into the page cache once the warm-up is done
        self._stop_warming = threading.Event()
        self._warming: threading.Thread | None = None

    def start(self) -> None:
        """Load the model now (not on the first request) and refuse a store built by another model.
        Raises ModelUnavailable, ModelMismatch."""
        self.medsearch.check_model()
        with self.index_lock:
            self.medsearch.texts  # noqa: B018 - created once here, used under the lock afterwards
        self._warming = threading.Thread(target=self._warm, name="vector-warm-up", daemon=True)
        self._warming.start()

    def _warm(self) -> None:
        """Read an ivf-pq store's vectors into the page cache while the first queries are answered."""
        started = time.monotonic()
        try:
            read = self.medsearch.store.vectors.warm_vectors(self._stop_warming)
        except Exception as error:  # a warm-up only saves time: say why it stopped, serve on
            log.warning("the stored vectors were not read ahead: %s", error)
            read = 0
        if read:
            log.info("read %d stored vectors into the page cache in %.0f s", read, time.monotonic() - started)
        self.warmed = read

    def close(self) -> None:
        self._stop_warming.set()
        if self._warming is not None:
            self._warming.join()
        self.batcher.close()
        self.remote_images.close()
        self.medsearch.close()

    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        with self.model_lock:
            return self.medsearch.embedder.embed_texts(list(texts))

    def search(self, text: str | None, k: int, offset: int, filters: dict[str, Any]) -> list[Result]:
        """``Medsearch.search`` with ``filters`` (only names from ``self.filters``; ``where`` one
        expression); ``like``/``unlike`` parts are texts or ``id:N``, never files. Raises InvalidQuery,
        StoreError, ModelUnavailable."""
        sort = filters.pop("sort", "score")  # score | date
        filters = self.prepare(text, filters)
        with self.index_lock:
            return self.medsearch.search(text, k=k, offset=offset, sort=sort, **filters)

    def count(self, text: str | None, filters: dict[str, Any], unit: str = "image") -> int:
        """``Medsearch.count`` (or ``count_units`` of ``unit``) with ``filters`` as for ``search``, less
        ``group_by``. Raises InvalidQuery."""
        if "group_by" in filters:
            raise InvalidQuery("count=true does not group: leave out group_by")
        filters = self.prepare(text, filters)
        with self.index_lock:
            if unit != "image":
                return self.medsearch.count_units(unit, text, **filters)
            return self.medsearch.count(text, **filters)

    def prepare(self, text: str | None, filters: dict[str, Any]) -> dict[str, Any]:
        """Refuse parameters this server lacks and parts naming files, embed the query's texts (outside
        the index lock) and return the filters as ``Medsearch.search`` takes them."""
        unknown = sorted(set(filters) - set(self.filters))
        if unknown:
            raise InvalidQuery(f"This server does not support the parameter(s): {', '.join(unknown)}.")
        parts = self.medsearch.parse_parts(text, filters.get("like", ()), filters.get("unlike", ()))
        if any(part.kind == "image" for part in parts):
            raise InvalidQuery("image: parts name files, which this server does not read; use id:N")
        if "group_by" in filters:
            self.medsearch.group_column(filters["group_by"])
        self.prepare_texts([part.value for part in parts if part.kind == "text"])
        return _one_where(filters)

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
        """``Medsearch.similar`` of a stored id; ``filters``: where (one expression), min_score, group_by,
        include_self. Raises NotFound, InvalidQuery."""
        with self.index_lock:
            return self.medsearch.similar(image_id, k=k, offset=offset, **_one_where(filters or {}))

    # series, studies and the timeline (issue 17; medsearch.server.routes_units, unit= on routes_search)

    def search_units(self, text: str | None, unit: str, k: int, offset: int, filters: dict[str, Any]) -> list[Any]:
        """``Medsearch.search_units`` with ``filters`` as for ``search`` (and ``unit_method``, ``sort``)."""
        method, sort = filters.pop("unit_method", None), filters.pop("sort", "score")
        if "group_by" in filters:
            raise InvalidQuery("unit= gives one row per series or study already: leave out group_by")
        filters = self.prepare(text, filters)
        with self.index_lock:
            return self.medsearch.search_units(text, unit, k, offset, method=method, sort=sort, **filters)

    def similar_units(self, image_id: int, unit: str, k: int, offset: int, filters: dict[str, Any]) -> list[Any]:
        """``Medsearch.similar_units`` of a stored image's series or study. Raises NotFound, InvalidQuery."""
        method, sort = filters.pop("unit_method", None), filters.pop("sort", "score")
        if "group_by" in filters:
            raise InvalidQuery("unit= gives one row per series or study already: leave out group_by")
        with self.index_lock:
            return self.medsearch.similar_units(image_id, unit, k, offset, method=method, sort=sort,
                                                **_one_where(filters))

    def timeline(self, target: str, text: str | None) -> Any:
        """``Medsearch.timeline``, the query text embedded first. Raises NotFound, InvalidQuery."""
        if text is not None:
            self.prepare(text, {})
        with self.index_lock:
            return self.medsearch.timeline(target, text)

    def classify(self, ids: Sequence[int], labels: LabelSet, exclusive: bool) -> list[Classification]:
        """``Medsearch.classify_ids``, the prompts embedded first. Raises NotFound for an unknown id."""
        self.prepare_texts([prompt for label in labels.labels for prompt in label.prompts])
        with self.index_lock:
            return self.medsearch.classify_ids(ids, labels, exclusive)

    def similar_to_bytes(self, data: bytes, filename: str, k: int, offset: int,
                         filters: dict[str, Any] | None = None) -> list[Any]:
        """Images (or, with ``unit`` series/study, units) closest to an uploaded image, decoded in memory by a
        capped worker (``Decoder``) and embedded; ``filters``: where (one expression), min_score, group_by,
        sort, unit_method. Raises UnreadableFile (also over the decode caps), InvalidQuery (checked before
        the image is decoded)."""
        filters = _one_where(filters or {})
        unit, method = filters.pop("unit", "image"), filters.pop("unit_method", None)
        sort = filters.pop("sort", "score")
        if unit != "image":
            if filters.get("group_by") is not None:
                raise InvalidQuery("unit= gives one row per series or study already: leave out group_by")
            units.check_unit(unit, method, units.SIMILAR_METHODS)
        elif filters.get("group_by") is not None:
            self.medsearch.group_column(filters["group_by"])
        units.check_sort(sort, filters.get("min_score"))
        with self.index_lock:
            self.medsearch.allowed(filters.get("where", ()))  # a bad filter fails before any decoding
        pixels = self.decoder.upload_pixels(data, filename, self.medsearch.embedder.preprocessor)
        with self.model_lock:
            vector = self.medsearch.embed_pixels(pixels)
        where, min_score = filters.get("where", ()), filters.get("min_score")
        with self.index_lock:
            if unit != "image":
                return self.medsearch.rank_units(vector, unit, k, offset, where, min_score, method, sort)
            return self.medsearch.rank(vector, k, offset, where, min_score, filters.get("group_by"), sort=sort)

    def item(self, image_id: int) -> dict[str, Any]:
        """``Medsearch.item`` with the "open in viewer" link (``MEDSEARCH_VIEWER_URL``). Raises NotFound."""
        item = self.medsearch.item(image_id)
        return {**item, "viewer_url": viewer_url(item["metadata"])}

    def thumbnail(self, image_id: int, size: int) -> bytes:
        """PNG bytes of an image's thumbnail. Raises NotFound, Forbidden (outside the roots), SourceError."""
        stored = self.medsearch.image_path(image_id)
        if is_source(stored):
            return self.thumbnails.cached((stored, 0, size), lambda: self.remote_images.png(stored, size))
        made = self.medsearch.stored_thumbnail(image_id) if size == THUMBNAIL_SIZE else None
        path = served_path(self.medsearch.store, stored)
        if made is not None and path.stat().st_mtime_ns == made[1]:  # made at index time from this file
            return made[0]
        return self.thumbnails.get(path, size)

    def model_input(self, image_id: int) -> bytes:
        """PNG bytes of what the model was given for a stored image (``Medsearch.model_input_png``'s
        picture), decoded by a capped worker. Raises NotFound (also for a DICOMweb item, whose file is
        not kept), Forbidden (outside the roots), UnreadableFile."""
        from medsearch.indexer.read_back import image_source

        stored, frame_number, options = image_source(self.medsearch.store, image_id)
        if is_source(stored):
            raise NotFound("The model input of a DICOMweb item is not kept; its thumbnail shows the image.")
        path = served_path(self.medsearch.store, stored)
        return self.decoder.model_input_png(path, options, self.medsearch.embedder.preprocessor, frame_number)

    def info(self) -> dict[str, Any]:
        facts = self.medsearch.info()
        facts["server"] = {"filters": list(self.filters)}
        return facts


def _one_where(filters: dict[str, Any]) -> dict[str, Any]:
    """The HTTP API's one ``where`` expression as the list ``Medsearch`` takes."""
    return {**filters, "where": [filters["where"]]} if "where" in filters else filters
