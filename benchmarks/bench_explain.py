"""Text-conditioned heatmaps (``medsearch.explain``): the pointing game per method on the tiny trained
model, and the cost of one explanation per image relative to one vision-tower forward pass.

    PYTHONPATH=. python benchmarks/bench_explain.py                       # tiny models only
    PYTHONPATH=. python benchmarks/bench_explain.py --medsiglip-layers 4  # + MedSigLIP-448's shape

Pointing game: ``tests/explain/pointing.py``'s set (a shape in a known box on a plain background,
square and non-square canvases), on the tiny SigLIP trained with the 8 x 8 patch grid of the explain
tests (``train_tiny_siglip(patch_size=4)``). Cost: median seconds per image of each method over the
median of ``embed_images`` on one image, on the CPU in float32 (the shape's real per-layer cost with
``--medsiglip-layers`` of its 27 layers). Writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.explain import METHODS
from medsearch.explain.service import explain_frame
from medsearch.indexer.model_loading import load_embedder

from tests.explain.pointing import play, pointing_set
from tests.tiny_siglip import train_tiny_siglip

RESULTS = Path(__file__).parent / "results"


def median_seconds(call: Any, repeats: int) -> float:
    """Median wall time of ``call()`` over ``repeats`` runs, after one warm-up run."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def costs(embedder: Any, repeats: int) -> dict[str, float]:
    """Seconds per image of a forward pass and of each method, and each method's ratio to the forward."""
    side = embedder.preprocessor.size
    pixels = np.random.default_rng(0).random((side, side, 3), dtype=np.float32)
    query = embedder.embed_texts(["a red circle"])[0]
    forward = median_seconds(lambda: embedder.embed_images(embedder.preprocessor(pixels)[np.newaxis]), repeats)
    figures = {"forward_s": round(forward, 5)}
    for method in METHODS:
        seconds = median_seconds(lambda m=method: explain_frame(embedder, pixels, query, m, embedder.embed_texts),
                                 repeats)
        figures[f"{method}_s"] = round(seconds, 5)
        figures[f"{method}_x_forward"] = round(seconds / forward, 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=25, help="pointing-game images per class")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model-dir", type=Path, help="reuse a tiny model trained with patch_size=4")
    parser.add_argument("--medsiglip-layers", type=int, default=0, help="also time MedSigLIP's shape")
    args = parser.parse_args()
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.model_dir or train_tiny_siglip(Path(scratch) / "tiny", seed=0, patch_size=4)
        tiny = load_embedder(str(folder), device="cpu")
        cases = pointing_set(args.per_class, seed=1)
        report["pointing_game"] = {m: play(tiny, cases, m).as_dict() for m in METHODS}
        report["pointing_images"] = len(cases)
        report["cost_tiny"] = costs(tiny, args.repeats)
        if args.medsiglip_layers:
            from benchmarks.medsiglip_shape import build_medsiglip_shape

            shaped = build_medsiglip_shape(Path(scratch) / "shape", layers=args.medsiglip_layers)
            report["cost_medsiglip_shape"] = {"layers": args.medsiglip_layers,
                                              **costs(load_embedder(str(shaped), device="cpu"), args.repeats)}
    print(json.dumps(report, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "explain.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
