"""The FAISS index: inner product over unit vectors (= cosine), ids equal to ``images.id``.

The index is a snapshot of the database. It is written atomically (temporary file, fsync, rename) with
a manifest (generation, count, dimension, model, checksum) written the same way after it; on open the
manifest and checksum are checked and the rows newer than the snapshot's generation are replayed.
Only files this program wrote are loaded (FAISS files are code-like input).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

INDEX_FILE = "index.faiss"
MANIFEST_FILE = "index.json"


@dataclass(frozen=True)
class Manifest:
    generation: int
    count: int
    dim: int
    model_revision: str
    index_type: str
    sha256: str
    format: int = 1


def new_index(dim: int, index_type: str = "flat") -> Any:
    """An empty id-mapped FAISS index. ``flat`` is exact inner product."""
    import faiss

    if index_type != "flat":
        raise ValueError(f"unknown index type {index_type!r}")
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def add(index: Any, ids: np.ndarray, vectors: np.ndarray) -> None:
    """Add (n, d) float32 unit rows under int64 ``ids`` (existing ids are replaced)."""
    if len(ids) == 0:
        return
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    remove(index, ids)
    index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)


def remove(index: Any, ids: np.ndarray) -> int:
    """Remove ``ids`` (absent ones are ignored); returns how many were removed."""
    import faiss

    if len(ids) == 0 or index.ntotal == 0:
        return 0
    return int(index.remove_ids(faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))))


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
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def save_snapshot(index: Any, directory: Path, generation: int, model_revision: str, index_type: str) -> Manifest:
    """Write ``index`` and then its manifest atomically into ``directory``."""
    import faiss

    tmp = directory / f"{INDEX_FILE}.tmp{os.getpid()}"
    faiss.write_index(index, str(tmp))
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    manifest = Manifest(generation, int(index.ntotal), int(index.d), model_revision, index_type, file_sha256(tmp))
    _fsync_write(directory / INDEX_FILE, source=tmp)
    _fsync_write(directory / MANIFEST_FILE, json.dumps(asdict(manifest), indent=1).encode())
    for stale in [*directory.glob(f"{INDEX_FILE}.tmp*"), *directory.glob(f"{MANIFEST_FILE}.tmp*")]:
        stale.unlink(missing_ok=True)  # left by a writer killed mid-save (only the lock holder saves)
    return manifest


def load_snapshot(directory: Path, dim: int, model_revision: str) -> tuple[Any, Manifest] | None:
    """The saved index and its manifest, or None when missing, foreign or damaged (then rebuild)."""
    import faiss

    try:
        manifest = Manifest(**json.loads((directory / MANIFEST_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    path = directory / INDEX_FILE
    if manifest.dim != dim or manifest.model_revision != model_revision or not path.is_file():
        return None
    if file_sha256(path) != manifest.sha256:
        return None
    try:
        index = faiss.read_index(str(path))
    except RuntimeError:
        return None
    if index.ntotal != manifest.count or index.d != dim:
        return None
    return index, manifest
