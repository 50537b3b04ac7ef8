"""How the shells say what was searched: one header line, the ``--json`` / HTTP fields, and the English
prompts a label set was scored with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from medsearch.labels.labelsets import LabelSet
from medsearch.language.translator import Translation


def header(title: str, translation: Translation) -> str:
    """``"search: 폐렴 (searched as: pneumonia)"``, ``"search: pneumonia, no effusion (searched as:
    pneumonia; not: effusion)"``, with ``"; left out: ..."`` for words not understood; just ``title``
    when the text was embedded as typed."""
    if translation.searched == translation.text and not translation.unknown:
        return title
    left_out = f"; left out: {', '.join(translation.unknown)}" if translation.unknown else ""
    return f"{title} (searched as: {translation.searched}{left_out})"


def fields(translation: Translation | None, only_changed: bool = False) -> dict[str, Any]:
    """The JSON fields for a search: ``searched_as`` and ``not_understood``; none without a text, nor,
    with ``only_changed``, for a text embedded as typed."""
    if translation is None or (only_changed and translation.searched == translation.text and not translation.unknown):
        return {}
    return translation.as_dict()


def prompts_searched(english: Callable[[str], str], labels: LabelSet) -> dict[str, list[str]]:
    """Each label's prompts as embedded: ``{"폐렴": ["pneumonia"]}``. Raises InvalidQuery (see
    ``Translator.translate``)."""
    return {label.name: [english(prompt) for prompt in label.prompts] for label in labels.labels}


def labels_line(labels: LabelSet, searched: dict[str, list[str]]) -> str | None:
    """``"searched as: 폐렴 = pneumonia; ..."`` for the labels whose prompts were translated, else None."""
    changed = [f"{label.name} = {' / '.join(searched[label.name])}" for label in labels.labels
               if searched[label.name] != list(label.prompts)]
    return f"searched as: {'; '.join(changed)}" if changed else None


def criteria_searched(english: Callable[[str], str], criteria: list[str]) -> dict[str, str]:
    """The text criteria's texts that were translated, as embedded: ``{"폐렴": "pneumonia"}``. Raises
    InvalidQuery for a malformed criterion."""
    from medsearch.cohorts.criteria import parse_criterion

    texts = [c.value for c in map(parse_criterion, criteria) if c.kind == "text"]
    return {text: english(text) for text in texts if english(text) != text}
