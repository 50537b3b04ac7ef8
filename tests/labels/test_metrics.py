"""Metrics against scikit-learn on hypothesis-generated labels and scores (ties included), and against
small cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from medsearch.labels.metrics import (
    average_precision,
    mean_average_precision,
    precision_at_k,
    recall_at_k,
    recall_at_k_ids,
    roc_auc,
    roc_curve,
)
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.metrics import roc_curve as sklearn_roc_curve

FAST = settings(max_examples=200, deadline=None)


@st.composite
def labelled_scores(draw: st.DrawFn, distinct: bool = False) -> tuple[list[int], list[float]]:
    """0/1 labels with both classes, and scores: few levels (many ties), or floats of any size."""
    labels = draw(
        st.lists(st.integers(0, 1), min_size=2, max_size=60).filter(lambda xs: 0 < sum(xs) < len(xs))
    )
    levels = st.integers(-3, 3).map(float) | st.floats(-1e6, 1e6, allow_nan=False) | st.floats(0, 1)
    scores = st.lists(levels, min_size=len(labels), max_size=len(labels), unique=distinct)
    return labels, draw(scores)


@FAST
@given(labelled_scores())
def test_roc_auc_equals_sklearn(data: tuple[list[int], list[float]]) -> None:
    labels, scores = data
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


@FAST
@given(labelled_scores())
def test_roc_curve_equals_sklearn_without_dropping(data: tuple[list[int], list[float]]) -> None:
    labels, scores = data
    fpr, tpr, thresholds = roc_curve(labels, scores)
    want_fpr, want_tpr, want_thresholds = sklearn_roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, want_fpr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(tpr, want_tpr, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(thresholds, want_thresholds)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(labels, scores), abs=1e-12)


@FAST
@given(labelled_scores(distinct=True))
def test_average_precision_of_the_whole_ranking_equals_sklearn(data: tuple[list[int], list[float]]) -> None:
    labels, scores = data
    ranked = np.asarray(labels)[np.argsort(scores)[::-1]].astype(bool)
    want = average_precision_score(labels, scores)
    assert average_precision(ranked) == pytest.approx(want, abs=1e-12)
    assert average_precision(ranked, n_relevant=sum(labels)) == pytest.approx(want, abs=1e-12)


@FAST
@given(st.lists(st.booleans(), min_size=1, max_size=40).filter(any), st.integers(0, 5), st.integers(1, 50))
def test_ranked_list_measures_agree_with_their_definitions(flags: list[bool], missed: int, k: int) -> None:
    total = sum(flags) + missed
    assert precision_at_k(flags, k) == sum(flags[:k]) / k
    assert recall_at_k(flags, total, k) == sum(flags[:k]) / total
    assert recall_at_k(flags, None, len(flags)) == 1.0
    ap = average_precision(flags, total)
    assert 0 < ap <= 1
    assert ap == pytest.approx(average_precision(flags) * sum(flags) / total)
    assert average_precision(sorted(flags, reverse=True), total) == pytest.approx(sum(flags) / total)


def test_small_cases_by_hand() -> None:
    # scores 0.1 0.4 0.35 0.8 for labels 0 0 1 1: of 4 (pos, neg) pairs, 3 are ordered right
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    # a tie between a positive and a negative counts one half: pairs (1, 0.5), (0.5 tie)
    assert roc_auc([0, 1, 1], [0.5, 0.5, 0.9]) == 0.75
    assert roc_auc([True, False], [1, 1]) == 0.5
    assert roc_auc([1, 0], [0, 1]) == 0.0
    fpr, tpr, thresholds = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1]
    assert tpr.tolist() == [0, 0.5, 0.5, 1, 1]
    assert thresholds.tolist() == [np.inf, 0.8, 0.4, 0.35, 0.1]
    # relevant at ranks 1 and 3, one more never retrieved: (1/1 + 2/3 + 0) / 3
    assert average_precision([True, False, True, False], n_relevant=3) == pytest.approx(5 / 9)
    assert precision_at_k([True, False, True], 2) == 0.5
    assert precision_at_k([True], 4) == 0.25
    assert recall_at_k([True, False, True], 4, 2) == 0.25
    assert mean_average_precision([([True, False], None), ([False, True], 2)]) == pytest.approx(
        (1 + 0.25) / 2
    )


def test_recall_of_approximate_ids_against_exact() -> None:
    assert recall_at_k_ids([5, 3, 9, 1], [3, 5, 7, 1], k=3) == pytest.approx(2 / 3)
    assert recall_at_k_ids([3, 5, 7], [3, 5, 7], k=10) == 1.0  # a store with 3 images
    batch_found = np.array([[1, 2, -1], [4, 5, 6]])
    batch_true = np.array([[1, 2, 3], [6, 5, 4]])
    assert recall_at_k_ids(batch_found, batch_true, k=3) == pytest.approx((2 / 3 + 1) / 2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: roc_auc([1, 1, 1], [0.1, 0.2, 0.3]), "one class"),
        (lambda: roc_auc([0, 0], [0.1, 0.2]), "one class"),
        (lambda: roc_auc([], []), "empty"),
        (lambda: roc_auc([0, 2], [0.1, 0.2]), "only 0/1"),
        (lambda: roc_auc([0, 1], [0.1, float("nan")]), "finite"),
        (lambda: roc_curve([0, 1], [0.1]), "one length"),
        (lambda: precision_at_k([True], 0), "k must be at least 1"),
        (lambda: recall_at_k([True, True], 1, 2), "less than the 2 relevant"),
        (lambda: average_precision([False, False]), "at least one relevant"),
        (lambda: average_precision([True, 3]), "booleans"),
        (lambda: mean_average_precision([]), "no queries"),
        (lambda: recall_at_k_ids([1], [-1], 1), "empty"),
        (lambda: recall_at_k_ids([[1], [2]], [[1]], 1), "one row per query"),
    ],
)
def test_undefined_input_raises(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
