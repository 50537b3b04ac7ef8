"""Walk folders for image files: by suffix, or by their first bytes (DICOM files often have none; a DICOM
dataset written without its preamble and ``DICM`` prefix is recognised by its first element).

What cannot be indexed but should be known is yielded too, with ``problem`` set (the indexer records it as a
failure): a name that is not valid UTF-8 (shown with its bytes escaped, ``\\xff``: a database holds only
text), a subfolder that cannot be listed, and a symlink that leads outside the indexed folder. The rule for
symlinks: a file symlink is followed only when its target lies inside the folder being indexed (the server
serves exactly those files); folder symlinks are never followed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from medsearch.indexer.dicom_syntax import looks_like_dataset
from medsearch.indexer.raster import RASTER_SUFFIXES

CANDIDATE_SUFFIXES = RASTER_SUFFIXES | {".dcm", ".dicom", ".dic", ".gz"}
SKIPPED_SUFFIXES = {".txt", ".csv", ".json", ".jsonl", ".md", ".toml", ".xml", ".html", ".py", ".db", ".faiss",
                    ".wal", ".shm", ".log", ".zip", ".pdf", ".lock", ".secret"}
_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM")
NOT_UTF8 = "the file name is not valid UTF-8; rename the file to index it"
OUTSIDE = "a symlink to a file outside the indexed folder; not followed"


@dataclass(frozen=True)
class FileEntry:
    """An image file found on disk. ``path`` is absolute (symlinks inside the root are kept as named).
    ``problem``: why it cannot be indexed (then ``path`` is only for showing), None for a file to read."""

    path: str
    size: int
    mtime_ns: int
    problem: str | None = None


def shown(path: str) -> str:
    """``path`` as text any database and terminal takes: bytes that are not UTF-8 escaped as ``\\xff``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def discover(roots: list[Path], skip: Path | None = None) -> Iterator[FileEntry]:
    """Every candidate image file under ``roots`` (files or folders), sorted within each folder, never
    descending into ``skip`` (the store) or hidden folders; entries with a ``problem`` for what cannot be
    indexed. Raises FileNotFoundError for a missing root."""
    for root in roots:
        root = root.expanduser().resolve()
        if not root.exists():
            raise FileNotFoundError(f"No such file or folder: {root}")
        if root.is_file():
            entry = _entry(root, root, force=True)
            if entry is not None:
                yield entry
            continue
        unreadable: list[OSError] = []
        for folder, folders, files in os.walk(root, onerror=unreadable.append):
            yield from (_unreadable(error) for error in unreadable)
            unreadable.clear()
            here = Path(folder)
            folders[:] = sorted(d for d in folders if not d.startswith(".") and (skip is None or here / d != skip))
            for name in sorted(files):
                entry = _entry(here / name, root)
                if entry is not None:
                    yield entry
        yield from (_unreadable(error) for error in unreadable)


def _unreadable(error: OSError) -> FileEntry:
    return FileEntry(shown(str(error.filename)), 0, 0, f"the folder cannot be read: {error.strerror}")


def _entry(path: Path, root: Path, force: bool = False) -> FileEntry | None:
    suffix = path.suffix.lower()
    if path.name.startswith(".") or (suffix in SKIPPED_SUFFIXES and not force):
        return None
    try:
        stat = path.stat()
        if not path.is_file():
            return None
        if not force and suffix not in CANDIDATE_SUFFIXES and not _looks_like_image(path):
            return None
        problem = _problem(path, root)
    except OSError:
        return None
    text = str(path)
    return FileEntry(shown(text) if problem else text, stat.st_size, stat.st_mtime_ns, problem)


def _problem(path: Path, root: Path) -> str | None:
    if shown(str(path)) != str(path):
        return NOT_UTF8
    if path.is_symlink() and not path.resolve().is_relative_to(root):
        return OUTSIDE
    return None


def _looks_like_image(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(132)
    return head[128:132] == b"DICM" or head.startswith(_MAGIC) or looks_like_dataset(head)
