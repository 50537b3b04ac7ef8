"""Pure scoring functions. Ranking is by cosine (inner product of unit vectors); a pair's probability is
the model's own sigmoid calibration, which never depends on what else came back."""

from __future__ import annotations

import numpy as np
from medsearch.errors import InvalidQuery


def probability(cosine: np.ndarray | float, logit_scale: float, logit_bias: float) -> np.ndarray:
    """``sigmoid(exp(logit_scale) * cosine + logit_bias)``, elementwise, float64 in (0, 1).
    ``logit_scale`` is the model's log temperature, as SigLIP stores it."""
    logits = np.exp(logit_scale) * np.asarray(cosine, dtype=np.float64) + logit_bias
    return 1.0 / (1.0 + np.exp(-logits))


def cosine_for_probability(p: float, logit_scale: float, logit_bias: float) -> float:
    """The cosine at which ``probability`` equals ``p`` (0 < p < 1): the inverse of the sigmoid."""
    if not 0.0 < p < 1.0:
        raise ValueError("probability must be strictly between 0 and 1")
    return float((np.log(p / (1.0 - p)) - logit_bias) / np.exp(logit_scale))


def threshold(min_score: float | None, min_prob: float | None,
              calibration: tuple[float, float] | None) -> float | None:
    """The cosine a hit must reach: the higher of ``min_score`` and the cosine of ``min_prob`` under the
    model's (logit_scale, logit_bias) ``calibration`` (ignored without one); None when neither is given.
    Raises InvalidQuery for a ``min_prob`` outside (0, 1)."""
    bounds = [min_score] if min_score is not None else []
    if min_prob is not None and calibration is not None:
        if not 0.0 < min_prob < 1.0:
            raise InvalidQuery("--min-prob must be strictly between 0 and 1")
        bounds.append(cosine_for_probability(min_prob, *calibration))
    return max(bounds) if bounds else None
