"""Logistic-regression probes on unit vectors, cross-validated by group (patient); their AUC interval by
group is ``medsearch.labels.interval``'s. Pure functions of arrays (numpy, scikit-learn)."""

from __future__ import annotations

import numpy as np
from medsearch.errors import InvalidQuery

REGULARISATION = 10.0
"""scikit-learn's ``C`` (inverse L2 strength): unit vectors have small components, so 1.0 underfits."""


def _logistic() -> object:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=REGULARISATION, class_weight="balanced", max_iter=2000)


def fit_probe(vectors: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float]:
    """(n, dim) float32 vectors and (n,) 0/1 labels -> (weights (dim,) float32, bias): the probability of
    a vector v is ``sigmoid(v . weights + bias)``."""
    model = _logistic()
    model.fit(vectors, labels)  # type: ignore[attr-defined]
    return model.coef_[0].astype(np.float32), float(model.intercept_[0])  # type: ignore[attr-defined]


def probe_probabilities(vectors: np.ndarray, weights: np.ndarray, bias: float) -> np.ndarray:
    """(n, dim) x (dim,) -> (n,) float64 probabilities ``sigmoid(v . weights + bias)``."""
    return 1.0 / (1.0 + np.exp(-(vectors.astype(np.float64) @ weights.astype(np.float64) + bias)))


def grouped_folds(labels: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """(n,) fold number of each sample: stratified by label, every group in exactly one fold, seeded.
    The number of folds is lowered to the groups of the rarer class when there are fewer. Raises
    InvalidQuery when a class has fewer than two groups."""
    from sklearn.model_selection import StratifiedGroupKFold

    per_class = [len(set(groups[labels == value])) for value in (0, 1)]
    count = min(folds, *per_class)
    if count < 2:
        raise InvalidQuery(f"cross-validation by group needs two groups per class; positives come from "
                           f"{per_class[1]} and negatives from {per_class[0]}")
    splitter = StratifiedGroupKFold(n_splits=count, shuffle=True, random_state=seed)
    out = np.empty(len(labels), dtype=np.int64)
    for number, (_train, test) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
        out[test] = number
    return out


def out_of_fold(vectors: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """(n,) probabilities, each from the probe trained on the other folds. Raises InvalidQuery when a
    training fold holds one class only."""
    scores = np.empty(len(labels), dtype=np.float64)
    for number in np.unique(folds):
        held = folds == number
        if len(set(labels[~held].tolist())) < 2:
            raise InvalidQuery("a cross-validation fold has one class only; label more groups")
        weights, bias = fit_probe(vectors[~held], labels[~held])
        scores[held] = probe_probabilities(vectors[held], weights, bias)
    return scores
