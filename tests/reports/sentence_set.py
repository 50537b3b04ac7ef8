"""The labeller's measurement set (``data/sentences.tsv``) and its scoring, shared by the test and
``benchmarks/bench_labeller.py``.

One row per finding a sentence mentions: ``sentence``, ``finding`` and the expected ``polarity`` (one of
``POLARITIES``, or "none": mentioned but not to be labelled, e.g. "history of pneumonia"). A ``finding``
of "*" (polarity "none") says the sentence must label nothing.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from medsearch.reports.labeller import POLARITIES

SENTENCES = Path(__file__).parent / "data" / "sentences.tsv"
NONE = "none"
_RANK = {"negative": 0, "uncertain": 1, "positive": 2}


def load(path: Path = SENTENCES) -> dict[str, dict[str, str]]:
    """sentence -> {finding: expected polarity} ("*" rows give an empty dict), in file order."""
    out: dict[str, dict[str, str]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            expected = out.setdefault(row["sentence"], {})
            if row["finding"] != "*":
                expected[row["finding"]] = row["polarity"]
    return out


def is_korean(sentence: str) -> bool:
    return any("\uac00" <= char <= "\ud7a3" for char in sentence)


@dataclass
class Scores:
    """Counts of (expected, predicted) over rows; "none" stands for "not labelled" on either side."""

    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_finding: dict[str, Counter[tuple[str, str]]] = field(default_factory=dict)
    wrong: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add(self, sentence: str, finding: str, expected: str, predicted: str) -> None:
        self.pairs[(expected, predicted)] += 1
        self.by_finding.setdefault(finding, Counter())[(expected, predicted)] += 1
        if expected != predicted:
            self.wrong.append((sentence, finding, expected, predicted))

    def precision(self, polarity: str, pairs: Counter[tuple[str, str]] | None = None) -> float:
        pairs = self.pairs if pairs is None else pairs
        said = sum(n for (_, predicted), n in pairs.items() if predicted == polarity)
        return pairs[(polarity, polarity)] / said if said else float("nan")

    def recall(self, polarity: str, pairs: Counter[tuple[str, str]] | None = None) -> float:
        pairs = self.pairs if pairs is None else pairs
        expected = sum(n for (truth, _), n in pairs.items() if truth == polarity)
        return pairs[(polarity, polarity)] / expected if expected else float("nan")

    def accuracy(self, pairs: Counter[tuple[str, str]] | None = None) -> float:
        """The share of rows (and of labels no row expected) that are right."""
        pairs = self.pairs if pairs is None else pairs
        total = sum(pairs.values())
        return sum(n for (truth, predicted), n in pairs.items() if truth == predicted) / total if total else 0.0


def score(read: Callable[[str], list[tuple[str, str]]], sentences: dict[str, dict[str, str]]) -> Scores:
    """``read(sentence)`` -> [(finding, polarity)] scored against ``sentences``; a finding read twice in one
    sentence counts once, by the report rule (positive beats uncertain beats negative)."""
    scores = Scores()
    for sentence, expected in sentences.items():
        predicted: dict[str, str] = {}
        for finding, polarity in read(sentence):
            if finding not in predicted or _RANK[polarity] > _RANK[predicted[finding]]:
                predicted[finding] = polarity
        for finding in expected.keys() | predicted.keys():
            truth = expected.get(finding, NONE)
            scores.add(sentence, finding, truth, predicted.get(finding, NONE))
    return scores


assert set(_RANK) == set(POLARITIES)
