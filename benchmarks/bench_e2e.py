"""End-to-end indexing of real-size files, stage by stage: 2000 x 2000 16-bit PNGs and 16-bit CR DICOMs
written by the script, indexed by ``medsearch.indexer.pipeline.index_paths`` into a new store with a random-weight
model of MedSigLIP-448's shape (``--layers`` per tower; the real model has 27).

Stages come from ``IndexReport.stages``: discover, plan, embed, write and snapshot are wall-clock seconds in
this process; read and preprocess are the sums of the workers' seconds (they run in parallel with embed,
so they can add up to more than the wall time). A second run over the same files shows the incremental
path (nothing to embed).

    PYTHONPATH=. python benchmarks/bench_e2e.py                          # 16 PNGs + 4 DICOMs, 2 layers
    PYTHONPATH=. python benchmarks/bench_e2e.py --pngs 64 --dicoms 16 --layers 27
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.medsiglip_shape import LAYERS, build_medsiglip_shape, image_gflops
from benchmarks.radiographs import write_dicoms, write_pngs

STAGES = ("discover", "plan", "read", "preprocess", "embed", "write", "snapshot")


def index_once(store_dir: Path, embedder: Any, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One ``index_paths`` run into the store at ``store_dir``; its report as a dict."""
    from medsearch.indexer.pipeline import IndexSettings, index_paths
    from medsearch.storage.store import Store

    store = Store.open(store_dir, create=True, writable=True)
    try:
        settings = IndexSettings(batch_size=args.batch_size, workers=args.workers)
        return index_paths(store, lambda: embedder, [folder], settings).as_dict()
    finally:
        store.close()


def show(first: dict[str, Any], second: dict[str, Any], args: argparse.Namespace) -> None:
    total = first["seconds"]
    print(f"\n{args.pngs} PNGs + {args.dicoms} DICOMs, {args.side}x{args.side} 16-bit; MedSigLIP-448 shape with "
          f"{args.layers} of {LAYERS} layers, {args.precision}, batch {args.batch_size}, {os.cpu_count()} cores")
    print(f"{'stage':12}{'seconds':>10}{'% of wall':>11}")
    for stage in STAGES:
        seconds = first["stages"].get(stage, 0.0)
        print(f"{stage:12}{seconds:10.2f}{100 * seconds / total:10.0f}%")
    print(f"{'wall':12}{total:10.2f}   added {first['added']}, failed {first['failed']}: "
          f"{first['frames_added'] / total:.3f} images/s")
    scale = image_gflops(LAYERS) / image_gflops(args.layers)
    embed_share = first["stages"].get("embed", 0.0) * scale
    print(f"with all {LAYERS} layers, embed would take about {embed_share:.0f} s ({scale:.1f}x): "
          f"~{first['frames_added'] / (total - first['stages'].get('embed', 0.0) + embed_share):.3f} images/s")
    print(f"second run (incremental): unchanged {second['unchanged']}, added {second['added']} in "
          f"{second['seconds']:.2f} s")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pngs", type=int, default=16)
    parser.add_argument("--dicoms", type=int, default=4)
    parser.add_argument("--side", type=int, default=2000)
    parser.add_argument("--layers", type=int, default=2, help="layers per tower (the real model has 27)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=-1, help="decoding processes (-1: the pipeline's default)")
    parser.add_argument("--precision", default="float32", help="float32, int8, bfloat16 or fast")
    parser.add_argument("--model-dir", type=Path, help="reuse a folder built by medsiglip_shape (same --layers)")
    return parser.parse_args()


def main() -> None:
    import torch
    from medsearch.indexer.model_loading import load_embedder

    args = parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        model_dir = args.model_dir or build_medsiglip_shape(root / "model", layers=args.layers)
        write_pngs(root / "images" / "png", args.pngs, args.side)
        write_dicoms(root / "images" / "dicom", args.dicoms, args.side)
        embedder = load_embedder(str(model_dir), device="cpu", precision=args.precision)
        first = index_once(root / "store", embedder, root / "images", args)
        second = index_once(root / "store", embedder, root / "images", args)
    show(first, second, args)
    out = Path(__file__).parent / "results" / f"bench_e2e-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()}, "first": first,
                               "second": second}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
