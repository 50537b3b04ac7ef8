"""``evaluate``: how good are the prompts, measured against known labels.

The truth CSV has a ``path`` column (absolute, or relative to the CSV's folder) and a 0/1 column named
after each label. Per label: ROC AUC of the zero-shot probabilities against the truth column (the form
published MedSigLIP results take); retrieval: the label's prompt-ensemble vector ranks the labelled
images, giving precision@k, recall@k and average precision (mAP over labels); and image-to-image label
precision@k: among each positive image's k nearest labelled neighbours, the share with a positive label
in common.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from search.labels import metrics
from search.labels.labelsets import LabelSet
from search.labels.zeroshot import label_matrix, probabilities
from storage import queries
from storage.errors import InvalidQuery

if TYPE_CHECKING:
    from search.api import Medsearch


@dataclass
class Evaluation:
    images: int
    k: int
    labels: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    mean_average_precision: float | None = None
    image_label_precision_at_k: float | None = None
    missing: list[str] = field(default_factory=list)
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)


def read_truth(csv_path: Path, labels: LabelSet) -> tuple[list[str], dict[str, np.ndarray]]:
    """(resolved paths, {label: 0/1 array}) for the labels that have a truth column. Raises InvalidQuery."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise InvalidQuery(f"cannot read {csv_path}: {exc.strerror}") from exc
    if not rows or "path" not in rows[0]:
        raise InvalidQuery(f"{csv_path} needs a 'path' column and a 0/1 column per label")
    names = [name for name in labels.names if name in rows[0]]
    if not names:
        raise InvalidQuery(f"{csv_path} has no column named after a label ({', '.join(labels.names)})")
    paths = [str((csv_path.parent / row["path"]).resolve()) for row in rows]
    try:
        truth = {name: np.array([int(float(row[name])) for row in rows]) for name in names}
    except ValueError as exc:
        raise InvalidQuery(f"{csv_path}: truth columns must hold 0 or 1 ({exc})") from exc
    return paths, truth


def evaluate(ms: Medsearch, truth_csv: Path, labels: LabelSet, k: int = 10) -> Evaluation:
    """Zero-shot AUCs and retrieval figures of ``labels`` on the images ``truth_csv`` labels."""
    paths, truth = read_truth(truth_csv, labels)
    rows = queries.embeddings_by_path(ms.store, paths)
    keep = [n for n, path in enumerate(paths) if path in rows]
    report = Evaluation(images=len(keep), k=k, missing=[p for p in paths if p not in rows])
    if len(keep) < 2:
        raise InvalidQuery("fewer than two of the truth file's images are in the store; index them first")
    vectors = np.vstack([rows[paths[n]][1] for n in keep])
    truth = {name: column[keep] for name, column in truth.items()}
    chosen = LabelSet(tuple(label for label in labels.labels if label.name in truth))
    matrix = label_matrix(ms.text_vectors, chosen)
    probs = probabilities(vectors, matrix, ms.embedder.logit_scale, ms.embedder.logit_bias)
    aps = []
    for column, label in enumerate(chosen.labels):
        figures, ap = _label_figures(truth[label.name], probs[:, column], k)
        report.labels[label.name] = figures
        if ap is not None:
            aps.append(ap)
            fpr, tpr, _ = metrics.roc_curve(truth[label.name], probs[:, column])
            report.curves[label.name] = (fpr.tolist(), tpr.tolist())
    report.mean_average_precision = float(np.mean(aps)) if aps else None
    report.image_label_precision_at_k = _image_precision(vectors, np.column_stack(list(truth.values())), k)
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
    excluded) that have a positive label in common."""
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
