"""A report's text -> what the store keeps of it (``medsearch.storage.reports.ReportRecord``): the
labeller's label per finding, one sentence row per finding mention (de-identified unless the text is
kept; ``medsearch.reports.deidentify``), and the text itself only when asked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

from medsearch.errors import InvalidQuery
from medsearch.labels.labelsets import load_label_set
from medsearch.language.vocabulary import foreign_script
from medsearch.reports.deidentify import Vocabulary, in_english
from medsearch.reports.labeller import Mention, ReportLabeller, split_sentences
from medsearch.storage.reports import NO_FINDING, RawReport, ReportRecord, StudyKey

DEFAULT_LABEL_SET = "cxr-findings"
MAX_REPORT_CHARS = 100_000
"""A report longer than this is refused (a radiology report is a few thousand characters)."""
_RANK = {"negative": 0, "uncertain": 1, "positive": 2}
MAX_SENTENCE_CHARS = 2_000
"""A sentence row keeps at most this many characters (of its de-identified or kept text)."""


@dataclass
class ReportReader:
    """Reads report texts with one labeller (made on first use) and one vocabulary."""

    label_set: str = DEFAULT_LABEL_SET
    keep_text: bool = False

    def __post_init__(self) -> None:
        self._labeller: ReportLabeller | None = None
        self._vocabulary: Vocabulary | None = None
        self._version: str | None = None

    @property
    def labeller(self) -> ReportLabeller:
        """The labeller of ``label_set``. Raises InvalidQuery for an unknown label set."""
        if self._labeller is None:
            self._labeller = ReportLabeller.from_label_set(self.label_set)
        return self._labeller

    @property
    def vocabulary(self) -> Vocabulary:
        if self._vocabulary is None:
            try:
                labels = load_label_set(self.label_set).labels
                prompts = [p for label in labels for p in (*label.prompts, *getattr(label, "synonyms", ()))]
            except InvalidQuery:
                prompts = []
            self._vocabulary = Vocabulary.build(self.labeller.findings(), prompts)
        return self._vocabulary

    @property
    def version(self) -> str:
        """What read the labels: the labeller's own version when it has one, else medsearch's version and
        the label set's digest (``medsearch 0.1.0; cxr-findings 3f2a...``)."""
        if self._version is None:
            own = getattr(self.labeller, "VERSION", None)
            try:
                digest = load_label_set(self.label_set).digest()[:12]
            except InvalidQuery:
                digest = "?"
            self._version = str(own) if own else f"medsearch {_package_version()}; {self.label_set} {digest}"[:64]
        return self._version

    def read(self, study: StudyKey, text: str, source: str, accession_key: str | None = None) -> ReportRecord:
        """The record of one report. Raises InvalidQuery for an empty or overlong text."""
        check_text(text)
        mentions = self.labeller.mentions(text)
        return ReportRecord(study, source, self.label_set, self.version, report_labels(mentions),
                            self.sentences(text, mentions), text if self.keep_text else None, accession_key)

    def sentences(self, text: str, mentions: list[Mention]) -> list[tuple[str, str, str]]:
        """(finding, polarity, sentence) rows: one per mention (of ``mentions``, the labeller's of
        ``text``), and one (``""``, ``none``) per sentence without one; the sentence de-identified unless
        the text is kept; empty ones left out."""
        shown: Callable[[str], str] = _as_kept if self.keep_text else self.vocabulary.deidentify
        by_sentence: dict[int, list[tuple[str, str]]] = {}
        for mention in mentions:
            by_sentence.setdefault(mention.sentence, []).append((mention.finding, mention.polarity))
        rows: list[tuple[str, str, str]] = []
        for index, sentence in enumerate(split_sentences(text)):
            words = shown(sentence)[:MAX_SENTENCE_CHARS]
            if words:
                rows.extend((finding, polarity, words)
                            for finding, polarity in by_sentence.get(index) or [("", NO_FINDING)])
        return rows

    def read_raw(self, raw: RawReport) -> ReportRecord:
        """The record of a report read by the indexer (a structured report). Raises InvalidQuery."""
        return self.read(raw.study, raw.text, raw.source, raw.accession_key)


def report_labels(mentions: list[Mention]) -> dict[str, str]:
    """The report's label per finding from its mentions, as ``ReportLabeller.label`` gives it (positive
    beats uncertain beats negative), without reading the text twice."""
    labels: dict[str, str] = {}
    for mention in mentions:
        if _RANK[mention.polarity] > _RANK.get(labels.get(mention.finding, ""), -1):
            labels[mention.finding] = mention.polarity
    return labels


def _as_kept(sentence: str) -> str:
    """A kept sentence as indexed: as given, and a Korean one followed by its English (``in_english``), so
    that a search in either language finds it."""
    sentence = sentence.strip()
    return sentence if not foreign_script(sentence) else f"{sentence} ({in_english(sentence)})"


def _package_version() -> str:
    try:
        return metadata.version("medsearch")
    except metadata.PackageNotFoundError:
        return "unknown"


def check_text(text: str) -> None:
    """Raise InvalidQuery for a report text that is empty or longer than ``MAX_REPORT_CHARS``."""
    if not text.strip():
        raise InvalidQuery("the report text is empty")
    if len(text) > MAX_REPORT_CHARS:
        raise InvalidQuery(f"the report text is longer than {MAX_REPORT_CHARS} characters")
