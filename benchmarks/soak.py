"""Soak: index, search, delete and re-index in a loop for a bounded time in one process (through
``medsearch.api.Medsearch``, the tiny SigLIP model), printing the resident memory (VmRSS) after every
iteration and the drift between the median RSS of the first and the last quarter of the iterations.

    PYTHONPATH=. python benchmarks/soak.py --seconds 60

Each iteration writes ``--add`` new PNGs, indexes the folder, runs text searches (new texts every time,
so the text cache fills), similar-by-id and filtered searches and counts, then deletes half of the
files and indexes again (the removals). Writes JSON to benchmarks/results/soak.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def rss_mb() -> float:
    """This process's resident set size in MiB (VmRSS from /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def write_images(folder: Path, first: int, count: int) -> None:
    """``count`` random PNGs (RGB, 64-160 px wide) named by seed from ``first``."""
    import numpy as np
    from PIL import Image

    for seed in range(first, first + count):
        rng = np.random.default_rng(seed)
        pixels = rng.integers(0, 255, (64, 64 + seed % 97, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{seed:06d}.png")


def one_iteration(engine: Any, folder: Path, number: int, add: int, settings: Any) -> dict[str, Any]:
    """Add, index, search, delete half, re-index; the counts seen."""
    write_images(folder, number * add, add)
    added = engine.index([folder], settings)
    anchor = engine.search(f"scan number {number}", k=1)[0].id
    for query in range(10):
        engine.search(f"finding {number}-{query}", k=10)
        engine.search(f"finding {number}-{query}", k=10, where=["width >= 100"])
    engine.similar(anchor, k=10)
    engine.count(where=["width >= 100"])
    files = sorted(folder.glob("*.png"))
    for path in files[: len(files) // 2]:
        path.unlink()
    removed = engine.index([folder], settings)
    return {"added": added.added, "removed": removed.removed, "images": engine.store.image_count()}


def drift(samples: list[float]) -> tuple[float, float, float, float]:
    """(first-quarter median, last-quarter median, difference in MiB, difference in %)."""
    quarter = max(1, len(samples) // 4)
    first, last = statistics.median(samples[:quarter]), statistics.median(samples[-quarter:])
    return first, last, last - first, 100 * (last - first) / first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="How long to loop.")
    parser.add_argument("--add", type=int, default=20, help="New images per iteration.")
    parser.add_argument("--workers", type=int, default=0, help="Decoding processes (0: inline).")
    args = parser.parse_args()

    from medsearch.api import Medsearch
    from medsearch.indexer.pipeline import IndexSettings

    from tests.tiny_siglip import build_tiny_siglip

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = build_tiny_siglip(root / "model")
        folder = root / "images"
        folder.mkdir()
        settings = IndexSettings(batch_size=8, workers=args.workers)
        rows, started = [], time.monotonic()
        print(f"{'iter':>5} {'seconds':>8} {'images':>7} {'RSS MiB':>8}")
        with Medsearch.open(root / "store", model=str(model), create=True, writable=True, device="cpu") as engine:
            while time.monotonic() - started < args.seconds:
                counts = one_iteration(engine, folder, len(rows), args.add, settings)
                rows.append({"iteration": len(rows), "seconds": time.monotonic() - started, "rss_mb": rss_mb(),
                             **counts})
                row = rows[-1]
                print(f"{row['iteration']:>5} {row['seconds']:>8.1f} {row['images']:>7} {row['rss_mb']:>8.1f}")
    first, last, grown, percent = drift([row["rss_mb"] for row in rows])
    print(f"iterations {len(rows)}; RSS median first quarter {first:.1f} MiB, last quarter {last:.1f} MiB; "
          f"drift {grown:+.1f} MiB ({percent:+.1f} %)")
    RESULTS.mkdir(exist_ok=True)
    summary = {"first_quarter_mb": first, "last_quarter_mb": last, "drift_mb": grown, "drift_percent": percent}
    (RESULTS / "soak.json").write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
