"""Choose a reader for a file by a handler chain: each reader says whether it can read a file (by its
name or its first bytes); the first that can, reads it. Readers raise ``UnreadableFile`` with a reason."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from medsearch.errors import UnreadableFile
from medsearch.indexer.dicom import DicomReader
from medsearch.indexer.frames import Frame, ReadOptions
from medsearch.indexer.raster import RasterReader


class Reader(Protocol):
    name: str

    def accepts(self, path: Path, head: bytes) -> bool: ...

    def read(self, path: Path, options: ReadOptions) -> list[Frame]: ...


def _readers() -> list[Reader]:
    return [DicomReader(), RasterReader()]


def read_head(path: Path, size: int = 132) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size)


def find_reader(path: Path, head: bytes | None = None) -> Reader | None:
    """The first reader that accepts ``path``, or None when no reader handles it."""
    if head is None:
        head = read_head(path)
    for reader in _readers():
        if reader.accepts(path, head):
            return reader
    return None


def read_file(path: Path, options: ReadOptions) -> list[Frame]:
    """Read one file into frames. Raises ``UnreadableFile`` with a specific reason."""
    try:
        size = path.stat().st_size
        head = read_head(path)
    except OSError as exc:
        raise UnreadableFile(f"cannot open file: {exc.strerror or exc}") from exc
    if size == 0:
        raise UnreadableFile("empty file (0 bytes)")
    if size > options.max_file_bytes:
        raise UnreadableFile(f"file too large ({size} bytes > limit {options.max_file_bytes})")
    reader = find_reader(path, head)
    if reader is None:
        raise UnreadableFile("not a supported image format")
    return reader.read(path, options)
