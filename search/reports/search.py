"""Report search (``--report WORDS``): the images of studies whose report has a sentence holding every
word of WORDS (function words left out) in a mention of the asked polarity: ``positive`` (default: the
report affirms it), ``negative``, ``uncertain``, or ``any`` (also sentences that mention no finding).
When the words name findings of the labeller ("pneumothorax"), only mentions of those findings count, so
that "No pneumothorax; small effusion." is not an affirmed pneumothorax."""

from __future__ import annotations

import functools

import numpy as np
from medsearch.errors import InvalidQuery
from medsearch.reports.deidentify import query_words
from medsearch.reports.reading import DEFAULT_LABEL_SET, ReportReader
from medsearch.storage.reports import NO_FINDING, POLARITIES
from medsearch.storage.store import Store

POLARITY_CHOICES: dict[str, tuple[str, ...]] = {
    "positive": ("positive",), "negative": ("negative",), "uncertain": ("uncertain",),
    "any": (*POLARITIES, NO_FINDING),
}  # fmt: skip


@functools.lru_cache(maxsize=4)
def reader_for(label_set: str = DEFAULT_LABEL_SET, keep_text: bool = False) -> ReportReader:
    """One reader (and labeller) per label set and text choice, for the process."""
    return ReportReader(label_set, keep_text)


def check_polarity(polarity: str | None) -> tuple[str, ...]:
    """The sentence polarities ``polarity`` matches (None: positive). Raises InvalidQuery."""
    choice = polarity or "positive"
    if choice not in POLARITY_CHOICES:
        raise InvalidQuery(f"unknown report polarity {choice!r}; expected one of {', '.join(POLARITY_CHOICES)}")
    return POLARITY_CHOICES[choice]


def report_ids(store: Store, text: str, polarity: str | None = None,
               reader: ReportReader | None = None) -> np.ndarray:
    """The ids (int64, sorted) of images whose study's report matches ``text`` (see the module docstring).
    Raises InvalidQuery for text without a word to search or an unknown polarity."""
    polarities = check_polarity(polarity)
    words = query_words(text)
    if not words:
        raise InvalidQuery(f"no word to search the reports for in {text!r}")
    labeller = (reader or reader_for()).labeller
    findings = sorted({mention.finding for mention in labeller.mentions(text)})
    return store.reports.search_ids(words, polarities, findings)
