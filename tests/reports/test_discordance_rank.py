"""The discordance measure: the score calibrated on the report labels (Platt scaling), against the report."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from medsearch.cohorts.discordance import calibrated, definition, disagreement
from medsearch.errors import InvalidQuery
from medsearch.labels.labelsets import Label, LabelSet


def _sklearn_platt(truth: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The same fit by scikit-learn: each item twice, as positive with weight t and negative with 1 - t."""
    from sklearn.linear_model import LogisticRegression

    logits = np.log(scores / (1 - scores))
    positives = truth.sum()
    target = np.where(truth == 1, (positives + 1) / (positives + 2), 1 / (len(truth) - positives + 2))
    x = np.r_[logits, logits][:, None]
    model = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000)
    model.fit(x, np.r_[np.ones(len(truth)), np.zeros(len(truth))], sample_weight=np.r_[target, 1 - target])
    return model.predict_proba(logits[:, None])[:, 1]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(0.01, 0.99)), min_size=4, max_size=60))
def test_calibration_is_platt_scaling(items: list[tuple[bool, float]]) -> None:
    truth = np.array([int(t) for t, _s in items])
    scores = np.array([s for _t, s in items])
    if truth.sum() in (0, len(truth)) or np.ptp(scores) < 1e-3:
        return
    q = calibrated(truth, scores)
    expected = _sklearn_platt(truth, scores)
    slope_positive = np.corrcoef(np.log(scores / (1 - scores)), expected)[0, 1] > 0
    if slope_positive:
        np.testing.assert_allclose(q, expected, atol=1e-5)
    else:  # a score that means less likely positive is not trusted: the prevalence alone
        assert np.ptp(q) < 1e-12
    strength = disagreement(truth, scores)
    order = np.argsort(scores, kind="stable")
    negatives, positives = order[truth[order] == 0], order[truth[order] == 1]
    assert (np.diff(strength[negatives]) >= -1e-12).all() and (np.diff(strength[positives]) <= 1e-12).all()


def test_wrong_reports_disagree_most() -> None:
    """Scores that separate the true classes, and four reports made wrong: those four, and only they,
    disagree by more than one half, even though the scores separate the true classes perfectly."""
    rng = np.random.default_rng(3)
    true = np.r_[np.ones(12), np.zeros(48)].astype(int)
    scores = np.where(true == 1, rng.uniform(0.9, 0.99, 60), rng.uniform(0.001, 0.05, 60))
    reported = true.copy()
    wrong = [0, 20, 33, 47]
    reported[wrong] = 1 - reported[wrong]
    strength = disagreement(reported, scores)
    assert set(np.flatnonzero(strength >= 0.5).tolist()) == set(wrong)
    assert np.isfinite(calibrated(true, scores)).all()  # perfect separation still gives a finite fit


def test_definition_refuses_what_it_cannot_run() -> None:
    labels = LabelSet((Label("red_circle", ("a red circle",)),), "shapes")
    made = definition(labels, "red_circle", "model-positive", 5, 0.6, "study")
    assert made["discordant"] == {"finding": "red_circle", "direction": "model-positive", "label_set": "shapes",
                                  "prompts": ["a red circle"], "k": 5, "min_disagreement": 0.6}
    assert made["unit"] == "study"
    for args, message in (((labels, "blue"), "is not a label"), ((labels, "red_circle", "sideways"), "--direction"),
                          ((labels, "red_circle", "both", 0), "--k"),
                          ((labels, "red_circle", "both", None, 1.5), "between 0 and 1"),
                          ((labels, "red_circle", "both", None, 0.5, "series"), "images or studies")):
        with pytest.raises(InvalidQuery, match=message):
            definition(*args)
