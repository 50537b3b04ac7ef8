"""The Korean coverage list (``data/korean_queries.tsv``) scored against the parser: which queries read
as they mean, and which would embed a negated finding as a positive (inverted)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medsearch.errors import InvalidQuery
from medsearch.language import Translator
from medsearch.language.meaning import parse_query

QUERIES = Path(__file__).parent / "data" / "korean_queries.tsv"


@dataclass(frozen=True)
class Case:
    """One line: the query, the affirmed English it may read as (alternatives), the negated findings."""

    query: str
    affirmed: tuple[str, ...]
    negated: frozenset[str]


@dataclass(frozen=True)
class Outcome:
    case: Case
    affirmed: str
    negated: tuple[str, ...]
    right: bool
    inverted: bool


def cases(path: Path = QUERIES) -> list[Case]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        query, affirmed, negated = ([*line.split("\t"), "", ""])[:3]
        out.append(Case(query, tuple(affirmed.split("|")), frozenset(n for n in negated.split(";") if n)))
    return out


def score(case: Case, translator: Translator) -> Outcome:
    """How ``case.query`` reads: right when the affirmed text is one of the expected ones and the negated
    findings are the expected ones; inverted when an expected negated finding is in the affirmed text."""
    try:
        parsed = parse_query(case.query, translator)
    except InvalidQuery:
        return Outcome(case, "", (), False, False)
    positive = parsed.positive
    inverted = any(finding.lower() in positive.lower() for finding in case.negated)
    right = positive in case.affirmed and frozenset(parsed.negated) == case.negated
    return Outcome(case, positive, parsed.negated, right, inverted)
