"""The server's lifecycle: the ``Medsearch`` opened once at start-up (its model loaded now, not on the
first request), the text micro-batcher put in front of its encoder, the pictures service, and the warm-up
that reads an ivf-pq store's vectors into the page cache. Nothing here queries: every route is one call
to a service (``engine.medsearch``'s, or ``engine.pictures``); the concurrency rules live where the state
is (the vector index's reader/writer lock, the encoder's model lock, the text cache's lock, the context's
``writes`` lock for cohorts and probes)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from medsearch.api import Medsearch
from medsearch.encoder import BatchingEncoder
from medsearch.server.limits import SERVER_MAX_PIXELS
from medsearch.server.model_work import ModelThreads, lower_priority
from medsearch.server.pictures import Pictures

log = logging.getLogger(__name__)

SEARCH_FILTERS = ("where", "min_score", "min_prob", "group_by", "like", "unlike")
"""The query options that narrow a search, as ``/api/info`` lists them for the page."""


class ServerEngine:
    """Start, serve, stop. ``medsearch``: the library; ``pictures``: thumbnails, model inputs, uploads;
    ``model_threads``: where model-bound requests run (``medsearch.server.model_work``)."""

    def __init__(self, medsearch: Medsearch, batch_window_s: float = 0.005,
                 max_upload_pixels: int = SERVER_MAX_PIXELS) -> None:
        self.medsearch = medsearch
        self.encoder = BatchingEncoder(medsearch.ctx.encoder, window_s=batch_window_s, on_start=lower_priority)
        self.model_threads = ModelThreads()
        medsearch.ctx.encoder = self.encoder
        medsearch.ctx.reads_files = False  # only ids come from clients, never paths
        self.pictures = Pictures(medsearch, max_upload_pixels)
        self.warmed: int | None = None  # vectors read into the page cache once the warm-up is done
        self._stop_warming = threading.Event()
        self._warming: threading.Thread | None = None

    def start(self) -> None:
        """Load the model now and refuse a store built by another model; start the warm-up. Raises
        ModelUnavailable, ModelMismatch."""
        self.medsearch.check_model()
        self.medsearch.ctx.texts  # noqa: B018 - the text cache, created once before the first request
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
        self.encoder.close()
        self.model_threads.close()
        self.pictures.close()
        self.medsearch.close()

    def info(self) -> dict[str, Any]:
        """``Medsearch.info`` and the filters this server takes (``server.filters``)."""
        facts = self.medsearch.info()
        facts["server"] = {"filters": list(SEARCH_FILTERS)}
        return facts
