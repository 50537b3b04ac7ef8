"""One translation function for every text medsearch embeds: Korean (or any non-Latin) text goes through
the glossary to the English the model reads; English text stays exactly as typed.

Policy for words the glossary does not know (``POLICIES``): ``warn`` (default) leaves them out of the
embedded text and reports them, ``refuse`` raises ``InvalidQuery`` naming them, ``off`` embeds every
text as typed (no translation at all). Settings: ``MEDSEARCH_GLOSSARY`` (glossary files, separated by
``os.pathsep``) and ``MEDSEARCH_UNKNOWN_WORDS`` (the policy).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsearch.errors import InvalidQuery
from medsearch.language.glossary import Glossary, load_glossary, normalize
from medsearch.language.grammar import tokens
from medsearch.language.phrase import english
from medsearch.language.vocabulary import foreign_script, out_of_vocabulary

POLICIES = ("warn", "refuse", "off")
GLOSSARY_SETTING, POLICY_SETTING = "MEDSEARCH_GLOSSARY", "MEDSEARCH_UNKNOWN_WORDS"


@dataclass(frozen=True)
class Translation:
    """``text`` as typed, ``english`` as embedded, and the words of ``text`` that were not understood."""

    text: str
    english: str
    unknown: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """``{"searched_as": ..., "not_understood": [...]}``, the fields results carry."""
        return {"searched_as": self.english, "not_understood": list(self.unknown)}

    def warning(self) -> str | None:
        """One line for the user when words were left out, else None."""
        if not self.unknown:
            return None
        return (f"not understood, left out: {', '.join(self.unknown)} (searched as: {self.english!r}; "
                "add the words to a glossary with --glossary FILE)")


class Translator:
    """The glossary and the policy; ``translate`` is pure and cheap (no model call)."""

    def __init__(self, glossary: Glossary, policy: str = "warn") -> None:
        if policy not in POLICIES:
            raise InvalidQuery(f"unknown-words policy must be one of {', '.join(POLICIES)}, not {policy!r}")
        self.glossary = glossary
        self.policy = policy

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
            found = Translation(text, english(understood), tuple(t.text for t in read if t.kind == "unknown"))
        else:
            found = _latin(text, tokenizer)
        if found.unknown and self.policy == "refuse":
            raise InvalidQuery(f"not understood: {', '.join(found.unknown)} in {text!r}; add the words to a "
                               "glossary (--glossary FILE) or use --unknown-words warn")
        if not found.english:
            raise InvalidQuery(f"no word of {text!r} is understood: the model reads English, and the "
                               "glossary has none of these words (add them with --glossary FILE)")
        return found

    def english(self, text: str, tokenizer: Any = None) -> str:
        """``translate(text).english``."""
        return self.translate(text, tokenizer).english


def _latin(text: str, tokenizer: Any) -> Translation:
    """A Latin-script text with accents: kept as typed, less the words the tokenizer cannot read."""
    if tokenizer is None:
        return Translation(text, text)
    words = text.split()
    unknown = tuple(word for word in words if not word.isascii() and out_of_vocabulary(tokenizer, word))
    return Translation(text, " ".join(w for w in words if w not in unknown) if unknown else text, unknown)
