"""Zero-shot labels: each label's prompts are embedded, averaged (a prompt ensemble) and re-normalised;
an image's probability for a label is the model's own pairwise sigmoid of their cosine, independently
per label (multi-label). ``exclusive`` takes a softmax over the labels' logits instead, for labels the user
says exclude each other. The findings summary states what the model scored, nothing more: it is not a
diagnosis."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select

from search.labelsets import LabelSet
from storage.errors import InvalidQuery
from storage.models import Image, ImageField

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


def label_matrix(text_vectors: Any, labels: LabelSet) -> np.ndarray:
    """(labels, dim) float32: each label's mean prompt vector, re-normalised."""
    rows = []
    for label in labels.labels:
        mean = text_vectors(list(label.prompts)).mean(axis=0)
        rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
    return np.vstack(rows).astype(np.float32)


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


def stored_vectors(session: Any, ids: Sequence[int] | None, chunk: int = 4096) -> Iterator[tuple[list[int],
                                                                                             list[str], np.ndarray]]:
    """(ids, paths, (n, dim) vectors) of stored images in chunks; all images when ``ids`` is None."""
    query = select(Image.id, Image.path, Image.embedding).order_by(Image.id)
    if ids is not None:
        wanted = list(ids)
        for start in range(0, len(wanted), chunk):
            rows = session.execute(query.where(Image.id.in_(wanted[start : start + chunk]))).all()
            if rows:
                yield _unpack(rows)
        return
    for rows in session.execute(query.execution_options(yield_per=chunk)).partitions():
        yield _unpack(rows)


def _unpack(rows: Any) -> tuple[list[int], list[str], np.ndarray]:
    return ([r[0] for r in rows], [r[1] for r in rows],
            np.vstack([np.frombuffer(r[2], dtype=np.float32) for r in rows]))


def save_scores(session: Any, name: str, labels: LabelSet, source: str, ids: list[int], probs: np.ndarray) -> None:
    """Store ``probs`` as number fields ``NAME.LABEL`` (usable in --where); older values of these fields
    are replaced."""
    if not name.replace("_", "").replace("-", "").isalnum():
        raise InvalidQuery(f"--save-as takes letters, digits, '_' and '-', not {name!r}")
    names = [f"{name}.{label.name}" for label in labels.labels]
    session.execute(delete(ImageField).where(ImageField.image_id.in_(ids), ImageField.name.in_(names)))
    rows = [{"image_id": image_id, "name": field_name, "kind": "number", "number": float(p), "text": None,
             "date": None, "source": source}
            for image_id, row in zip(ids, probs, strict=True) for field_name, p in zip(names, row, strict=True)]
    if rows:
        session.execute(insert(ImageField), rows)


def forget_other_runs(session: Any, name: str, source: str) -> None:
    """Drop ``NAME.*`` scores made by other prompts or another model, so none are mixed."""
    session.execute(delete(ImageField).where(ImageField.name.like(f"{name}.%"), ImageField.source != source,
                                             ImageField.source.like("zeroshot:%")))
