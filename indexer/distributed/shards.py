"""Parquet shards: the embedded files of a long job, written to a shared folder or an object store
(any ``pyarrow.fs`` URI: a path, ``s3://bucket/prefix``, ``gs://...``), and ``load_shards``, which loads them
into a store through the one writer.

A shard holds one row per frame (the vector as float32 bytes) and one per failed file (``error`` set), with
the model that made it. A shard is written under a temporary name and renamed, so a listed shard is whole.
Loading is idempotent: a file whose path is stored with the same content hash is skipped, one stored with
another hash is replaced, so a shard loaded twice, or a job re-run over the same files, duplicates nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.errors import InvalidQuery
from medsearch.indexer.discover import FileEntry
from medsearch.indexer.distributed.actors import Rows, unpack
from medsearch.indexer.load import Loaded
from medsearch.indexer.pipeline import IndexReport, embeddable, write_loaded
from medsearch.storage.file_hashes import content_hashes
from medsearch.storage.store import ModelRecord, Store

COLUMNS = ("path", "size", "mtime_ns", "content_hash", "frame_number", "vector", "metadata", "thumbnail",
           "error", "model_id", "revision", "dim", "preprocessing_version", "precision")


def schema() -> Any:
    import pyarrow as pa

    text, binary, big = pa.string(), pa.binary(), pa.int64()
    types = (text, big, big, text, pa.int32(), binary, text, binary, text, text, text, pa.int32(), text, text)
    return pa.schema(list(zip(COLUMNS, types, strict=True)))


def shard_stage(dataset: Any, destination: str, record: ModelRecord, precision: str) -> Any:
    """The Ray dataset of ``executor.embedded`` written as shards; its rows are ``{"files": n}``."""
    return dataset.map_batches(write_shard, batch_size=None, num_cpus=0.25,
                               fn_kwargs={"destination": destination, "record": record, "precision": precision})


def write_shard(rows: Rows, destination: str, record: ModelRecord, precision: str) -> Rows:
    """Ray task: write one batch of embedded files as ``<digest of its paths>.parquet`` (a retried batch
    overwrites its own shard)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = [unpack({"loaded": blob, "vectors": vectors}, record.dim)
             for blob, vectors in zip(rows["loaded"], rows["vectors"], strict=True)]
    table = pa.Table.from_pylist([row for loaded, matrix in files for row in shard_rows(loaded, matrix, record,
                                                                                           precision)], schema())
    filesystem, base = _filesystem(destination)
    filesystem.create_dir(base, recursive=True)
    name = hashlib.sha256("\n".join(loaded.entry.path for loaded, _ in files).encode()).hexdigest()[:20]
    temporary, final = f"{base}/.{name}.parquet.tmp", f"{base}/{name}.parquet"
    with filesystem.open_output_stream(temporary) as out:
        pq.write_table(table, out)
    filesystem.move(temporary, final)
    return {"files": np.array([len(files)])}


def shard_rows(loaded: Loaded, vectors: np.ndarray, record: ModelRecord, precision: str) -> list[dict[str, Any]]:
    """One file's rows: one per frame, or one with ``error`` for a file that failed."""
    entry = loaded.entry
    common = {"path": entry.path, "size": entry.size, "mtime_ns": entry.mtime_ns, "content_hash": loaded.content_hash,
              "model_id": record.model_id, "revision": record.revision, "dim": record.dim,
              "preprocessing_version": record.preprocessing_version, "precision": precision}
    if not embeddable([loaded]):
        return [{**common, "error": loaded.error or "no frames"}]
    return [{**common, "frame_number": number, "vector": vector.astype(np.float32).tobytes(),
             "metadata": json.dumps(metadata, default=_to_json), "thumbnail": thumbnail}
            for (number, _pixels, metadata), thumbnail, vector in zip(loaded.frames, loaded.thumbnails, vectors,
                                                                      strict=True)]


def load_shards(store: Store, source: str, report: IndexReport,
                progress: Callable[[int, int], None] | None = None) -> None:
    """Load every shard under ``source`` into ``store``, one transaction per shard. Raises InvalidQuery when
    ``source`` holds no shards, ModelMismatch when they were made by another model than the store's."""
    import pyarrow.parquet as pq

    filesystem, base = _filesystem(source)
    names = list_shards(filesystem, base, source)
    for done, name in enumerate(names, start=1):
        load_table(store, pq.read_table(name, filesystem=filesystem).to_pylist(), report)
        if progress:
            progress(done, len(names))
    store.vectors.save_snapshot()


def list_shards(filesystem: Any, base: str, source: str) -> list[str]:
    """The shard files under ``base``, sorted. Raises InvalidQuery when there are none."""
    from pyarrow import fs

    try:
        found = filesystem.get_file_info(fs.FileSelector(base, recursive=True))
    except (FileNotFoundError, OSError) as exc:
        raise InvalidQuery(f"cannot list shards in {source}: {exc}") from None
    names = sorted(info.path for info in found if info.path.endswith(".parquet")
                   and not info.base_name.startswith("."))
    if not names:
        raise InvalidQuery(f"no Parquet shards (*.parquet) in {source}")
    return names


def load_table(store: Store, rows: list[dict[str, Any]], report: IndexReport) -> None:
    """Commit one shard's rows as one batch, skipping files already stored with the same content."""
    if not rows:
        return
    first = rows[0]
    record = ModelRecord(first["model_id"], first["revision"], first["dim"], first["preprocessing_version"])
    store.bind_model(record)
    report.precision = first["precision"]
    report.other_precisions = store.record_precision(first["precision"])
    store.vectors.load()
    by_path: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_path.setdefault(row["path"], []).append(row)
    stored = content_hashes(store, list(by_path))
    files, changed = [], set()
    for path, group in by_path.items():
        if stored.get(path) == group[0]["content_hash"]:
            report.unchanged += 1
            continue
        if path in stored:
            changed.add(path)
        files.append(_loaded(group))
    vectors = [np.frombuffer(row["vector"], dtype=np.float32) for loaded in embeddable(files)
               for row in by_path[loaded.entry.path]]
    matrix = np.vstack(vectors) if vectors else np.empty((0, record.dim), dtype=np.float32)
    write_loaded(store, files, matrix, changed, report)


def _loaded(group: list[dict[str, Any]]) -> Loaded:
    first = group[0]
    loaded = Loaded(FileEntry(first["path"], first["size"], first["mtime_ns"]), first["content_hash"],
                    error=first["error"])
    if first["error"] is None:
        empty = np.empty(0, dtype=np.float32)
        loaded.frames = [(row["frame_number"], empty, json.loads(row["metadata"], object_hook=_from_json))
                         for row in group]
        loaded.thumbnails = [row["thumbnail"] for row in group]
    return loaded


def _to_json(value: Any) -> Any:
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a shard")


def _from_json(value: dict[str, Any]) -> Any:
    return dt.date.fromisoformat(value["$date"]) if set(value) == {"$date"} else value


def _filesystem(location: str) -> tuple[Any, str]:
    """(pyarrow filesystem, path inside it) of a folder or URI. Raises InvalidQuery for a bad URI."""
    from pyarrow import fs

    try:
        return fs.FileSystem.from_uri(location if "://" in location else _absolute(location))
    except (ValueError, OSError) as exc:
        raise InvalidQuery(f"cannot open shard location {location}: {exc}") from None


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve())
