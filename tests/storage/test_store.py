"""The store keeps SQL and FAISS in step: snapshots checked on open, replayed or rebuilt, ids never reused,
one writer at a time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from medsearch.errors import ModelMismatch, StoreError, StoreLocked
from medsearch.storage import snapshot
from medsearch.storage.store import ModelRecord, Store
from medsearch.storage.writes import Batch, NewImage, write_batch

RECORD = ModelRecord("test-model", "rev1", 8, "prep/1")


def _image(path: str, seed: int) -> NewImage:
    vector = np.random.default_rng(seed).standard_normal(8).astype(np.float32)
    return NewImage(path, 0, 1, 1, f"hash{seed}", vector / np.linalg.norm(vector), {"modality": "CR"})


def _store(directory: Path) -> Store:
    store = Store.open(directory, create=True, writable=True)
    store.bind_model(RECORD)
    return store


def _fill(store: Store, count: int, start: int = 0) -> None:
    write_batch(store, Batch(images=[_image(f"/x/{i}.png", i) for i in range(start, start + count)]))


def _search_ids(store: Store, seed: int) -> list[int]:
    query = _image("", seed).embedding
    return [int(i) for i in store.vectors.index().search(query[None], 5)[1][0]]


def test_snapshot_round_trip_and_replay(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        _fill(store, 10)
        store.vectors.save_snapshot()
        _fill(store, 5, start=10)  # committed after the snapshot
        write_batch(store, Batch(remove_paths=["/x/0.png"]))
        expected = _search_ids(store, 3)
    manifest = json.loads((tmp_path / snapshot.MANIFEST_FILE).read_text())
    assert manifest["generation"] == 1 and manifest["count"] == 10
    with Store.open(tmp_path) as reader:
        index = reader.vectors.index()
        assert index.ntotal == 14
        assert _search_ids(reader, 3) == expected
        assert 1 not in set(vectors_ids(index))


def vectors_ids(index: object) -> list[int]:
    import faiss

    return list(faiss.vector_to_array(index.id_map))  # type: ignore[attr-defined]


def test_damaged_snapshot_is_rebuilt_from_the_database(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        _fill(store, 6)
        store.vectors.save_snapshot()
    snapshot_path = snapshot.snapshot_file(tmp_path)
    assert snapshot_path is not None
    data = bytearray(snapshot_path.read_bytes())
    data[-20:] = b"\x00" * 20
    snapshot_path.write_bytes(bytes(data))
    assert snapshot.load_snapshot(tmp_path, 8, "rev1") is None
    with Store.open(tmp_path) as reader:
        assert reader.vectors.index().ntotal == 6


def test_ids_are_never_reused(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        _fill(store, 3)
        write_batch(store, Batch(remove_paths=["/x/2.png"]))
        _fill(store, 1, start=50)
        assert sorted(vectors_ids(store.vectors.index())) == [1, 2, 4]


def test_another_model_is_refused(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        with pytest.raises(ModelMismatch, match="not the store's"):
            store.bind_model(ModelRecord("other", "rev2", 8, "prep/1"))
        with pytest.raises(ModelMismatch, match="vector size"):
            store.bind_model(ModelRecord("test-model", "rev1", 16, "prep/1"))
        store.bind_model(ModelRecord("moved/folder", "rev1", 8, "prep/1"))  # same weights elsewhere


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    with _store(tmp_path):
        with pytest.raises(StoreLocked, match="writing to"):
            Store.open(tmp_path, writable=True)
        with Store.open(tmp_path) as reader:  # readers are welcome
            assert reader.model_record() == RECORD


def test_missing_store_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="No medsearch store"):
        Store.open(tmp_path / "nothing")


def test_a_batch_is_all_or_nothing(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        _fill(store, 2)
        bad = Batch(images=[_image("/x/ok.png", 7), _image("/x/0.png", 8)])  # duplicate path: fails
        with pytest.raises(Exception, match="UNIQUE"):
            write_batch(store, bad)
        assert store.generation() == 1
        assert store.vectors.index().ntotal == 2


def test_failure_reasons_are_cleaned_for_any_database(tmp_path: Path) -> None:
    from medsearch.storage.writes import FileStat, clean_reason

    assert clean_reason("bad\x00uid\nnext") == "bad?uid?next"
    assert len(clean_reason("x" * 5000)) == 2000
    with _store(tmp_path) as store:
        write_batch(store, Batch(failures=[(FileStat("/x/bad.dcm", 1, 1), "no pixel data (1.2\x00\x08)")]))
        with store.read_session() as session:
            from medsearch.storage.models import Failure

            assert session.get(Failure, "/x/bad.dcm").reason == "no pixel data (1.2??)"


def test_older_preprocessing_says_to_re_embed(tmp_path: Path) -> None:
    with _store(tmp_path) as store, pytest.raises(ModelMismatch, match="medsearch upgrade") as caught:
        store.bind_model(ModelRecord("test-model", "rev1", 8, "prep/2"))
    assert "omit --model" not in str(caught.value)
