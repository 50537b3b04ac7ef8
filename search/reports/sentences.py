"""Splitting a radiology report into sentences.

A sentence ends at a line break, or at ".", "!" or "?" followed by a space, except after an abbreviation
("vs.", "e.g.", "Dr.") and inside a number ("1.5 cm"). List numbers and bullets ("1.", "2)", "-") are
dropped: "IMPRESSION: 1. No pneumothorax. 2. Small effusion." is "IMPRESSION:", "No pneumothorax.",
"Small effusion.". A semicolon does not end a sentence ("no pneumothorax; small left effusion" is one).
The same rules read Korean reports, whose sentences end in "." or a line break.

``label_terms`` gathers a label set's report terms, and ``Vocabulary`` finds them in a sentence's words
(plurals and a few modifiers between a term's words allowed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medsearch.labels.labelsets import LabelSet
from medsearch.language.glossary import Term, normalize
from medsearch.language.negation import split_words
from medsearch.language.vocabulary import foreign_script

ABBREVIATIONS = frozenset({"vs", "e.g", "i.e", "dr", "approx", "cf", "fig", "mr", "mrs", "ms", "st", "no", "etc"})
"""Words whose period does not end a sentence (lowered, without the final period)."""

_END = re.compile(r"[.!?]+(?=\s)")
_LIST_MARK = re.compile(r"^(?:\(?\d{1,2}[.)]|[-*•·])\s+")
_TRAILING_NUMBER = re.compile(r"\s\(?\d{1,2}[.)]$")
_ONLY_NUMBER = re.compile(r"^\(?\d{1,2}[.)]$")


def _ends_sentence(line: str, end: int) -> bool:
    """Whether the mark just before ``end`` (a period run, "!" or "?") ends a sentence."""
    if line[end - 1] != ".":
        return True
    word = line[:end - 1].rsplit(maxsplit=1)[-1].lower() if line[:end - 1].strip() else ""
    return word.lstrip("(") not in ABBREVIATIONS


def _pieces(line: str) -> list[str]:
    """One line's sentences, list numbers still on them."""
    pieces, start = [], 0
    for match in _END.finditer(line):
        if _ends_sentence(line, match.end()):
            pieces.append(line[start:match.end()])
            start = match.end()
    pieces.append(line[start:])
    return [piece.strip() for piece in pieces if piece.strip()]


def _clean(piece: str) -> str:
    """A piece without its leading bullet or list number, nor a list number at its end."""
    piece = _LIST_MARK.sub("", piece)
    return _TRAILING_NUMBER.sub("", piece).strip()


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` in order, stripped, without list numbers; none are empty. Never raises."""
    out: list[str] = []
    for line in text.splitlines():
        for piece in _pieces(line.strip()):
            if _ONLY_NUMBER.match(piece):
                continue
            cleaned = _clean(piece)
            if cleaned and not _ONLY_NUMBER.match(cleaned):
                out.append(cleaned)
    return out


# Finding terms in a sentence's words.

_SKIPPABLE_TEXT = ("mild mildly moderate moderately severe severely small large left right bilateral minimal trace "
                   "tiny slightly markedly significantly now again still also somewhat persistently the a newly")
SKIPPABLE = frozenset(_SKIPPABLE_TEXT.split())
"""Words that may stand between the words of a term ("heart is mildly enlarged", "blunting of the left
costophrenic angle"), at most ``MAX_SKIPPED`` in a row."""
MAX_SKIPPED = 2


def stem(word: str) -> str:
    """``word`` lowered, a plural's "s" or "ies" made singular ("effusions" -> "effusion"), so that a term
    matches its plural; words ending in "ss", "is" or "us" are kept ("atelectasis")."""
    word = word.lower()
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "is", "us")):
        return word[:-1]
    return word


@dataclass(frozen=True)
class Span:
    """A term found at ``words[start:end]``: the ``finding`` it names, and whether it is ``neutral``
    (named only by what it is judged on, see ``medsearch.reports.labeller``)."""

    start: int
    end: int
    finding: str
    neutral: bool


class Vocabulary:
    """Terms as stemmed words, by first word, longest first; ``spans`` finds them left to right."""

    def __init__(self, terms: list[tuple[str, str, bool]]) -> None:
        """``terms``: (text, finding, neutral) triples; a text of no words is skipped."""
        self._index: dict[str, list[tuple[tuple[str, ...], str, bool]]] = {}
        for text, finding, neutral in terms:
            words = tuple(stem(word) for word in split_words(text))
            if words:
                self._index.setdefault(words[0], []).append((words, finding, neutral))
        for entries in self._index.values():
            entries.sort(key=lambda entry: (-len(entry[0]), entry[2]))

    def spans(self, words: list[str]) -> list[Span]:
        """The terms in ``words`` (lowered), longest first at each position, not overlapping."""
        stems = [stem(word) for word in words]
        out, pos = [], 0
        while pos < len(stems):
            found = self._match(stems, pos)
            if found is None:
                pos += 1
                continue
            out.append(found)
            pos = found.end
        return out

    def _match(self, stems: list[str], pos: int) -> Span | None:
        for words, finding, neutral in self._index.get(stems[pos], ()):
            end = _match_from(stems, pos, words)
            if end is not None:
                return Span(pos, end, finding, neutral)
        return None


def _match_from(stems: list[str], pos: int, words: tuple[str, ...]) -> int | None:
    """Where ``words`` matched from ``stems[pos]`` end (``SKIPPABLE`` words allowed between them), or None."""
    at = pos + 1
    for word in words[1:]:
        skipped = 0
        while at < len(stems) and stems[at] != word and stems[at] in SKIPPABLE and skipped < MAX_SKIPPED:
            at, skipped = at + 1, skipped + 1
        if at >= len(stems) or stems[at] != word:
            return None
        at += 1
    return at


def finding_name(name: str) -> str:
    """A label's name in snake_case ("Pleural effusion" -> "pleural_effusion")."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or name


def label_terms(label_set: LabelSet) -> tuple[list[str], Vocabulary, dict[str, Term]]:
    """The finding names of ``label_set``, the vocabulary of its English terms, and its Korean terms as
    glossary terms. A label's terms are its ``synonyms`` (or, without any, its name with spaces, its
    display and Korean names) and its ``neutral_terms``. A Korean term's English is a word of its own,
    "<finding>_finding" (or "_neutral"), which the vocabulary holds too."""
    findings = [finding_name(label.name) for label in label_set.labels]
    terms: list[tuple[str, str, bool]] = []
    korean: dict[str, Term] = {}
    for label, finding in zip(label_set.labels, findings, strict=True):
        named = label.synonyms or tuple(t for t in (label.name.replace("_", " "), label.display, label.korean) if t)
        for texts, neutral in ((named, False), (label.neutral_terms, True)):
            marker = f"{finding}_{'neutral' if neutral else 'finding'}"
            terms.append((marker, finding, neutral))
            for text in texts:
                if foreign_script(text):
                    korean[normalize(text)] = Term(normalize(text), marker, "finding")
                else:
                    terms.append((text, finding, neutral))
    return findings, Vocabulary(terms), korean
