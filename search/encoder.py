"""The model behind a store, with its concurrency rule inside: loaded on first use, entered by one thread
at a time. ``BatchingEncoder`` adds the server's text micro-batching as a wrapper, so callers never take a
model lock of their own."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from medsearch.errors import Busy
from medsearch.indexer.embedder import Embedder


class Encoder:
    """An ``Embedder`` (``model_id``, ``dim``, ``preprocessor``, ``logit_scale``..., ``embed_images``,
    ``embed_texts``) that loads its model through ``load`` on first need and lets one call in at a time.
    Other attributes are the loaded model's. ``load`` raises ModelUnavailable, so does every use here."""

    def __init__(self, load: Callable[[], Embedder], embedder: Embedder | None = None) -> None:
        self._load = load
        self._embedder = embedder
        self._loading = threading.Lock()
        self._calls = threading.RLock()

    @property
    def is_loaded(self) -> bool:
        return self._embedder is not None

    def loaded(self) -> Embedder:
        """The model, loaded now if it was not yet. Raises ModelUnavailable."""
        if self._embedder is None:
            with self._loading:
                if self._embedder is None:
                    self._embedder = self._load()
        return self._embedder

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32 unit rows for ``texts``."""
        with self.exclusive() as model:
            return model.embed_texts(texts)

    def embed_images(self, pixel_values: np.ndarray) -> np.ndarray:
        """(n, dim) float32 unit rows for (n, 3, S, S) float32 model inputs."""
        with self.exclusive() as model:
            return model.embed_images(pixel_values)

    @contextmanager
    def exclusive(self) -> Iterator[Any]:
        """The loaded model, to be used by this thread alone (a heatmap runs the towers itself)."""
        model = self.loaded()
        with self._calls:
            yield model

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.loaded(), name)


class BatchingEncoder(Encoder):
    """An ``Encoder`` whose one-text calls from concurrent threads share model calls (a micro-batcher with
    a ``window_s`` window, ``medsearch.batching``); everything else goes straight through."""

    def __init__(self, inner: Encoder, window_s: float = 0.005, max_waiting: int = 64,
                 on_start: Callable[[], None] | None = None) -> None:
        super().__init__(inner.loaded, None)
        self.inner = inner
        from medsearch.batching import TextBatcher

        self.batcher = TextBatcher(inner.embed_texts, window_s=window_s, on_start=on_start)
        self.max_waiting = max_waiting
        self._waiting = 0
        self._count = threading.Lock()

    @property
    def is_loaded(self) -> bool:
        return self.inner.is_loaded

    def loaded(self) -> Embedder:
        return self.inner.loaded()

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """As ``Encoder.embed_texts``; past ``max_waiting`` texts already waiting, raises Busy at once (a
        server's admission control: a flood of new texts must not hold every thread)."""
        with self._count:
            if self._waiting >= self.max_waiting:
                raise Busy(f"the server is busy embedding {self._waiting} texts; try again in 2 s")
            self._waiting += 1
        try:
            if len(texts) == 1:
                return self.batcher.embed(texts[0])[np.newaxis]
            return self.inner.embed_texts(texts)
        finally:
            with self._count:
                self._waiting -= 1

    def embed_images(self, pixel_values: np.ndarray) -> np.ndarray:
        return self.inner.embed_images(pixel_values)

    @contextmanager
    def exclusive(self) -> Iterator[Any]:
        with self.inner.exclusive() as model:
            yield model

    def close(self) -> None:
        self.batcher.close()
