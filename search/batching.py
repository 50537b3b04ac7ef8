"""A micro-batcher for text queries: requests arriving within a few milliseconds of each other share one
model call. One worker thread owns the calls, so the model is never entered by two threads at once."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import numpy as np

EmbedTexts = Callable[[Sequence[str]], np.ndarray]


class TextBatcher:
    """``embed(text)`` -> (dim,) float32 vector; concurrent callers within ``window_s`` are batched (at most
    ``max_batch`` texts per call). Exceptions raised by ``embed_texts`` reach every caller of the batch.
    ``on_start`` runs first on the worker thread (a server lowers its priority there)."""

    def __init__(self, embed_texts: EmbedTexts, window_s: float = 0.005, max_batch: int = 32,
                 on_start: Callable[[], None] | None = None) -> None:
        self._embed_texts = embed_texts
        self._on_start = on_start
        self.window_s = window_s
        self.max_batch = max_batch
        self.calls = 0
        self._queue: queue.Queue[tuple[str, Future[np.ndarray]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="medsearch-text-batcher", daemon=True)
        self._thread.start()

    def embed(self, text: str, timeout_s: float = 120.0) -> np.ndarray:
        future: Future[np.ndarray] = Future()
        self._queue.put((text, future))
        return future.result(timeout=timeout_s)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        if self._on_start is not None:
            self._on_start()
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = self._collect(batch)
            self._answer(batch)
            if stop:
                return

    def _collect(self, batch: list[tuple[str, Future[np.ndarray]]]) -> bool:
        """Add what arrives within the window to ``batch``; True when ``close`` was called meanwhile."""
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get(timeout=self.window_s)
            except queue.Empty:
                return False
            if item is None:
                return True
            batch.append(item)
        return False

    def _answer(self, batch: list[tuple[str, Future[np.ndarray]]]) -> None:
        texts = list(dict.fromkeys(text for text, _future in batch))
        try:
            vectors = self._embed_texts(texts)
            self.calls += 1
        except BaseException as error:  # every waiting request must hear about it
            for _text, future in batch:
                future.set_exception(error)
            return
        by_text = dict(zip(texts, vectors, strict=True))
        for text, future in batch:
            future.set_result(by_text[text])
