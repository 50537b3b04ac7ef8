"""Indexing over DICOMweb from a real Orthanc: instances/s fetched and indexed with the tiny test model, and
the time to sync a source that has not changed (``--since-last`` through Orthanc's change feed, and a full
re-list). The instances are pydicom's CT_small.dcm and MR_small.dcm, each copied ``--instances / 2`` times
as new studies (new UIDs). Orthanc listens on every interface, so the script runs itself inside a private
network namespace (``tests/netns_run.sh``; needs root and Debian's orthanc + orthanc-dicomweb).

    PYTHONPATH=. python benchmarks/bench_dicomweb.py                      # 200 instances, 4 downloads at a time
    PYTHONPATH=. python benchmarks/bench_dicomweb.py --instances 1000 --concurrency 8 --workers 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _copies(folder: Path, count: int) -> list[Path]:
    import pydicom
    from pydicom.uid import generate_uid

    from tests.conftest import pydicom_file

    files = []
    for number in range(count):
        dataset = pydicom.dcmread(pydicom_file(("CT_small.dcm", "MR_small.dcm")[number % 2]))
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        files.append(folder / f"{number:05d}.dcm")
        dataset.save_as(files[-1])
    return files


def _timed(step) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = step()
    return time.perf_counter() - started, result


def run(args: argparse.Namespace) -> dict[str, object]:
    from medsearch.api import Medsearch
    from medsearch.indexer.dicomweb.run import SourceSettings
    from medsearch.indexer.model_loading import load_embedder
    from medsearch.indexer.pipeline import IndexSettings
    from tests.orthanc import Orthanc

    from tests.tiny_siglip import build_tiny_siglip

    work = Path(tempfile.mkdtemp(prefix="bench-dicomweb-"))
    embedder = load_embedder(str(build_tiny_siglip(work / "model", seed=0)), device="cpu")
    server = Orthanc(work / "orthanc").start()
    try:
        (work / "files").mkdir()
        for path in _copies(work / "files", args.instances):
            server.upload(path)
        settings = IndexSettings(workers=args.workers)
        source = SourceSettings(concurrency=args.concurrency)
        with Medsearch.open(work / "store", embedder=embedder, create=True, writable=True) as engine:
            first_s, first = _timed(lambda: engine.index_source(server.url, {}, settings=settings,
                                                                 source_settings=source))
            changes_s, _ = _timed(lambda: engine.index_source(server.url, {}, since_last=True, settings=settings,
                                                               source_settings=source))
            full_s, _ = _timed(lambda: engine.index_source(server.url, {}, settings=settings, source_settings=source))
        with Medsearch.open(work / "disk", embedder=embedder, create=True, writable=True) as engine:
            disk_s, _ = _timed(lambda: engine.index([work / "files"], settings))
    finally:
        server.stop()
    return {"instances": args.instances, "added": first.added, "concurrency": args.concurrency,  # type: ignore[attr-defined]
            "workers": args.workers, "index_s": round(first_s, 2),
            "instances_per_s": round(args.instances / first_s, 1),
            "same_files_from_disk_per_s": round(args.instances / disk_s, 1),
            "unchanged_since_last_s": round(changes_s, 3), "unchanged_full_relist_s": round(full_s, 3),
            "cpus": os.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=-1)
    args = parser.parse_args()
    if os.environ.get("MEDSEARCH_IN_NETNS") != "1":
        command = ["bash", str(ROOT / "tests/netns_run.sh"), sys.executable, *sys.argv]
        sys.exit(subprocess.run(command, env={**os.environ, "PYTHONPATH": str(ROOT)}).returncode)
    figures = run(args)
    for key, value in figures.items():
        print(f"{key:28} {value}")
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    (results / "bench_dicomweb.json").write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
