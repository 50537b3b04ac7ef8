"""Decode errors as reasons.

Native decoders (libjpeg, OpenJPEG, CharLS, the Rust RLE decoder) run inside the interpreter. They can
raise exceptions that do not derive from ``Exception`` (pyo3's ``PanicException`` is a
``BaseException``), exhaust memory, loop for a long time, or crash the process outright.

``DecodeGuard`` turns any exception of a decode step (``BaseException`` included, except
``KeyboardInterrupt``, ``SystemExit`` and ``GeneratorExit``) into ``UnreadableFile``. Crashes, hangs and
runaway allocations are contained by the decoding workers (``medsearch.indexer.workers.ordered_map``): each costs
one file, not the indexer. Frame sizes declared by JPEG and JPEG 2000 headers: ``medsearch.indexer.dicom_codestream``.
"""

from __future__ import annotations

from types import TracebackType

from medsearch.errors import UnreadableFile

_PASS_THROUGH = (KeyboardInterrupt, SystemExit, GeneratorExit, UnreadableFile)


class DecodeGuard:
    """``with DecodeGuard("cannot decode pixel data"): ...`` -> ``UnreadableFile("<what>: <error>")``
    for any exception in the block; ``UnreadableFile`` and interpreter exits pass through unchanged."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> DecodeGuard:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or isinstance(exc, _PASS_THROUGH):
            return
        if isinstance(exc, MemoryError):
            raise UnreadableFile(f"{self.what}: out of memory") from exc
        raise UnreadableFile(f"{self.what}: {describe(exc)}") from exc


def describe(exc: BaseException, limit: int = 300) -> str:
    """``"TypeName: message"`` on one line, at most ``limit`` characters."""
    message = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
