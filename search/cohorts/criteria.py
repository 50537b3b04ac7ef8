"""Cohort criteria: their syntax, and evaluating a definition into a funnel and ranked members.

A criterion (``--include`` / ``--exclude``) is one of::

    text:TEXT>=P          the model's pairwise probability sigmoid(exp(t)*cos + b) >= P, 0 < P < 1
    text:TEXT prob>=P     the same, spelled out
    text:TEXT score>=C    cosine(text, image) >= C
    image:PATH>=C         cosine to an example image file (indexed: its stored vector) >= C
    id:N>=C               cosine to a stored image >= C   (``score>=C`` is accepted for both)
    text:TEXT top N       the N best (any kind: ``image:PATH top N``) among the images still in
    where:EXPR            a metadata filter (the ``--where`` grammar; saved zero-shot scores are fields)

Evaluation order: all images -> each ``--where`` -> each include (images passing it stay) -> each exclude
(images passing it go) -> one per group -> near-duplicates. ``top N`` ranks among the images still in at
that step. A member's ``score`` is its cosine to the first semantic include (its ``probability`` too when
that is a text); with no semantic include there is no score and members are ordered by id. De-duplication
keeps the best score (lowest id on ties or without a score).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from medsearch.errors import InvalidQuery
from medsearch.language.meaning import query_parts
from medsearch.query.compose import Part, compose
from medsearch.query.ranking import allowed_ids, group_column, iter_ranked, take
from medsearch.query.scoring import cosine_for_probability, probability
from medsearch.storage import queries

if TYPE_CHECKING:
    from medsearch.context import Context

_TAIL = re.compile(r"^(?P<body>.*?)\s*(?:(?P<measure>score|prob)?\s*>=\s*(?P<value>\S+)|\s+top\s+(?P<top>\S+))\s*$")
_KINDS = ("text:", "image:", "id:", "where:")
SCORE_RULE = ("score: cosine to the first semantic include (probability: the model's sigmoid when that is a "
              "text); de-duplication keeps the best score, the lowest id on ties or without a score")


@dataclass(frozen=True)
class Criterion:
    """One parsed criterion. ``measure``: prob | score | top | where; ``threshold`` is P or C."""

    given: str
    kind: str
    value: str
    measure: str
    threshold: float | None = None
    top: int | None = None


def parse_criterion(text: str) -> Criterion:
    """``"text:pleural effusion>=0.6"`` -> Criterion. Raises InvalidQuery saying what is expected."""
    kind = next((k[:-1] for k in _KINDS if text.startswith(k)), None)
    if kind is None:
        raise InvalidQuery(f"criterion {text!r} must start with text:, image:, id: or where: "
                           "(e.g. 'text:pleural effusion>=0.6', 'image:ref.dcm>=0.9', 'text:chest tube top 50')")
    rest = text[len(kind) + 1:].strip()
    if kind == "where":
        if not rest:
            raise InvalidQuery(f"empty where: criterion {text!r}")
        return Criterion(text, kind, rest, "where")
    match = _TAIL.match(rest)
    if match is None or not match["body"].strip():
        raise InvalidQuery(f"criterion {text!r} needs a subject and a threshold: '>=P' (probability, text "
                           "only), 'score>=C' (cosine) or 'top N'")
    body = match["body"].strip()
    if kind == "id" and not body.isdigit():
        raise InvalidQuery(f"id: criteria take an image id, not {body!r}")
    if match["top"] is not None:
        if not match["top"].isdigit() or int(match["top"]) < 1:
            raise InvalidQuery(f"'top N' needs a whole number N >= 1 in {text!r}")
        return Criterion(text, kind, body, "top", top=int(match["top"]))
    return _threshold_criterion(text, kind, body, match["measure"], match["value"])


def _threshold_criterion(text: str, kind: str, body: str, measure: str | None, value: str) -> Criterion:
    try:
        threshold = float(value)
    except ValueError:
        raise InvalidQuery(f"threshold {value!r} in {text!r} is not a number") from None
    measure = measure or ("prob" if kind == "text" else "score")
    if measure == "prob" and kind != "text":
        raise InvalidQuery(f"{text!r}: a probability needs a text; use 'score>=C' (cosine) for images")
    if measure == "prob" and not 0.0 < threshold < 1.0:
        raise InvalidQuery(f"{text!r}: a probability threshold must be strictly between 0 and 1")
    if measure == "score" and not -1.0 <= threshold <= 1.0:
        raise InvalidQuery(f"{text!r}: a cosine threshold must be between -1 and 1")
    return Criterion(text, kind, body, measure, threshold)


@dataclass
class Outcome:
    """An evaluated definition: members best first as (id, score, probability), the funnel, collapses."""

    members: list[tuple[int, float | None, float | None]]
    funnel: list[dict[str, Any]] = field(default_factory=list)
    collapsed: list[dict[str, Any]] = field(default_factory=list)
    criteria: list[dict[str, Any]] = field(default_factory=list)


def evaluate(ctx: Context, includes: Sequence[str], excludes: Sequence[str], where: Sequence[str],
             one_per: str | None = None, near_duplicates: float | None = None) -> Outcome:
    """Run a definition on ``ctx`` now. Raises InvalidQuery, NotFound, ModelMismatch."""
    steps = [("where", parse_criterion(f"where:{w}")) for w in where]
    steps += [("include", parse_criterion(c)) for c in includes] + [("exclude", parse_criterion(c)) for c in excludes]
    if near_duplicates is not None and not -1.0 <= near_duplicates <= 1.0:
        raise InvalidQuery("--near-duplicates takes a cosine between -1 and 1")
    one_per_column = group_column(ctx.store, one_per) if one_per else None
    current = _all_ids(ctx)
    outcome = Outcome([], [{"step": "all images", "count": len(current), "removed": 0}])
    primary: dict[int, float] | None = None
    primary_text = False
    for role, criterion in steps:
        passing, detail = _passing(ctx, criterion, current)
        outcome.criteria.append({"role": role, **asdict(criterion), **detail})
        if role == "exclude":
            kept = current[~np.isin(current, list(passing))]
        else:
            kept = current[np.isin(current, list(passing))]
            if primary is None and criterion.kind != "where":
                primary, primary_text = passing, criterion.kind == "text"
        given = criterion.given.removeprefix("where:").strip() if role == "where" else criterion.given
        _step(outcome, f"{role}: {given}" if role == "where" else f"{role} {given}", len(current) - len(kept),
              len(kept))
        current = kept
    calibration = (ctx.encoder.logit_scale, ctx.encoder.logit_bias) if primary_text else None
    ordered = _order(current, primary, calibration)
    if one_per and one_per_column:
        ordered = _one_per(ctx, ordered, one_per_column)
        _step(outcome, f"one per {one_per}", outcome.funnel[-1]["count"] - len(ordered), len(ordered))
    if near_duplicates is not None:
        ordered, outcome.collapsed = _collapse(ctx, ordered, near_duplicates)
        _step(outcome, f"near-duplicates cosine>{near_duplicates}", len(outcome.collapsed), len(ordered))
    outcome.members = ordered
    return outcome


def _step(outcome: Outcome, name: str, removed: int, count: int) -> None:
    outcome.funnel.append({"step": name, "count": count, "removed": removed})


def _all_ids(ctx: Context) -> np.ndarray:
    ctx.store.vectors.load()  # raises StoreError on an empty store
    return queries.all_ids(ctx.store)


def _passing(ctx: Context, criterion: Criterion, current: np.ndarray) -> tuple[dict[int, float], dict[str, Any]]:
    """The ids among ``current`` passing ``criterion``, with their cosines, and what was resolved."""
    if criterion.kind == "where":
        matched = allowed_ids(ctx.store, [criterion.value])
        assert matched is not None
        return {int(i): float("nan") for i in np.intersect1d(current, matched)}, {}
    query, detail = _vector(ctx, criterion)
    if criterion.measure == "top":
        assert criterion.top is not None
        hits = take(iter_ranked(ctx.store, query, current), criterion.top)
        return dict(hits), detail
    cosine = criterion.threshold
    if criterion.measure == "prob":
        assert criterion.threshold is not None
        cosine = cosine_for_probability(criterion.threshold, ctx.encoder.logit_scale, ctx.encoder.logit_bias)
        detail["cosine_threshold"] = cosine
    return dict(iter_ranked(ctx.store, query, current, cosine, first_round=1024)), detail


def _vector(ctx: Context, criterion: Criterion) -> tuple[np.ndarray, dict[str, Any]]:
    if criterion.kind == "text":
        ctx.check_model()
        return _text_vector(ctx, criterion)
    if criterion.kind == "id":
        return ctx.vector_of(int(criterion.value)), {}
    path = Path(criterion.value).expanduser().resolve()
    return ctx.vector_of(path), {"resolved_path": str(path)}


def _text_vector(ctx: Context, criterion: Criterion) -> tuple[np.ndarray, dict[str, Any]]:
    """A text criterion's vector, read as a search reads its text (``medsearch.language.meaning``): its
    negated findings are never embedded as positives but composed away from ("기흉 없음": not pneumothorax).
    Raises InvalidQuery for a probability criterion on such a text (a probability is per plain text)."""
    parts = query_parts([Part("text", criterion.value, 1.0)], ctx.translator, ctx.tokenizer())
    if len(parts) == 1 and parts[0].value == criterion.value:
        return ctx.text_vectors([criterion.value])[0], {}
    if criterion.measure == "prob":
        raise InvalidQuery(f"{criterion.value!r} negates a finding, so it is composed and has no probability: "
                           "use a cosine (>=0.2) or a rank (top N) criterion")
    negated = [part.value for part in parts if part.weight < 0]
    return compose(parts, ctx.text_vectors, lambda part: ctx.vector_of(part.value)), {"not": negated}


def _order(ids: np.ndarray, primary: dict[int, float] | None,
           calibration: tuple[float, float] | None) -> list[tuple[int, float | None, float | None]]:
    if primary is None:
        return [(int(i), None, None) for i in ids]
    ranked = sorted(((int(i), primary[int(i)]) for i in ids), key=lambda hit: (-hit[1], hit[0]))
    return [(i, s, float(probability(s, *calibration)) if calibration else None) for i, s in ranked]


def _one_per(ctx: Context, ordered: list[tuple[int, float | None, float | None]],
             column: str) -> list[tuple[int, float | None, float | None]]:
    """The first (best) member of each ``column`` value; members without a value are groups alone."""
    values = queries.group_values(ctx.store, [m[0] for m in ordered], column)
    seen: set[Any] = set()
    kept = []
    for member in ordered:
        key = values.get(member[0])
        if key is not None and key in seen:
            continue
        seen.add(key)
        kept.append(member)
    return kept


def _collapse(ctx: Context, ordered: list[tuple[int, float | None, float | None]],
              threshold: float) -> tuple[list[tuple[int, float | None, float | None]], list[dict[str, Any]]]:
    """Greedy, best first: a member closer than ``threshold`` (cosine) to a kept one is collapsed into it."""
    found = queries.embeddings(ctx.store, [m[0] for m in ordered])
    kept: list[tuple[int, float | None, float | None]] = []
    vectors: list[np.ndarray] = []
    collapsed = []
    for member in ordered:
        vector = found[member[0]][1]
        if vectors:
            sims = np.stack(vectors) @ vector
            best = int(np.argmax(sims))
            if sims[best] > threshold:
                collapsed.append({"id": member[0], "into": kept[best][0], "cosine": float(sims[best])})
                continue
        kept.append(member)
        vectors.append(vector)
    return kept, collapsed


def criteria_searched(english: Callable[[str], str], criteria: list[str]) -> dict[str, str]:
    """The text criteria's texts that were translated, as embedded: ``{"폐렴": "pneumonia"}``. Raises
    InvalidQuery for a malformed criterion."""
    texts = [c.value for c in map(parse_criterion, criteria) if c.kind == "text"]
    return {text: english(text) for text in texts if english(text) != text}
