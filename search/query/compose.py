"""Composed queries: several positive and negative parts, texts and images, with weights.

Rule: every part is embedded to a unit vector v_i; the query is q = sum(w_i * v_i) with w_i > 0 for a
positive part and w_i < 0 for a negative one (default weight 1), then q is L2-normalised and images are
ranked by cosine(q, image). A part is written ``TEXT``, ``image:PATH``, ``id:N``, optionally followed by
``@WEIGHT`` (e.g. ``"chest tube@0.5"``, ``image:ref.png@2``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from medsearch.errors import InvalidQuery

if TYPE_CHECKING:
    import numpy as np

PartKind = Literal["text", "image", "id"]
MAX_ID = 2**63 - 1
"""The largest image id (a signed 64-bit key)."""
MAX_WEIGHT = 100.0
"""The largest weight of a part: past it one part swamps the others and the float32 sum loses the rest."""
PREFIXES: dict[str, PartKind] = {"image:": "image", "id:": "id"}


@dataclass(frozen=True)
class Part:
    """One query part: a text, an image file (``image:PATH``) or a stored id (``id:N``), with its signed
    weight."""

    kind: PartKind
    value: str
    weight: float


def parse_part(text: str, sign: float = 1.0) -> Part:
    """``"chest tube@0.5"`` -> Part("text", "chest tube", 0.5 * sign). Raises InvalidQuery."""
    body, weight = text, 1.0
    if "@" in text:
        head, _, tail = text.rpartition("@")
        try:
            weight = float(tail)
            body = head
        except ValueError:
            body = text
    if not math.isfinite(weight) or weight <= 0:
        raise InvalidQuery(f"weights must be positive (use --unlike for negative parts): {text!r}")
    if weight > MAX_WEIGHT:
        raise InvalidQuery(f"weights are at most {MAX_WEIGHT:g}: {text!r}")
    kind: PartKind = "text"
    value = body
    for prefix, named in PREFIXES.items():
        if body.startswith(prefix):
            kind, value = named, body[len(prefix):]
    if not value.strip():
        raise InvalidQuery(f"empty query part: {text!r}")
    if kind == "id" and not (value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_ID):
        raise InvalidQuery(f"id parts take an image id, a whole number from 1 to {MAX_ID}: {text!r}")
    return Part(kind, value, sign * weight)


def compose(parts: Sequence[Part], text_vectors: Callable[[list[str]], np.ndarray],
            image_vector: Callable[[Part], np.ndarray]) -> np.ndarray:
    """The unit (dim,) query vector of ``parts`` (a query of negated findings alone has only negative
    parts: ``medsearch.language.meaning.query_parts`` checks that one part was given positive). Raises
    InvalidQuery when the parts cancel out."""
    import numpy as np  # here: the query spec (and the remote client) parse parts without numpy

    texts = [part.value for part in parts if part.kind == "text"]
    by_text = dict(zip(texts, text_vectors(texts), strict=True)) if texts else {}
    total = None
    for part in parts:
        vector = by_text[part.value] if part.kind == "text" else image_vector(part)
        total = part.weight * vector if total is None else total + part.weight * vector
    assert total is not None
    norm = float(np.linalg.norm(total))
    if norm < 1e-6:
        raise InvalidQuery("the positive and negative parts cancel out")
    return (total / norm).astype(np.float32)
