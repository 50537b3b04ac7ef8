"""What a query means, and the parts a search embeds for it: the one call the query path makes.

``parse_query`` reads a text in English or Korean (through the glossary) into affirmed and negated
findings (``medsearch.language.negation``). ``query_parts`` turns a search's positive text parts into what
is embedded: the affirmed text as the positive part, each negated finding as a negative (``--unlike``)
part of weight ``NEGATED_WEIGHT`` times the text's weight. A text without negation stays one part,
exactly as typed. ``searched`` says what was searched ("pneumonia; not: pneumothorax").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from medsearch.errors import InvalidQuery
from medsearch.language.glossary import builtin_glossary
from medsearch.language.negation import ParsedQuery, parse_english
from medsearch.language.translator import Translation, Translator
from medsearch.query.compose import Part

NEGATED_WEIGHT = 0.5
"""Weight of each negated finding's negative part, relative to its text's positive part: chosen on the
trained tiny model (``benchmarks/bench_negation.py``, README "Queries that mean what they say")."""


def parse_query(text: str, translator: Translator | None = None, tokenizer: Any = None) -> ParsedQuery:
    """The affirmed and negated findings of ``text`` (Korean through ``translator``'s glossary, default the
    built-in one; English as typed). Raises InvalidQuery for a text with no content word, in either language, or as
    ``Translator.translate`` does."""
    translator = translator or Translator(builtin_glossary())
    translation = translator.translate(text, tokenizer)
    parsed = parse_english(translation.english)
    return ParsedQuery(text, parsed.affirmed, parsed.negated, translation.unknown)


def searched(text: str, translator: Translator, tokenizer: Any = None) -> Translation:
    """What a search for ``text`` embeds, for the shells to show: the affirmed English, the negated
    findings and the words left out. Raises InvalidQuery as ``parse_query`` does."""
    translation = translator.translate(text, tokenizer)
    parsed = parse_query(text, translator, tokenizer)
    return Translation(text, parsed.positive, translation.unknown, parsed.negated, translation.suggestions)


def query_parts(parts: Sequence[Part], translator: Translator, tokenizer: Any = None) -> list[Part]:
    """``parts`` with each positive text part replaced by its affirmed text (positive) and one negative
    part per negated finding; other parts unchanged (a negative text part is only checked for content).
    Raises InvalidQuery when no part is positive as given, or for a text with no content word."""
    if not any(part.weight > 0 for part in parts):
        raise InvalidQuery("a query needs at least one positive part")
    out: list[Part] = []
    for part in parts:
        if part.kind != "text":
            out.append(part)
            continue
        parsed = parse_query(part.value, translator, tokenizer)
        if part.weight < 0 or not parsed.negated:
            out.append(part)
            continue
        if parsed.positive:
            out.append(Part("text", parsed.positive, part.weight))
        out += [Part("text", finding, -NEGATED_WEIGHT * part.weight) for finding in parsed.negated]
    return out
