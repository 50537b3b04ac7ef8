"""The leakage audit's calibration (issue 22) on drawn shapes embedded with the tiny trained SigLIP.

For each split seed: a clean store (``--per-class`` drawings per class, patients of two drawings, split
50/50 at random by patient, so shape classes fall on both sides) and the same with planted leaks
(tests/learn/leaks.py: re-encoded, cropped and re-windowed copies across splits under new patients).
Printed per seed: the near-duplicate pairs reported on the clean store (nobody planted any); on the
planted store the calibrated cosine shortlist and pixel threshold, Youden's J with its true/false
positive rates, the recall of the planted copies (found per kind: re-encoded/cropped/re-windowed), the
pairs reported that nobody planted, and the audit's seconds (the model loaded).

    PYTHONPATH=. python benchmarks/bench_learn_audit.py [--model-dir DIR] [--per-class 6] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any


def _names(pair: dict[str, Any]) -> frozenset[str]:
    return frozenset((Path(pair["path_a"]).name, Path(pair["path_b"]).name))


def _audit(store: Path, model: Path) -> dict[str, Any]:
    """The audit as JSON with ``seconds`` (the model loaded first, not timed)."""
    from medsearch.api import Medsearch
    from medsearch.learn import audit

    with Medsearch.open(store, str(model), "cpu") as ms:
        ms.check_model()
        started = time.perf_counter()
        found = audit.as_dict(ms.learning.audit("split", patient="patient"))
        return {**found, "seconds": time.perf_counter() - started}


def measure(root: Path, model: Path, per_class: int, split_seed: int, planted: int) -> dict[str, Any]:
    """Figures of one clean and one planted store of ``split_seed``."""
    from tests.learn import leaks

    clean = _audit(leaks.build(root / "clean", model, per_class, split_seed=split_seed).store, model)
    leaky = leaks.build(root / "planted", model, per_class, split_seed=split_seed, planted=planted)
    found = _audit(leaky.store, model)
    near = {_names(p) for p in found["pairs"] if p["kind"] == "near-duplicate"}
    wanted = {frozenset(c[:2]): c[2] for c in leaky.copies}
    by_kind = {kind: sum(1 for pair, k in wanted.items() if k == kind and pair in near) for kind in leaks.COPY_KINDS}
    return {"seed": split_seed, "clean_threshold": clean["threshold"],
            "clean_false_pairs": clean["summary"]["near_duplicates"],
            "threshold": found["threshold"], "pixel_threshold": found["calibration"]["pixel_threshold"],
            "youden_j": found["calibration"]["youden_j"], "seconds": found["seconds"],
            "tpr": found["calibration"]["true_positive_rate"], "fpr": found["calibration"]["false_positive_rate"],
            "recall": len(set(wanted) & near) / len(wanted), "found_by_kind": by_kind,
            "planted_false_pairs": len(near - set(wanted))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, help="A trained tiny SigLIP (default: train one).")
    parser.add_argument("--per-class", type=int, default=6)
    parser.add_argument("--planted", type=int, default=12)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model_dir
        if model is None:
            from tests.tiny_siglip import train_tiny_siglip

            model = train_tiny_siglip(Path(tmp) / "model", seed=0)
        rows = [measure(Path(tmp) / f"seed{seed}", model, args.per_class, seed, args.planted) for seed in args.seeds]
    print("seed  clean: false-pairs | planted: cosine pixels    J   tpr   fpr  recall  by kind  false-pairs  seconds")
    for row in rows:
        kinds = "/".join(str(n) for n in row["found_by_kind"].values())
        print(f"{row['seed']:4d}  {row['clean_false_pairs']:18d} | {row['threshold']:14.4f} "
              f"{row['pixel_threshold']:6.4f} {row['youden_j']:5.3f} {row['tpr']:5.3f} {row['fpr']:5.3f} "
              f"{row['recall']:7.2f}  {kinds:>7}  {row['planted_false_pairs']:11d}  {row['seconds']:7.1f}")
    out = Path("benchmarks/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "learn_audit.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
