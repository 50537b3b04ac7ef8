"""What of a report sentence may be stored when its text is not kept: the PHI rule.

The rule is an allow-list, not a detector of identifiers: a sentence keeps only its words that are in
``Vocabulary`` (lower-cased, in their order), and everything else is dropped without a trace: names,
identifiers (MRN, accession), dates, times, numbers, addresses, and any word the list does not know. A
detector (names by capitalisation, dates by pattern) misses the forms nobody foresaw; an allow-list fails
safe, since what it does not know is dropped. A token with a digit is dropped even when its letters are
known ("2024pneumonia"). The price: a misspelt or rare finding word is not searchable unless the text is
kept (``--keep-report-text``).

The vocabulary is medical and content-only: the English of the glossary (``medsearch.language``), the words of
the label set's prompts and of the labeller's findings, and ``CLINICAL_WORDS`` (anatomy, side, size,
severity, devices); function words (``medsearch.language.negation.STOPWORDS``) and negation cues are not
in it, because the sentence's polarity is stored with it (a mention's label), so searching needs only the
content words. A person whose name is also a medical word ("Mass", "Hernia") keeps that one word, with
nothing around it that says it is a name."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from medsearch.language.glossary import Glossary, builtin_glossary, load_glossary, normalize
from medsearch.language.grammar import tokens
from medsearch.language.negation import STOPWORDS
from medsearch.language.phrase import english
from medsearch.language.vocabulary import foreign_script

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)

_CLINICAL_TEXT = (
    "left right bilateral unilateral upper lower middle mid base bases basal apex apical apices lobe "
    "lobes lung lungs lingula hilar hilum hila perihilar central peripheral lateral medial anterior "
    "posterior superior inferior retrocardiac retrosternal subpleural subsegmental segmental "
    "costophrenic cardiophrenic angle angles diaphragm hemidiaphragm hemidiaphragms mediastinum "
    "mediastinal heart cardiac cardiomediastinal silhouette aorta aortic aortic knob trachea tracheal "
    "bronchus bronchi bronchial airway airways pleura pleural pleuritic chest thorax thoracic rib ribs "
    "clavicle clavicles spine vertebral vertebra vertebrae shoulder soft tissue tissues abdomen "
    "abdominal bowel stomach liver small large tiny trace minimal mild moderate severe marked massive "
    "extensive diffuse focal patchy multifocal scattered streaky linear nodular reticular interstitial "
    "alveolar airspace confluent dense hazy ill defined new old chronic acute subacute stable unchanged "
    "improved improving worsened worsening increased increasing decreased decreasing persistent residual "
    "resolving interval prior previous effusion effusions pneumothorax pneumothoraces consolidation "
    "consolidations opacity opacities opacification atelectasis atelectatic edema oedema congestion "
    "vascular vasculature cephalization cardiomegaly enlarged enlargement enlarge pneumonia infection "
    "infiltrate infiltrates nodule nodules mass masses lesion lesions fracture fractures fractured "
    "emphysema emphysematous hyperinflation hyperinflated fibrosis fibrotic scarring scar thickening "
    "calcification calcified calcifications granuloma granulomas lymphadenopathy adenopathy widened "
    "widening tortuous tortuosity hernia hiatal pneumoperitoneum free air fluid tube tubes line lines "
    "catheter catheters picc port pacemaker leads lead wire wires sternotomy clips endotracheal "
    "nasogastric enteric drain chest tube tip tips projects placement positioned malpositioned normal "
    "abnormal abnormality abnormalities unremarkable clear finding findings impression cardiopulmonary "
    "process disease pulmonary lobar segmental aspiration collapse volume loss blunting "
)
CLINICAL_WORDS = frozenset(_CLINICAL_TEXT.split())
"""Radiology words of reports beyond the glossary and the label set: anatomy, side, size, severity, time,
findings and devices."""


class Vocabulary:
    """The words a de-identified sentence may keep (lower-case, no digits, no function words)."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = frozenset(word for word in (w.lower() for w in words)
                               if word and word not in STOPWORDS and not any(ch.isdigit() for ch in word))

    @classmethod
    def build(cls, findings: Iterable[str] = (), prompts: Iterable[str] = ()) -> Vocabulary:
        """The clinical words, the glossary's English, and the words of ``findings`` (snake_case names) and
        ``prompts`` (label set prompts)."""
        words: set[str] = set(CLINICAL_WORDS)
        for term in builtin_glossary().terms.values():
            words.update(_TOKEN.findall(term.english))
        for finding in findings:
            words.update(finding.replace("_", " ").split())
        for prompt in prompts:
            words.update(_TOKEN.findall(prompt))
        return cls(words)

    def deidentify(self, sentence: str) -> str:
        """The sentence's known words, lower-cased, joined by single spaces ("" when none is known); a
        Korean sentence's words are those of its English (``in_english``)."""
        words = _TOKEN.findall(in_english(sentence))
        return " ".join(word for word in (t.lower() for t in words) if word in self.words)


def in_english(text: str) -> str:
    """``text`` itself, or, when it has letters of another script (Korean), the English the query parser's
    glossary and grammar rebuild from it (words they do not know, names among them, are left out)."""
    if not foreign_script(text):
        return text
    return english([token for token in tokens(_glossary(), normalize(text)) if token.kind != "unknown"])


@functools.cache
def _glossary() -> Glossary:
    return load_glossary([])


def query_words(text: str) -> list[str]:
    """The words of a report search that a sentence must hold: lower-cased, without function words; a
    Korean search in its English (``in_english``), as Korean sentences are indexed."""
    return [word for word in (t.lower() for t in _TOKEN.findall(in_english(text))) if word not in STOPWORDS]
