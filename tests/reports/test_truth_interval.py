"""The AUC interval by patient: in O(images) per round, the same interval (same seed, same draws) as
resampling the images themselves, a drawn patient's images concatenated once per draw."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from medsearch.errors import InvalidQuery
from medsearch.labels import metrics
from medsearch.labels.interval import grouped_auc_interval


def concatenated_interval(truth: np.ndarray, scores: np.ndarray, groups: np.ndarray, rounds: int = 1000,
                          seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """The bootstrap by group written directly (the probes' form before it was shared): each round
    concatenates the images of the drawn groups and takes their ROC AUC. The reference for the weighted
    form, and ``benchmarks/bench_report_truth.py``'s baseline."""
    rng = np.random.default_rng(seed)
    names, index = np.unique(groups.astype(str), return_inverse=True)
    members = [np.flatnonzero(index == g) for g in range(len(names))]
    aucs = []
    for _round in range(rounds):
        rows = np.concatenate([members[g] for g in rng.integers(0, len(names), len(names))])
        if 0 < truth[rows].sum() < len(rows):
            aucs.append(metrics.roc_auc(truth[rows], scores[rows]))
    if not aucs:
        raise InvalidQuery("too few groups to bootstrap an interval")
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(aucs, [tail, 100 - tail])
    return float(low), float(high)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 6), st.integers(0, 9)), min_size=4, max_size=50),
       st.integers(0, 1000))
def test_equals_the_bootstrap_written_directly(items: list[tuple[bool, int, int]], seed: int) -> None:
    truth = np.array([int(t) for t, _s, _g in items])
    scores = np.array([s / 6 for _t, s, _g in items])  # ties, within and across patients
    groups = np.array([f"p{g}" for _t, _s, g in items], dtype=object)
    if truth.sum() in (0, len(truth)):
        return
    try:
        expected = concatenated_interval(truth, scores, groups, rounds=200, seed=seed)
    except InvalidQuery:
        with pytest.raises(InvalidQuery):
            grouped_auc_interval(truth, scores, groups, rounds=200, seed=seed)
        return
    assert grouped_auc_interval(truth, scores, groups, rounds=200, seed=seed) == pytest.approx(expected, abs=1e-9)


def test_patients_widen_the_interval() -> None:
    """Ten images per patient are not ten times the evidence: resampling patients gives a wider interval
    than treating every image as its own patient."""
    rng = np.random.default_rng(4)
    patient_truth = rng.random(40) < 0.3
    patient_score = rng.normal(0, 1, 40) + patient_truth
    truth = np.repeat(patient_truth, 10).astype(int)
    scores = np.repeat(patient_score, 10) + rng.normal(0, 0.05, 400)
    by_patient = grouped_auc_interval(truth, scores, np.repeat(np.arange(40), 10).astype(str))
    by_image = grouped_auc_interval(truth, scores, np.arange(400).astype(str))
    assert by_patient[1] - by_patient[0] > 2 * (by_image[1] - by_image[0])
