"""The report labeller's precision and recall (issue 34): per polarity, per finding and per language, on
the measurement set ``tests/reports/data/sentences.tsv`` and the held-out set ``heldout.tsv`` (written
before the labeller was run on it, never tuned on), and its speed in sentences per second.

    PYTHONPATH=. python benchmarks/bench_labeller.py [--label-set cxr-findings] [--repeat 20] [--errors]
        [--compare]

``--compare`` also labels the English sentences with negspacy (NegEx) and medspacy's ConText on spaCy,
each given the same vocabulary (the label set's English synonyms as an EntityRuler, case-insensitive,
plurals allowed), when they can be imported: they are not dependencies of medsearch (see
benchmarks/README.md for why, and for how they were installed for the measurement).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medsearch.labels.labelsets import load_label_set
from medsearch.language.vocabulary import foreign_script
from medsearch.reports.labeller import POLARITIES, ReportLabeller, split_sentences

from tests.reports.sentence_set import NONE, SENTENCES, Scores, is_korean, load, score

HELDOUT = SENTENCES.parent / "heldout.tsv"
Reader = Callable[[str], list[tuple[str, str]]]


def _pct(value: float) -> str:
    return "  -  " if math.isnan(value) else f"{value:5.3f}"


def table(name: str, scores: Scores) -> None:
    """Precision and recall per polarity, accuracy, and the errors' count."""
    rows = sum(scores.pairs.values())
    print(f"\n{name}: {rows} rows, accuracy {scores.accuracy():.3f}, errors {len(scores.wrong)}")
    print(f"  {'polarity':<10} {'precision':>9} {'recall':>7} {'expected':>8}")
    for polarity in (*POLARITIES, NONE):
        expected = sum(n for (truth, _), n in scores.pairs.items() if truth == polarity)
        precision, recall = _pct(scores.precision(polarity)), _pct(scores.recall(polarity))
        print(f"  {polarity:<10} {precision:>9} {recall:>7} {expected:>8}")


def by_finding(scores: Scores) -> None:
    print(f"\n  {'finding':<17} {'rows':>4} {'accuracy':>8} {'P(pos)':>6} {'R(pos)':>6} {'P(neg)':>6} {'R(neg)':>6} "
          f"{'P(unc)':>6} {'R(unc)':>6}")
    for finding, pairs in sorted(scores.by_finding.items()):
        cells = [_pct(f(p, pairs)) for p in POLARITIES for f in (scores.precision, scores.recall)]
        print(f"  {finding:<17} {sum(pairs.values()):>4} {scores.accuracy(pairs):>8.3f} {' '.join(cells)}")


def speed(labeller: ReportLabeller, sentences: list[str], repeat: int) -> None:
    """Sentences per second, one sentence at a time and as whole reports (sentences joined, split again)."""
    for name, texts in (("English", [s for s in sentences if not foreign_script(s)]),
                        ("Korean", [s for s in sentences if foreign_script(s)])):
        start = time.perf_counter()
        for _ in range(repeat):
            for sentence in texts:
                labeller.read_sentence(sentence)
        elapsed = time.perf_counter() - start
        print(f"  {name:<8} {len(texts) * repeat / elapsed:9.0f} sentences/s ({len(texts)} sentences x {repeat})")
    report = " ".join(s if s.endswith((".", "?", "!", ":")) else s + "." for s in sentences)
    count = len(split_sentences(report))
    start = time.perf_counter()
    for _ in range(repeat):
        labeller.label(report)
    elapsed = time.perf_counter() - start
    print(f"  report   {count * repeat / elapsed:9.0f} sentences/s (label() on one {len(report)}-character "
          f"report of {count} sentences x {repeat})")


def _spacy_pipeline(label_set_name: str, component: str) -> Any:
    """A blank English spaCy pipeline: sentencizer, an EntityRuler of the label set's English synonyms
    (lowercase, a plural "s" allowed on the last word), then ``component``."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    patterns = []
    for label in load_label_set(label_set_name).labels:
        for term in label.synonyms or (label.name.replace("_", " "),):
            if foreign_script(term):
                continue
            words = [token.text.lower() for token in nlp.make_doc(term)]
            tokens = [{"LOWER": word} for word in words[:-1]] + [{"LOWER": {"REGEX": f"^{words[-1]}(s|es)?$"}}]
            patterns.append({"label": label.name, "pattern": tokens})
    ruler.add_patterns(patterns)
    if component == "negex":
        from negspacy.negation import Negex  # noqa: F401 - registers the factory

        nlp.add_pipe("negex", config={"ent_types": [label.name for label in load_label_set(label_set_name).labels]})
    else:
        from medspacy.context import ConText  # noqa: F401 - registers the factory

        nlp.add_pipe("medspacy_context")
    return nlp


def _spacy_reader(nlp: Any, component: str) -> Reader:
    def read(sentence: str) -> list[tuple[str, str]]:
        out = []
        for entity in nlp(sentence).ents:
            if component == "negex":
                out.append((entity.label_, "negative" if entity._.negex else "positive"))
            elif entity._.is_historical or entity._.is_family:
                continue
            elif entity._.is_negated:
                out.append((entity.label_, "negative"))
            elif entity._.is_uncertain or entity._.is_hypothetical:
                out.append((entity.label_, "uncertain"))
            else:
                out.append((entity.label_, "positive"))
        return out

    return read


def negation_only(scores: Scores) -> None:
    """Negation alone, as NegEx reads it: over the rows expected positive or negative that the labeller
    found at all, the share whose negated / not negated reading is right."""
    found = {pair: n for pair, n in scores.pairs.items() if pair[0] in ("positive", "negative") and pair[1] != NONE}
    right = sum(n for (truth, read), n in found.items() if (truth == "negative") == (read == "negative"))
    total = sum(found.values())
    print(f"  negation only: {right}/{total} = {right / total:.3f} of the affirmed/negated rows it found")


def compare(label_set_name: str, labeller: ReportLabeller, english: dict[str, dict[str, str]], repeat: int) -> None:
    """negspacy and medspacy ConText beside ours, on the same English sentences and vocabulary."""
    readers: dict[str, Reader] = {"medsearch": labeller.read_sentence}
    for name, component in (("negspacy", "negex"), ("medspacy ConText", "context")):
        try:
            readers[name] = _spacy_reader(_spacy_pipeline(label_set_name, component), component)
        except ImportError as error:
            print(f"\n{name}: not importable ({error}); left out")
    for name, read in readers.items():
        scores = score(read, english)
        table(f"{name} (English sentences)", scores)
        negation_only(scores)
        start = time.perf_counter()
        for _ in range(max(1, repeat // 4)):
            for sentence in english:
                read(sentence)
        rate = len(english) * max(1, repeat // 4) / (time.perf_counter() - start)
        print(f"  speed {rate:.0f} sentences/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label-set", default="cxr-findings")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--errors", action="store_true", help="list every wrong row")
    parser.add_argument("--compare", action="store_true", help="also run negspacy and medspacy ConText")
    args = parser.parse_args()
    labeller = ReportLabeller.from_label_set(args.label_set)
    for name, path in (("measurement set", SENTENCES), ("held-out set", HELDOUT)):
        sentences = load(Path(path))
        korean = sum(1 for s in sentences if is_korean(s))
        print(f"\n=== {name}: {len(sentences)} sentences ({korean} Korean), {path.name}")
        scores = score(labeller.read_sentence, sentences)
        table("all", scores)
        by_finding(scores)
        for language, keep in (("English", False), ("Korean", True)):
            table(language, score(labeller.read_sentence, {s: e for s, e in sentences.items() if is_korean(s) == keep}))
        if args.errors:
            for sentence, finding, expected, predicted in scores.wrong:
                print(f"  WRONG {finding}: expected {expected}, read {predicted}: {sentence}")
    sentences = load()
    print("\nspeed (this machine):")
    speed(labeller, list(sentences), args.repeat)
    if args.compare:
        print("\n=== the same English sentences (measurement set), three labellers")
        compare(args.label_set, labeller, {s: e for s, e in sentences.items() if not is_korean(s)}, args.repeat)


if __name__ == "__main__":
    main()
