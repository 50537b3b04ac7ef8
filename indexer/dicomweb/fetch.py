"""Download instances concurrently, a bounded number at a time, in order; and the worker-side step that
turns the downloaded bytes into a ``Loaded`` with the same readers as files (decoding stays in the worker
processes; the bytes are dropped once preprocessed)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from medsearch.indexer.dicomweb.client import DicomWebClient, InstanceGone
from medsearch.indexer.dicomweb.query import RemoteInstance
from medsearch.indexer.discover import FileEntry
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.load import Loaded, load_bytes
from medsearch.indexer.preprocess import Preprocessor

Fetched = tuple[FileEntry, bytes | None, str | None]
"""(entry, Part 10 bytes or None, the reason it could not be fetched or None)."""


def fetch_all(client: DicomWebClient, instances: Iterable[RemoteInstance], concurrency: int) -> Iterator[Fetched]:
    """Each instance's bytes, in input order, with at most ``concurrency`` downloads running and as many
    waiting to be taken. A missing instance yields its reason; a failing server raises SourceError."""
    pool = ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="wado")
    pending: deque[tuple[RemoteInstance, Future[bytes]]] = deque()
    source = iter(instances)
    try:
        while True:
            while len(pending) < 2 * max(1, concurrency) and (item := next(source, None)) is not None:
                pending.append((item, pool.submit(client.retrieve, item.path)))
            if not pending:
                return
            item, future = pending.popleft()
            try:
                data = future.result()
            except InstanceGone as gone:
                yield FileEntry(item.path, 0, 0), None, gone.reason
                continue
            yield FileEntry(item.path, len(data), 0), data, None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def load_fetched(task: Fetched, options: ReadOptions, preprocessor: Preprocessor) -> Loaded:
    """Worker side: decode and preprocess fetched bytes. Never raises for a bad instance."""
    entry, data, reason = task
    if data is None:
        return Loaded(entry, error=reason or "not fetched")
    return load_bytes(entry, data, options, preprocessor)


def fetch_failed(task: Fetched, reason: str) -> Loaded:
    return Loaded(task[0], error=reason)
