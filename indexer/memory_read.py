"""Read an image held in memory (an upload) with the same readers as files, without writing it to disk.

The readers open their argument with ``PIL.Image.open`` or ``pydicom.dcmread``, and both accept a binary
file object as well as a path; ``MemoryFile`` is such an object that also carries the ``suffix`` and
``name`` the readers look at. The reader is chosen by the same handler chain (``find_reader``)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import cast

from medsearch.errors import UnreadableFile
from medsearch.indexer.frames import Frame, ReadOptions
from medsearch.indexer.readers import find_reader


class MemoryFile(io.BytesIO):
    """Bytes with a file name, standing in for a path."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name
        self.suffix = Path(name).suffix


def read_bytes(data: bytes, options: ReadOptions, filename: str = "upload") -> list[Frame]:
    """Decode ``data`` (DICOM, PNG, JPEG, TIFF or BMP bytes) into frames, as ``read_file`` does for a file.
    ``filename`` only helps choose the reader (its suffix); the bytes' signature decides first.
    Raises UnreadableFile (empty, too large, unsupported or corrupt)."""
    if not data:
        raise UnreadableFile("empty file (0 bytes)")
    if len(data) > options.max_file_bytes:
        raise UnreadableFile(f"file too large ({len(data)} bytes > limit {options.max_file_bytes})")
    name = Path(filename).name or "upload"
    reader = find_reader(Path(name), data[:132])
    if reader is None:
        raise UnreadableFile("not a supported image format")
    return reader.read(cast(Path, MemoryFile(data, name)), options)
