"""Parquet shards: the embedded files of a long job, written to a shared folder or an object store
(any ``pyarrow.fs`` URI: a path, ``s3://bucket/prefix``, ``gs://...``); ``loading.load_shards`` loads them
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
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.errors import InvalidQuery
from medsearch.indexer.distributed.actors import Rows, unpack
from medsearch.indexer.load import Loaded
from medsearch.indexer.pipeline import embeddable
from medsearch.storage.store import ModelRecord

COLUMNS = ("path", "size", "mtime_ns", "content_hash", "frame_number", "vector", "metadata", "thumbnail",
           "error", "model_id", "revision", "dim", "preprocessing_version", "precision")


ROW_GROUP = 1024
"""Rows per Parquet row group: a loader reading a batch at a time holds about one."""


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
    filesystem, base = shard_location(destination)
    filesystem.create_dir(base, recursive=True)
    name = hashlib.sha256("\n".join(loaded.entry.path for loaded, _ in files).encode()).hexdigest()[:20]
    temporary, final = f"{base}/.{name}.parquet.tmp", f"{base}/{name}.parquet"
    with filesystem.open_output_stream(temporary) as out:
        pq.write_table(table, out, row_group_size=ROW_GROUP)
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


def _to_json(value: Any) -> Any:
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a shard")


def shard_location(location: str) -> tuple[Any, str]:
    """(pyarrow filesystem, path inside it) of a folder or URI. Raises InvalidQuery for a bad URI."""
    from pyarrow import fs

    try:
        return fs.FileSystem.from_uri(location if "://" in location else _absolute(location))
    except (ValueError, OSError) as exc:
        raise InvalidQuery(f"cannot open shard location {location}: {exc}") from None


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve())
