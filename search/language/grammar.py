"""Reading a Korean query into tokens: glossary terms (longest first), the particles and endings after
them, the grammar words that relate phrases, Latin words kept as they are, and what was not understood.

    "폐렴이 있는 흉부 X-ray" -> term pneumonia, WITH, term chest, term x-ray
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medsearch.language.glossary import Glossary

WITH, WITHOUT, SUSPECT, OF, IN, PRESENT, ABSENT, AND, UNCHANGED = (
    "with", "without", "suspect", "of", "in", "present", "absent", "and", "unchanged")
"""Relations between phrases (see ``medsearch.language.phrase``)."""

GRAMMAR_WORDS = {
    "있는": WITH, "동반된": WITH, "동반한": WITH, "보이는": WITH, "관찰되는": WITH, "없지 않은": WITH,
    "없는": WITHOUT, "없이": WITHOUT, "아닌": WITHOUT, "보이지 않는": WITHOUT, "관찰되지 않는": WITHOUT,
    "의심되는": SUSPECT, "의심됨": SUSPECT, "의심": SUSPECT, "의증": SUSPECT, "가능성": SUSPECT,
    "배제할 수 없음": SUSPECT, "배제할 수 없는": SUSPECT, "배제할수없음": SUSPECT, "배제 불가": SUSPECT,
    "배제할 수 없다": SUSPECT,
    "있음": PRESENT, "있다": PRESENT, "보임": PRESENT, "관찰됨": PRESENT, "있고": PRESENT, "있으며": PRESENT,
    "있으나": PRESENT, "있습니다": PRESENT, "보이고": PRESENT, "관찰되고": PRESENT, "없지 않음": PRESENT,
    "없음": ABSENT, "없다": ABSENT, "없고": ABSENT, "없으며": ABSENT, "없으나": ABSENT, "없습니다": ABSENT,
    "아님": ABSENT, "아니고": ABSENT, "아니며": ABSENT, "음성": ABSENT, "음성임": ABSENT, "배제": ABSENT,
    "배제됨": ABSENT, "보이지 않음": ABSENT, "관찰되지 않음": ABSENT, "확인되지 않음": ABSENT,
    "안 보임": ABSENT, "소실됨": ABSENT,
    "변화 없음": UNCHANGED, "변화없음": UNCHANGED, "변화 없는": UNCHANGED, "변동 없음": UNCHANGED,
    "및": AND, "그리고": AND, "또는": AND,
}
"""Words that stand on their own (after a space, or straight after a term). Double negations ("없지
않음") and hedges ("배제할 수 없음": cannot be excluded) affirm; "변화 없음" (no change) keeps the finding."""

PARTICLES = {
    "이": None, "가": None, "은": None, "는": None, "을": None, "를": None, "도": None, "으로": None,
    "로": None, "의": OF, "에": IN, "에서": IN, "에서의": IN, "에는": IN, "와": AND, "과": AND,
}
"""Particles ending a word after a term: None drops them (subject, topic, object markers)."""

_LATIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9'./+-]*[A-Za-z0-9+])?")
_SEPARATOR = re.compile(r"[\s,;()\[\]\"“”]+|[.?!](?![0-9])\s*")
_BOUNDARY = re.compile(r"$|[\s,;.?!()\[\]\"“”]")


@dataclass(frozen=True)
class Token:
    """``kind``: a glossary kind, "latin", a relation (``GRAMMAR_WORDS`` values), or "unknown"; ``text``:
    the English of a term, else the words as written; ``source``: the Korean a term was read from."""

    kind: str
    text: str
    source: str = ""


_GRAMMAR_KEYS = sorted(GRAMMAR_WORDS, key=len, reverse=True)
_PARTICLE_KEYS = sorted(PARTICLES, key=len, reverse=True)


def _longest(keys: list[str], text: str, pos: int) -> tuple[str, int] | None:
    """The first of ``keys`` (longest first) at ``pos`` that ends a word, and the position after it."""
    for key in keys:
        end = pos + len(key)
        if text.startswith(key, pos) and _BOUNDARY.match(text, end):
            return key, end
    return None


def _step(glossary: Glossary, text: str, pos: int, after_term: bool) -> tuple[Token | None, int, bool] | None:
    """One token at ``pos`` (None for a dropped particle), the next position, whether it was a term."""
    term = glossary.match(text, pos)
    if term is not None:
        found, end = term
        return Token(found.kind, found.english, text[pos:end]), end, True
    grammar = _longest(_GRAMMAR_KEYS, text, pos)
    if grammar is not None:
        return Token(GRAMMAR_WORDS[grammar[0]], grammar[0]), grammar[1], False
    particle = _longest(_PARTICLE_KEYS, text, pos) if after_term else None
    if particle is not None:
        relation = PARTICLES[particle[0]]
        return (Token(relation, particle[0]) if relation else None), particle[1], False
    latin = _LATIN.match(text, pos)
    if latin is not None:
        return Token("latin", latin.group()), latin.end(), False
    return None


def tokens(glossary: Glossary, text: str) -> list[Token]:
    """The tokens of ``text`` (NFC) in order. The rest of a word that none of the above reads becomes one
    "unknown" token; a word read only partly, through a one-syllable term, is unknown as a whole (so that
    "판단" is not read as "plaque" plus leftovers)."""
    out: list[Token] = []
    pos, word_start, word_first, after_term = 0, 0, 0, False
    while pos < len(text):
        separator = _SEPARATOR.match(text, pos)
        if separator is not None:
            if any(mark in separator.group() for mark in ",;.?!"):
                out.append(Token(AND, ","))
            pos = word_start = separator.end()
            word_first, after_term = len(out), False
            continue
        step = _step(glossary, text, pos, after_term)
        if step is None:
            end = _SEPARATOR.search(text, pos)
            stop = end.start() if end else len(text)
            if any(len(token.source) == 1 for token in out[word_first:]):
                del out[word_first:]
                pos = word_start
            if text[pos:stop] not in PARTICLES:  # a particle standing alone carries nothing
                out.append(Token("unknown", text[pos:stop]))
            pos, after_term = stop, False
            continue
        token, pos, after_term = step
        if token is not None:
            out.append(token)
    return out

