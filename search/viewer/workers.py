"""A capped decoding worker kept between requests: the viewer decodes one picture per click, and a new
process per decode (start-up and imports) costs more than the decode. The worker has the caps indexing's
workers have (``medsearch.indexer.workers``: address space, no core file, dies with the server); a decode
over the time limit or one that crashes the worker loses that worker only, and the next call starts a
fresh one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from medsearch.errors import UnreadableFile
from medsearch.indexer.workers import CRASHED, Limits, _kill, _pool


class KeptWorkers:
    """``run(function, item)`` in one of ``workers`` capped processes, started on first use and kept.
    Raises UnreadableFile when the item takes longer than ``limits.seconds``, exhausts the memory cap or
    crashes its worker."""

    def __init__(self, limits: Limits, workers: int = 1) -> None:
        self.limits = limits
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = _pool(self.workers, self.limits)
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        _kill(pool)

    def run(self, function: Callable[[Any], Any], item: Any) -> Any:
        pool = self._current()
        try:
            return pool.submit(function, item).result(timeout=self.limits.seconds)
        except MemoryError:
            megabytes = self.limits.memory_bytes // 1024**2
            raise UnreadableFile(f"decoding needed more than {megabytes} MB of memory") from None
        except BrokenProcessPool:
            self._discard(pool)
            raise UnreadableFile(CRASHED) from None
        except FutureTimeout:
            self._discard(pool)
            raise UnreadableFile(f"decoding took longer than {self.limits.seconds:g} s") from None

    def warm(self) -> None:
        """Start a worker and its imports now (in the background), not on the first click; nothing when
        one is started already."""
        with self._lock:
            started = self._pool is not None
        if not started:
            self._current().submit(_imports)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            _kill(pool)


def _imports() -> None:
    """The decoder's imports, paid once per worker."""
    import medsearch.indexer.dicom
    import medsearch.viewer.pixels

    del medsearch
