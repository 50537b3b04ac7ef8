"""Run inside a private network namespace by ``test_reports_dicomweb.py``: structured reports fetched from
a real Orthanc over DICOMweb are read as their study's report, as they are from a folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.reports.report_data import ENHANCED_SR, REPORTS, STUDIES, sentences, write_cr, write_sr

UIDS = list(STUDIES)


@pytest.mark.skipif(os.environ.get("MEDSEARCH_IN_NETNS") != "1", reason="runs inside a private network namespace")
@pytest.mark.needs("orthanc")
def test_srs_from_dicomweb_are_read_as_reports(tiny_embedder: Any, tmp_path: Path) -> None:
    from medsearch.api import Medsearch
    from medsearch.indexer.dicomweb.client import ClientSettings
    from medsearch.indexer.dicomweb.run import SourceSettings
    from medsearch.indexer.pipeline import IndexSettings

    from tests.indexer.orthanc import Orthanc

    orthanc = Orthanc(tmp_path / "orthanc").start()
    try:
        for view in range(2):
            orthanc.upload(write_cr(tmp_path / f"image{view}.dcm", UIDS[1], seed=view))
        orthanc.upload(write_sr(tmp_path / "sr.dcm", UIDS[1], sentences(REPORTS[UIDS[1]]), ENHANCED_SR))
        settings = SourceSettings(concurrency=2, client=ClientSettings(retries=1, backoff_s=0.01, timeout_s=10))
        with Medsearch.open(tmp_path / "store", embedder=tiny_embedder, create=True, writable=True) as ms:
            report = ms.index_source(orthanc.url, {}, settings=IndexSettings(workers=0), source_settings=settings)
            assert (report.added, report.reports, report.failed) == (2, 1, 0), report.failures
            assert ms.store.reports.study_labels("pneumothorax") == {UIDS[1]: "positive"}
            assert ms.count(where=["report.pleural_effusion = 'negative'"]) == 2
    finally:
        orthanc.stop()
