"""Retrieval and classification metrics as pure functions of arrays (numpy only).

Two families:

- scores against binary truth (zero-shot labels): ``roc_auc``, ``roc_curve``;
- ranked lists (text-to-image search, cohorts): ``precision_at_k``, ``recall_at_k``,
  ``average_precision``, ``mean_average_precision``; and ``recall_at_k_ids`` for an approximate index
  against exact search.

Every function raises ``ValueError`` for input it cannot give a meaningful number for (wrong shapes,
labels other than 0/1, NaN scores, one class only, ``k < 1``), rather than returning NaN.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _binary_inputs(truth: ArrayLike, scores: ArrayLike) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Truth as bool and scores as float64, both 1-D and of one length, with both classes present."""
    labels, values = np.asarray(truth), np.asarray(scores, dtype=np.float64)
    if labels.ndim != 1 or values.shape != labels.shape:
        raise ValueError(
            f"truth and scores must be 1-D and of one length, got {labels.shape} and {values.shape}"
        )
    if labels.size == 0:
        raise ValueError("truth and scores are empty")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("truth must hold only 0/1 or False/True")
    if not np.isfinite(values).all():
        raise ValueError("scores must be finite numbers")
    positives = int(np.count_nonzero(labels))
    if positives in (0, labels.size):
        raise ValueError("truth holds one class only: the measure is undefined")
    return labels.astype(bool), values


def roc_auc(truth: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random negative, ties
    counting one half (the trapezoid over the curve, as ``sklearn.metrics.roc_auc_score``).

    ``truth``: shape (n,), 0/1 or bool; ``scores``: shape (n,), any real numbers, higher = more positive.
    Raises ``ValueError`` for mismatched shapes, labels other than 0/1, non-finite scores, or one class only.
    """
    labels, values = _binary_inputs(truth, scores)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Average rank (1-based) of each run of tied scores, given back to every member of the run.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], values.size]
    ranks = np.empty(values.size)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(
    truth: ArrayLike, scores: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """The ROC curve at every distinct score: ``(fpr, tpr, thresholds)``, each of shape (d + 1,) for d
    distinct scores, equal to ``sklearn.metrics.roc_curve(truth, scores, drop_intermediate=False)``.

    ``thresholds`` decrease; ``thresholds[0]`` is ``+inf`` (nothing predicted positive, fpr = tpr = 0),
    and at ``thresholds[i]`` an item is predicted positive when its score is ``>= thresholds[i]``.
    Collinear points are kept (no ``drop_intermediate``). Unlike sklearn, one class only raises
    ``ValueError`` instead of warning and returning NaN; so do mismatched shapes, labels other than 0/1
    and non-finite scores.
    """
    labels, values = _binary_inputs(truth, scores)
    order = np.argsort(values, kind="mergesort")[::-1]
    sorted_values, sorted_labels = values[order], labels[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(sorted_values)), values.size - 1]
    true_pos = np.cumsum(sorted_labels)[last_of_run]
    false_pos = last_of_run + 1 - true_pos
    fpr = np.r_[0.0, false_pos] / false_pos[-1]
    tpr = np.r_[0.0, true_pos] / true_pos[-1]
    return fpr.astype(np.float64), tpr.astype(np.float64), np.r_[np.inf, sorted_values[last_of_run]]


def _relevance(ranked_relevance: Sequence[bool] | ArrayLike) -> NDArray[np.bool_]:
    flags = np.asarray(ranked_relevance)
    if flags.ndim != 1 or (flags.size and not np.isin(flags, (0, 1)).all()):
        raise ValueError("ranked_relevance must be a 1-D sequence of booleans (or 0/1)")
    return flags.astype(bool)


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def precision_at_k(ranked_relevance: Sequence[bool] | ArrayLike, k: int) -> float:
    """Share of the first ``k`` results that are relevant. A list shorter than ``k`` counts its missing
    places as not relevant (the denominator stays ``k``). Raises ``ValueError`` if ``k < 1`` or the flags
    are not a 1-D boolean sequence."""
    _check_k(k)
    return float(np.count_nonzero(_relevance(ranked_relevance)[:k]) / k)


def _check_n_relevant(flags: NDArray[np.bool_], n_relevant: int | None) -> int:
    found = int(np.count_nonzero(flags))
    total = found if n_relevant is None else n_relevant
    if total < 1:
        raise ValueError("there must be at least one relevant item")
    if total < found:
        raise ValueError(f"n_relevant={total} is less than the {found} relevant items in the list")
    return total


def recall_at_k(ranked_relevance: Sequence[bool] | ArrayLike, n_relevant: int | None, k: int) -> float:
    """Share of all ``n_relevant`` relevant items found in the first ``k`` results (``None``: the list
    holds every relevant item). Raises ``ValueError`` if ``k < 1``, ``n_relevant < 1``, or ``n_relevant``
    is less than the relevant items in the list."""
    _check_k(k)
    flags = _relevance(ranked_relevance)
    return float(np.count_nonzero(flags[:k]) / _check_n_relevant(flags, n_relevant))


def average_precision(ranked_relevance: Sequence[bool] | ArrayLike, n_relevant: int | None = None) -> float:
    """Mean over all ``n_relevant`` relevant items of the precision at the rank where each is found; an
    item that was not retrieved adds 0 (``None``: the list holds every relevant item). With the whole
    collection ranked by distinct scores this equals ``sklearn.metrics.average_precision_score``.
    Raises ``ValueError`` if ``n_relevant < 1`` or is less than the relevant items in the list."""
    flags = _relevance(ranked_relevance)
    total = _check_n_relevant(flags, n_relevant)
    hits = np.cumsum(flags)
    ranks = np.arange(1, flags.size + 1)
    return float((hits[flags] / ranks[flags]).sum() / total)


def mean_average_precision(queries: Iterable[tuple[Sequence[bool] | ArrayLike, int | None]]) -> float:
    """Mean of ``average_precision`` over queries given as ``(ranked_relevance, n_relevant)`` pairs.
    Raises ``ValueError`` when there are no queries, or as ``average_precision`` does."""
    values = [average_precision(flags, n_relevant) for flags, n_relevant in queries]
    if not values:
        raise ValueError("no queries to average")
    return float(np.mean(values))


def recall_at_k_ids(found_ids: ArrayLike, true_ids: ArrayLike, k: int) -> float:
    """How much of the exact top ``k`` an approximate search found: ``|found[:k] & true[:k]| / k``.

    Takes one query (1-D id sequences) or a batch (2-D arrays, one row per query, as FAISS returns) and
    then gives the mean over rows. Ids of -1 (FAISS's padding for missing results) are ignored; when the
    exact list holds fewer than ``k`` ids, the denominator is that number. Raises ``ValueError`` if
    ``k < 1``, the shapes disagree, or an exact list is empty.
    """
    _check_k(k)
    found, truth = np.atleast_2d(np.asarray(found_ids)), np.atleast_2d(np.asarray(true_ids))
    if found.ndim != 2 or truth.ndim != 2 or found.shape[0] != truth.shape[0]:
        raise ValueError(
            f"found_ids and true_ids must have one row per query: {found.shape} vs {truth.shape}"
        )
    recalls = []
    for found_row, true_row in zip(found, truth, strict=True):
        expected = {int(i) for i in true_row[:k] if i != -1}
        if not expected:
            raise ValueError("an exact result list is empty")
        hits = expected & {int(i) for i in found_row[:k] if i != -1}
        recalls.append(len(hits) / len(expected))
    return float(np.mean(recalls))
