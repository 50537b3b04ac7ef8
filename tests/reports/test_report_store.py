"""``store.reports`` on a real SQLite file and a real PostgreSQL server: labels per study and per image,
``report.<finding>`` in --where (images indexed after the import included), full-text sentence search."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from medsearch.errors import InvalidQuery
from medsearch.storage import queries
from medsearch.storage.facets import facets
from medsearch.storage.models import Image
from medsearch.storage.reports import ReportRecord, StudyKey, label_counts, search_clause
from medsearch.storage.store import ModelRecord, Store
from medsearch.storage.writes import Batch, NewImage, write_batch
from sqlalchemy import select

RECORD = ModelRecord("test-model", "rev1", 8, "prep/1")


def _image(path: str, seed: int, study: str | None) -> NewImage:
    vector = np.random.default_rng(seed).standard_normal(8).astype(np.float32)
    meta = {"modality": "CR", "study_instance_uid": study}
    return NewImage(path, 0, 1, 1, f"hash{seed}", vector / np.linalg.norm(vector), meta)


def _report(study: StudyKey, labels: dict[str, str], sentences: list[tuple[str, str, str]]) -> ReportRecord:
    return ReportRecord(study, "csv", "cxr-findings", "1", labels, sentences)


def _ids(store: Store, where: str) -> list[int]:
    return [int(i) for i in queries.ids_where(store, [where])]


def _open(directory: Path, url: str | None) -> Store:
    store = Store.open(directory, create=True, writable=True, database_url=url)
    store.bind_model(RECORD)
    return store


def _empty_database(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store on SQLite, or on the session's PostgreSQL database (emptied before and after: other test
    modules share it)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    if url:
        _empty_database(url)
    opened = _open(tmp_path / "store", url)
    try:
        yield opened
    finally:
        opened.close()
        if url:
            _empty_database(url)


def test_labels_per_study_and_image_and_where(store: Store) -> None:
    write_batch(store, Batch(images=[_image("/x/a1.dcm", 1, "1.2.3"), _image("/x/a2.dcm", 2, "1.2.3"),
                                     _image("/x/b.dcm", 3, "1.2.4"), _image("/x/c.png", 4, None)]))
    with store.read_session() as session:
        ids = {path: image_id for path, image_id in session.execute(select(Image.path, Image.id))}
    assert _ids(store, "modality = 'CR'") == sorted(ids.values())  # cached before the reports come
    store.reports.write([
        _report(StudyKey("1.2.3"), {"pleural_effusion": "positive", "pneumothorax": "negative"}, []),
        _report(StudyKey("1.2.4"), {"pleural_effusion": "negative"}, []),
        _report(StudyKey(image_path="/x/c.png"), {"pleural_effusion": "uncertain"}, []),
    ])
    assert store.reports.count() == 3
    assert store.reports.findings() == ["pleural_effusion", "pneumothorax"]
    assert store.reports.study_labels("pleural_effusion") == {
        "1.2.3": "positive", "1.2.4": "negative", "path:/x/c.png": "uncertain"}
    assert store.reports.image_labels("pleural_effusion") == {
        ids["/x/a1.dcm"]: "positive", ids["/x/a2.dcm"]: "positive", ids["/x/b.dcm"]: "negative",
        ids["/x/c.png"]: "uncertain"}
    assert store.reports.image_labels("pneumothorax", [ids["/x/a2.dcm"], ids["/x/b.dcm"]]) == {
        ids["/x/a2.dcm"]: "negative"}
    assert _ids(store, "report.pleural_effusion = 'positive'") == sorted([ids["/x/a1.dcm"], ids["/x/a2.dcm"]])
    assert _ids(store, "report.pleural_effusion != 'positive'") == sorted([ids["/x/b.dcm"], ids["/x/c.png"]])
    assert _ids(store, "report.pneumothorax is null") == sorted([ids["/x/b.dcm"], ids["/x/c.png"]])
    assert _ids(store, "report.pleural_effusion in ('negative', 'uncertain') and modality = 'CR'") == sorted(
        [ids["/x/b.dcm"], ids["/x/c.png"]])
    with store.read_session() as session:
        assert label_counts(session, Image.modality == "CR")["pleural_effusion"] == [
            ("positive", 2), ("negative", 1), ("uncertain", 1)]
    if store.engine.dialect.name == "sqlite":  # facets() fails on PostgreSQL before reports (COALESCE types)
        columns = facets(store)["columns"]
        assert columns["report.pleural_effusion"]["values"] == [
            {"value": "positive", "count": 2}, {"value": "negative", "count": 1}, {"value": "uncertain", "count": 1}]
        narrowed = facets(store, ["modality = 'CR'", "report.pneumothorax = 'negative'"])["columns"]
        assert narrowed["report.pleural_effusion"] == {"kind": "text", "values": [{"value": "positive", "count": 2}]}
    with pytest.raises(InvalidQuery, match=r"did you mean 'report\.pneumothorax'"):
        _ids(store, "report.pneumothorx = 'positive'")

    write_batch(store, Batch(images=[_image("/x/a3.dcm", 5, "1.2.3")]))  # indexed after the import
    assert len(_ids(store, "report.pleural_effusion = 'positive'")) == 3

    store.reports.write([_report(StudyKey("1.2.3"), {"pleural_effusion": "negative"}, [])])  # replaces
    assert store.reports.count() == 3
    assert _ids(store, "report.pleural_effusion = 'positive'") == []
    assert store.reports.findings() == ["pleural_effusion"]


def test_sentence_search_by_words_and_polarity(store: Store) -> None:
    write_batch(store, Batch(images=[_image("/x/a.dcm", 1, "1.2.3"), _image("/x/b.dcm", 2, "1.2.4")]))
    store.reports.write([
        _report(StudyKey("1.2.3"), {"pneumothorax": "positive"},
                [("pneumothorax", "positive", "small right pneumothorax"), ("", "none", "tube in place")]),
        _report(StudyKey("1.2.4"), {"pneumothorax": "negative"},
                [("pneumothorax", "negative", "no pneumothorax")]),
    ])

    def found(words: list[str], polarities: list[str], findings: tuple[str, ...] = ()) -> list[str]:
        with store.read_session() as session:
            dialect = session.get_bind().dialect.name
            clause = search_clause(dialect, words, polarities, findings)
            return sorted(session.scalars(select(Image.path).where(clause)))

    assert found(["pneumothorax"], ["positive"]) == ["/x/a.dcm"]
    assert found(["pneumothorax"], ["negative"]) == ["/x/b.dcm"]
    assert found(["pneumothorax"], ["positive", "negative"]) == ["/x/a.dcm", "/x/b.dcm"]
    assert found(["right", "pneumothorax"], ["positive"]) == ["/x/a.dcm"]
    assert found(["left", "pneumothorax"], ["positive"]) == []
    assert found(["tube"], ["positive"]) == []
    assert found(["tube"], ["none"]) == ["/x/a.dcm"]
    assert found(["pneumothorax"], ["positive"], ("pleural_effusion",)) == []
    assert found(['"; drop table reports; --'], ["positive"]) == []

    store.reports.write([_report(StudyKey("1.2.3"), {}, [("", "none", "clear lungs")])])
    assert found(["pneumothorax"], ["positive"]) == []  # the replaced report's sentences are gone
    assert found(["clear"], ["none"]) == ["/x/a.dcm"]
