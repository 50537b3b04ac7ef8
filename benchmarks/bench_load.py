"""``medsearch load`` of one large Parquet shard: peak resident memory (the process's own, from ``wait4``)
and seconds, beside a one-row load of the same shape as the baseline. The shard and the measurement are
those of ``tests/indexer/test_shard_memory.py``, which loads 100,000 rows to keep the suite short; this
script loads as many as asked.

    PYTHONPATH=. python benchmarks/bench_load.py [--rows 300000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.indexer.test_shard_memory import peak_load_mb, write_big_shard  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    rows = parser.parse_args().rows
    with tempfile.TemporaryDirectory(prefix="bench-load-") as folder:
        base = Path(folder)
        write_big_shard(base / "one/a.parquet", 1)
        write_big_shard(base / "big/a.parquet", rows)
        size_mb = (base / "big/a.parquet").stat().st_size / 1e6
        small, _ = peak_load_mb(base / "one", base / "store-one", base / "one.json")
        large, stdout = peak_load_mb(base / "big", base / "store-big", base / "big.json")
        seconds = json.loads(stdout)["seconds"]
    print("| rows | shard | peak RSS | time |\n|---|---|---|---|")
    print(f"| 1 | - | {small:.0f} MB | - |")
    print(f"| {rows:,} | {size_mb:.1f} MB | {large:.0f} MB | {seconds:.0f} s |")


if __name__ == "__main__":
    main()
