"""How a label set's prompts were read: each prompt as embedded (translated), for the CLI and the HTTP API."""

from __future__ import annotations

from collections.abc import Callable

from medsearch.labels.labelsets import LabelSet


def prompts_searched(english: Callable[[str], str], labels: LabelSet) -> dict[str, list[str]]:
    """Each label's prompts as embedded: ``{"폐렴": ["pneumonia"]}``. Raises InvalidQuery (see
    ``Translator.translate``)."""
    return {label.name: [english(prompt) for prompt in label.prompts] for label in labels.labels}


def labels_line(labels: LabelSet, searched: dict[str, list[str]]) -> str | None:
    """``"searched as: 폐렴 = pneumonia; ..."`` for the labels whose prompts were translated, else None."""
    changed = [f"{label.name} = {' / '.join(searched[label.name])}" for label in labels.labels
               if searched[label.name] != list(label.prompts)]
    return f"searched as: {'; '.join(changed)}" if changed else None
