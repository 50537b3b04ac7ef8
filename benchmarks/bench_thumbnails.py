"""What index-time thumbnails cost: per real-size file, the read (decode to display pixels), the
preprocessing for the model, and the 256 px PNG thumbnail rendered from the same pixels, as the decoding
worker does them (``medsearch.indexer.load.load_file``); and the thumbnail bytes stored per image.

    PYTHONPATH=. python benchmarks/bench_thumbnails.py                 # 8 PNGs + 4 DICOMs, 2000 x 2000
    PYTHONPATH=. python benchmarks/bench_thumbnails.py --pngs 32 --dicoms 8
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.preprocess import Preprocessor
from medsearch.indexer.readers import read_file
from medsearch.indexer.thumbnail import THUMBNAIL_SIZE, render_png

from benchmarks.radiographs import write_dicoms, write_pngs


def measure(path: Path, preprocessor: Preprocessor) -> tuple[float, float, float, int]:
    """(read s, preprocess s, thumbnail s, thumbnail bytes) of one file."""
    started = time.perf_counter()
    pixels = read_file(path, ReadOptions(draft_size=preprocessor.size))[0].pixels
    read = time.perf_counter()
    preprocessor(pixels)
    prepared = time.perf_counter()
    png = render_png(pixels, THUMBNAIL_SIZE)
    return read - started, prepared - read, time.perf_counter() - prepared, len(png)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pngs", type=int, default=8)
    parser.add_argument("--dicoms", type=int, default=4)
    parser.add_argument("--size", type=int, default=448, help="the model's input size")
    args = parser.parse_args()
    preprocessor = Preprocessor(size=args.size, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    with tempfile.TemporaryDirectory() as tmp:
        files = write_pngs(Path(tmp) / "png", args.pngs, 2000) + write_dicoms(Path(tmp) / "dcm", args.dicoms, 2000)
        measure(files[0], preprocessor)  # warm-up: imports
        rows = [measure(path, preprocessor) for path in files]
    read, prep, thumb, size = (statistics.median(column) for column in zip(*rows, strict=True))
    print(f"files: {len(rows)} (2000 x 2000); medians per file: read {read * 1000:.1f} ms, "
          f"preprocess {prep * 1000:.1f} ms, thumbnail {thumb * 1000:.1f} ms "
          f"({thumb / (read + prep) * 100:.1f}% of read + preprocess), {size / 1024:.1f} KiB stored")


if __name__ == "__main__":
    main()
