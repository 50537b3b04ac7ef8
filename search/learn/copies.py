"""Synthetic near-duplicates of the store's own images (the positives of the audit's calibration,
``medsearch.learn.calibration``), the hard negatives, and Youden's threshold between two score lists.

A copy is what a leaked test image usually is: the same picture re-encoded (JPEG), cropped by 5-10 %
or re-windowed (contrast and brightness moved). Each variant is a pure function of (H, W) or (H, W, 3)
float32 pixels in [0, 1] (``medsearch.indexer.frames.Frame.pixels``) returning the same kind of array. The
negatives are hard ones: each image's nearest neighbour (k-NN on the index) of another patient, the
pairs a threshold must reject. Random pairs would be too easy: in one modality most pairs are far apart,
so a threshold set on them flags distinct look-alikes. Per model and per store, as arXiv 2312.07273 does.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from medsearch.errors import InvalidQuery, UnreadableFile
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.readers import read_file
from medsearch.indexer.thumbnail import render_png
from medsearch.labels import metrics
from medsearch.learn.neighbours import neighbour_pairs
from medsearch.learn.pixels import grey_png, similarity
from medsearch.learn.selection import paths_of
from PIL import Image as PILImage

if TYPE_CHECKING:
    from medsearch.context import Context

NEGATIVE_ROWS = 4000
"""Images whose close neighbours give the hard negatives (all of them in smaller audits)."""


def reencode(pixels: np.ndarray, quality: int = 70) -> np.ndarray:
    """The pixels after a JPEG round trip at ``quality`` (8-bit), float32 in [0, 1], same shape."""
    image = PILImage.fromarray(np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return np.asarray(PILImage.open(io.BytesIO(buffer.getvalue())), dtype=np.float32) / 255.0


def crop(pixels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Cut ``fraction`` (0.05-0.10 in use) of the height and of the width, split at random between the
    two edges. Returns a view, float32, (H', W'[, 3])."""
    height, width = pixels.shape[:2]
    cut_h, cut_w = round(height * fraction), round(width * fraction)
    top, left = int(rng.integers(0, cut_h + 1)), int(rng.integers(0, cut_w + 1))
    return pixels[top : height - (cut_h - top), left : width - (cut_w - left)]


def window_shift(pixels: np.ndarray, shift: float, gain: float) -> np.ndarray:
    """Re-windowed pixels: ``clip((p - 0.5) * gain + 0.5 + shift, 0, 1)``, float32, same shape."""
    return np.clip((pixels - 0.5) * gain + 0.5 + shift, 0.0, 1.0).astype(np.float32)


def variants(pixels: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """One re-encoded, one cropped (5-10 %) and one re-windowed copy of ``pixels``."""
    return [reencode(pixels, int(rng.integers(60, 90))), crop(pixels, float(rng.uniform(0.05, 0.10)), rng),
            window_shift(pixels, float(rng.uniform(-0.08, 0.08)), float(rng.uniform(0.85, 1.15)))]


def youden_threshold(copies: np.ndarray, others: np.ndarray) -> tuple[float, float, float, float]:
    """(threshold, J, tpr, fpr) maximising J = tpr - fpr for "cosine >= threshold means a copy"; the
    threshold is halfway between the optimal cut's score and the next lower score. Raises InvalidQuery
    when either side is empty."""
    if not len(copies) or not len(others):
        raise InvalidQuery("calibration needs copies of readable images and neighbours of different patients "
                           "in one split; give --threshold")
    truth = np.r_[np.ones(len(copies), np.int64), np.zeros(len(others), np.int64)]
    fpr, tpr, cuts = metrics.roc_curve(truth, np.r_[copies, others])
    best = int(np.argmax(tpr - fpr))
    threshold = (cuts[best] + cuts[best + 1]) / 2 if best + 1 < len(cuts) else cuts[best]
    return float(threshold), float(tpr[best] - fpr[best]), float(tpr[best]), float(fpr[best])


def copy_scores(ctx: Context, ids: np.ndarray, vectors: np.ndarray, rows: np.ndarray,
                rng: np.random.Generator) -> tuple[list[float], list[float], int]:
    """(cosines of each row's three ``variants`` to its stored vector, their ``pixels.similarity`` to
    the original's thumbnail, files that could not be read)."""
    paths = paths_of(ctx, ids[rows].tolist())
    cosines: list[float] = []
    similar: list[float] = []
    unreadable = 0
    for row in rows.tolist():
        try:
            pixels = read_file(Path(paths[int(ids[row])]), ReadOptions())[0].pixels
        except (UnreadableFile, OSError):
            unreadable += 1
            continue
        copies = variants(pixels, rng)
        batch = np.stack([ctx.encoder.preprocessor(copy) for copy in copies])
        cosines += (ctx.encoder.embed_images(batch) @ vectors[row]).astype(float).tolist()
        original = grey_png(render_png(pixels))  # what indexing stored as the image's thumbnail
        similar += [similarity(original, grey_png(render_png(copy))) for copy in copies]
    return cosines, similar, unreadable


def close_negatives(ctx: Context, ids: np.ndarray, groups: np.ndarray, splits: np.ndarray, vectors: np.ndarray,
                    k: int, rng: np.random.Generator) -> dict[tuple[int, int], float]:
    """{(row a, row b): cosine} (a < b) of the hard negatives: for each of up to NEGATIVE_ROWS
    images, its nearest neighbour (among its ``k`` nearest) of another patient in the same split. These
    are the pairs a threshold must reject (the closest distinct images), and the cross-split pairs the
    audit judges stay out of its own calibration."""
    rows = np.sort(rng.choice(len(ids), min(NEGATIVE_ROWS, len(ids)), replace=False))
    pairs: dict[tuple[int, int], float] = {}
    done: set[int] = set()
    for a, b, score in neighbour_pairs(ctx, ids, vectors, rows, k):
        if a not in done and groups[a] != groups[b] and splits[a] == splits[b]:
            done.add(a)
            pairs[(min(a, b), max(a, b))] = score
    return pairs
