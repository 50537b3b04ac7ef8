"""How the shells say what was searched: one header line, the ``--json`` / HTTP fields, and the English
prompts a label set was scored with."""

from __future__ import annotations

from typing import Any

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
