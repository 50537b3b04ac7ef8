"""Parquet shards written by the tests with pyarrow, in the schema ``index --executor ray --shards`` writes
(``medsearch.indexer.distributed.shards.schema``), for a made-up model of ``DIM``-long vectors: no model and
no Ray are needed to load them."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

DIM = 8
MODEL = {"model_id": "shard-test-model", "revision": "r1", "dim": DIM, "preprocessing_version": "p1",
         "precision": "float32"}


def png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (4, 4), 128).save(out, format="PNG")
    return out.getvalue()


THUMBNAIL = png()


def unit_vector(seed: int) -> bytes:
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return (vector / np.linalg.norm(vector)).astype(np.float32).tobytes()


def row(path: str, seed: int = 0, frame: int = 0, **changes: Any) -> dict[str, Any]:
    """One good frame row of ``path`` (its vector drawn from ``seed``), with ``changes`` applied."""
    good = {"path": path, "size": 100 + seed, "mtime_ns": 1_000 + seed, "content_hash": f"hash-{seed}",
            "frame_number": frame, "vector": unit_vector(seed), "thumbnail": THUMBNAIL, "error": None,
            "metadata": json.dumps({"modality": "CT", "study_date": {"$date": "2020-01-02"}}), **MODEL}
    return {**good, **changes}


def write_shard(path: Path, rows: list[dict[str, Any]], schema: Any = None, row_group_size: int = 1024) -> Path:
    """Write ``rows`` as a Parquet file (in the shards' schema unless ``schema`` is given)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from medsearch.indexer.distributed.shards import schema as shard_schema

    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema if schema is not None else shard_schema())
    pq.write_table(table, path, row_group_size=row_group_size)
    return path
