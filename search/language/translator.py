"""One translation function for every text medsearch embeds: Korean (or any non-Latin) text goes through
the glossary to the English the model reads; English text stays exactly as typed.

Policy for words the glossary does not know (``POLICIES``): ``warn`` (default) leaves them out of the
embedded text and reports them, ``refuse`` raises ``InvalidQuery`` naming them, ``off`` embeds every
text as typed (no translation at all). Settings: ``MEDSEARCH_GLOSSARY`` (glossary files, separated by
``os.pathsep``) and ``MEDSEARCH_UNKNOWN_WORDS`` (the policy).
"""

from __future__ import annotations

import difflib
import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsearch.errors import InvalidQuery
from medsearch.language.glossary import Glossary, load_glossary, normalize
from medsearch.language.grammar import ABSENT, GRAMMAR_WORDS, WITHOUT, tokens
from medsearch.language.negation import NO_CONTENT
from medsearch.language.phrase import english
from medsearch.language.vocabulary import foreign_script, out_of_vocabulary

POLICIES = ("warn", "refuse", "off")
GLOSSARY_SETTING, POLICY_SETTING = "MEDSEARCH_GLOSSARY", "MEDSEARCH_UNKNOWN_WORDS"
SUGGEST_CUTOFF = 0.75
"""How alike (difflib's ratio over jamo) an unknown word and a glossary key must be for "did you mean"."""


@dataclass(frozen=True)
class Translation:
    """``text`` as typed, ``english`` as embedded (for a search: the affirmed part), the words of ``text``
    that were not understood, the ``negated`` findings a search embeds as negative parts, and "did you
    mean" ``suggestions`` (glossary keys close to an unknown word, one per unknown word that has one)."""

    text: str
    english: str
    unknown: tuple[str, ...] = ()
    negated: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()

    @property
    def searched(self) -> str:
        """What was searched, in one line: ``"pneumonia; not: pneumothorax"``."""
        negated = f"not: {', '.join(self.negated)}" if self.negated else ""
        return "; ".join(part for part in (self.english, negated) if part)

    def as_dict(self) -> dict[str, Any]:
        """``{"searched_as": ..., "not_understood": [...]}``, the fields results carry, with ``negated``
        and ``did_you_mean`` when there are any."""
        said: dict[str, Any] = {"searched_as": self.searched, "not_understood": list(self.unknown)}
        if self.negated:
            said["negated"] = list(self.negated)
        if self.suggestions:
            said["did_you_mean"] = list(self.suggestions)
        return said

    def warning(self) -> str | None:
        """One line for the user when words were left out, else None."""
        if not self.unknown:
            return None
        hint = f"; did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        return (f"not understood, left out: {', '.join(self.unknown)}{hint} (searched as: {self.searched!r}; "
                "add the words to a glossary with --glossary FILE)")


class Translator:
    """The glossary and the policy; ``translate`` is pure and cheap (no model call)."""

    def __init__(self, glossary: Glossary, policy: str = "warn") -> None:
        if policy not in POLICIES:
            raise InvalidQuery(f"unknown-words policy must be one of {', '.join(POLICIES)}, not {policy!r}")
        self.glossary = glossary
        self.policy = policy
        self._jamo_keys: dict[str, str] | None = None

    @classmethod
    def from_settings(cls, glossaries: Sequence[Path] | None = None, policy: str | None = None) -> Translator:
        """The built-in glossary under ``glossaries`` (default: ``MEDSEARCH_GLOSSARY``), with ``policy``
        (default: ``MEDSEARCH_UNKNOWN_WORDS``, else warn). Raises InvalidQuery for a bad file or policy."""
        if glossaries is None:
            setting = os.environ.get(GLOSSARY_SETTING, "")
            glossaries = [Path(p) for p in setting.split(os.pathsep) if p.strip()]
        return cls(load_glossary(list(glossaries)), policy or os.environ.get(POLICY_SETTING) or "warn")

    def translate(self, text: str, tokenizer: Any = None) -> Translation:
        """What ``text`` is embedded as. ``tokenizer`` (the store's model's, optional) also flags
        non-ASCII Latin words it reads mostly as bytes or ``<unk>``. Raises InvalidQuery when policy is
        refuse and a word is not understood, or when no word at all is."""
        if self.policy == "off" or text.isascii():
            return Translation(text, text)
        if foreign_script(text):
            read = tokens(self.glossary, normalize(text))
            understood = [token for token in read if token.kind != "unknown"]
            unknown = tuple(t.text for t in read if t.kind == "unknown")
            found = Translation(text, english(understood), unknown, suggestions=self.suggest(unknown))
        else:
            found = _latin(text, tokenizer)
        hint = f" (did you mean {', '.join(found.suggestions)}?)" if found.suggestions else ""
        negation_like = [s for s in found.suggestions if GRAMMAR_WORDS.get(s.split(" -> ")[1]) in (ABSENT, WITHOUT)]
        if negation_like:
            raise InvalidQuery(f"{', '.join(s.split(' -> ')[0] for s in negation_like)} in {text!r} looks like a "
                               f"negation (did you mean {', '.join(negation_like)}?): not searched, so that "
                               "a finding meant as absent is not searched as present")
        if found.unknown and self.policy == "refuse":
            raise InvalidQuery(f"not understood: {', '.join(found.unknown)} in {text!r}{hint}; add the words to "
                               "a glossary (--glossary FILE) or use --unknown-words warn")
        if not found.english and not found.unknown:
            raise InvalidQuery(NO_CONTENT.format(text=text))
        if not found.english:
            raise InvalidQuery(f"no word of {text!r} is understood{hint}: the model reads English, and the "
                               "glossary has none of these words (add them with --glossary FILE)")
        return found

    def suggest(self, unknown: Sequence[str]) -> tuple[str, ...]:
        """For each unknown word, the glossary key closest to it letter by letter (Hangul compared by
        jamo, so "폐엄" is close to "폐염"), as ``"폐엄 -> 폐염"``; words with none close enough get none."""
        if not unknown:
            return ()
        if self._jamo_keys is None:
            self._jamo_keys = {_jamo(key): key for key in [*self.glossary.terms, *GRAMMAR_WORDS] if not key.isascii()}
        keys = self._jamo_keys
        out = []
        for word in unknown:
            close = difflib.get_close_matches(_jamo(word), list(keys), n=1, cutoff=SUGGEST_CUTOFF)
            if close:
                out.append(f"{word} -> {keys[close[0]]}")
        return tuple(out)

    def english(self, text: str, tokenizer: Any = None) -> str:
        """``translate(text).english``."""
        return self.translate(text, tokenizer).english


def _jamo(text: str) -> str:
    """Hangul syllables split into their jamo (NFD), spaces dropped."""
    return "".join(unicodedata.normalize("NFD", text).split())


def _latin(text: str, tokenizer: Any) -> Translation:
    """A Latin-script text with accents: kept as typed, less the words the tokenizer cannot read."""
    if tokenizer is None:
        return Translation(text, text)
    words = text.split()
    unknown = tuple(word for word in words if not word.isascii() and out_of_vocabulary(tokenizer, word))
    return Translation(text, " ".join(w for w in words if w not in unknown) if unknown else text, unknown)
