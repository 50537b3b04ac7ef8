"""Negation on the trained tiny model (issue 31): a gallery of drawn shapes, alone and in pairs, searched
with "A without B" and "no B", embedded as typed against negation-aware (the affirmed text as the positive
part, each negated shape as a negative part of weight w), through ``Medsearch.search``.

For each ordered pair of shapes (A, B): "a red circle without a blue square" and "a red circle with no
blue square"; and for each shape B: "no blue square". Per method, over the queries: ``affirmed@k`` (the
share of the top k holding A; for "no B" queries not counted), ``negated@k`` (the share holding B: lower
is better), and ``exact@k`` (the share holding A and not B).

    PYTHONPATH=. python benchmarks/bench_negation.py [--per-kind 8] [--k 10] [--model DIR]

Without ``--model`` it trains the tiny model (or reuses ``MEDSEARCH_TEST_MODEL_CACHE``'s). Prints a table.
"""

from __future__ import annotations

import argparse
import tempfile
from itertools import permutations
from pathlib import Path

import numpy as np
from medsearch.api import Medsearch
from medsearch.indexer.pipeline import IndexSettings
from medsearch.language import meaning
from medsearch.query.spec import QuerySpec

from tests.conftest import reuse_trained
from tests.language.shape_pairs import SHAPES, caption, write_gallery
from tests.tiny_siglip import train_tiny_siglip

WEIGHTS = (0.25, 0.5, 0.75, 1.0, 1.5)


def queries() -> list[tuple[str, str | None, str]]:
    """(text, affirmed shape or None, negated shape)."""
    out: list[tuple[str, str | None, str]] = []
    for a, b in permutations(SHAPES, 2):
        out.append((f"{caption(a)} without {caption(b)}", a, b))
        out.append((f"{caption(a)} with no {caption(b).removeprefix('a ')}", a, b))
    out += [(f"no {caption(b).removeprefix('a ')}", None, b) for b in SHAPES]
    return out


def scores(ms: Medsearch, shapes: dict[str, frozenset[str]], k: int, typed: bool) -> dict[str, float]:
    """Mean affirmed@k, negated@k and exact@k over ``queries()``."""
    affirmed, negated, exact = [], [], []
    for text, a, b in queries():
        as_typed = QuerySpec("similar", target="the sentence as typed", k=k)  # ranked by the given vector
        results = ms.queries.run(as_typed, ms.text_vectors([text])[0]) if typed else ms.search(text, k=k)
        held = [shapes[result.path] for result in results]
        negated.append(np.mean([b in h for h in held]))
        if a is not None:
            affirmed.append(np.mean([a in h for h in held]))
            exact.append(np.mean([a in h and b not in h for h in held]))
    return {"affirmed": float(np.mean(affirmed)), "negated": float(np.mean(negated)),
            "exact": float(np.mean(exact))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-kind", type=int, default=8)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--model", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = args.model or reuse_trained("trained", root / "model", lambda out: train_tiny_siglip(out, seed=0))
        shapes = write_gallery(root / "images", args.per_kind, seed=5)
        with Medsearch.open(root / "store", create=True, writable=True, model=str(model)) as ms:
            ms.index([root / "images"], IndexSettings(workers=0))
            rows = [("as typed", scores(ms, shapes, args.k, typed=True))]
            for weight in WEIGHTS:
                meaning.NEGATED_WEIGHT = weight
                rows.append((f"negation-aware, w = {weight}", scores(ms, shapes, args.k, typed=False)))
    print(f"{len(shapes)} images ({args.per_kind} of each shape and pair), {len(queries())} queries, k = {args.k}")
    print(f"| method | affirmed shape in top {args.k} | negated shape in top {args.k} | affirmed and not negated |")
    print("|---|---|---|---|")
    for name, row in rows:
        print(f"| {name} | {row['affirmed']:.3f} | {row['negated']:.3f} | {row['exact']:.3f} |")


if __name__ == "__main__":
    main()
