"""Images/s of ``--executor ray`` against the in-process pipeline on this machine, for the tiny test model
and a random-weight model of MedSigLIP-448's shape (``--layers`` per tower; the real model has 27).

Ray's start-up (``ray.init`` of a local instance) is timed on its own, and each Ray figure is given with
and without it; the actors' model loading is inside the Ray run (it is a real cost of every job). Ray
listens on every interface, so run this inside a private network namespace:

    bash tests/indexer/netns_run.sh env PYTHONPATH=. python benchmarks/bench_ray.py
    bash tests/indexer/netns_run.sh env PYTHONPATH=. python benchmarks/bench_ray.py --images 64 --layers 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.medsiglip_shape import build_medsiglip_shape
from benchmarks.radiographs import write_pngs


def index_once(store_dir: Path, model_dir: Path, folder: Path, batch_size: int, on_ray: bool) -> dict[str, Any]:
    """Index ``folder`` into a new store; the report as a dict (``seconds`` is the wall time)."""
    from medsearch.api import Medsearch
    from medsearch.indexer.pipeline import IndexSettings

    with Medsearch.open(store_dir, str(model_dir), "cpu", create=True, writable=True) as ms:
        settings = IndexSettings(batch_size=batch_size)
        ms.embedder  # noqa: B018 - the driver's model load is not the executor's cost
        report = ms.index_on_ray([folder], settings) if on_ray else ms.index([folder], settings)
        return report.as_dict()


def compare(name: str, model_dir: Path, folder: Path, scratch: Path, args: argparse.Namespace,
            startup: float) -> None:
    local = index_once(scratch / f"{name}-local", model_dir, folder, args.batch_size, on_ray=False)
    ray = index_once(scratch / f"{name}-ray", model_dir, folder, args.batch_size, on_ray=True)
    images = local["frames_added"]
    print(f"{name:18}{images / local['seconds']:12.2f}{images / ray['seconds']:14.2f}"
          f"{images / (ray['seconds'] + startup):18.2f}   ({images} images; ray {ray['seconds']:.1f} s, "
          f"local {local['seconds']:.1f} s)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--side", type=int, default=512, help="pixels per side of the written 16-bit PNGs")
    parser.add_argument("--layers", type=int, default=1, help="layers per tower of the full-shape model")
    parser.add_argument("--batch-size", type=int, default=8)
    return parser.parse_args()


def main() -> None:
    import ray

    from tests.tiny_siglip import build_tiny_siglip

    args = parse_args()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        write_pngs(scratch / "images", args.images, args.side)
        tiny = build_tiny_siglip(scratch / "tiny", seed=0)
        full = build_medsiglip_shape(scratch / "full", layers=args.layers)
        started = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        startup = time.perf_counter() - started
        print(f"{os.cpu_count()} cores; ray.init (local, no dashboard): {startup:.1f} s; batch {args.batch_size}")
        print(f"{'model':18}{'local img/s':>12}{'ray img/s':>14}{'ray+init img/s':>18}")
        compare("tiny", tiny, scratch / "images", scratch, args, startup)
        compare(f"full shape {args.layers}L", full, scratch / "images", scratch, args, startup)
        ray.shutdown()


if __name__ == "__main__":
    main()
