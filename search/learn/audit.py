"""The leakage audit: near-duplicate images, the same patient and identical files across the splits of
a split field, over the whole store or a selection (a cohort).

Near-duplicates: each image's ``k`` nearest neighbours in the FAISS index (restricted to the audited
ids; never an all-pairs scan), kept when their splits differ, their cosine is at least the threshold
and their thumbnails pass the pixel check (``medsearch.learn.pixels``). Both thresholds are calibrated on
the store itself (``medsearch.learn.calibration``); a given cosine threshold is used alone. Same
patient: a group of ``patient`` (the keyed patient hash, or any column) seen in two splits. Exact
duplicates: equal content hashes in two splits.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from medsearch.errors import InvalidQuery
from medsearch.learn.calibration import Calibration, calibrate, pair_pixels
from medsearch.learn.neighbours import neighbour_pairs
from medsearch.learn.selection import all_ids, paths_of, select_ids, vectors_of
from medsearch.query.ranking import group_column, group_keys
from medsearch.storage.learn import content_hashes, load_split
from medsearch.storage.queries import group_values

if TYPE_CHECKING:
    from medsearch.context import Context

SCORE_LISTS = ("copies", "different_patients", "copy_pixels", "different_patient_pixels")
PAIR_COLUMNS = ("kind", "cosine", "pixels", "id_a", "split_a", "path_a", "id_b", "split_b", "path_b")


@dataclass
class Audit:
    """What the audit found. ``pairs``: dicts with PAIR_COLUMNS (``pixels``: the pixel check's similarity,
    None when not made); ``same_patient``: {patient, splits}; ``without_patient``: images without a patient
    value, not checked for the same patient (and not counted as patients)."""

    split_field: str
    images: int
    splits: dict[str, int]
    threshold: float
    calibration: Calibration | None
    pairs: list[dict[str, Any]] = field(default_factory=list)
    same_patient: list[dict[str, Any]] = field(default_factory=list)
    without_patient: int = 0

    def summary(self) -> dict[str, int]:
        kinds = [pair["kind"] for pair in self.pairs]
        return {"near_duplicates": kinds.count("near-duplicate"), "exact_duplicates": kinds.count("exact"),
                "same_patient": len(self.same_patient)}


def audit(ctx: Context, split_field: str, scope: tuple[str, ...] = (), patient: str = "patient", k: int = 10,
          threshold: float | None = None, seed: int = 0, samples: int = 64) -> Audit:
    """Audit the split field ``split_field`` over ``scope`` (a selection; all images by default). Raises
    InvalidQuery (unknown field, no image with a split), ModelMismatch (the model, or a split made on a
    store of another model), ModelUnavailable."""
    ctx.check_model()
    load_split(ctx.store, split_field)
    ids = select_ids(ctx, scope) if scope else all_ids(ctx)
    values = group_values(ctx.store, ids.tolist(), group_column(ctx.store, split_field))
    ids = np.array([i for i in ids.tolist() if i in values], dtype=np.int64)
    if len(ids) < 2:
        raise InvalidQuery(f"fewer than two of the audited images have a {split_field!r} value")
    splits = np.array([str(values[int(i)]) for i in ids], dtype=object)
    patients = group_keys(ctx.store, ids, patient)
    matrix = vectors_of(ctx, ids)
    calibration = None if threshold is not None else calibrate(ctx, ids, patients, splits, matrix, seed, samples, k)
    cut = threshold if threshold is not None else calibration.threshold  # type: ignore[union-attr]
    found = Audit(split_field, len(ids), {s: int((splits == s).sum()) for s in sorted(set(splits))}, cut, calibration)
    exact = _exact_pairs(ctx, ids, splits)
    near = _near_pairs(ctx, ids, splits, matrix, cut, k, calibration)
    found.pairs = _described(ctx, ids, splits, exact, "exact") + _described(
        ctx, ids, splits, {p: c for p, c in near.items() if p not in exact}, "near-duplicate")
    found.same_patient = _same_patient(patients, splits)
    found.without_patient = sum(1 for key in patients.tolist() if key.startswith("alone="))
    return found


def _near_pairs(ctx: Context, ids: np.ndarray, splits: np.ndarray, matrix: np.ndarray, cut: float, k: int,
                calibration: Calibration | None) -> dict[tuple[int, int], tuple[float, float | None]]:
    """{(row a, row b): (cosine, pixel similarity)} with a < b, neighbours of each other, splits differ,
    cosine >= cut and, with a calibration, a pixel similarity at least its pixel threshold (a pair
    without thumbnails stays, unchecked)."""
    pairs = neighbour_pairs(ctx, ids, matrix, np.arange(len(ids)), k)
    near = {(min(a, b), max(a, b)): score for a, b, score in pairs if score >= cut and splits[a] != splits[b]}
    if calibration is None:
        return {pair: (score, None) for pair, score in near.items()}
    pixels = pair_pixels(ctx, ids, near)
    return {pair: (score, pixels[pair]) for pair, score in near.items()
            if pixels[pair] is None or pixels[pair] >= calibration.pixel_threshold}  # type: ignore[operator]


def _exact_pairs(ctx: Context, ids: np.ndarray, splits: np.ndarray) -> dict[tuple[int, int], tuple[float, float]]:
    """Pairs of rows with one content hash and different splits (the first row of each split per hash)."""
    hashes = content_hashes(ctx.store, ids.tolist())
    rows: dict[str, dict[str, int]] = {}
    for n, image_id in enumerate(ids.tolist()):
        rows.setdefault(hashes[image_id], {}).setdefault(str(splits[n]), n)
    out = {}
    for per_split in rows.values():
        firsts = sorted(per_split.values())
        out.update({(a, b): (1.0, 1.0) for n, a in enumerate(firsts) for b in firsts[n + 1:]})
    return out


def _described(ctx: Context, ids: np.ndarray, splits: np.ndarray,
               pairs: Mapping[tuple[int, int], tuple[float, float | None]], kind: str) -> list[dict[str, Any]]:
    paths = paths_of(ctx, [int(ids[n]) for pair in pairs for n in pair])
    rows = [{"kind": kind, "cosine": round(cosine, 6), "pixels": None if pixels is None else round(pixels, 4),
             "id_a": int(ids[a]), "split_a": str(splits[a]),
             "path_a": paths[int(ids[a])], "id_b": int(ids[b]), "split_b": str(splits[b]),
             "path_b": paths[int(ids[b])]} for (a, b), (cosine, pixels) in pairs.items()]
    return sorted(rows, key=lambda row: (-row["cosine"], row["id_a"], row["id_b"]))


def _same_patient(patients: np.ndarray, splits: np.ndarray) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, int]] = {}
    for key, split_name in zip(patients.tolist(), splits.tolist(), strict=True):
        if not key.startswith("alone="):
            counts = seen.setdefault(key.partition("=")[2], {})
            counts[split_name] = counts.get(split_name, 0) + 1
    return [{"patient": key, "splits": counts} for key, counts in sorted(seen.items()) if len(counts) > 1]


def as_dict(found: Audit) -> dict[str, Any]:
    """The audit as JSON-ready data (the calibration's score lists left out, their summary kept)."""
    data = asdict(found)
    if found.calibration is not None:
        data["calibration"] = {key: value for key, value in data["calibration"].items() if key not in SCORE_LISTS}
        data["calibration"].update(copies=len(found.calibration.copies),
                                   different_patient_pairs=len(found.calibration.different_patients))
    return {**data, "summary": found.summary()}


def histogram(values: list[float], bins: np.ndarray) -> list[int]:
    """Counts of ``values`` in ``bins`` (edges)."""
    return np.histogram(np.asarray(values, dtype=np.float64), bins=bins)[0].astype(int).tolist()


def write_pairs_csv(found: Audit, path: Path) -> None:
    """Every pair (near-duplicate and exact) as CSV rows with PAIR_COLUMNS, for review."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=PAIR_COLUMNS)
        writer.writeheader()
        writer.writerows(found.pairs)


def plot_scores(found: Audit, path: Path) -> None:
    """Histograms of the calibration's cosines and pixel similarities (copies, nearest neighbours of
    other patients), each with its threshold, to a PNG. Raises InvalidQuery when the threshold was given
    (nothing calibrated)."""
    calibration = found.calibration
    if calibration is None:
        raise InvalidQuery("--plot shows the calibration; leave out --threshold to calibrate")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panels = plt.subplots(1, 2, figsize=(11, 4))
    for axes, (label, copies, others, cut) in zip(panels, (
            ("cosine (shortlist)", calibration.copies, calibration.different_patients, calibration.threshold),
            ("pixel similarity (check)", calibration.copy_pixels, calibration.different_patient_pixels,
             calibration.pixel_threshold)), strict=True):
        bins = np.linspace(min(copies + others), 1.0, 50).tolist()
        axes.hist(others, bins=bins, alpha=0.6, density=True, label="nearest neighbours, other patients")
        axes.hist(copies, bins=bins, alpha=0.6, density=True, label="synthetic copies")
        axes.axvline(cut, color="black", linestyle="--", label=f"threshold {cut:.4f}")
        axes.set(xlabel=label, ylabel="density")
        axes.legend(loc="upper left", fontsize="small")
    figure.suptitle(f"near-duplicate calibration ({found.split_field}): Youden's J {calibration.youden_j:.3f}")
    figure.savefig(path, dpi=120)
    plt.close(figure)
