"""The Korean -> English glossary: the shipped ``glossary.toml`` plus any user glossaries over it.

A glossary file is TOML; each table is a kind of term (``KINDS``) mapping Korean keys to English::

    [finding]
    "흉막삼출" = "pleural effusion"

    [side]
    "좌측" = "left"

A later file wins for a key it repeats. Every malformed input raises ``InvalidQuery``.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from medsearch.errors import InvalidQuery

KINDS = ("finding", "report", "anatomy", "modality", "view", "side", "qualifier")
"""Kinds of term; ``medsearch.language.phrase`` orders a phrase's words by them."""


@dataclass(frozen=True)
class Term:
    """One glossary entry: the Korean ``key`` (NFC), its ``english`` and its ``kind`` (one of ``KINDS``)."""

    key: str
    english: str
    kind: str


def normalize(text: str) -> str:
    """NFC, so that Hangul typed as jamo sequences and as syllables compare equal."""
    return unicodedata.normalize("NFC", text)


class Glossary:
    """Terms by key, and one pattern that finds the longest key at a position (spaces optional)."""

    def __init__(self, terms: dict[str, Term]) -> None:
        self.terms = terms
        by_length = sorted(terms, key=lambda key: (-len(key.replace(" ", "")), key))
        self._pattern = re.compile("|".join(f"(?:{_key_pattern(key)})" for key in by_length), re.IGNORECASE)
        self._folded = {_fold(key): term for key, term in terms.items()}

    def match(self, text: str, pos: int) -> tuple[Term, int] | None:
        """The longest term starting at ``text[pos]`` and the position after it, or None."""
        found = self._pattern.match(text, pos)
        if found is None:
            return None
        return self._folded[_fold(found.group())], found.end()

    def merged(self, other: Glossary) -> Glossary:
        """This glossary with ``other``'s terms added; ``other`` wins for a repeated key."""
        return Glossary({**self.terms, **other.terms})


def _fold(key: str) -> str:
    return "".join(key.split()).lower()


def _key_pattern(key: str) -> str:
    """Characters of ``key`` with optional whitespace between them; a key ending in a Latin letter or
    digit must end a word (``CT`` does not match inside ``CTA``)."""
    chars = [re.escape(c) for c in key if not c.isspace()]
    tail = r"(?![A-Za-z0-9])" if key[-1].isascii() and key[-1].isalnum() else ""
    return r"\s*".join(chars) + tail


def parse_glossary(text: str, source: str) -> Glossary:
    """A glossary from TOML text; ``source`` names it in errors. Raises InvalidQuery."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidQuery(f"{source}: invalid TOML: {error}") from None
    terms: dict[str, Term] = {}
    for kind, table in document.items():
        if kind not in KINDS or not isinstance(table, dict):
            raise InvalidQuery(f"{source}: {kind!r} is not a kind of term; kinds: {', '.join(KINDS)}")
        for key, english in table.items():
            if not isinstance(english, str) or not english.strip() or not key.strip():
                raise InvalidQuery(f"{source}: [{kind}] {key!r} needs an English text")
            terms[normalize(key.strip())] = Term(normalize(key.strip()), " ".join(english.split()), kind)
    return Glossary(terms)


def builtin_glossary() -> Glossary:
    """The glossary shipped in this package."""
    resource = resources.files(__package__).joinpath("glossary.toml")
    return parse_glossary(resource.read_text(encoding="utf-8"), "built-in glossary")


def load_glossary(paths: list[Path]) -> Glossary:
    """The built-in glossary with the files at ``paths`` over it, in order. Raises InvalidQuery for a
    missing, unreadable or malformed file."""
    glossary = builtin_glossary()
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidQuery(f"glossary file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidQuery(f"cannot read glossary file {path}: {error}") from None
        glossary = glossary.merged(parse_glossary(text, str(path)))
    return glossary
