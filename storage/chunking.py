"""Lists of ids or paths bound into one statement, a chunk at a time: stock SQLite allows 32,766 bound
variables per statement, so a list is read ``CHUNK_SIZE`` values at a time (a test may set ``CHUNK_SIZE``
low to prove a caller copes with many chunks)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

CHUNK_SIZE = 10_000
"""Values bound per ``IN (...)`` list; well under SQLite's 32,766 and PostgreSQL's 65,535 limits."""

T = TypeVar("T")
R = TypeVar("R")


def chunks(values: Iterable[T], size: int | None = None) -> Iterator[list[T]]:
    """``values`` in successive lists of at most ``size`` (default ``CHUNK_SIZE``, read when called, so a
    test can lower it); ``values`` may be an endless iterator, read only as far as the caller goes."""
    limit = size or CHUNK_SIZE
    chunk: list[T] = []
    for value in values:
        chunk.append(value)
        if len(chunk) >= limit:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def chunked(values: Iterable[T], query: Callable[[list[T]], Iterable[R]]) -> Iterator[R]:
    """The rows of ``query(chunk)`` for successive chunks of at most ``CHUNK_SIZE`` values, in order."""
    for chunk in chunks(values):
        yield from query(chunk)
