"""The audit's two thresholds, calibrated on the store itself: synthetic copies of its own images are
the positives (``copies.copy_scores``), each image's nearest neighbour of another patient in its split
the negatives (``copies.close_negatives``).

1. A cosine shortlist: the cosine that keeps COPY_RECALL of the copies (their 1st percentile). A pair
   of images below it is not looked at.
2. A pixel check (``medsearch.learn.pixels``) of the pairs over the shortlist, at the similarity that
   maximises Youden's J (tpr - fpr) between copies and negatives over the shortlist: where the model's
   vectors put distinct patients' images as close as a copy, their pixels still differ.

The rates reported are those of both steps together on all positives and negatives.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from medsearch.errors import InvalidQuery
from medsearch.learn.copies import close_negatives, copy_scores, youden_threshold
from medsearch.learn.pixels import grey_png, similarity
from medsearch.storage.learn import thumbnails_of

if TYPE_CHECKING:
    from medsearch.context import Context

COPY_RECALL = 0.99
"""Share of the synthetic copies the cosine shortlist keeps."""
PAIR_CHUNK = 2000
"""Pairs whose thumbnails are held in memory at once by the pixel check."""


@dataclass
class Calibration:
    """The thresholds and what they were chosen from: copy cosines and pixel similarities (positives),
    those of each image's nearest neighbour of another patient (negatives), and the true/false positive
    rates and Youden's J of the shortlist and pixel check together."""

    threshold: float
    pixel_threshold: float
    youden_j: float
    true_positive_rate: float
    false_positive_rate: float
    copies: list[float] = field(default_factory=list)
    different_patients: list[float] = field(default_factory=list)
    copy_pixels: list[float] = field(default_factory=list)
    different_patient_pixels: list[float] = field(default_factory=list)
    unreadable: int = 0


def calibrate(ctx: Context, ids: np.ndarray, groups: np.ndarray, splits: np.ndarray, vectors: np.ndarray,
              seed: int = 0, samples: int = 64, k: int = 10) -> Calibration:
    """Calibrate on ``samples`` images drawn from ``ids`` (files re-read, copied, embedded) and on the
    hard negatives. ``groups`` (patients), ``splits``: (len(ids),) keys; ``vectors``: (len(ids), dim)
    stored vectors in ``ids`` order. Raises InvalidQuery when copies or negatives are missing."""
    rng = np.random.default_rng(seed)
    drawn = rng.choice(len(ids), min(samples, len(ids)), replace=False)
    cosines, similar, unreadable = copy_scores(ctx, ids, vectors, drawn, rng)
    negatives = close_negatives(ctx, ids, groups, splits, vectors, k, rng)
    if not cosines or not negatives:
        raise InvalidQuery("calibration needs copies of readable images and neighbours of different patients "
                           "in one split; give --threshold")
    pixels = pair_pixels(ctx, ids, negatives)
    shortlist = float(np.quantile(cosines, 1.0 - COPY_RECALL, method="lower"))
    others = np.array(list(negatives.values()))
    others_pixels = np.array([pixels[pair] if pixels[pair] is not None else 1.0 for pair in negatives])
    pixel_cut = _pixel_threshold(np.asarray(similar)[np.asarray(cosines) >= shortlist],
                                 others_pixels[others >= shortlist])
    tpr = float(np.mean((np.asarray(cosines) >= shortlist) & (np.asarray(similar) >= pixel_cut)))
    fpr = float(np.mean((others >= shortlist) & (others_pixels >= pixel_cut)))
    return Calibration(shortlist, pixel_cut, tpr - fpr, tpr, fpr, cosines, others.astype(float).tolist(), similar,
                       others_pixels.astype(float).tolist(), unreadable)


def _pixel_threshold(copies: np.ndarray, others: np.ndarray) -> float:
    """Youden's cut between pixel similarities, or just under the lowest copy's when no negative is left."""
    if not len(others):
        return float(copies.min()) - 1e-6
    return youden_threshold(copies, others)[0]


def pair_pixels(ctx: Context, ids: np.ndarray,
                pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], float | None]:
    """{(row a, row b): ``pixels.similarity`` of their stored thumbnails}, None where one has none.
    Thumbnails are read PAIR_CHUNK pairs at a time, so memory stays bounded in a large audit."""
    pairs = list(pairs)
    out: dict[tuple[int, int], float | None] = {}
    for start in range(0, len(pairs), PAIR_CHUNK):
        chunk = pairs[start : start + PAIR_CHUNK]
        wanted = sorted({int(ids[row]) for pair in chunk for row in pair})
        pictures = {image_id: grey_png(png) for image_id, png in thumbnails_of(ctx.store, wanted).items()}
        for a, b in chunk:
            first, second = pictures.get(int(ids[a])), pictures.get(int(ids[b]))
            out[(a, b)] = similarity(first, second) if first is not None and second is not None else None
    return out
