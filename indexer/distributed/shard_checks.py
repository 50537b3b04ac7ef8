"""What a shard row must be before it is loaded: a shard is input like any other file, written by whoever can
write to the shared folder or bucket, so nothing in it is trusted.

A row's ``path`` is trusted only for the source that produced it: a ``dicomweb+`` path only under a DICOMweb
source this store knows (``medsearch.storage.sources``), with the WADO-RS form the indexer writes; any other
path only when it is absolute, normalised and under one of the roots the load was given (``Trust``). A
row's vector must have the store's length, be finite, non-zero and of unit length; its metadata must be a
JSON object, its dates ISO dates, its thumbnail a PNG. A row that fails is refused with its reason; the
loader records its file as a failure.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import posixpath
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from medsearch.storage.store import ModelRecord

SOURCE_PREFIX = "dicomweb+"
UID = r"[0-9]{1,64}(?:\.[0-9]{1,64}){0,63}"
INSTANCE_PATH = re.compile(rf"/studies/{UID}/series/{UID}/instances/{UID}")
MAX_PATH = 4096
MAX_METADATA = 64 * 1024
MAX_THUMBNAIL = 1024 * 1024
MAX_DIM = 65536
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PRECISIONS = frozenset({"auto", "fast", "float32", "bfloat16", "float16", "int8"})
UNIT_TOLERANCE = 0.01
"""How far from 1 a vector's length may be (the model's vectors are normalised; a planted long vector would
outrank everything under the inner product)."""


@dataclass(frozen=True)
class Trust:
    """Where stored paths may point: ``roots`` (absolute, normalised folders) and ``sources`` (the URLs of
    the DICOMweb sources the store knows)."""

    roots: tuple[str, ...]
    sources: tuple[str, ...]

    def refusal(self, path: Any) -> str | None:
        """Why ``path`` may not be stored, or None when it may."""
        if not isinstance(path, str) or not path or len(path) > MAX_PATH:
            return "path is missing or too long"
        if CONTROL.search(path):
            return "path holds control characters"
        if path.startswith(SOURCE_PREFIX):
            return self._source_refusal(path)
        if "://" in path:
            return "path is a URL of no DICOMweb source this store knows"
        if not posixpath.isabs(path) or posixpath.normpath(path) != path:
            return "path is not absolute and normalised"
        for root in self.roots:
            if path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/" or root == "/"):
                return None
        return "path is outside the roots given to load (--root)"

    def _source_refusal(self, path: str) -> str | None:
        for url in self.sources:
            if path.startswith(url + "/"):
                rest = path[len(url):]
                return None if INSTANCE_PATH.fullmatch(rest) else "DICOMweb path is not an instance's WADO-RS path"
        return "DICOMweb path of a source this store does not know (index the source first)"


def trust_for(roots: list[str], sources: list[str]) -> Trust:
    """A ``Trust`` over ``roots`` (made absolute and normalised) and the source URLs ``sources``."""
    return Trust(tuple(sorted({os.path.realpath(os.path.expanduser(root)) for root in roots})), tuple(sources))


def shard_record(row: dict[str, Any]) -> tuple[ModelRecord, str]:
    """(model record, precision) that a row names. Raises ValueError when they are not plausible."""
    texts = [row.get(name) for name in ("model_id", "revision", "preprocessing_version", "precision")]
    if not all(isinstance(text, str) and 0 < len(text) <= 512 for text in texts):
        raise ValueError("model_id, revision, preprocessing_version and precision must be short texts")
    dim = row.get("dim")
    if not isinstance(dim, int) or not 0 < dim <= MAX_DIM:
        raise ValueError(f"dim must be a number from 1 to {MAX_DIM}, not {dim!r}")
    if row["precision"] not in PRECISIONS:
        raise ValueError(f"unknown precision {row['precision']!r}")
    return ModelRecord(row["model_id"], row["revision"], dim, row["preprocessing_version"]), row["precision"]


MODEL_COLUMNS = ("model_id", "revision", "dim", "preprocessing_version", "precision")


def model_columns(record: ModelRecord, precision: str) -> tuple[Any, ...]:
    """A row's model columns as ``row_refusal`` expects them for ``record`` and ``precision``."""
    return record.model_id, record.revision, record.dim, record.preprocessing_version, precision


def row_refusal(row: dict[str, Any], model: tuple[Any, ...], dim: int) -> str | None:
    """Why ``row`` (whose path is already trusted) may not be loaded into a store of ``dim``-long vectors made
    by ``model`` (``model_columns``), or None when it may."""
    if not (isinstance(row["size"], int) and isinstance(row["mtime_ns"], int)):
        return "size and mtime_ns must be numbers"
    if not isinstance(row["content_hash"], str) or not row["content_hash"]:
        return "content_hash is missing"
    if tuple(row[name] for name in MODEL_COLUMNS) != model:
        return "made by another model than the shard's first row"
    if row["error"] is not None:
        return None if isinstance(row["error"], str) else "error must be a text"
    if not isinstance(row["frame_number"], int) or row["frame_number"] < 0:
        return "frame_number must be a number of at least 0"
    thumbnail = row["thumbnail"]
    if thumbnail is not None and (len(thumbnail) > MAX_THUMBNAIL or not thumbnail.startswith(PNG_MAGIC)):
        return "thumbnail is not a PNG of at most 1 MiB"
    return vector_refusal(row["vector"], dim)


def vector_refusal(blob: Any, dim: int) -> str | None:
    """Why ``blob`` is not a (dim,) float32 unit vector, or None."""
    if not isinstance(blob, bytes) or len(blob) != dim * 4:
        size = len(blob) if isinstance(blob, bytes) else 0
        return f"vector is {size} bytes, expected {dim * 4} ({dim} float32)"
    vector = np.frombuffer(blob, dtype=np.float32).astype(np.float64)
    norm = math.sqrt(float(vector @ vector))  # NaN or inf when any component is
    if not math.isfinite(norm):
        return "vector holds NaN or infinity" if not np.isfinite(vector).all() else "vector is too long"
    if norm == 0.0:
        return "vector is all zeros"
    if abs(norm - 1.0) > UNIT_TOLERANCE:
        return f"vector has length {norm:.3g}, not 1"
    return None


def parse_metadata(text: Any) -> dict[str, Any]:
    """A row's metadata JSON -> dict (``{"$date": iso}`` objects become dates). Raises ValueError."""
    if not isinstance(text, str) or len(text) > MAX_METADATA:
        raise ValueError(f"metadata must be JSON text of at most {MAX_METADATA} bytes")
    try:
        value = json.loads(text, object_hook=_from_json)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"metadata is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(value, dict):
        raise ValueError("metadata must be a JSON object")
    return value


def _from_json(value: dict[str, Any]) -> Any:
    if set(value) != {"$date"}:
        return value
    if not isinstance(value["$date"], str):
        raise ValueError("a $date must be an ISO date text")
    try:
        return dt.date.fromisoformat(value["$date"])
    except ValueError:
        raise ValueError(f"bad date {value['$date'][:40]!r}") from None
