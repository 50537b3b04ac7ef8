"""Rebuilding English from tokens: Korean puts modifiers before the head and relative clauses before the
noun they describe, so relations swap their two sides ("폐렴이 있는 흉부 X-ray" -> "chest x-ray with
pneumonia"), and inside a phrase side and qualifier words go first, then views ("흉부 정면 X-ray" ->
"frontal chest x-ray").
"""

from __future__ import annotations

from medsearch.language.grammar import ABSENT, AND, IN, OF, PRESENT, SUSPECT, WITH, WITHOUT, Token

_RANK = {"qualifier": 0, "side": 0, "view": 1}
"""Word order inside a phrase: lower ranks first, the rest (rank 2) in the user's order."""


def _phrase(words: list[Token]) -> str:
    """One noun phrase; a trailing report word is the head: [pneumothorax, findings] -> "findings of
    pneumothorax"."""
    if len(words) > 1 and words[-1].kind == "report":
        return f"{words[-1].text} of {_phrase(words[:-1])}"
    ordered = sorted(words, key=lambda token: _RANK.get(token.kind, 2))
    return " ".join(token.text for token in ordered)


def _relate(relation: str, before: str, after: str) -> str:
    """Korean "BEFORE <relation> AFTER" as English."""
    if not before:
        return after
    if relation == WITH:
        return f"{after} with {before}" if after else f"with {before}"
    if relation == WITHOUT:
        return f"{after} without {before}" if after else f"no {before}"
    if relation == SUSPECT:
        return f"{after} suspicious for {before}" if after else f"suspected {before}"
    if relation == IN:
        return f"{after} in the {before}" if after else f"in the {before}"
    return f"{after} of {before}" if after else before


class _Builder:
    """Left to right: words gather into a phrase; a relation closes it (with any relation still open)
    and waits for the phrase it relates to."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.words: list[Token] = []
        self.pending: tuple[str, str] | None = None

    def close(self) -> str:
        text = _phrase(self.words) if self.words else ""
        if self.pending is not None:
            text = _relate(self.pending[0], self.pending[1], text)
        self.words, self.pending = [], None
        return text

    def add(self, token: Token) -> None:
        kind = token.kind
        if kind == OF and self.words and self.words[-1].kind == "anatomy":
            return  # "우하엽의 경화": the anatomy modifies, "right lower lobe consolidation"
        if kind in (WITH, WITHOUT, SUSPECT, OF, IN):
            before = self.close()
            self.pending = (kind, before) if before else None
        elif kind in (PRESENT, ABSENT):
            text = self.close()
            if text:
                self.words = [Token("done", text if kind == PRESENT else f"no {text}")]
        elif kind == AND:
            self.clauses.append(self.close())
        else:
            self.words.append(token)


def english(tokens: list[Token]) -> str:
    """The English phrase of understood ``tokens`` (no "unknown" ones); "" when there are none."""
    builder = _Builder()
    for token in tokens:
        builder.add(token)
    builder.clauses.append(builder.close())
    return " and ".join(clause for clause in builder.clauses if clause)
