"""The AUC interval by patient of ``evaluate --truth-from-reports`` (issue 34): seconds per finding for
1,000 bootstrap rounds, the weighted O(images) form (``medsearch.labels.interval``, shared with the probes) against the
concatenating form written directly (``tests/reports/test_truth_interval.py``), the same interval for one seed.

    PYTHONPATH=. python benchmarks/bench_report_truth.py [--sizes 2000,20000,100000] [--rounds 1000]

Synthetic: 3 images per patient on average, 10 % positive, scores shifted by 0.3 for positives. The
concatenating form is timed only up to 20,000 images (it grows with the number of patients per round).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from medsearch.labels.interval import grouped_auc_interval

from tests.reports.test_truth_interval import concatenated_interval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="2000,20000,100000")
    parser.add_argument("--rounds", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| images | patients | weighted (s) | concatenating (s) | same interval |")
    print("|---:|---:|---:|---:|---|")
    for n in (int(x) for x in args.sizes.split(",")):
        groups = rng.integers(0, n // 3, n).astype(str)
        truth = (rng.random(n) < 0.1).astype(int)
        scores = rng.random(n) + 0.3 * truth
        start = time.perf_counter()
        fast = grouped_auc_interval(truth, scores, groups, args.rounds, 0)
        weighted = time.perf_counter() - start
        slow, same = "-", "-"
        if n <= 20_000:
            start = time.perf_counter()
            old = concatenated_interval(truth, scores, groups, args.rounds, 0)
            slow = f"{time.perf_counter() - start:.2f}"
            same = str(bool(np.allclose(fast, old, atol=1e-12)))
        print(f"| {n:,} | {len(set(groups)):,} | {weighted:.2f} | {slow} | {same} |")


if __name__ == "__main__":
    main()
