"""``medsearch load`` streams a shard: loading 100 000 rows (one Parquet file of about a MB) holds about what
loading one row does. Prints both peaks (the figures, not a timing, are the point; see benchmarks/)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.indexer.shard_files import MODEL, THUMBNAIL, unit_vector

ROWS = 100_000
BUDGET_MB = 200
"""How far above a one-row load the 100 000-row load may peak (300 000 rows held 1.8 GB when shards were read
whole: about 6 KB a row)."""


def write_big_shard(path: Path, rows: int) -> None:
    """``rows`` one-frame files under /data/big, in row groups of 10 000 (as large a group as a writer
    may choose)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from medsearch.indexer.distributed.shards import schema

    path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(path, schema()) as writer:
        for start in range(0, rows, 10_000):
            count = min(10_000, rows - start)
            columns = {"path": [f"/data/big/{start + i:07d}.png" for i in range(count)],
                       "size": [1] * count, "mtime_ns": [1] * count,
                       "content_hash": [f"h{start + i}" for i in range(count)], "frame_number": [0] * count,
                       "vector": [unit_vector(i % 97) for i in range(count)],
                       "metadata": ['{"modality": "CT"}'] * count,
                       "thumbnail": [THUMBNAIL] * count, "error": [None] * count,
                       **{key: [value] * count for key, value in MODEL.items()}}
            writer.write_table(pa.Table.from_pydict(columns, schema()))


def peak_load_mb(shards: Path, store: Path, out: Path) -> tuple[float, str]:
    """(peak resident MB of one ``medsearch load --json`` process, its stdout)."""
    with open(out, "w") as stdout, open(out.with_suffix(".err"), "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "medsearch.cli", "load", str(shards), "--store",
                                    str(store), "--root", "/data/big", "--json"], stdout=stdout, stderr=stderr)
    _pid, status, usage = os.wait4(process.pid, 0)  # the child's own peak, not every child's
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0, out.with_suffix(".err").read_text()[-3000:]
    return usage.ru_maxrss / 1024, out.read_text()


def test_loading_100_000_rows_holds_about_what_one_row_does(tmp_path: Path) -> None:
    import json

    write_big_shard(tmp_path / "one/a.parquet", 1)
    write_big_shard(tmp_path / "big/a.parquet", ROWS)
    size_mb = (tmp_path / "big/a.parquet").stat().st_size / 1e6
    small, _ = peak_load_mb(tmp_path / "one", tmp_path / "store-one", tmp_path / "one.json")
    large, stdout = peak_load_mb(tmp_path / "big", tmp_path / "store-big", tmp_path / "big.json")
    report = json.loads(stdout)
    print(f"\nload peak memory: {small:.0f} MB for 1 row, {large:.0f} MB for {ROWS} rows ({size_mb:.1f} MB "
          f"shard) in {report['seconds']:.0f} s; budget {small:.0f} + {BUDGET_MB} MB")
    assert (report["added"], report["failed"], report["failed_shards"]) == (ROWS, 0, [])
    assert large <= small + BUDGET_MB, (small, large)
