"""Pure scoring functions. Ranking is by cosine (inner product of unit vectors); a pair's probability is
the model's own sigmoid calibration, which never depends on what else came back."""

from __future__ import annotations

import numpy as np


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
