"""Report import and report filters at scale (issue 34): a store of N studies of two images each (random
vectors, no model), a CSV of N synthetic reports imported through the real path (parse, label, de-identify,
one transaction), then ``report.<finding>`` filters and ``--report`` searches timed (first read and
repeated; a report search is not cached).

    PYTHONPATH=. python benchmarks/bench_reports.py [--studies 5000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np
from medsearch.reports.importing import import_reports_csv
from medsearch.reports.search import reader_for, report_ids
from medsearch.storage import queries
from medsearch.storage.store import ModelRecord, Store
from medsearch.storage.writes import Batch, NewImage, write_batch

FINDINGS = ("pleural effusion", "pneumothorax", "consolidation", "cardiomegaly", "atelectasis", "edema")
FORMS = ("Small right {f}.", "No {f}.", "Possible {f}.", "No evidence of {f}.", "Moderate left {f} is seen.",
         "{f} cannot be excluded.", "Interval resolution of {f}.")


def _report(rng: random.Random, number: int) -> str:
    head = f"Patient Name{number} MRN{number:08d}, seen 2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}."
    return " ".join([head, *(rng.choice(FORMS).format(f=f) for f in rng.sample(FINDINGS, 3)), "Lungs otherwise clear."])


def _store(directory: Path, studies: int) -> Store:
    store = Store.open(directory, create=True, writable=True)
    store.bind_model(ModelRecord("bench", "1", 8, "prep/1"))
    rng = np.random.default_rng(0)
    images = []
    for number in range(studies):
        for view in range(2):
            vector = rng.standard_normal(8).astype(np.float32)
            meta = {"study_instance_uid": f"1.2.{number}", "modality": "CR"}
            images.append(NewImage(f"/x/{number}/{view}.dcm", 0, 1, 1, f"h{number}.{view}",
                                   vector / np.linalg.norm(vector), meta))
    for start in range(0, len(images), 5000):
        write_batch(store, Batch(images=images[start:start + 5000]))
    return store


def _timed(label: str, repeat: int, run) -> None:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    found = run()
    first = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(repeat):
        run()
    again = (time.perf_counter() - started) / repeat
    print(f"{label:58s} {len(found):7d} images  first {first * 1000:8.1f} ms  again {again * 1000:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as folder:
        store = _store(Path(folder) / "store", args.studies)
        rows = "".join(f'1.2.{n},"{_report(rng, n)}"\n' for n in range(args.studies))
        data = ("study_uid,report\n" + rows).encode()
        started = time.perf_counter()
        summary = import_reports_csv(store, data, reader_for())
        seconds = time.perf_counter() - started
        print(f"import: {summary.stored} reports ({len(data) / 1e6:.1f} MB) in {seconds:.2f} s, "
              f"{summary.stored / seconds:.0f} reports/s")
        size = sum(p.stat().st_size for p in (Path(folder) / "store").iterdir() if p.name.startswith("medsearch.db"))
        print(f"database files: {size / 1e6:.1f} MB with {2 * args.studies} images")
        _timed("--where report.pleural_effusion = 'positive'", args.repeat,
               lambda: queries.ids_where(store, ["report.pleural_effusion = 'positive'"]))
        _timed("--report pneumothorax", args.repeat, lambda: report_ids(store, "pneumothorax"))
        _timed("--report 'right pleural effusion' --report-polarity any", args.repeat,
               lambda: report_ids(store, "right pleural effusion", "any"))
        store.close()


if __name__ == "__main__":
    main()
