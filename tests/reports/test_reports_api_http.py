"""Reports through Python (``ms.import_reports``, ``ms.search(report=...)``, a cohort on a report field) and
through HTTP against a running server (``POST /api/reports`` with the write token, size cap, a bad file
storing nothing, ``report`` and ``where`` parameters of search)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from medsearch.errors import InvalidQuery

from tests.api_fixtures import running_server
from tests.reports.report_data import REPORTS, STUDIES, write_cr

UIDS = list(STUDIES)
TOKEN = "reports-test-token-0123456789"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, tiny_embedder: Any) -> Path:
    """Four studies of two radiographs each, without reports, indexed with the tiny model."""
    from medsearch.api import Medsearch
    from medsearch.indexer.pipeline import IndexSettings

    root = tmp_path_factory.mktemp("reports-api")
    for number, study in enumerate(UIDS, start=1):
        for view in range(2):
            write_cr(root / "images" / f"study{number}" / f"image{view}.dcm", study, seed=number * 10 + view)
    with Medsearch.open(root / "store", create=True, writable=True, embedder=tiny_embedder) as ms:
        ms.index([root / "images"], IndexSettings(workers=0))
    return root / "store"


def _csv(path: Path, header: str, rows: list[tuple[str, str]]) -> Path:
    path.write_text(header + "\n" + "".join(f'{key},"{text}"\n' for key, text in rows))
    return path


def test_python_import_search_and_cohort(store: Path, tiny_embedder: Any, tmp_path: Path) -> None:
    from medsearch.api import Medsearch

    image = store.parent / "images" / "study3" / "image0.dcm"
    rows = [(UIDS[0], REPORTS[UIDS[0]]), (UIDS[1], REPORTS[UIDS[1]]), ("not-a-uid", "Small effusion."),
            (UIDS[0], "Again the first study.")]
    with Medsearch.open(store, writable=True, embedder=tiny_embedder) as ms:
        summary = ms.import_reports(_csv(tmp_path / "a.csv", "study_uid,report", rows))
        assert (summary.stored, summary.bad) == (2, 2)
        assert [row["line"] for row in summary.bad_rows] == [4, 5]
        assert "not a DICOM UID" in summary.bad_rows[0]["reason"]
        assert "same study as line 2" in summary.bad_rows[1]["reason"]
        by_path = ms.import_reports(_csv(tmp_path / "b.csv", "path,report", [(str(image), REPORTS[UIDS[2]])]))
        assert by_path.stored == 1 and by_path.labels["pneumonia"] == {"uncertain": 1}
        hits = ms.search("chest radiograph", k=20, report="pleural effusion")
        assert {Path(hit.path).parent.name for hit in hits} == {"study1", "study3"}
        assert ms.count(where=["report.pneumothorax = 'positive'"]) == 2
        assert ms.count(report="pneumothorax", report_polarity="negative") == 4
        labels = ms.store.reports.image_labels("pleural_effusion")
        assert sorted(labels.values()) == ["negative", "negative", "positive", "positive", "positive", "positive"]
        cohort = ms.cohorts.create("effusions", [], [], ["report.pleural_effusion = 'positive'"])
        assert len(cohort["members"]) == 4
        with pytest.raises(InvalidQuery, match="no word to search"):
            ms.search("chest", report="no the of")


def test_http_import_and_search(store: Path, tiny_embedder: Any) -> None:
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

    settings = ServerSettings(api_token=TOKEN, upload_limit=4096)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    csv_type = {"Content-Type": "text/csv"}
    body = f'accession,report\nACC100004,"{REPORTS[UIDS[3]]}"\nACC404,"Small pneumothorax."\n'
    with running_server(create_app(store, embedder=tiny_embedder, settings=settings)) as base:
        assert httpx.post(f"{base}/api/reports", content=body, headers=csv_type, timeout=30).status_code == 401
        answer = httpx.post(f"{base}/api/reports", files={"file": ("r.csv", body, "text/csv")}, headers=auth,
                            timeout=60)
        assert answer.status_code == 200, answer.text
        assert (answer.json()["stored"], answer.json()["bad_rows"][0]["line"]) == (1, 3)
        assert "matches no indexed study" in answer.json()["bad_rows"][0]["reason"]
        before = httpx.get(f"{base}/api/reports", headers=auth, timeout=30).json()["reports"]
        bad = httpx.post(f"{base}/api/reports", content=b"study_uid,report\n\xff\xfe,x\n",
                         headers={**auth, **csv_type}, timeout=30)
        assert bad.status_code == 400 and "not UTF-8" in bad.json()["error"]["message"]
        too_big = httpx.post(f"{base}/api/reports", content=b"study_uid,report\n" + b"1,x\n" * 2000,
                             headers={**auth, **csv_type},
                             timeout=30)
        assert too_big.status_code == 413
        assert httpx.get(f"{base}/api/reports", headers=auth, timeout=30).json()["reports"] == before
        params: dict[str, Any] = {"q": "chest radiograph", "k": 20, "report": "pleural effusion",
                                  "report_polarity": "negative"}
        found = httpx.get(f"{base}/api/search", params=params, headers=auth, timeout=60).json()["results"]
        assert "study4" in {Path(r["path"]).parent.name for r in found}
        params = {"q": "chest radiograph", "k": 20, "where": "report.pleural_effusion = 'negative'"}
        found = httpx.get(f"{base}/api/search", params=params, headers=auth, timeout=60).json()["results"]
        assert "study4" in {Path(r["path"]).parent.name for r in found}
        wrong = httpx.get(f"{base}/api/search", params={**params, "report_polarity": "maybe"}, headers=auth,
                          timeout=30)
        assert wrong.status_code == 400


def test_accession_needs_the_key_the_images_were_indexed_with(store: Path, tiny_embedder: Any,
                                                              tmp_path: Path) -> None:
    from medsearch.api import Medsearch
    from medsearch.errors import StoreError

    csv_file = _csv(tmp_path / "acc.csv", "accession,report", [("ACC100002", REPORTS[UIDS[1]])])
    with Medsearch.open(store, writable=True, embedder=tiny_embedder) as ms:
        with pytest.raises(StoreError, match="not the one"):
            ms.import_reports(csv_file, patient_key=b"another key of 32 bytes.........")
        assert ms.import_reports(csv_file).stored == 1
        assert ms.store.reports.study_labels("pneumothorax")[UIDS[1]] == "positive"


def test_korean_reports_are_searched_in_either_language(store: Path, tiny_embedder: Any, tmp_path: Path) -> None:
    from medsearch.api import Medsearch

    korean = "환자 김철수, 등록번호 55501234. 좌측 기흉 있음. 흉수 없음."
    rows = [(UIDS[2], korean), (UIDS[3], "우측 기흉 의심.")]
    with Medsearch.open(store, writable=True, embedder=tiny_embedder) as ms:
        assert ms.import_reports(_csv(tmp_path / "ko.csv", "study_uid,report", rows)).stored == 2
        for words in ("기흉", "pneumothorax", "left pneumothorax", "좌측 기흉"):
            hits = ms.search("chest radiograph", k=20, report=words)
            found = {Path(hit.path).parent.name for hit in hits}
            assert found & {"study3", "study4"} == {"study3"}, words  # study 4's pneumothorax is uncertain
        hits = ms.search("chest radiograph", k=20, report="기흉", report_polarity="uncertain")
        assert {Path(hit.path).parent.name for hit in hits} == {"study4"}
        assert ms.count(where=["report.pleural_effusion = 'negative'"]) >= 2
    stored = b"".join(p.read_bytes() for p in store.iterdir() if p.name.startswith("medsearch.db"))
    assert "김철수".encode() not in stored and b"55501234" not in stored
