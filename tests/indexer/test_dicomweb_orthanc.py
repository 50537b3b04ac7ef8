"""Indexing a real Orthanc over DICOMweb: the same vectors as from disk, filters, ``--since-last`` after
adding and deleting studies, basic auth, a server killed mid-sync then a resume, the date-window fallback.

Orthanc listens on every interface, so these tests run only inside a private network namespace;
``test_dicomweb_netns.py`` runs this module there through ``tests/indexer/netns_run.sh``."""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from medsearch.api import Medsearch
from medsearch.indexer.dicomweb.client import ClientSettings
from medsearch.indexer.dicomweb.run import SourceSettings
from medsearch.indexer.dicomweb.source import SourceError
from medsearch.indexer.pipeline import IndexSettings
from medsearch.storage import vector_codec

from tests.conftest import pydicom_file
from tests.indexer.orthanc import Orthanc

pytestmark = [pytest.mark.skipif(os.environ.get("MEDSEARCH_IN_NETNS") != "1",
                                 reason="runs inside a private network namespace (test_dicomweb_netns.py)"),
              pytest.mark.needs("orthanc")]

# Six instances of six studies; uids and modalities as pydicom's files hold them.
FILES = ("CT_small.dcm", "MR_small.dcm", "examples_overlay.dcm", "examples_palette.dcm", "SC_rgb_small_odd.dcm",
         "examples_ybr_color.dcm")
FAST = SourceSettings(concurrency=2, client=ClientSettings(retries=1, backoff_s=0.01, timeout_s=10))
ALLOW_REMOVALS = SourceSettings(concurrency=2, client=FAST.client, allow_removals=True)
Cli = Callable[..., Any]


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    server = Orthanc(tmp_path / "orthanc").start()
    yield server
    server.stop()


def _upload(server: Orthanc, names: tuple[str, ...] = FILES) -> None:
    for name in names:
        server.upload(pydicom_file(name))


def _vectors(store: Path) -> dict[str, np.ndarray]:
    with sqlite3.connect(store / "medsearch.db") as db:
        rows = db.execute("select sop_instance_uid, v.embedding from images join image_vectors v using (id)").fetchall()
    return {sop: vector_codec.decode(blob) for sop, blob in rows}


def _sops(store: Path) -> set[str]:
    return set(_vectors(store))


def _uid(name: str, keyword: str) -> str:
    import pydicom

    return str(pydicom.dcmread(pydicom_file(name), stop_before_pixels=True).get(keyword))


def test_same_vectors_as_from_disk_and_search_works(orthanc: Orthanc, tiny_embedder: Any, tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    for name in FILES:
        shutil.copy(pydicom_file(name), folder / name)
    _upload(orthanc)
    settings = IndexSettings(workers=1)
    with Medsearch.open(tmp_path / "disk", embedder=tiny_embedder, create=True, writable=True) as disk:
        assert disk.index([folder], settings).added == len(FILES)
    with Medsearch.open(tmp_path / "pacs", embedder=tiny_embedder, create=True, writable=True) as pacs:
        report = pacs.index_source(orthanc.url, {}, settings=settings, source_settings=FAST)
        assert (report.added, report.failed, report.removed) == (len(FILES), 0, 0)
        hits = pacs.search("a chest radiograph", k=10, where=["modality = 'CT'"])
        assert [hit.metadata["sop_instance_uid"] for hit in hits] == [_uid("CT_small.dcm", "SOPInstanceUID")]
        assert hits[0].path == (f"{orthanc.url}/studies/{_uid('CT_small.dcm', 'StudyInstanceUID')}/series/"
                                f"{_uid('CT_small.dcm', 'SeriesInstanceUID')}/instances/"
                                f"{_uid('CT_small.dcm', 'SOPInstanceUID')}")
        again = pacs.similar(hits[0].id, k=1, include_self=True)
        assert again[0].id == hits[0].id and again[0].score == pytest.approx(1.0, abs=1e-5)
        assert pacs.index_source(orthanc.url, {}, settings=settings, source_settings=FAST).unchanged == len(FILES)
    on_disk, fetched = _vectors(tmp_path / "disk"), _vectors(tmp_path / "pacs")
    assert set(on_disk) == set(fetched) and len(fetched) == len(FILES)
    for sop, vector in on_disk.items():
        np.testing.assert_array_equal(fetched[sop], vector)

    with Medsearch.open(tmp_path / "disk", embedder=tiny_embedder, writable=True) as both:
        assert both.index_source(orthanc.url, {}, settings=settings, source_settings=FAST).added == len(FILES)
    with sqlite3.connect(tmp_path / "disk" / "medsearch.db") as db:
        keys = db.execute("select sop_instance_uid, count(*), count(distinct patient_key), max(identity) "
                          "from images group by sop_instance_uid").fetchall()
    assert len(keys) == len(FILES) and all(row[1:] == (2, 1, None) for row in keys)  # one pseudonym, no identity


def test_filtered_index_then_since_last_adds_and_removes_exactly(orthanc: Orthanc, tiny_model: Path, cli: Cli,
                                                                  tmp_path: Path) -> None:
    store = tmp_path / "store"
    _upload(orthanc, FILES[:4])  # CT, MR, MR, US
    base = ["--store", store, "--model", tiny_model, "--workers", "1", "--json"]
    first = cli("index", orthanc.url, "--modality", "CT,MR", *base)
    assert (first["added"], first["removed"]) == (3, 0)
    assert _sops(store) == {_uid(name, "SOPInstanceUID") for name in FILES[:3]}

    unchanged = cli("index", orthanc.url, "--since-last", *base)
    assert (unchanged["added"], unchanged["removed"], unchanged["unchanged"]) == (0, 0, 3)

    _upload(orthanc, FILES[4:])  # OT and US: outside the filter
    orthanc.delete_study(_uid("examples_overlay.dcm", "StudyInstanceUID"))
    new_ct = tmp_path / "new_ct.dcm"
    _copy_as_new_study(pydicom_file("CT_small.dcm"), new_ct)
    orthanc.upload(new_ct)
    refused = cli("index", orthanc.url, "--since-last", *base, expect=8)  # 1 of 3 is more than 5 %
    assert refused["error"]["code"] == "removal_refused" and "remove 1 of the 3" in refused["error"]["message"]
    preview = cli("index", orthanc.url, "--since-last", "--dry-run", *base)["sources"][0]
    assert (len(preview["add"]), len(preview["remove"]), preview["stored"]) == (1, 1, 3)
    synced = cli("index", orthanc.url, "--since-last", "--allow-removals", *base)
    assert (synced["added"], synced["removed"]) == (1, 1)
    expected = {_uid(name, "SOPInstanceUID") for name in ("CT_small.dcm", "MR_small.dcm")} | {_new_uid(new_ct)}
    assert _sops(store) == expected

    assert cli("info", "--store", store, "--json")["sources"] == [orthanc.url]
    checked = cli("check", "--store", store, "--json")  # a healthy PACS store passes: no "missing file"
    assert checked["ok"] and checked["problems"] == [] and checked["facts"]["remote_instances"] == 3
    assert any("3 stored instances are all still listed" in note for note in checked["notes"])
    refused = cli("index", orthanc.url, "--since-last", "--modality", "US", *base, expect=2)
    assert "keeps the filters" in refused["error"]["message"]

    store_option = ["--store", store, "--model", tiny_model]
    cli("cohort", "create", "mr-ct", "--include", "text:a scan top 10", "--where", "modality in ('CT', 'MR')",
        *store_option)
    cli("cohort", "export", "mr-ct", "--format", "uids", "--output", tmp_path / "uids.csv", "--store", store)
    exported = (tmp_path / "uids.csv").read_text()
    assert all(uid in exported for uid in expected)


def _copy_as_new_study(source: Path, target: Path) -> None:
    import pydicom
    from pydicom.uid import generate_uid

    dataset = pydicom.dcmread(source)
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.save_as(target)


def _new_uid(path: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def test_study_date_window_when_there_is_no_change_feed(tiny_embedder: Any, tmp_path: Path) -> None:
    """Served under /pacs/dicom-web, the server has no /pacs/changes: the study-date window is used."""
    server = Orthanc(tmp_path / "orthanc", dicomweb_root="/pacs/dicom-web/").start()
    try:
        _upload(server, FILES[:2])
        with Medsearch.open(tmp_path / "store", embedder=tiny_embedder, create=True, writable=True) as engine:
            sync = lambda: engine.index_source(server.url, {}, since_last=True,  # noqa: E731
                                               settings=IndexSettings(workers=0), source_settings=ALLOW_REMOVALS)
            assert sync().added == 2
            recent = tmp_path / "recent.dcm"
            _copy_as_new_study(pydicom_file("CT_small.dcm"), recent)
            _set_study_date(recent)
            server.upload(recent)
            server.delete_study(_uid("MR_small.dcm", "StudyInstanceUID"))
            report = sync()
            assert (report.added, report.removed) == (1, 1)
        assert _sops(tmp_path / "store") == {_uid("CT_small.dcm", "SOPInstanceUID"), _new_uid(recent)}
        with sqlite3.connect(tmp_path / "store" / "medsearch.db") as db:
            assert db.execute("select feed from sources").fetchall() == [("study-date",)]
    finally:
        server.stop()


def _set_study_date(path: Path) -> None:
    import datetime as dt

    import pydicom

    dataset = pydicom.dcmread(path)
    dataset.StudyDate = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    dataset.save_as(path)


def test_basic_auth_required_and_refused_without(tiny_embedder: Any, tmp_path: Path, cli: Cli,
                                                  monkeypatch: pytest.MonkeyPatch, tiny_model: Path) -> None:
    server = Orthanc(tmp_path / "orthanc", users={"alice": "s3cret-pass"}).start()
    try:
        _upload(server, FILES[:2])
        base = ["--store", tmp_path / "store", "--model", tiny_model, "--workers", "0"]
        refused = cli("index", server.url, *base, expect=8)
        assert refused.output.count("\n") == 1 and "HTTP 401" in refused.output
        assert "requires credentials" in refused.output
        monkeypatch.setenv("MEDSEARCH_DICOMWEB_USER", "alice")
        monkeypatch.setenv("MEDSEARCH_DICOMWEB_PASSWORD", "wrong")
        wrong = cli("index", server.url, *base, expect=8)
        assert "credentials were refused" in wrong.output and "wrong" not in wrong.output
        monkeypatch.setenv("MEDSEARCH_DICOMWEB_PASSWORD", "s3cret-pass")
        done = cli("index", server.url, *base, "--json")
        assert done["added"] == 2
    finally:
        server.stop()
    stored = b"".join(path.read_bytes() for path in (tmp_path / "store").iterdir() if path.is_file())
    assert b"s3cret-pass" not in stored and b"alice" not in stored


def test_server_killed_mid_sync_then_resume(orthanc: Orthanc, tiny_embedder: Any, tmp_path: Path) -> None:
    _upload(orthanc)
    store = tmp_path / "store"
    one_by_one = SourceSettings(concurrency=1, client=FAST.client)

    def kill_after_first(done: int, _total: int) -> None:
        if done == 1:
            orthanc.stop(kill=True)

    with (Medsearch.open(store, embedder=tiny_embedder, create=True, writable=True) as engine,
          pytest.raises(SourceError, match="cannot reach the DICOMweb server")):
        engine.index_source(orthanc.url, {}, settings=IndexSettings(workers=0, batch_size=1),
                            source_settings=one_by_one, progress=kill_after_first)
    kept = _sops(store)
    assert 1 <= len(kept) < len(FILES)
    orthanc.start()
    with Medsearch.open(store, embedder=tiny_embedder, writable=True) as engine:
        report = engine.index_source(orthanc.url, {}, settings=IndexSettings(workers=0), source_settings=FAST)
    assert (report.added, report.unchanged) == (len(FILES) - len(kept), len(kept))
    with sqlite3.connect(store / "medsearch.db") as db:
        assert db.execute("select count(*), count(distinct sop_instance_uid) from images").fetchone() == (6, 6)


def test_thumbnails_through_wado_and_viewer_link(orthanc: Orthanc, tiny_embedder: Any, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings
    from PIL import Image

    _upload(orthanc, ("CT_small.dcm", "rtplan.dcm"))
    store = tmp_path / "store"
    with Medsearch.open(store, embedder=tiny_embedder, create=True, writable=True) as engine:
        report = engine.index_source(orthanc.url, {}, settings=IndexSettings(workers=0), source_settings=FAST)
    assert (report.added, report.failed) == (1, 1) and "pixel" in report.failures[0]["reason"]
    monkeypatch.setenv("MEDSEARCH_VIEWER_URL", "https://viewer.example/viewer?StudyInstanceUIDs={study_instance_uid}")
    with TestClient(create_app(store, embedder=tiny_embedder, settings=ServerSettings())) as client:
        (hit,) = client.get("/api/search", params={"q": "x", "k": 5}).json()["results"]
        item = client.get(f"/api/items/{hit['id']}").json()
        study = _uid("CT_small.dcm", "StudyInstanceUID")
        assert item["viewer_url"] == f"https://viewer.example/viewer?StudyInstanceUIDs={study}"
        png = client.get(f"/api/items/{hit['id']}/thumbnail", params={"size": 64})
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert max(Image.open(io.BytesIO(png.content)).size) == 64
        orthanc.stop()
        cached = client.get(f"/api/items/{hit['id']}/thumbnail", params={"size": 64})
        assert cached.content == png.content
        gone = client.get(f"/api/items/{hit['id']}/thumbnail", params={"size": 128})
        assert gone.status_code == 502 and "cannot reach the DICOMweb server" in gone.json()["error"]["message"]
