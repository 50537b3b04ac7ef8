"""Embedding throughput on a random-weight model of MedSigLIP-448's exact shape (see medsiglip_shape.py).

In one run, for float32 and then for each faster CPU precision (``--fast``; default int8, plus bfloat16 where
the CPU has bfloat16 instructions): (a) images/s of a bare ``get_image_features`` loop on preprocessed
tensors; (b) images/s of the whole indexing pipeline (``index_paths``: 16-bit PNGs on disk -> decode +
preprocess in workers -> embed -> SQLite + FAISS) at the same batch size, and their ratio, the pipeline's
efficiency; (c) the GFLOP/s that (a) achieves, counted analytically (``image_gflops``), against a large
matmul of the same dtype measured now; (d) p50 latency of one text query. Each faster precision also gets
its accuracy against float32: mean cosine of image and text vectors, and top-10 overlap of text->image and
image->image retrieval over a gallery. Random weights make the accuracy figures indicative only.

    PYTHONPATH=. python benchmarks/bench_embed.py                   # 2 layers per tower: a few minutes
    PYTHONPATH=. python benchmarks/bench_embed.py --layers 27 --images 8 --gallery 16   # the full shape
    PYTHONPATH=. python benchmarks/bench_embed.py --device cuda --layers 27 --images 512 --batch-size 64
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


def matmul_gflops(size: int, dtype: str = "float32", device: str = "cpu", repeats: int = 3) -> float:
    """Best-of-``repeats`` GFLOP/s of a (size x size) @ (size x size) torch matmul in ``dtype`` on ``device``."""
    import torch

    a, b = (torch.randn(size, size, dtype=getattr(torch, dtype), device=device) for _ in range(2))
    torch.mm(a, b)
    best = min(_seconds(lambda: torch.mm(a, b), device) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _seconds(work: Any, device: str = "cpu") -> float:
    """Wall seconds of ``work()``, waiting for a GPU's queued kernels to finish."""
    import torch

    finish = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    finish()
    started = time.perf_counter()
    work()
    finish()
    return time.perf_counter() - started


def bare_images_per_s(embedder: Any, images: int, batch: int) -> float:
    """Images/s of ``model.get_image_features`` on random (batch, 3, S, S) float32 tensors, after one
    warm-up batch; ``images`` is rounded up to whole batches."""
    import torch

    side = embedder.preprocessor.size
    pixels = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (batch, 3, side, side)).astype(np.float32))
    pixels = pixels.to(embedder.device, dtype=embedder.dtype)
    batches = max(1, -(-images // batch))

    def loop() -> None:
        for _ in range(batches):
            embedder.model.get_image_features(pixel_values=pixels)

    with torch.inference_mode():
        embedder.model.get_image_features(pixel_values=pixels)
        return batches * batch / _seconds(loop, embedder.device)


def pipeline_run(embedder: Any, folder: Path, batch: int, workers: int) -> dict[str, Any]:
    """Index ``folder`` into a new store with ``index_paths``; images/s over the whole run and its stages."""
    from medsearch.indexer.pipeline import IndexSettings, index_paths
    from medsearch.storage.store import Store

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
    from medsearch.indexer.preprocess import Preprocessor

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


def accuracy(exact: Any, fast: Any, count: int, batch: int) -> dict[str, float]:
    """Cosines between ``fast``'s and float32 vectors, and top-10 overlap of their retrievals over a gallery of
    ``count`` images with the QUERIES as text queries and 5 other images as image queries."""
    side = exact.preprocessor.size
    pixels, probes = gallery(count, side, seed=100), gallery(5, side, seed=900)
    pair = (("f32", exact), ("fast", fast))
    images = {name: embed_all(model, pixels, batch) for name, model in pair}
    image_queries = {name: embed_all(model, probes, batch) for name, model in pair}
    texts = {name: model.embed_texts(list(QUERIES)) for name, model in pair}
    return {
        "image_cosine_mean": float(np.mean(np.sum(images["f32"] * images["fast"], axis=1))),
        "text_cosine_mean": float(np.mean(np.sum(texts["f32"] * texts["fast"], axis=1))),
        "text_to_image_top10_overlap": overlap_at_10(images["f32"], images["fast"], texts["f32"], texts["fast"]),
        "image_to_image_top10_overlap": overlap_at_10(images["f32"], images["fast"], image_queries["f32"],
                                                      image_queries["fast"]),
        "gallery": count,
    }


def tower_figures(embedder: Any, folder: Path, args: argparse.Namespace, peak: float | None) -> dict[str, Any]:
    """Bare loop, pipeline and text latency of one loaded embedder; the fraction of ``peak`` when given."""
    bare = bare_images_per_s(embedder, args.images, args.batch_size)
    pipeline = pipeline_run(embedder, folder, args.batch_size, args.workers)
    achieved = bare * image_gflops(args.layers)
    return {"bare_images_per_s": bare, "pipeline": pipeline, "pipeline_efficiency": pipeline["images_per_s"] / bare,
            "achieved_gflops": achieved, "fraction_of_matmul_peak": None if peak is None else achieved / peak,
            "text_p50_ms": text_p50_ms(embedder, args.text_runs)}


def measure(model_dir: Path, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Every figure of one run: float32 first, then each precision of ``args.fast``."""
    from medsearch.indexer.model_loading import load_embedder

    peaks = {dtype: matmul_gflops(args.matmul, dtype, args.device) for dtype in ("float32", "bfloat16", "float16")
             if dtype == "float32" or dtype in args.fast}
    exact = load_embedder(str(model_dir), device=args.device, precision="float32")
    result: dict[str, Any] = {"float32": tower_figures(exact, folder, args, peaks["float32"]),
                              "matmul_peak_gflops": peaks, "image_gflop": image_gflops(args.layers),
                              "full_model_image_gflop": image_gflops(LAYERS)}
    for name in args.fast:
        fast = load_embedder(str(model_dir), device=args.device, precision=name)
        result[name] = {**tower_figures(fast, folder, args, peaks.get(name)),
                        "accuracy": accuracy(exact, fast, args.gallery, args.batch_size)}
    return result


def _accuracy_cell(key: str, spec: str) -> Any:
    """A table cell of one accuracy figure; empty for float32, which has none."""
    return lambda r: format(r["accuracy"][key], spec) if "accuracy" in r else ""


def show(result: dict[str, Any], args: argparse.Namespace) -> None:
    names = ["float32", *args.fast]
    f32 = result["float32"]
    print(f"\nMedSigLIP-448 shape, {args.layers} of {LAYERS} layers per tower, batch {args.batch_size}, "
          f"{args.device}, {os.cpu_count()} cores, torch threads {args.threads}; random weights; "
          f"{result['image_gflop']:.1f} GFLOP/image ({result['full_model_image_gflop']:.0f} for all {LAYERS} layers)")
    print(f"{'':38}" + "".join(f"{name:>12}" for name in names))
    rows: list[tuple[str, Any]] = [
        ("bare get_image_features, images/s", lambda r: f"{r['bare_images_per_s']:.3f}"),
        ("  speed-up over float32", lambda r: f"{r['bare_images_per_s'] / f32['bare_images_per_s']:.2f}x"),
        ("whole pipeline, images/s", lambda r: f"{r['pipeline']['images_per_s']:.3f}"),
        ("  pipeline / bare loop", lambda r: f"{r['pipeline_efficiency']:.2f}"),
        ("achieved GFLOP/s", lambda r: f"{r['achieved_gflops']:.0f}"),
        ("  of the same dtype's matmul peak", lambda r: "" if r["fraction_of_matmul_peak"] is None
         else f"{100 * r['fraction_of_matmul_peak']:.0f}%"),
        ("one text query p50, ms", lambda r: f"{r['text_p50_ms']:.1f}"),
        ("mean cosine to float32: images", _accuracy_cell("image_cosine_mean", ".5f")),
        ("mean cosine to float32: texts", _accuracy_cell("text_cosine_mean", ".5f")),
        ("top-10 overlap: text->image", _accuracy_cell("text_to_image_top10_overlap", ".2f")),
        ("top-10 overlap: image->image", _accuracy_cell("image_to_image_top10_overlap", ".2f")),
    ]
    for label, cell in rows:
        print(f"{label:38}" + "".join(f"{cell(result[name]):>12}" for name in names))
    print("matmul peak " + ", ".join(f"{dtype} {value:.0f} GFLOP/s" for dtype, value in
                                     result["matmul_peak_gflops"].items()) + f" ({args.matmul}^3)")
    pipe = f32["pipeline"]
    print(f"pipeline: {pipe['frames']} PNGs {args.side}x{args.side} 16-bit; float32 stages (s): "
          + ", ".join(f"{k} {v:.2f}" for k, v in pipe["stages"].items()))
    scale = result["full_model_image_gflop"] / result["image_gflop"]
    if scale > 1:
        print(f"the full {LAYERS}-layer model is about {scale:.1f}x slower per image")
    print(f"top-10 overlaps over a gallery of {args.gallery} images (random weights: indicative only)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=2, help="layers per tower (the real model has 27)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--images", type=int, default=16, help="images for the bare loop and the pipeline")
    parser.add_argument("--side", type=int, default=2000, help="side of the written 16-bit PNGs")
    parser.add_argument("--workers", type=int, default=-1, help="decoding processes (-1: the pipeline's default)")
    parser.add_argument("--gallery", type=int, default=64, help="images in the accuracy retrieval check")
    parser.add_argument("--text-runs", type=int, default=10)
    parser.add_argument("--matmul", type=int, default=4096, help="side of the peak-reference matmul")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (then float32 against bfloat16/float16)")
    parser.add_argument("--fast", type=lambda text: [name for name in text.split(",") if name], default=None,
                        help="faster precisions to compare with float32, comma-separated (default: int8, and "
                        "bfloat16 where the CPU has it; '' for none)")
    parser.add_argument("--model-dir", type=Path, help="reuse a folder built by medsiglip_shape (same --layers)")
    return parser.parse_args()


def main() -> None:
    import torch
    from medsearch.indexer.precision import cpu_has_bf16

    args = parse_args()
    if args.fast is None and args.device.startswith("cuda"):
        args.fast = ["bfloat16" if torch.cuda.is_bf16_supported() else "float16"]
    elif args.fast is None:
        args.fast = ["int8", "bfloat16"] if cpu_has_bf16() else ["int8"]
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
