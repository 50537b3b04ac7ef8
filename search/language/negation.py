"""Negation in English query text: which findings a query affirms and which it negates.

Vision-language models read "no pneumothorax" next to "pneumothorax", so a negated finding must never be
embedded as a positive. The parser works like NegEx (Chapman et al. 2001) over words: a cue before a
finding ("no", "without", "negative for", "free of", "absence of", ...) negates the findings after it up
to a terminator ("but", "with", "however", ";", ".", ...), across lists joined by "and", "or", "nor" and
commas; a cue after a finding ("absent", "ruled out", "not seen", ...) negates the findings before it back
to a comma or terminator. Pseudo-negations keep their finding affirmed: "no change in", "no interval
change in", "not only"; hedges too ("cannot be excluded", "cannot rule out", "not ruled out"); a double
negation ("not without", "not absent") affirms. Phrases that mean a normal study ("no significant
abnormality", "no acute cardiopulmonary process") are one affirmed phrase, kept as typed.

Korean text reaches this parser as the English the glossary builds (``medsearch.language.phrase`` writes
negated findings as "no A or B" and separates them from affirmed ones by "; ").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medsearch.errors import InvalidQuery

PRE_NEGATIONS = (
    "no", "not", "without", "absent", "absence of", "negative for", "free of", "no evidence of",
    "no signs of", "no sign of", "no findings of", "no evidence for", "ruled out", "rule out of", "neither",
    "nor", "never", "denies", "excluding", "exclusion of", "resolution of", "resolved", "none", "clear of",
)
POST_NEGATIONS = (
    "absent", "ruled out", "is ruled out", "was ruled out", "excluded", "is excluded", "was excluded",
    "not seen", "is not seen", "are not seen", "was not seen", "not identified", "is not identified",
    "not present", "is not present", "are not present", "not detected", "is not detected", "negative",
    "is negative", "resolved", "has resolved", "is absent", "are absent", "not visualized",
    "not demonstrated", "not noted", "is gone", "no longer seen", "is no longer seen", "are no longer seen",
    "no longer visible", "is no longer visible", "no longer present", "is no longer present",
    "no longer identified", "is no longer identified", "no longer visualized", "is no longer visualized",
    "have resolved", "has cleared", "have cleared",
)
PSEUDO_NEGATIONS = (
    "no change in", "no change of", "no interval change in", "no significant change in", "no increase in",
    "no decrease in", "no worsening of", "not only", "no new change in", "unchanged", "no longer absent",
    "not without", "not absent", "not negative for", "not excluded", "not ruled out", "cannot be excluded",
    "can not be excluded", "cannot be ruled out", "can not be ruled out", "cannot exclude", "cannot rule out",
    "can't exclude", "can't rule out", "could not be excluded", "not be excluded", "not be ruled out",
    "rule out", "r/o", "possible", "no doubt", "partial resolution of", "partially resolved",
    "incomplete resolution of", "not resolved", "not completely resolved", "not fully resolved",
    "no significant interval change in", "no interval change of", "cannot be entirely excluded",
    "cannot be completely excluded", "cannot be entirely ruled out", "cannot be completely ruled out",
    "not entirely excluded", "not completely excluded",
)
"""Cues that look like negations but affirm (or hedge) the finding they name; their words are dropped."""
NORMAL_PHRASES = (
    "no significant abnormality", "no significant abnormalities", "no acute abnormality",
    "no acute abnormalities", "no abnormality", "no abnormalities", "no abnormal findings",
    "no acute findings", "no acute cardiopulmonary process", "no acute cardiopulmonary abnormality",
    "no acute cardiopulmonary disease", "no active lung disease", "no acute disease", "no acute process",
    "nothing abnormal",
)
"""Phrases a report uses for a normal study: one affirmed phrase each, embedded as typed."""
AFFIRMATIONS = ("present", "is present", "are present", "seen", "is seen", "are seen", "noted", "is noted",
                "identified", "is identified", "persists", "remains", "there is", "there are")
"""A cue after a finding inside a negated list that affirms it and ends the negation."""
TERMINATORS = ("but", "however", "with", "although", "though", "yet", "except", "whereas", "while",
               "showing", "shows", "show", "demonstrating", "demonstrates", "consistent with", "suggesting",
               "which", "apart from", "aside from", "plus", "and with", "and there is", "and there are",
               ";", ".", ":", "!", "?")
"""Words that end a negation's scope; the words after them are affirmed again."""
LIST_WORDS = ("and", "or", "nor", ",", "&", "/")
"""Words that join a list: a negation before the list covers every item."""
_STOPWORD_TEXT = (
    "a an the of in on at to for from by as is are was were be been being this that these those it its "
    "there here any some and or nor but with without no not none never any all please show me find image "
    "images picture pictures of what which who whose how where when do does did can could should would "
    "i you we they he she them us my your our their ? ! . , ; : - / & ( ) [ ] ' \"")
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
"""Words that carry no finding: a query of only these (and cues) has no content and is refused."""
_CONNECTORS = frozenset({"and", "or", "nor", ",", "&", "/", "with", "but", "any", "the", "of", "in", "for", ";",
                         ".", ":", "!", "?"})
_WORD = re.compile(r"[^\W_][\w'\-+]*(?:/[^\W_]+)*|[;.,:!?&/]")

NO_CONTENT = ("no search term in {text!r}: give a finding, an anatomy or a modality "
              "(e.g. \"pneumonia\", \"no pneumothorax\", \"폐렴\", \"기흉 없음\")")
"""The one line a query with no content word is refused with, in either language."""

AFF, NEG, CUE, SEP, END = "affirmed", "negated", "cue", "separator", "end"


@dataclass(frozen=True)
class ParsedQuery:
    """A query's meaning: ``text`` as typed, the ``affirmed`` phrases (in order; the whole text when it
    has no negation), the ``negated`` findings, and the words not understood (Korean)."""

    text: str
    affirmed: tuple[str, ...]
    negated: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()

    @property
    def positive(self) -> str:
        """The text embedded as the positive part: the affirmed phrases joined by "and" ("" when none)."""
        return " and ".join(self.affirmed)


def _cue_index() -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """Every cue phrase as words, by its first word: (table, words), longest first (ties: table order)."""
    tables = {"normal": NORMAL_PHRASES, "pseudo": PSEUDO_NEGATIONS, "post": POST_NEGATIONS,
              "affirm": AFFIRMATIONS, "pre": PRE_NEGATIONS, "end": TERMINATORS}
    index: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for table, phrases in tables.items():
        for phrase in phrases:
            words = tuple(_WORD.findall(phrase))
            index.setdefault(words[0], []).append((table, words))
    for entries in index.values():
        entries.sort(key=lambda entry: -len(entry[1]))
    return index


_CUES = _cue_index()
_BOTH_WAYS = [_WORD.findall(cue) for cue in set(PRE_NEGATIONS) & set(POST_NEGATIONS)]
"""Cues that negate what follows when nothing comes before them ("absent pneumothorax")."""


def _cue_at(words: list[str], pos: int, skip: str = "") -> tuple[str, int] | None:
    """The longest cue starting at ``words[pos]`` (none from table ``skip``): (its table, its length in
    words); of two as long, the normal phrase, then pseudo-negation, post, affirmation, pre, terminator."""
    for table, phrase in _CUES.get(words[pos], ()):
        if table != skip and tuple(words[pos : pos + len(phrase)]) == phrase:
            return table, len(phrase)
    return None


class _Labeller:
    """Left to right over lowered words, labelling each AFF, NEG, CUE, SEP or END."""

    def __init__(self, words: list[str]) -> None:
        self.words = words
        self.labels: list[str] = []
        self.negating = False
        self.item_start = 0
        self.cue_end = 0

    def run(self) -> list[str]:
        pos = 0
        while pos < len(self.words):
            pos = self._step(pos)
        return self.labels

    def _step(self, pos: int) -> int:
        found = _cue_at(self.words, pos)
        word = self.words[pos]
        if found is None:
            if word in LIST_WORDS:
                self.labels.append(SEP)
                self.item_start = len(self.labels)
            else:
                self.labels.append(NEG if self.negating else AFF)
            return pos + 1
        table, length = found
        if table == "post" and not self._item_words() and self.words[pos : pos + length] not in _BOTH_WAYS:
            found = _cue_at(self.words, pos, skip="post")  # "not seen X": "not"; "negative pressure": a word
            if found is None:
                self.labels.append(NEG if self.negating else AFF)
                return pos + 1
            table, length = found
        self._cue(table, length, word)
        self.item_start = len(self.labels)
        return pos + length

    def _cue(self, table: str, length: int, word: str) -> None:
        """Label a cue of ``length`` words from ``table`` (and relabel its scope before it)."""
        if table == "normal":
            self.labels += [AFF] * length
            return
        self.labels += [END if table == "end" else CUE] * length
        if table == "post" and self._item_words(length):
            self._relabel(self._back_to_comma(len(self.labels) - length), NEG)
            self.negating = False
        elif table == "affirm" and self.negating and not self._item_words(length):
            pass  # "not seen X": the negation goes on
        elif table == "affirm" and self.negating and self.item_start > self.cue_end and self._after_comma():
            self._relabel(self.item_start, AFF)  # "no pneumothorax, effusion is present"
            self.negating = False
        elif table in ("pre", "post"):
            self.negating, self.cue_end = True, len(self.labels)
        elif table == "end":
            self.negating = self.negating and word == ":" and not self._item_words(length)  # "not seen: X"
        else:  # pseudo-negation, hedge, or an affirmation ending a negation: the finding stays affirmed
            self.negating = False

    def _after_comma(self) -> bool:
        """Whether the list item being read follows a comma ("no A, B is seen"; not "no A or B is seen")."""
        return self.item_start > 0 and self.words[self.item_start - 1] == ","

    def _item_words(self, skip_last: int = 0) -> bool:
        """Whether the list item being read has a content word yet (less its last ``skip_last`` labels)."""
        start, stop = self.item_start, len(self.labels) - skip_last
        return any(self.labels[i] in (AFF, NEG) and self.words[i] not in STOPWORDS for i in range(start, stop))

    def _back_to_comma(self, start: int) -> int:
        """Where a post-negation's scope starts, from ``start`` back: after the last comma, cue or
        terminator."""
        while start > 0 and self.labels[start - 1] in (AFF, NEG, SEP) and self.words[start - 1] != ",":
            start -= 1
        return start

    def _relabel(self, start: int, label: str) -> None:
        for i in range(start, len(self.labels)):
            if self.labels[i] in (AFF, NEG):
                self.labels[i] = label


def _runs(spans: list[str], labels: list[str], keep: str, joiners: tuple[str, ...]) -> list[str]:
    """Maximal runs of words labelled ``keep`` (joined across ``joiners`` labels), with connectors stripped
    from both ends; runs of stopwords only are dropped."""
    runs: list[list[str]] = [[]]
    for span, label in zip(spans, labels, strict=True):
        if label == keep or (label in joiners and runs[-1]):
            runs[-1].append(span)
        elif runs[-1]:
            runs.append([])
    out = []
    for run in runs:
        while run and run[-1].lower() in _CONNECTORS:
            run.pop()
        while run and run[0].lower() in _CONNECTORS:
            run.pop(0)
        if has_content(" ".join(run)):
            out.append(_join(run))
    return out


def _join(words: list[str]) -> str:
    return re.sub(r"\s+([,;.:!?])", r"\1", " ".join(words))


def split_words(text: str) -> list[str]:
    """The words and punctuation marks of ``text`` as this parser reads them (case kept)."""
    return _WORD.findall(text)


def label_words(words: list[str]) -> list[str]:
    """Each of the lowered ``words`` labelled ``AFF`` (affirmed), ``NEG`` (negated), ``CUE`` (a cue's
    word), ``SEP`` (a list word) or ``END`` (a terminator): the parser's reading, word by word, which the
    report labeller (``medsearch.reports.labeller``) shares so that the two never disagree about a cue."""
    return _Labeller(words).run()


def has_content(text: str) -> bool:
    """Whether ``text`` has a word that is neither a stopword nor a negation word (a finding)."""
    return any(word.lower() not in STOPWORDS for word in _WORD.findall(text))


def parse_english(text: str) -> ParsedQuery:
    """The affirmed and negated phrases of an English ``text`` (spelling and case as typed). A text
    without any negation is affirmed whole, exactly as typed. Raises InvalidQuery for a text with no
    content word (only stopwords, punctuation or negation words: "the of and", "?", "no")."""
    if not has_content(text):
        raise InvalidQuery(NO_CONTENT.format(text=text))
    spans = _WORD.findall(text)
    labels = _Labeller([span.lower() for span in spans]).run()
    if all(label in (AFF, SEP, END) for label in labels):
        return ParsedQuery(text, (text,))
    affirmed = _runs(spans, labels, AFF, (SEP, END))
    negated = _runs(spans, labels, NEG, ())
    if not affirmed and not negated:
        raise InvalidQuery(NO_CONTENT.format(text=text))
    return ParsedQuery(text, tuple(affirmed), tuple(dict.fromkeys(negated)))
