"""``load_shards``: load the Parquet shards of ``--executor ray --shards`` into a store through the one writer,
streaming: each shard is read in record batches of ``BATCH_ROWS`` rows and written a batch of whole files at a
time, so memory stays bounded whatever a shard's size.

Every row is checked first (``shard_checks``): a refused row makes its file a recorded failure with the
reason, and a refused file never replaces what the store holds for its path. A shard that cannot be read
(truncated, not Parquet, wrong schema, implausible model columns, another model than the store's) is listed
in ``LoadReport.failed_shards`` with its name and the error, and the other shards still load; the files of
the batches committed before the point where a shard broke stay loaded (loading is idempotent, so the shard
can be loaded again once repaired).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from medsearch.errors import MedsearchError, UnreadableFile
from medsearch.indexer.discover import FileEntry
from medsearch.indexer.distributed.shard_checks import (
    Trust,
    model_columns,
    parse_metadata,
    row_refusal,
    shard_record,
    trust_for,
)
from medsearch.indexer.distributed.shards import COLUMNS, list_shards, schema, shard_location
from medsearch.indexer.load import Loaded
from medsearch.indexer.pipeline import IndexReport, write_loaded
from medsearch.storage import queries
from medsearch.storage.file_hashes import content_hashes
from medsearch.storage.sources import source_urls
from medsearch.storage.store import ModelRecord, Store

BATCH_ROWS = 1024
"""Rows read and committed at a time (a file's frames are never split between two commits)."""
MAX_FRAMES = 10_000
"""Rows one file may have in a shard; more are refused, and only this many are ever held."""

Row = dict[str, Any]
UNRECORDABLE = ("path is missing or too long", "path holds control characters")
"""Refusals of a path that is not stored even as a failure: the report lists it, shown by ``ascii``."""


class BadShard(UnreadableFile):
    """A shard that cannot be read as a whole: not Parquet, truncated, another schema."""

    code = "bad_shard"


@dataclass
class LoadReport(IndexReport):
    """``IndexReport`` plus the shards that could not be read: ``{"shard", "error": {"code", "message"}}``."""

    failed_shards: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ShardModel:
    record: ModelRecord
    precision: str

    @property
    def columns(self) -> tuple[Any, ...]:
        return model_columns(self.record, self.precision)


def load_shards(store: Store, source: str, report: LoadReport, progress: Callable[[int, int], None] | None = None,
                roots: Iterable[str] = ()) -> None:
    """Load every shard under ``source`` into ``store``. File paths are accepted under ``roots`` and the
    roots the store indexes, DICOMweb paths under the store's sources. Raises InvalidQuery when ``source``
    holds no shards; every problem of one shard is in ``report.failed_shards``."""
    filesystem, base = shard_location(source)
    names = list_shards(filesystem, base, source)
    trust = trust_for([*roots, *queries.roots(store)], source_urls(store))
    for done, name in enumerate(names, start=1):
        try:
            load_shard(store, filesystem, name, trust, report)
        except MedsearchError as error:
            report.failed_shards.append({"shard": name, "error": {"code": error.code, "message": str(error)}})
        if progress:
            progress(done, len(names))
    store.vectors.save_snapshot()


def load_shard(store: Store, filesystem: Any, name: str, trust: Trust, report: LoadReport) -> None:
    """Stream one shard into ``store``. Raises BadShard (unreadable, wrong schema or model columns),
    ModelMismatch (another model than the store's)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with filesystem.open_input_file(name) as handle:
            shard = pq.ParquetFile(handle)
            _check_schema(shard.schema_arrow)
            model: ShardModel | None = None
            for files in file_batches(shard.iter_batches(BATCH_ROWS, columns=list(COLUMNS))):
                model = model or _bind(store, files[0][0], report)
                load_files(store, files, model, trust, report)
    except (pa.ArrowException, OSError, EOFError) as exc:
        raise BadShard(f"cannot read this shard: {_short(exc)}") from None


def _check_schema(found: Any) -> None:
    """Raises BadShard unless every column of ``shards.schema()`` is there with its type."""
    for column in schema():
        index = found.get_field_index(column.name)
        if index < 0:
            raise BadShard(f"wrong schema: no column {column.name!r}")
        if found.field(index).type != column.type:
            raise BadShard(f"wrong schema: column {column.name!r} is {found.field(index).type}, "
                           f"expected {column.type}")


def _bind(store: Store, first: Row, report: LoadReport) -> ShardModel:
    """Bind the store to the model the shard's first row names. Raises BadShard, ModelMismatch."""
    try:
        record, precision = shard_record(first)
    except ValueError as exc:
        raise BadShard(f"bad model columns: {exc}") from None
    store.bind_model(record)
    report.precision = precision
    report.other_precisions = store.record_precision(precision)
    store.vectors.load()
    return ShardModel(record, precision)


def file_batches(batches: Iterable[Any]) -> Iterator[list[list[Row]]]:
    """Record batches -> lists of files (each the list of its consecutive rows), a file never split between
    two lists; a file's rows past ``MAX_FRAMES + 1`` are dropped as they arrive."""
    held: list[Row] = []
    for batch in batches:
        files = _group([*held, *batch.to_pylist()])
        held = files.pop()
        if files:
            yield files
    if held:
        yield [held]


def _group(rows: list[Row]) -> list[list[Row]]:
    files: list[list[Row]] = []
    for row in rows:
        if files and files[-1][0]["path"] == row["path"]:
            if len(files[-1]) <= MAX_FRAMES:
                files[-1].append(row)
        else:
            files.append([row])
    return files


def load_files(store: Store, files: list[list[Row]], model: ShardModel, trust: Trust, report: LoadReport) -> None:
    """Commit one list of files as one batch, skipping files already stored with the same content."""
    stored = content_hashes(store, [rows[0]["path"] for rows in files if isinstance(rows[0]["path"], str)])
    batch: list[Loaded] = []
    vectors: list[np.ndarray] = []
    changed: set[str] = set()
    seen: set[str] = set()
    for rows in files:
        first = rows[0]
        refusal = trust.refusal(first["path"])
        if refusal in UNRECORDABLE:
            report.failed += 1
            report.failures.append({"path": ascii(first["path"])[:300], "reason": str(refusal)})
            continue
        loaded, frame_vectors = to_loaded(rows, model, refusal, seen)
        seen.add(loaded.entry.path)
        if loaded.error is None and stored.get(loaded.entry.path) == first["content_hash"]:
            report.unchanged += 1
            continue
        if loaded.error is None and loaded.entry.path in stored:
            changed.add(loaded.entry.path)  # a refused file never replaces what is stored
        batch.append(loaded)
        vectors.extend(frame_vectors)
    matrix = np.vstack(vectors) if vectors else np.empty((0, model.record.dim), dtype=np.float32)
    write_loaded(store, batch, matrix, changed, report)


def to_loaded(rows: list[Row], model: ShardModel, reason: str | None,
              seen: set[str]) -> tuple[Loaded, list[np.ndarray]]:
    """One file's rows -> (its ``Loaded``, its frames' vectors), or a ``Loaded`` whose ``error`` says why it
    is refused (and no vectors). ``reason``: why its path is refused, if it is; ``seen``: the paths of the
    files before it in the batch."""
    first = rows[0]
    entry = FileEntry(first["path"], _number(first["size"]), _number(first["mtime_ns"]))
    digest = first["content_hash"] if isinstance(first["content_hash"], str) else ""
    reason = reason or _file_refusal(rows, model, seen)
    if reason is None and first["error"] is not None:
        reason = first["error"][:500]
    if reason is None:
        try:
            metadata = [parse_metadata(row["metadata"]) for row in rows]
        except ValueError as exc:
            reason = str(exc)
    if reason is not None:
        return Loaded(entry, digest, error=reason), []
    empty = np.empty(0, dtype=np.float32)
    loaded = Loaded(entry, digest)
    loaded.frames = [(row["frame_number"], empty, meta) for row, meta in zip(rows, metadata, strict=True)]
    loaded.thumbnails = [row["thumbnail"] for row in rows]
    return loaded, [np.frombuffer(row["vector"], dtype=np.float32) for row in rows]


def _file_refusal(rows: list[Row], model: ShardModel, seen: set[str]) -> str | None:
    if rows[0]["path"] in seen:
        return "the rows of this file are not together in the shard"
    if len(rows) > MAX_FRAMES:
        return f"more than {MAX_FRAMES} frames"
    if rows[0]["error"] is None and len({row["frame_number"] for row in rows}) != len(rows):
        return "two rows of the same frame"
    columns = model.columns
    for row in rows:
        refusal = row_refusal(row, columns, model.record.dim)
        if refusal:
            return refusal
    return None


def _number(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _short(exc: BaseException) -> str:
    """The first line of an exception's message, at most 200 characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
