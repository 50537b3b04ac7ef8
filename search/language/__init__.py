"""Korean (and other non-English) queries and labels: a glossary to the English the model reads, with
detection of what it cannot read. ``Translator.translate`` is the one function every embedded text
passes through (``medsearch.api.Medsearch.english``)."""

from medsearch.language.translator import POLICIES, Translation, Translator

__all__ = ["POLICIES", "Translation", "Translator"]
