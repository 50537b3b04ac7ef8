"""Walk folders for image files: by suffix, or by their first bytes (DICOM files often have none)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from indexer.raster import RASTER_SUFFIXES

CANDIDATE_SUFFIXES = RASTER_SUFFIXES | {".dcm", ".dicom", ".dic", ".gz"}
SKIPPED_SUFFIXES = {".txt", ".csv", ".json", ".jsonl", ".md", ".toml", ".xml", ".html", ".py", ".db", ".faiss",
                    ".wal", ".shm", ".log", ".zip", ".pdf", ".lock", ".secret"}
_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM")


@dataclass(frozen=True)
class FileEntry:
    """An image file found on disk. ``path`` is absolute and resolved."""

    path: str
    size: int
    mtime_ns: int


def discover(roots: list[Path], skip: Path | None = None) -> Iterator[FileEntry]:
    """Every candidate image file under ``roots`` (files or folders), sorted within each folder, never
    descending into ``skip`` (the store) or hidden folders. Raises FileNotFoundError for a missing root."""
    for root in roots:
        root = root.expanduser().resolve()
        if not root.exists():
            raise FileNotFoundError(f"No such file or folder: {root}")
        if root.is_file():
            entry = _entry(root, force=True)
            if entry is not None:
                yield entry
            continue
        for folder, folders, files in os.walk(root):
            here = Path(folder)
            folders[:] = sorted(d for d in folders if not d.startswith(".") and (skip is None or here / d != skip))
            for name in sorted(files):
                entry = _entry(here / name)
                if entry is not None:
                    yield entry


def _entry(path: Path, force: bool = False) -> FileEntry | None:
    suffix = path.suffix.lower()
    if path.name.startswith(".") or (suffix in SKIPPED_SUFFIXES and not force):
        return None
    try:
        stat = path.stat()
        if not path.is_file():
            return None
        if not force and suffix not in CANDIDATE_SUFFIXES and not _looks_like_image(path):
            return None
    except OSError:
        return None
    return FileEntry(str(path), stat.st_size, stat.st_mtime_ns)


def _looks_like_image(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(132)
    return head[128:132] == b"DICM" or head.startswith(_MAGIC)
