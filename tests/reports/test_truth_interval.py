"""The AUC interval by patient: the same interval as the probes' bootstrap (same seed, same draws), in
O(images) per round."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from medsearch.errors import InvalidQuery
from medsearch.labels.report_truth import grouped_auc_interval
from medsearch.learn import crossval


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 6), st.integers(0, 9)), min_size=4, max_size=50),
       st.integers(0, 1000))
def test_equals_the_probes_bootstrap(items: list[tuple[bool, int, int]], seed: int) -> None:
    truth = np.array([int(t) for t, _s, _g in items])
    scores = np.array([s / 6 for _t, s, _g in items])  # ties, within and across patients
    groups = np.array([f"p{g}" for _t, _s, g in items], dtype=object)
    if truth.sum() in (0, len(truth)):
        return
    try:
        expected = crossval.grouped_auc_interval(truth, scores, groups, rounds=200, seed=seed)
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
