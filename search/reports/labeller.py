"""Reading findings from radiology reports: for each sentence, which findings of a vocabulary it mentions
and whether each is positive, negative or uncertain.

Rule-based, like NegEx / ConText and the CheXpert labeller, and built on the query parser's own reading
(``medsearch.language.negation``) so that the two never disagree about a negation cue: each mention of a
finding becomes one word, the parser labels the sentence's words affirmed or negated (its pre- and post-
negations, pseudo-negations such as "no change in", double negations, lists and terminators), and then
this module adds what a report needs beyond a query:

- hedges make an affirmed mention uncertain: before it ("possible", "likely", "suspicious for", "r/o",
  "cannot exclude", ...), after it ("cannot be excluded", "is suspected", a question mark) or both sides
  ("atelectasis versus pneumonia"); the parser's own hedges (its pseudo-negations with "exclude", "rule
  out", "possible") are among them;
- a negation cue after a comma list covers its bare items ("effusion, pneumothorax and consolidation
  are absent"; the parser reaches back to the last comma only);
- a historical mention ("history of pneumonia") is left out: it says nothing about this study;
- a neutral term ("heart size", from the label set's ``neutral_terms``) counts only when the sentence
  judges it: normal -> negative, enlarged -> positive, borderline -> uncertain ("heart size is stable"
  mentions nothing);
- "the lungs are clear" names no finding and labels none; "clear of X" negates X.

Korean sentences are first rebuilt in English by the query parser's glossary and grammar (``없음``, ``없는``,
``음성``, ``배제`` negate; ``의심``, ``가능성``, ``배제할 수 없음`` hedge; ``변화 없음`` keeps the finding), with
the label set's Korean synonyms added to the glossary.
"""

from __future__ import annotations

from dataclasses import dataclass

from medsearch.errors import InvalidQuery
from medsearch.labels.labelsets import LabelSet, load_label_set
from medsearch.language.glossary import Glossary, load_glossary, normalize
from medsearch.language.grammar import tokens
from medsearch.language.negation import NEG, PSEUDO_NEGATIONS, TERMINATORS, label_words, split_words
from medsearch.language.phrase import english
from medsearch.language.vocabulary import foreign_script
from medsearch.reports.sentences import SKIPPABLE, Span, label_terms, split_sentences

__all__ = ["POLARITIES", "Mention", "ReportLabeller", "split_sentences"]

POLARITIES = ("positive", "negative", "uncertain")
_RANK = {"negative": 0, "uncertain": 1, "positive": 2}
MAX_REPORT_CHARS = 100_000
"""The longest report text read (a long report is a few thousand characters); longer is refused."""

PARSER_HEDGES = tuple(cue for cue in PSEUDO_NEGATIONS if any(w in cue for w in ("exclud", "rule", "r/o", "possible")))
"""The query parser's pseudo-negations that hedge: they affirm a query's finding and make a report's uncertain."""
HEDGES_BEFORE = (
    "possibly", "probable", "probably", "likely", "most likely", "more likely", "presumably", "presumed",
    "may represent", "may reflect", "may be", "might be", "might represent", "could be", "could represent",
    "questionable", "question of", "suspicious for", "suspected", "suspect", "suspicion of", "suspicion for",
    "concerning for", "concern for", "worrisome for", "suggestive of", "suggesting", "suggests", "equivocal",
    "to rule out", "evaluate for", "assess for", "to exclude", "differential includes",
    "differential diagnosis includes", "borderline", "?",
    *(cue for cue in PARSER_HEDGES if "excluded" not in cue and "ruled out" not in cue),
)
"""Hedges before a finding: the affirmed findings after them, up to a terminator, are uncertain."""
HEDGES_AFTER = (
    "is possible", "are possible", "is suspected", "are suspected", "is likely", "is probable",
    "is questioned", "is a consideration", "is considered", "is also possible", "are also possible",
    "may be present", "might be present", "could be present", "?",
    *(cue for cue in PARSER_HEDGES if "excluded" in cue or "ruled out" in cue),
)
"""Hedges after a finding: the affirmed findings before them, back to a comma or terminator, are uncertain."""
HEDGES_BOTH = ("versus", "vs", "vs.", "or versus")
"""Alternatives: the findings on both sides are uncertain."""
HISTORY = ("history of", "hx of", "h/o", "known history of", "past history of", "prior history of",
           "remote history of", "past medical history of")
"""Cues of a historical mention: the findings after them, up to a terminator, are left out."""
JUDGED_NORMAL = ("normal", "within normal limits", "unremarkable", "not enlarged", "normal in size",
                 "normal size", "sharp", "clear", "preserved")
JUDGED_ABNORMAL = ("enlarged", "enlargement", "large", "increased", "prominent", "abnormal", "widened",
                   "blunted", "blunting", "obliterated")
JUDGED_BORDERLINE = ("borderline", "top normal", "top-normal", "upper limits of normal", "upper limit of normal",
                     "upper normal", "high normal", "at the upper limits of normal", "mildly prominent")
"""How a sentence judges a neutral term: negative, positive, uncertain (the nearest judgement counts)."""
JUDGED_WITHIN = 8
"""How many words before and after a neutral term a judgement may be (and a long sentence stays linear)."""
_VERB_TEXT = ("is are was were has have remains remain persists persist stable unchanged noted seen present "
              "appears appear demonstrated")
_VERBS = frozenset(_VERB_TEXT.split())
"""Words that make a comma's next item a clause of its own: a hedge before the comma does not reach it."""


@dataclass(frozen=True)
class Mention:
    """One finding mentioned in one sentence: ``finding`` (the vocabulary's name, e.g. "pleural_effusion"),
    ``polarity`` (one of ``POLARITIES``) and ``sentence`` (its index in ``split_sentences(text)``)."""

    finding: str
    polarity: str
    sentence: int


_Phrases = dict[str, list[tuple[tuple[str, ...], str]]]


def _phrases(*tables: tuple[tuple[str, ...], str]) -> _Phrases:
    """Cue phrases as lowered words, by first word, longest first: {first: [(words, kind), ...]}."""
    index: _Phrases = {}
    for phrases, kind in tables:
        for phrase in phrases:
            words = tuple(w.lower() for w in split_words(phrase))
            index.setdefault(words[0], []).append((words, kind))
    for entries in index.values():
        entries.sort(key=lambda entry: -len(entry[0]))
    return index


_SCOPE_CUES = _phrases((HEDGES_BOTH, "both"), (HEDGES_AFTER, "after"), (HEDGES_BEFORE, "before"),
                       (HISTORY, "history"), (TERMINATORS, "end"))
_JUDGEMENTS = _phrases((JUDGED_BORDERLINE, "uncertain"), (JUDGED_NORMAL, "negative"), (JUDGED_ABNORMAL, "positive"))


def _phrase_at(index: _Phrases, words: list[str], pos: int) -> tuple[str, int] | None:
    """The longest phrase of ``index`` at ``words[pos]``: (its kind, its length), or None."""
    for phrase, kind in index.get(words[pos], ()):
        if tuple(words[pos : pos + len(phrase)]) == phrase:
            return kind, len(phrase)
    return None


_MARK = "\x00"
"""A mention's one word, given to the parser in place of the term's words (a content word, not a cue)."""


class _Scopes:
    """Left to right over a sentence's words (mentions marked): which mentions a hedge makes uncertain
    and which a historical cue leaves out. A forward scope ends at a terminator, or at a comma whose next
    item is a clause of its own; a backward scope reaches back to the last comma or cue."""

    def __init__(self, words: list[str]) -> None:
        self.words = words
        self.uncertain: set[int] = set()
        self.history: set[int] = set()
        self.forward: set[int] | None = None
        self.clause_start = 0

    def run(self) -> _Scopes:
        pos = 0
        while pos < len(self.words):
            found = _phrase_at(_SCOPE_CUES, self.words, pos)
            if found is None:
                self._word(pos)
                pos += 1
            else:
                self._cue(found[0], pos, found[1])
                pos += found[1]
        return self

    def _word(self, pos: int) -> None:
        word = self.words[pos]
        if word == ",":
            if self.forward is not None and self._clause_follows(pos + 1):
                self.forward = None
            self.clause_start = pos + 1
        elif word.startswith(_MARK) and self.forward is not None:
            self.forward.add(pos)

    def _cue(self, kind: str, pos: int, length: int) -> None:
        back = [i for i in range(self.clause_start, pos) if self.words[i].startswith(_MARK)]
        if kind == "end":
            self.forward = None
        elif kind == "history":
            self.forward = self.history
        elif kind == "before":
            self.forward = self.uncertain
        else:  # after, both: what is before; forward too for "both", or when nothing is before
            self.uncertain.update(back)
            self.forward = self.uncertain if kind == "both" or not back else None
        self.clause_start = pos + length

    def _clause_follows(self, pos: int) -> bool:
        """Whether the item from ``pos`` to the next comma or cue has a verb ("..., effusion is stable")."""
        while pos < len(self.words) and self.words[pos] != "," and _phrase_at(_SCOPE_CUES, self.words, pos) is None:
            if self.words[pos] in _VERBS:
                return True
            pos += 1
        return False


_BOUNDARIES = frozenset({",", *(cue for cue in TERMINATORS if " " not in cue)})


def _judgement(words: list[str], pos: int) -> str | None:
    """How the clause around the neutral mention at ``pos`` (at most ``JUDGED_WITHIN`` words each side)
    judges it (the nearest judgement; after it when two are as near): a polarity, or None."""
    start, end = pos, pos + 1
    while start > max(0, pos - JUDGED_WITHIN) and words[start - 1] not in _BOUNDARIES:
        start -= 1
    while end < min(len(words), pos + 1 + JUDGED_WITHIN) and words[end] not in _BOUNDARIES:
        end += 1
    best: tuple[int, int, str] | None = None
    at = start
    while at < end:
        found = _phrase_at(_JUDGEMENTS, words, at) if at != pos else None
        if found is None:
            at += 1
            continue
        kind, length = found
        distance = (at - pos, 0) if at > pos else (pos - (at + length - 1), 1)
        if best is None or distance < best[:2]:
            best = (*distance, kind)
        at += length
    return best[2] if best else None


def _marked(words: list[str], spans: list[Span]) -> tuple[list[str], list[int]]:
    """``words`` with each span replaced by one mark word, and where each span's mark is."""
    out: list[str] = []
    positions: list[int] = []
    last = 0
    for number, span in enumerate(spans):
        out += words[last:span.start]
        positions.append(len(out))
        out.append(f"{_MARK}{number}")
        last = span.end
    return out + words[last:], positions


_JOINERS = ("and", "or", "nor")


def _negate_whole_lists(words: list[str], labels: list[str]) -> None:
    """A cue after a list negates all of it: "effusion, pneumothorax and consolidation are absent" (the
    parser reaches back to the last comma only). A mention before a comma is negated when it is its item's
    only word and the item after the comma is a negated mention (modifiers allowed), in a list joined by
    "and", "or" or "nor"; right to left, so a longer list follows."""
    for comma in range(len(words) - 2, 0, -1):
        if words[comma] != "," or not _alone(words, comma - 1) or labels[comma - 1] == NEG:
            continue
        right, joined = comma + 1, False
        while right < len(words) and (words[right] in SKIPPABLE or words[right] in _JOINERS):
            joined, right = joined or words[right] in _JOINERS, right + 1
        negated = right < len(words) and words[right].startswith(_MARK) and labels[right] == NEG
        if negated and (joined or _joined_after(words, right)):
            labels[comma - 1] = NEG


def _alone(words: list[str], pos: int) -> bool:
    """Whether ``words[pos]`` is a mention standing alone between the sentence's start or commas."""
    return words[pos].startswith(_MARK) and (pos == 0 or words[pos - 1] == ",")


def _joined_after(words: list[str], pos: int) -> bool:
    """Whether the list of mentions going on after ``pos`` (commas, modifiers) reaches "and", "or" or "nor"."""
    pos += 1
    while pos < len(words) and (words[pos] in SKIPPABLE or words[pos] == "," or words[pos].startswith(_MARK)):
        pos += 1
    return pos < len(words) and words[pos] in _JOINERS


def _polarity(span: Span, label: str, judged: str | None, uncertain: bool) -> str | None:
    """A mention's polarity: negated by the parser, else judged (a neutral term), else hedged or positive;
    None for a neutral term the sentence does not judge."""
    if label == NEG:
        return "negative"
    if span.neutral and judged != "positive":
        return judged
    return "uncertain" if uncertain else "positive"


class ReportLabeller:
    """Reads the findings of one vocabulary (a label set's labels) from report text. Pure and cheap: no
    model; one labeller may be shared between threads."""

    def __init__(self, label_set: LabelSet) -> None:
        """The labeller of ``label_set``'s labels (their terms: ``medsearch.reports.sentences.label_terms``);
        Korean terms are added to the glossary that rebuilds Korean sentences in English."""
        self._findings, self._vocabulary, korean = label_terms(label_set)
        glossary = load_glossary([])
        self._glossary: Glossary = glossary.merged(Glossary(korean)) if korean else glossary

    @classmethod
    def from_label_set(cls, name_or_path: str = "cxr-findings") -> ReportLabeller:
        """The labeller of a built-in label set (by name) or a label-set TOML file (by path). Raises
        ``InvalidQuery`` as ``medsearch.labels.labelsets.load_label_set`` does."""
        return cls(load_label_set(name_or_path))

    def findings(self) -> list[str]:
        """The vocabulary's finding names, in the label set's order."""
        return list(self._findings)

    def mentions(self, text: str) -> list[Mention]:
        """Every finding each sentence of ``text`` mentions, with its polarity, in sentence order (a finding
        twice in one sentence with one polarity is one mention). Raises ``InvalidQuery`` for a text that
        is not a string or is longer than ``MAX_REPORT_CHARS``."""
        if not isinstance(text, str):
            raise InvalidQuery(f"report text must be a string, not {type(text).__name__}")
        if len(text) > MAX_REPORT_CHARS:
            raise InvalidQuery(f"report text of {len(text)} characters is too long (at most {MAX_REPORT_CHARS})")
        return [Mention(finding, polarity, index) for index, sentence in enumerate(split_sentences(text))
                for finding, polarity in self.read_sentence(sentence)]

    def label(self, text: str) -> dict[str, str]:
        """The report's label per mentioned finding: positive if any sentence affirms it, else uncertain if
        any hedges it, else negative. Raises ``InvalidQuery`` as ``mentions`` does."""
        out: dict[str, str] = {}
        for mention in self.mentions(text):
            if mention.finding not in out or _RANK[mention.polarity] > _RANK[out[mention.finding]]:
                out[mention.finding] = mention.polarity
        return out

    def read_sentence(self, sentence: str) -> list[tuple[str, str]]:
        """(finding, polarity) for each finding one sentence mentions, in order, without repeats."""
        if foreign_script(sentence):
            sentence = english([t for t in tokens(self._glossary, normalize(sentence)) if t.kind != "unknown"])
        words = [word.lower() for word in split_words(sentence)]
        spans = self._vocabulary.spans(words)
        if not spans:
            return []
        marked, positions = _marked(words, spans)
        labels = label_words(marked)
        _negate_whole_lists(marked, labels)
        scopes = _Scopes(marked).run()
        out = []
        for span, pos in zip(spans, positions, strict=True):
            if pos in scopes.history:
                continue
            judged = _judgement(marked, pos) if span.neutral else None
            polarity = _polarity(span, labels[pos], judged, pos in scopes.uncertain)
            if polarity is not None:
                out.append((span.finding, polarity))
        return list(dict.fromkeys(out))
