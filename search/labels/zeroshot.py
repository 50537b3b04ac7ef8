"""Zero-shot labels: each label's prompts are embedded, averaged (a prompt ensemble) and re-normalised;
an image's probability for a label is the model's own pairwise sigmoid of their cosine, independently
per label (multi-label). ``exclusive`` takes a softmax over the labels' logits instead, for labels the user
says exclude each other. The findings summary states what the model scored, nothing more: it is not a
diagnosis."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from medsearch.errors import InvalidQuery
from medsearch.labels.labelsets import LabelSet
from medsearch.language.meaning import parse_query
from medsearch.language.negation import ParsedQuery

if TYPE_CHECKING:
    from medsearch.context import Context

DEFAULT_THRESHOLD = 0.5
NOTE = "Model scores for the given prompts, not a diagnosis; a person must review them."


@dataclass
class Classification:
    """One image's per-label probabilities and its findings summary."""

    id: int | None
    path: str
    probabilities: dict[str, float]
    present: list[str] = field(default_factory=list)
    uncertain: list[str] = field(default_factory=list)
    needs_review: bool = False
    review_reason: str | None = None


def label_matrix(ctx: Context, labels: LabelSet) -> np.ndarray:
    """(labels, dim) float32: each label's mean prompt vector, re-normalised. Raises InvalidQuery for a prompt
    that negates a finding (``check_prompts``)."""
    check_prompts(labels, lambda prompt: parse_query(prompt, ctx.translator, ctx.tokenizer()))
    text_vectors = ctx.text_vectors
    rows = []
    for label in labels.labels:
        mean = text_vectors(list(label.prompts)).mean(axis=0)
        rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
    return np.vstack(rows).astype(np.float32)


def check_prompts(labels: LabelSet, meaning: Callable[[str], ParsedQuery]) -> None:
    """Every prompt is read by the query parser (``medsearch.language.meaning``). A prompt that negates a
    finding is refused rather than composed: a label's probability is the model's for plain texts, and the
    model reads "no pneumothorax" as pneumothorax. Raises InvalidQuery naming the label, the prompt and the
    finding, or as ``parse_query`` does (a prompt with no content word)."""
    for label in labels.labels:
        for prompt in label.prompts:
            negated = meaning(prompt).negated
            if negated:
                raise InvalidQuery(
                    f"label {label.name!r}: the prompt {prompt!r} negates {', '.join(map(repr, negated))}, which "
                    f"the model would read as present; describe what is seen instead (e.g. \"normal chest "
                    f"x-ray\", \"clear lungs\"), or give {negated[0]!r} a label of its own")


def probabilities(images: np.ndarray, labels: np.ndarray, logit_scale: float, logit_bias: float,
                  exclusive: bool = False) -> np.ndarray:
    """(n, dim) x (L, dim) unit vectors -> (n, L) probabilities: sigmoid per label, or a softmax over the
    labels when ``exclusive``."""
    logits = np.exp(logit_scale) * (images.astype(np.float64) @ labels.T.astype(np.float64)) + logit_bias
    if exclusive:
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    return 1.0 / (1.0 + np.exp(-logits))


def summarize(labels: LabelSet, probs: np.ndarray, image_id: int | None, path: str) -> Classification:
    """Present: p >= the label's threshold (default 0.5). Confidently absent: p <= half of it. Anything
    between is uncertain. An image with no label present needs human review: some label is uncertain, or
    nothing was found at all (every label, a "normal" one included, scored below its threshold);
    ``review_reason`` says which."""
    result = Classification(image_id, path, {})
    for label, p in zip(labels.labels, probs, strict=True):
        threshold = label.threshold if label.threshold is not None else DEFAULT_THRESHOLD
        result.probabilities[label.name] = round(float(p), 6)
        if p >= threshold:
            result.present.append(label.name)
        elif p > threshold / 2:
            result.uncertain.append(label.name)
    result.needs_review = not result.present
    if result.uncertain and not result.present:
        result.review_reason = "uncertain: " + ", ".join(result.uncertain)
    elif not result.present:
        result.review_reason = "nothing found: every label scored below its threshold"
    return result


def check_save_name(name: str) -> None:
    """Raises InvalidQuery unless ``name`` (``--save-as``) is letters, digits, '_' and '-'."""
    if not name.replace("_", "").replace("-", "").isalnum():
        raise InvalidQuery(f"--save-as takes letters, digits, '_' and '-', not {name!r}")
