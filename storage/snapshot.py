"""The FAISS snapshot on disk: a content-addressed index file and the manifest that names it.

A save writes ``index.<sha256[:16]>.faiss`` (temporary file, fsync, rename) first, then replaces
``index.json`` (generation, count, dimension, model, index type, checksum, file name) by an atomic rename,
and only then deletes the index files the manifest no longer names. A kill at any point leaves the old
manifest naming its own, intact file: readers load it (checksum and all) and replay the rows newer than
its generation instead of rebuilding. Only files this program wrote are loaded (FAISS files are code-like
input): the manifest may name only ``index.<hex>.faiss`` (or ``index.faiss``, the name before format 2).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from medsearch.errors import StoreError

INDEX_FILE = "index.faiss"
"""The index file of a format-1 manifest; also the prefix of temporary index files."""
MANIFEST_FILE = "index.json"
VECTORS_TEMPORARY = "vectors.tmp"  # medsearch.storage.vector_file's temporary files
INDEX_NAME = re.compile(r"index(\.[0-9a-f]{16})?\.faiss")
VECTORS_NAME = re.compile(r"vectors\.[0-9a-f]{16}\.vec")  # medsearch.storage.vector_file's names


@dataclass
class Manifest:
    generation: int
    count: int
    dim: int
    model_revision: str
    index_type: str
    sha256: str
    format: int = 2
    file: str = INDEX_FILE
    added_after_training: int = 0  # of an ivf-sq8 / ivf-pq index: vectors added since it was trained
    vectors_file: str = ""  # of an ivf-pq index: its re-rank vectors (medsearch.storage.vector_file)
    vectors_sha256: str = ""
    search_width: int | None = None  # of an hnsw / ivf-sq8 index: measured when built (storage.search_width)


def save_snapshot(index: Any, directory: Path, generation: int, model_revision: str, index_type: str,
                  added_after_training: int = 0, vectors: tuple[str, str] = ("", ""),
                  search_width: int | None = None) -> Manifest:
    """Write ``index`` under its content name, then the manifest naming it (and ``vectors``, the (name,
    sha256) of a vector file already written there; and the measured ``search_width``), into ``directory``;
    then delete the index and vector files no longer named. Raises StoreError (one line, "disk is full ..."
    when it is) when they
    cannot be written; no temporary file is left behind."""
    import faiss

    tmp = directory / f"{INDEX_FILE}.tmp{os.getpid()}"
    try:
        faiss.write_index(index, str(tmp))
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        digest = file_sha256(tmp)
        manifest = Manifest(generation, int(index.ntotal), int(index.d), model_revision, index_type, digest,
                            file=f"index.{digest[:16]}.faiss", added_after_training=added_after_training,
                            vectors_file=vectors[0], vectors_sha256=vectors[1], search_width=search_width)
        _fsync_write(directory / manifest.file, source=tmp)
        _fsync_write(directory / MANIFEST_FILE, json.dumps(asdict(manifest), indent=1).encode())
    except (OSError, RuntimeError) as error:
        raise write_failed(directory, error, int(index.ntotal) * int(index.d) * 4) from None
    finally:
        for stale in [*directory.glob(f"{INDEX_FILE}.tmp*"), *directory.glob(f"{MANIFEST_FILE}.tmp*"),
                      *directory.glob(f"{VECTORS_TEMPORARY}*")]:
            stale.unlink(missing_ok=True)  # this failed write's, or a killed writer's (only the lock holder saves)
    for unnamed in unnamed_index_files(directory):
        unnamed.unlink(missing_ok=True)  # a reader that has one open keeps reading it (POSIX)
    return manifest


def load_snapshot(directory: Path, dim: int, model_revision: str) -> tuple[Any, Manifest] | None:
    """The saved index and its manifest, or None when missing, foreign or damaged (then rebuild). A
    manifest replaced while its old file was being opened is read again, once."""
    for _attempt in range(2):
        manifest = read_manifest(directory)
        if manifest is None or manifest.dim != dim or manifest.model_revision != model_revision:
            return None
        path = directory / manifest.file
        if path.is_file():
            return _load_checked(path, manifest, dim)
    return None


def read_manifest(directory: Path) -> Manifest | None:
    """The manifest in ``directory``, or None when missing, unreadable, or naming a file this program does
    not write."""
    try:
        manifest = Manifest(**json.loads((directory / MANIFEST_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(manifest.file, str) or not INDEX_NAME.fullmatch(manifest.file):
        return None
    named = isinstance(manifest.vectors_file, str) and VECTORS_NAME.fullmatch(manifest.vectors_file)
    return manifest if named or manifest.vectors_file == "" else None


def snapshot_file(directory: Path) -> Path | None:
    """The index file the manifest names (it may be missing), or None without a readable manifest."""
    manifest = read_manifest(directory)
    return None if manifest is None else directory / manifest.file


def unnamed_index_files(directory: Path) -> list[Path]:
    """Index and vector files the manifest does not name: the old snapshot's after a save, or a new one
    whose save was killed before its manifest."""
    manifest = read_manifest(directory)
    named = set() if manifest is None else {directory / manifest.file, directory / manifest.vectors_file}
    found = [p for p in directory.glob("index*.faiss") if INDEX_NAME.fullmatch(p.name)]
    found += [p for p in directory.glob("vectors.*.vec") if VECTORS_NAME.fullmatch(p.name)]
    return sorted(p for p in found if p not in named)


def _load_checked(path: Path, manifest: Manifest, dim: int) -> tuple[Any, Manifest] | None:
    import faiss

    if file_sha256(path) != manifest.sha256:
        return None
    try:
        index = faiss.read_index(str(path))
    except RuntimeError:
        return None
    _drop_cached(path)
    if index.ntotal != manifest.count or index.d != dim:
        return None
    return index, manifest


def _drop_cached(path: Path) -> None:
    """Tell the kernel the file's pages are not needed again (the index now lives in memory): at 10 M
    images that leaves 1.9 GB more page cache to the database rows a re-rank reads."""
    with contextlib.suppress(OSError, AttributeError), open(path, "rb") as handle:
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def file_sha256(path: Path | str) -> str:
    """The hex SHA-256 of a file's bytes, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_write(path: Path, data: bytes | None = None, source: Path | None = None) -> None:
    """Write ``data`` (or rename ``source``) to ``path`` atomically and durably."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    if data is not None:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    else:
        assert source is not None
        tmp = source
    replace_durably(tmp, path)


def replace_durably(source: Path, path: Path) -> None:
    """Rename ``source`` over ``path`` and make the rename itself survive a power cut (fsync the folder)."""
    os.replace(source, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def write_failed(directory: Path, error: OSError | RuntimeError, needed: int) -> StoreError:
    """The one-line error of a failed snapshot write. FAISS reports its own write errors without the
    errno, so for those the free space says whether the disk is full."""
    full = error.errno in FULL_ERRNOS if isinstance(error, OSError) else shutil.disk_usage(directory).free < needed
    if full:
        return StoreError(f"disk is full: the index snapshot could not be written in {directory}; free some "
                          f"space and run `medsearch check --repair` (the database is intact)")
    reason = error.strerror if isinstance(error, OSError) else str(error).splitlines()[0][:200]
    return StoreError(f"the index snapshot could not be written in {directory}: {reason}")
