"""The int8 rows of the vector file an ivf-pq index re-ranks from (``medsearch.storage.vector_file``,
``medsearch.storage.row_quantizer``): chosen by size when float32 rows would not fit the memory (a
monkeypatched memory size, not a 10 M store), scoring close to the float32 rows, kept under the same crash
rules, and a damaged or short quantizer block never trusted: the store answers from the database, ``check``
reports it and a writer writes it again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from medsearch.storage import reranked, snapshot, vector_file
from medsearch.storage.check import check_store
from medsearch.storage.row_quantizer import Quantizer
from medsearch.storage.store import Store

from tests.storage.test_ivf_pq_store import COUNT, DIM, clustered, pq_store  # noqa: F401  (the fixture)
from tests.storage.test_vector_file_crash import (
    QUERIES,
    answers,
    assert_same,
    change_and_save,
    overlap,
    vector_files,
)

FLOAT32_TOO_LARGE = 2 * COUNT * DIM * 2  # half of it holds the rows at 2 bytes a component: int8, not float32


def small_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make this machine's memory too small for the test store's float32 rows, large enough for int8 ones."""
    monkeypatch.setattr(vector_file, "memory_bytes", lambda: FLOAT32_TOO_LARGE)


def test_the_rows_type_is_chosen_by_size(monkeypatch: pytest.MonkeyPatch) -> None:
    memory = 24 * 2**30
    monkeypatch.setattr(vector_file, "memory_bytes", lambda: memory)
    assert vector_file.row_type(1_000_000, 1152) == "float32"  # 4.6 GB
    assert vector_file.row_type(10_000_000, 1152) == "int8"  # 46 GB in float32, 11.5 GB in int8
    assert vector_file.row_type(30_000_000, 1152) is None  # 34.6 GB even in int8
    assert vector_file.fits_memory(10_000_000, 1152) and not vector_file.fits_memory(30_000_000, 1152)


def test_int8_rows_score_close_to_float32(pq_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    with Store.open(pq_store) as reader:
        expected = answers(reader)
        float32_size = reader.vectors.vector_file().base.path.stat().st_size
    small_memory(monkeypatch)
    with Store.open(pq_store, writable=True) as writer:  # grown past float32's share: int8 from now on
        writer.vectors.save_snapshot()
        rerank = writer.vectors.vector_file()
        assert rerank is not None and rerank.quantizer is not None and rerank.count() == COUNT
    monkeypatch.undo()  # a reader takes the file as its header describes it
    with Store.open(pq_store) as reader:
        rerank = reader.vectors.vector_file()
        assert rerank is not None and rerank.quantizer is not None
        assert rerank.base.path.stat().st_size < float32_size / 3
        found = answers(reader)
        assert not check_store(reader).problems
    # the codes choose the best few, their float32 rows from the database score them: the same answers
    assert_same(found, expected)
    some = np.arange(1, 101)
    with Store.open(pq_store) as reader:
        stored = reader.vectors.stored_vectors(some)
    np.testing.assert_allclose(rerank.read(some), stored, atol=float(rerank.quantizer.step.max()))
    codes = rerank.for_rerank(some)  # scored undecoded: q . offset + (q * step) . codes
    assert codes.exact is None and codes.stored.all()
    np.testing.assert_allclose(codes.scores(QUERIES), stored @ QUERIES.T, atol=0.01)
    by_codes = reranked.rescored(QUERIES, np.broadcast_to(some, (len(QUERIES), len(some))), 10, rerank.for_rerank)
    exact = reranked.rescored(QUERIES, np.broadcast_to(some, (len(QUERIES), len(some))), 10, lambda ids: stored)
    assert overlap(by_codes[1], exact[1]) >= 0.9


def test_a_quantizer_is_fitted_to_its_sample() -> None:
    rows = clustered(500, 3)
    quantizer = Quantizer.fitted(rows, DIM)
    half_step = float(quantizer.step.max()) / 2
    np.testing.assert_allclose(quantizer.decode(quantizer.encode(rows)), rows, atol=half_step + 1e-6)
    assert Quantizer.from_bytes(quantizer.to_bytes(), DIM).to_bytes() == quantizer.to_bytes()
    outside = quantizer.decode(quantizer.encode(np.full((1, DIM), 5.0)))  # clipped to the fitted range
    np.testing.assert_allclose(outside[0], quantizer.offset + 255 * quantizer.step, rtol=1e-5)


def int8_store(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rewrite the store's vector file from the database in int8 rows."""
    with monkeypatch.context() as patched:
        small_memory(patched)
        with Store.open(directory, writable=True) as writer:
            writer.vectors.rewrite_vector_file()
            assert writer.vectors.vector_file().quantizer is not None


@pytest.mark.parametrize("damage", ["block-flipped", "block-short", "header-block-checksum"])
def test_a_damaged_quantizer_block_is_refused_and_rebuilt(pq_store: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                                                          damage: str) -> None:
    with Store.open(pq_store) as reader:
        expected = answers(reader)  # float32 rows: the same as from the database
    int8_store(pq_store, monkeypatch)
    path = pq_store / snapshot.read_manifest(pq_store).vectors_file
    with open(path, "r+b") as handle:
        if damage == "block-flipped":  # an offset of the quantizer block: every score would shift
            handle.seek(vector_file.ALIGN + 16)
            handle.write(b"\x00\x00\x80\x7f")
        elif damage == "block-short":  # cut inside the quantizer block
            handle.truncate(vector_file.ALIGN + 100)
        else:  # the header's checksum of the block
            handle.seek(vector_file.HEADER.size - 32)
            handle.write(b"\xff" * 4)
    with Store.open(pq_store) as reader:
        assert reader.vectors.vector_file() is None  # refused: read from the database instead
        assert_same(answers(reader), expected)
        report = check_store(reader)
        assert "vector_file" in {p.kind for p in report.problems} and not report.ok and report.repairable
    small_memory(monkeypatch)
    with Store.open(pq_store, writable=True) as writer:
        rerank = writer.vectors.vector_file()  # a writer writes it again from the database
        assert rerank is not None and rerank.quantizer is not None
        assert check_store(writer, repair=True).ok and not check_store(writer).problems
    monkeypatch.undo()
    with Store.open(pq_store) as reader:
        assert reader.vectors.vector_file().quantizer is not None
        assert overlap(answers(reader)["ids"], expected["ids"]) >= 0.9  # int8 rows, and a new index
    assert vector_files(pq_store) == [snapshot.read_manifest(pq_store).vectors_file]


@pytest.mark.parametrize("point", ["none", "vector-file-written", "before-manifest"])
def test_an_int8_snapshot_killed_answers_the_same(pq_store: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                                                  point: str) -> None:
    int8_store(pq_store, monkeypatch)
    expected = change_and_save(pq_store, point, rows="int8")  # rows added since: coded with the file's steps
    with Store.open(pq_store) as reader:
        assert reader.vectors.vector_file().quantizer is not None
        assert_same(answers(reader), expected)
        assert {p.kind for p in check_store(reader).problems} <= {"temporary_file"}
    with Store.open(pq_store, writable=True) as writer:  # float32 would fit again: int8 rows stay int8
        writer.vectors.save_snapshot()
        assert writer.vectors.vector_file().quantizer is not None
        assert_same(answers(writer), expected)
        assert not check_store(writer).problems
    assert vector_files(pq_store) == [snapshot.read_manifest(pq_store).vectors_file]
