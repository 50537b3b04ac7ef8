"""Rebuilding English from tokens: Korean puts modifiers before the head and relative clauses before the
noun they describe, so relations swap their two sides ("폐렴이 있는 흉부 X-ray" -> "chest x-ray with
pneumonia"), and inside a phrase side and qualifier words go first, then views ("흉부 정면 X-ray" ->
"frontal chest x-ray"); "normal" leads its phrase ("흉부 엑스레이 정상" -> "normal chest x-ray").

Clauses end at a predicate ("있음", "없음", "없고", ...) or a list word ("및", ","). A negation covers the
bare phrases listed before it ("기흉, 흉막삼출 없음": neither); negated clauses are written "no A or B" and
set apart from affirmed ones by "; " ("기흉은 없고 폐렴 소견" -> "no pneumothorax; findings of pneumonia"),
the form ``medsearch.language.negation`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from medsearch.language.grammar import ABSENT, AND, IN, OF, PRESENT, SUSPECT, UNCHANGED, WITH, WITHOUT, Token

_RANK = {"qualifier": 0, "side": 0, "view": 1}
"""Word order inside a phrase: lower ranks first, the rest (rank 2) in the user's order."""
_LEADING = ("normal", "abnormal")
"""Findings that lead a phrase of anatomy and modality, as adjectives do in English."""


@dataclass
class _Clause:
    """A clause's English; ``bare``: a phrase with no predicate or relation of its own, which a negation
    after it in a list covers."""

    text: str
    negated: bool = False
    bare: bool = True


def _rank(token: Token) -> int:
    return -1 if token.text in _LEADING else _RANK.get(token.kind, 2)


def _phrase(words: list[Token]) -> str:
    """One noun phrase; a trailing report word is the head: [pneumothorax, findings] -> "findings of
    pneumothorax"."""
    if len(words) > 1 and words[-1].kind == "report":
        return f"{words[-1].text} of {_phrase(words[:-1])}"
    ordered = sorted(words, key=_rank) if len(words) > 1 else words
    return " ".join(token.text for token in ordered)


def _relate(relation: str, before: str, after: str) -> str:
    """Korean "BEFORE <relation> AFTER" as English."""
    if not before:
        return after
    if relation == WITH:
        return f"{after} with {before}" if after else f"with {before}"
    if relation == WITHOUT:
        return f"{after} without {before}"
    if relation == SUSPECT:
        return f"{after} suspicious for {before}" if after else f"suspected {before}"
    if relation == IN:
        return f"{after} in the {before}" if after else f"in the {before}"
    return f"{after} of {before}" if after else before


class _Builder:
    """Left to right: words gather into a phrase; a relation closes it (with any relation still open)
    and waits for the phrase it relates to; a predicate or list word ends the clause."""

    def __init__(self) -> None:
        self.clauses: list[_Clause] = []
        self.words: list[Token] = []
        self.pending: tuple[str, str] | None = None

    def close(self) -> _Clause:
        text = _phrase(self.words) if self.words else ""
        clause = _Clause(text, bare=bool(text) and self.pending is None and self.words[-1].kind != "report")
        if self.pending is not None:
            relation, before = self.pending
            clause = (_Clause(before, negated=True, bare=False) if relation == WITHOUT and not text
                      else _Clause(_relate(relation, before, text), bare=False))
        self.words, self.pending = [], None
        return clause

    def end_clause(self, predicate: str | None = None) -> None:
        clause = self.close()
        if not clause.text:
            return
        if predicate == ABSENT:
            for earlier in reversed(self.clauses):  # "기흉, 흉막삼출 없음": neither
                if not earlier.bare:
                    break
                earlier.negated, earlier.bare = True, False
            clause.negated = True
        if predicate == UNCHANGED:
            clause.text = f"unchanged {clause.text}"
        clause.bare = clause.bare and predicate is None
        self.clauses.append(clause)

    def add(self, token: Token) -> None:
        kind = token.kind
        if kind == OF and self.words and self.words[-1].kind in ("anatomy", "side"):
            return  # "우하엽의 경화": the anatomy modifies, "right lower lobe consolidation"
        if kind in (WITH, WITHOUT, SUSPECT, OF, IN):
            clause = self.close()
            self.pending = (kind, clause.text) if clause.text else None
            if clause.negated:  # a "없는" with nothing after it: a negated clause of its own
                self.clauses.append(clause)
        elif kind in (PRESENT, ABSENT, UNCHANGED, AND):
            self.end_clause(None if kind == AND else kind)
        else:
            self.words.append(token)


def render(clauses: list[_Clause]) -> str:
    """Affirmed clauses joined by "and", negated ones as "no A or B", the groups by "; "."""
    groups: list[tuple[bool, list[str]]] = []
    for clause in clauses:
        if groups and groups[-1][0] == clause.negated:
            groups[-1][1].append(clause.text)
        else:
            groups.append((clause.negated, [clause.text]))
    return "; ".join(f"no {' or '.join(texts)}" if negated else " and ".join(texts) for negated, texts in groups)


def english(tokens: list[Token]) -> str:
    """The English phrase of understood ``tokens`` (no "unknown" ones); "" when there are none."""
    builder = _Builder()
    for token in tokens:
        builder.add(token)
    builder.end_clause()
    return render(builder.clauses)
