"""A bootstrap interval of the ROC AUC by group (patient), for the probes (``medsearch.learn``) and the AUC
table against report labels (``medsearch.labels.report_truth``)."""

from __future__ import annotations

import numpy as np
from medsearch.errors import InvalidQuery


def grouped_auc_interval(truth: np.ndarray, scores: np.ndarray, groups: np.ndarray, rounds: int = 1000,
                         seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """The percentile bootstrap interval of the ROC AUC that resamples whole groups with replacement (a
    patient's images stay together; rounds that draw one class only are skipped), in O(images) per round: a
    group drawn m times weighs m, and the AUC of the weighted images is the weighted Mann-Whitney sum over
    distinct scores (ties one half), the AUC of the images concatenated m times. Raises InvalidQuery when no
    round draws both classes."""
    rng = np.random.default_rng(seed)
    names, index = np.unique(groups.astype(str), return_inverse=True)
    distinct, position = np.unique(scores, return_inverse=True)
    positive = (truth == 1).astype(float)
    aucs = []
    for _round in range(rounds):
        weights = np.bincount(rng.integers(0, len(names), len(names)), minlength=len(names))[index].astype(float)
        pos = np.bincount(position, weights * positive, minlength=len(distinct))
        neg = np.bincount(position, weights * (1.0 - positive), minlength=len(distinct))
        if pos.sum() and neg.sum():
            below = np.cumsum(neg) - neg
            aucs.append(float((pos * (below + 0.5 * neg)).sum() / (pos.sum() * neg.sum())))
    if not aucs:
        raise InvalidQuery("too few groups to bootstrap an interval")
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(aucs, [tail, 100 - tail])
    return float(low), float(high)
