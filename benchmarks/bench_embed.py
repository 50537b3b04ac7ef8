"""Embedding throughput on a random-weight model of MedSigLIP-448's exact shape (see medsiglip_shape.py).

In one run: (a) images/s of a bare ``get_image_features`` loop on preprocessed tensors; (b) images/s of the
whole indexing pipeline (``index_paths``: 16-bit PNGs on disk -> decode + preprocess in workers -> embed ->
SQLite + FAISS) at the same batch size, and their ratio, the pipeline's efficiency; (c) the GFLOP/s that
(a) achieves, counted analytically (``image_gflops``), against a large float32 matmul measured now;
(d) p50 latency of one text query. Then the same for int8 (``--precision int8``) with its accuracy against
float32: mean cosine of image and text vectors, and top-10 overlap of text->image and image->image
retrieval over a gallery. Random weights make the accuracy figures indicative only.

    PYTHONPATH=. python benchmarks/bench_embed.py                   # 2 layers per tower: a few minutes
    PYTHONPATH=. python benchmarks/bench_embed.py --layers 27 --images 8 --gallery 16   # the full shape
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.medsiglip_shape import LAYERS, build_medsiglip_shape, image_gflops
from benchmarks.radiographs import radiograph, write_pngs

QUERIES = ("left pleural effusion", "cardiomegaly", "right upper lobe consolidation", "no pneumothorax",
           "endotracheal tube in place")


def matmul_gflops(size: int, repeats: int = 3) -> float:
    """Best-of-``repeats`` GFLOP/s of a (size x size) @ (size x size) float32 torch matmul."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = min(_seconds(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _seconds(work: Any) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def bare_images_per_s(embedder: Any, images: int, batch: int) -> float:
    """Images/s of ``model.get_image_features`` on random (batch, 3, S, S) float32 tensors, after one
    warm-up batch; ``images`` is rounded up to whole batches."""
    import torch

    side = embedder.preprocessor.size
    pixels = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (batch, 3, side, side)).astype(np.float32))
    batches = max(1, -(-images // batch))
    with torch.inference_mode():
        embedder.model.get_image_features(pixel_values=pixels)
        started = time.perf_counter()
        for _ in range(batches):
            embedder.model.get_image_features(pixel_values=pixels)
    return batches * batch / (time.perf_counter() - started)


def pipeline_run(embedder: Any, folder: Path, batch: int, workers: int) -> dict[str, Any]:
    """Index ``folder`` into a new store with ``index_paths``; images/s over the whole run and its stages."""
    from indexer.pipeline import IndexSettings, index_paths
    from storage.store import Store

    with tempfile.TemporaryDirectory() as store_dir:
        store = Store.open(Path(store_dir), create=True, writable=True)
        try:
            report = index_paths(store, lambda: embedder, [folder], IndexSettings(batch_size=batch, workers=workers))
        finally:
            store.close()
    return {"images_per_s": report.frames_added / report.seconds, "seconds": report.seconds,
            "frames": report.frames_added, "stages": report.stages}


def text_p50_ms(embedder: Any, runs: int) -> float:
    """Median milliseconds of ``embed_texts`` on one query, after one warm-up call."""
    embedder.embed_texts([QUERIES[0]])
    return 1000 * statistics.median(_seconds(lambda: embedder.embed_texts([QUERIES[0]])) for _ in range(runs))


def gallery(count: int, side: int, seed: int) -> np.ndarray:
    """(count, 3, side, side) float32 model inputs made from radiograph-like images, through the
    production ``Preprocessor``."""
    from indexer.preprocess import Preprocessor

    prepare = Preprocessor(side)
    return np.stack([prepare(radiograph(side * 2, seed + i).astype(np.float32) / 65535) for i in range(count)])


def embed_all(embedder: Any, pixels: np.ndarray, batch: int) -> np.ndarray:
    return np.vstack([embedder.embed_images(pixels[i : i + batch]) for i in range(0, len(pixels), batch)])


def overlap_at_10(exact: np.ndarray, approx: np.ndarray, queries_exact: np.ndarray,
                  queries_approx: np.ndarray) -> float:
    """Mean |top-10(exact) & top-10(approx)| / 10 over the query rows; each side ranks its own gallery."""
    k = min(10, len(exact))
    top_exact = np.argsort(-(queries_exact @ exact.T), axis=1)[:, :k]
    top_approx = np.argsort(-(queries_approx @ approx.T), axis=1)[:, :k]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(top_exact, top_approx, strict=True)]))


def int8_accuracy(exact: Any, int8: Any, count: int, batch: int) -> dict[str, float]:
    """Cosines between int8 and float32 vectors, and top-10 overlap of their retrievals over a gallery of
    ``count`` images with the QUERIES as text queries and 5 other images as image queries."""
    side = exact.preprocessor.size
    pixels, probes = gallery(count, side, seed=100), gallery(5, side, seed=900)
    images = {name: embed_all(model, pixels, batch) for name, model in (("f32", exact), ("i8", int8))}
    image_queries = {name: embed_all(model, probes, batch) for name, model in (("f32", exact), ("i8", int8))}
    texts = {name: model.embed_texts(list(QUERIES)) for name, model in (("f32", exact), ("i8", int8))}
    return {
        "image_cosine_mean": float(np.mean(np.sum(images["f32"] * images["i8"], axis=1))),
        "text_cosine_mean": float(np.mean(np.sum(texts["f32"] * texts["i8"], axis=1))),
        "text_to_image_top10_overlap": overlap_at_10(images["f32"], images["i8"], texts["f32"], texts["i8"]),
        "image_to_image_top10_overlap": overlap_at_10(images["f32"], images["i8"], image_queries["f32"],
                                                      image_queries["i8"]),
        "gallery": count,
    }


def measure(model_dir: Path, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Every figure of one run, float32 first, then int8 unless ``--no-int8``."""
    from indexer.model_loading import load_embedder

    peak = matmul_gflops(args.matmul)
    exact = load_embedder(str(model_dir), device="cpu", precision="float32")
    bare = bare_images_per_s(exact, args.images, args.batch_size)
    peak = max(peak, matmul_gflops(args.matmul))
    pipeline = pipeline_run(exact, folder, args.batch_size, args.workers)
    gflop = image_gflops(args.layers)
    result: dict[str, Any] = {
        "float32": {"bare_images_per_s": bare, "pipeline": pipeline,
                    "pipeline_efficiency": pipeline["images_per_s"] / bare,
                    "achieved_gflops": bare * gflop, "fraction_of_matmul_peak": bare * gflop / peak,
                    "text_p50_ms": text_p50_ms(exact, args.text_runs)},
        "matmul_peak_gflops": peak, "image_gflop": gflop, "full_model_image_gflop": image_gflops(LAYERS),
    }
    if not args.no_int8:
        int8 = load_embedder(str(model_dir), device="cpu", precision="int8")
        result["int8"] = {"bare_images_per_s": bare_images_per_s(int8, args.images, args.batch_size),
                          "text_p50_ms": text_p50_ms(int8, args.text_runs),
                          "accuracy": int8_accuracy(exact, int8, args.gallery, args.batch_size)}
    return result


def show(result: dict[str, Any], args: argparse.Namespace) -> None:
    f32 = result["float32"]
    scale = result["full_model_image_gflop"] / result["image_gflop"]
    print(f"\nMedSigLIP-448 shape, {args.layers} of {LAYERS} layers per tower, batch {args.batch_size}, "
          f"{os.cpu_count()} cores, torch threads {args.threads}; random weights")
    print(f"{'':34}{'float32':>12}{'int8':>12}")
    int8 = result.get("int8", {})
    rows = [("bare get_image_features, images/s", f32["bare_images_per_s"], int8.get("bare_images_per_s")),
            ("one text query p50, ms", f32["text_p50_ms"], int8.get("text_p50_ms"))]
    for name, a, b in rows:
        print(f"{name:34}{a:12.3f}{'' if b is None else f'{b:12.3f}':>12}")
    pipe = f32["pipeline"]
    print(f"pipeline ({pipe['frames']} PNGs {args.side}x{args.side} 16-bit): {pipe['images_per_s']:.3f} images/s "
          f"= {100 * f32['pipeline_efficiency']:.0f}% of the bare loop; stages (s): "
          + ", ".join(f"{k} {v:.2f}" for k, v in pipe["stages"].items()))
    print(f"compute: {result['image_gflop']:.1f} GFLOP/image -> {f32['achieved_gflops']:.1f} GFLOP/s achieved; "
          f"float32 matmul {args.matmul}^3: {result['matmul_peak_gflops']:.1f} GFLOP/s "
          f"-> {100 * f32['fraction_of_matmul_peak']:.0f}% of that peak")
    print(f"the full {LAYERS}-layer model costs {result['full_model_image_gflop']:.0f} GFLOP/image: about "
          f"{scale:.1f}x slower per image (float32 full model ~ {f32['bare_images_per_s'] / scale:.3f} images/s)")
    if int8:
        acc = int8["accuracy"]
        print(f"int8 speed-up {int8['bare_images_per_s'] / f32['bare_images_per_s']:.2f}x (images), "
              f"{f32['text_p50_ms'] / int8['text_p50_ms']:.2f}x (text); vs float32: cosine images "
              f"{acc['image_cosine_mean']:.5f}, texts {acc['text_cosine_mean']:.5f}; top-10 overlap over "
              f"{acc['gallery']} images: text->image {acc['text_to_image_top10_overlap']:.2f}, image->image "
              f"{acc['image_to_image_top10_overlap']:.2f} (random weights: indicative only)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=2, help="layers per tower (the real model has 27)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--images", type=int, default=16, help="images for the bare loop and the pipeline")
    parser.add_argument("--side", type=int, default=2000, help="side of the written 16-bit PNGs")
    parser.add_argument("--workers", type=int, default=-1, help="decoding processes (-1: the pipeline's default)")
    parser.add_argument("--gallery", type=int, default=64, help="images in the int8 retrieval check")
    parser.add_argument("--text-runs", type=int, default=10)
    parser.add_argument("--matmul", type=int, default=4096, help="side of the peak-reference matmul")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    parser.add_argument("--no-int8", action="store_true")
    parser.add_argument("--model-dir", type=Path, help="reuse a folder built by medsiglip_shape (same --layers)")
    return parser.parse_args()


def main() -> None:
    import torch

    args = parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = args.model_dir or build_medsiglip_shape(Path(scratch) / "model", layers=args.layers)
        folder = Path(scratch) / "images"
        write_pngs(folder, args.images, args.side)
        result = measure(model_dir, folder, args)
    show(result, args)
    out = Path(__file__).parent / "results" / f"bench_embed-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()}, **result}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
