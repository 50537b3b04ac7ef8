"""``evaluate``: how good are the prompts, measured against known labels.

The truth is a CSV joined to the images as ``import-metadata`` joins a sidecar (a path, file name or SOP
instance UID key column, ``--key``, ``--root``) with a 0/1 column named after each label, or fields
imported before (``--truth-fields``). A blank cell, NA and -1 (CheXpert's "uncertain") are unknowns: that
image is left out of that label's figures only, and the unknowns are counted per label. Per label: ROC
AUC of the zero-shot probabilities against the truth column (the form published MedSigLIP results take);
retrieval: the label's prompt-ensemble vector ranks the labelled images, giving precision@k, recall@k and
average precision (mAP over labels); and image-to-image label precision@k: among each positive image's k
nearest labelled neighbours, the share with a positive label in common.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from medsearch.errors import InvalidQuery
from medsearch.labels import metrics
from medsearch.labels.labelsets import LabelSet
from medsearch.labels.zeroshot import label_matrix, probabilities
from medsearch.storage import queries

if TYPE_CHECKING:
    from medsearch.context import Context


@dataclass
class Evaluation:
    images: int
    k: int
    labels: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    mean_average_precision: float | None = None
    image_label_precision_at_k: float | None = None
    missing: list[str] = field(default_factory=list)
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Truth:
    """Where the known labels come from: a CSV joined to the images as ``import-metadata`` joins one
    (``key`` column, default the first of path, file, filename, file_name, sop_instance_uid present;
    ``root``), or already-imported ``fields`` (``FIELD`` or ``FIELD=LABEL``; 0/1 or true/false values)."""

    csv_path: Path | None = None
    key: str | None = None
    root: Path | None = None
    fields: tuple[str, ...] = ()


UNKNOWN = -1
"""A truth value that is neither 0 nor 1: blank, NA, -1."""
UNKNOWN_TEXTS = {"", "na", "n/a", "nan", "none", "null", "-1", "-1.0", "uncertain", "unknown"}


def read_truth(ctx: Context, truth: Truth, labels: LabelSet) -> tuple[list[int], dict[str, np.ndarray], list[str]]:
    """(image ids, {label: 0/1/UNKNOWN array over those ids}, keys that named no image) for the labels that
    have truth. Raises InvalidQuery."""
    if (truth.csv_path is None) == (not truth.fields):
        raise InvalidQuery("give the truth as --truth CSV or as --truth-fields FIELD[=LABEL],...")
    if truth.fields:
        return _truth_of_fields(ctx, truth.fields, labels)
    return _truth_of_csv(ctx, truth, labels)


def _truth_of_csv(ctx: Context, truth: Truth, labels: LabelSet) -> tuple[list[int], dict[str, np.ndarray], list[str]]:
    from medsearch.indexer.sidecar import JOIN_COLUMNS
    from medsearch.indexer.sidecar_join import join_keys

    csv_path = Path(truth.csv_path or "")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidQuery(f"cannot read {csv_path}: {exc}") from exc
    header = list(rows[0]) if rows else []
    key = truth.key or next((name for name in JOIN_COLUMNS if name in header), None) or _found_key(ctx, rows,
                                                                                                   csv_path, truth)
    if key is None or key not in header:
        raise InvalidQuery(f"{csv_path} needs a key column ({', '.join(JOIN_COLUMNS)}, or name it with --key) "
                           f"and a 0/1 column per label; its columns: {', '.join(header) or 'none'}")
    names = [name for name in labels.names if name in header]
    if not names:
        raise InvalidQuery(f"{csv_path} has no column named after a label ({', '.join(labels.names)})")
    found = join_keys(ctx.store, key, [row[key] for row in rows], csv_path.parent, truth.root)
    ids, values, missing = [], {name: [] for name in names}, []  # type: ignore[var-annotated]
    for row, match in zip(rows, found, strict=True):
        if not match.ids:
            missing.append(row[key])
        for image_id in match.ids:
            ids.append(image_id)
            for name in names:
                values[name].append(_zero_one(row[name], f"{csv_path}: column {name!r}"))
    return ids, {name: np.array(column, dtype=int) for name, column in values.items()}, missing


def _found_key(ctx: Context, rows: list[dict[str, str]], csv_path: Path, truth: Truth) -> str | None:
    """The column whose values name indexed images by path or file name, or None."""
    from medsearch.indexer.sidecar_join import Joiner, guess_key
    from medsearch.storage.file_records import image_keys

    found = guess_key(Joiner(image_keys(ctx.store), "", csv_path.parent, truth.root), rows, list(rows[0]) if rows
                      else [])
    return found.column if found is not None and not found.uids else None


def _truth_of_fields(ctx: Context, given: tuple[str, ...], labels: LabelSet) -> tuple[list[int], dict[str, np.ndarray],
                                                                                       list[str]]:
    pairs = {field_name.strip(): (label.strip() or field_name.strip())
             for field_name, _eq, label in (item.partition("=") for item in given)}
    unknown = sorted(set(pairs) - queries.field_names(ctx.store))
    if unknown:
        raise InvalidQuery(f"no imported field {', '.join(map(repr, unknown))} (import the truth with "
                           "`medsearch import-metadata`, or classify --save-as)")
    strange = sorted(set(pairs.values()) - set(labels.names))
    if strange:
        raise InvalidQuery(f"{', '.join(map(repr, strange))} is not a label ({', '.join(labels.names)}); "
                           "map a field to a label with FIELD=LABEL")
    values = queries.fields_by_id(ctx.store, [int(i) for i in queries.all_ids(ctx.store)], list(pairs))
    ids = sorted(i for i, found in values.items() if set(pairs) <= set(found))
    truth = {label: np.array([_zero_one(values[i][name], f"field {name!r}") for i in ids], dtype=int)
             for name, label in pairs.items()}
    return ids, truth, []


def _zero_one(value: Any, where: str) -> int:
    """1, 0 or UNKNOWN (blank, NA, -1). Raises InvalidQuery for anything else."""
    text = str(value).strip().lower()
    if text in ("1", "1.0", "true", "yes"):
        return 1
    if text in ("0", "0.0", "false", "no"):
        return 0
    if text in UNKNOWN_TEXTS:
        return UNKNOWN
    raise InvalidQuery(f"{where} must hold 0 or 1 (or true/false; blank, NA or -1 for unknown), not {value!r}")


def evaluate(ctx: Context, truth_source: Truth, labels: LabelSet, k: int = 10) -> Evaluation:
    """Zero-shot AUCs and retrieval figures of ``labels`` on the images the truth labels."""
    ids, truth, missing = read_truth(ctx, truth_source, labels)
    rows = queries.embeddings(ctx.store, ids)
    keep = [n for n, image_id in enumerate(ids) if image_id in rows]
    report = Evaluation(images=len(keep), k=k, missing=missing)
    if len(keep) < 2:
        raise InvalidQuery("fewer than two of the truth's images are in the store; index them first")
    vectors = np.vstack([rows[ids[n]][1] for n in keep])
    truth = {name: column[keep] for name, column in truth.items()}
    chosen = LabelSet(tuple(label for label in labels.labels if label.name in truth))
    matrix = label_matrix(ctx, chosen)
    probs = probabilities(vectors, matrix, ctx.encoder.logit_scale, ctx.encoder.logit_bias)
    aps = []
    for column, label in enumerate(chosen.labels):
        known = truth[label.name] != UNKNOWN
        labelled, scores = truth[label.name][known], probs[known, column]
        figures, ap = _label_figures(labelled, scores, k)
        report.labels[label.name] = {**figures, "unknown": int((~known).sum())}
        if ap is not None:
            aps.append(ap)
            fpr, tpr, _ = metrics.roc_curve(labelled, scores)
            report.curves[label.name] = (fpr.tolist(), tpr.tolist())
    report.mean_average_precision = float(np.mean(aps)) if aps else None
    positive = np.column_stack([truth[label.name] == 1 for label in chosen.labels])
    report.image_label_precision_at_k = _image_precision(vectors, positive, k)
    return report


def _label_figures(truth: np.ndarray, scores: np.ndarray, k: int) -> tuple[dict[str, Any], float | None]:
    positives = int(truth.sum())
    ranked = truth[np.argsort(-scores, kind="stable")].astype(bool)
    figures: dict[str, Any] = {"positives": positives, "negatives": int(len(truth) - positives)}
    if positives == 0 or positives == len(truth):
        figures.update(auc=None, precision_at_k=None, recall_at_k=None, average_precision=None)
        return figures, None
    ap = metrics.average_precision(ranked, positives)
    figures.update(auc=metrics.roc_auc(truth, scores), precision_at_k=metrics.precision_at_k(ranked, k),
                   recall_at_k=metrics.recall_at_k(ranked, positives, k), average_precision=ap)
    return figures, ap


def _image_precision(vectors: np.ndarray, truth: np.ndarray, k: int) -> float | None:
    """Mean over images with a positive label of the share of their k nearest neighbours (itself
    excluded) that have a positive label in common (``truth``: (images, labels) bool; unknown is not
    positive)."""
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    shares = []
    for row in np.flatnonzero(truth.any(axis=1)):
        neighbours = np.argsort(-similarity[row], kind="stable")[: min(k, len(vectors) - 1)]
        shares.append(float(((truth[neighbours] & truth[row]).any(axis=1)).mean()))
    return float(np.mean(shares)) if shares else None


def plot_roc(report: Evaluation, path: Path) -> None:
    """Draw each label's ROC curve, with its AUC, to a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 6))
    for name, (fpr, tpr) in report.curves.items():
        axes.plot(fpr, tpr, label=f"{name} (AUC {report.labels[name]['auc']:.3f})")
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="Zero-shot ROC")
    axes.legend(loc="lower right")
    figure.savefig(path, dpi=120)
    plt.close(figure)
