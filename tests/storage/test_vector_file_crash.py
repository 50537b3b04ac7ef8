"""The vector file an ivf-pq index re-ranks from (``medsearch.storage.vector_file``) kept in step with the
database: adds, deletes and replaces, then a snapshot killed (SIGKILL) between each of its steps; the store
reopened answers exactly as the writer did before the kill, and ``check`` finds nothing but leftovers that
the next snapshot removes. A damaged or missing file is never trusted: the store answers from the database,
``check`` reports it and ``--repair`` writes it again."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from medsearch.storage import snapshot, vector_file
from medsearch.storage.check import check_store
from medsearch.storage.store import Store

from tests.storage.test_ivf_pq_store import COUNT, clustered, pq_store  # noqa: F401  (the fixture)

ROOT = Path(__file__).parents[2]
QUERIES = clustered(20, 9)

# Changes the store (adds, then deletes a third of it: past the compaction share, then replaces), saves the
# answers it gives, then writes the snapshot, killing itself (SIGKILL) at the point named.
CHANGER = r"""
import os, signal, sys
from pathlib import Path
import numpy as np
from medsearch.storage import queries, snapshot, vector_file
from medsearch.storage.store import Store
from medsearch.storage.writes import Batch, write_batch
from tests.storage.test_ivf_pq_store import COUNT, clustered, images

point, directory, deletes = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
vector_file.ROW_DTYPE = sys.argv[4]  # the rows' type while they fit the memory

def die(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

def wrap(module, name, before=None):
    real = getattr(module, name)
    def patched(*args, **kwargs):
        if before is None or before(*args):
            die()
        return real(*args, **kwargs)
    setattr(module, name, patched)

if point == "vector-file-written":  # its rows written and fsynced, not yet renamed to its name
    wrap(vector_file, "_digest")
elif point == "before-index-file":  # the vector file in place, the FAISS file not written
    wrap(snapshot, "save_snapshot")
elif point == "before-manifest":  # both files in place, the manifest still the old one
    wrap(snapshot, "_fsync_write", lambda target, *_: target.name == snapshot.MANIFEST_FILE)
elif point == "before-cleanup":  # the new manifest in place, the old files not yet deleted
    wrap(snapshot, "unnamed_index_files")

folder = directory.parent / "files"
with Store.open(directory, writable=True) as store:
    if deletes > 100:
        write_batch(store, Batch(images=images(clustered(200, 5), COUNT, folder)))
    write_batch(store, Batch(remove_paths=[str(folder / f"{n}.dcm") for n in range(deletes)]))
    if deletes > 100:
        replaced = images(clustered(50, 6), deletes, folder)
        write_batch(store, Batch(images=replaced, replace_paths={image.path for image in replaced}))
    mr = queries.ids_where(store, ["modality = 'MR'"])
    asked = clustered(20, 9)
    scores, ids = store.vectors.search(asked, 10)
    kept_scores, kept = store.vectors.search(asked, 10, mr)
    np.savez(directory.parent / "expected.npz", scores=scores, ids=ids, kept_scores=kept_scores, kept=kept)
    store.vectors.save_snapshot()
"""


def change_and_save(store_dir: Path, point: str, deletes: int = 1000, rows: str = "float32") -> dict[str, np.ndarray]:
    """Run ``CHANGER`` (its vector file in ``rows``); returns the answers it gave before its snapshot."""
    done = subprocess.run([sys.executable, "-c", CHANGER, point, str(store_dir), str(deletes), rows], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == (0 if point == "none" else -signal.SIGKILL), done.stderr[-2000:]
    return dict(np.load(store_dir.parent / "expected.npz"))


def answers(store: Store) -> dict[str, np.ndarray]:
    from medsearch.storage import queries

    mr = queries.ids_where(store, ["modality = 'MR'"])
    scores, ids = store.vectors.search(QUERIES, 10)
    kept_scores, kept = store.vectors.search(QUERIES, 10, mr)
    return {"scores": scores, "ids": ids, "kept_scores": kept_scores, "kept": kept}


def assert_same(found: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    np.testing.assert_array_equal(found["ids"], expected["ids"])
    np.testing.assert_array_equal(found["kept"], expected["kept"])
    np.testing.assert_allclose(found["scores"], expected["scores"], atol=1e-6)
    np.testing.assert_allclose(found["kept_scores"], expected["kept_scores"], atol=1e-6)


def overlap(found: np.ndarray, expected: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, expected, strict=True)]))


def vector_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.glob("vectors.*"))


@pytest.mark.parametrize("point", ["none", "vector-file-written", "before-index-file", "before-manifest",
                                   "before-cleanup"])
def test_a_snapshot_killed_at_each_step_answers_the_same(pq_store: Path, point: str) -> None:  # noqa: F811
    before = vector_files(pq_store)
    expected = change_and_save(pq_store, point)
    assert len(vector_files(pq_store)) == (1 if point == "none" else 2) and vector_files(pq_store) != before
    with Store.open(pq_store) as reader:
        assert_same(answers(reader), expected)
        rerank = reader.vectors.vector_file()
        assert rerank is not None, "the re-rank reads a vector file, not the database"
        assert rerank.count() == reader.image_count() == COUNT + 200 - 1000
        assert {p.kind for p in check_store(reader).problems} <= {"temporary_file"}
    with Store.open(pq_store, writable=True) as writer:
        writer.vectors.save_snapshot()  # the next snapshot: written whole, leftovers deleted
        assert_same(answers(writer), expected)
        assert not check_store(writer).problems
    manifest = snapshot.read_manifest(pq_store)
    assert manifest is not None and vector_files(pq_store) == [manifest.vectors_file]
    with Store.open(pq_store) as reader:
        assert_same(answers(reader), expected)


def test_deletes_alone_keep_the_file_until_compaction(pq_store: Path) -> None:  # noqa: F811
    named = snapshot.read_manifest(pq_store).vectors_file
    expected = change_and_save(pq_store, "none", deletes=100)  # 3 %: the rows stay in the file, dead
    assert snapshot.read_manifest(pq_store).vectors_file == named
    with Store.open(pq_store) as reader:
        assert_same(answers(reader), expected)
        rerank = reader.vectors.vector_file()
        assert rerank is not None and rerank.base is not None and len(rerank.base.ids) == COUNT
        assert rerank.count() == COUNT - 100 and not (set(range(1, 101)) & set(rerank.held_ids().tolist()))
        assert not check_store(reader).problems
    expected = change_and_save(pq_store, "none", deletes=1000)  # now past the share: written again
    assert snapshot.read_manifest(pq_store).vectors_file != named and vector_files(pq_store) != [named]
    with Store.open(pq_store) as reader:
        assert_same(answers(reader), expected)
        rerank = reader.vectors.vector_file()
        assert rerank is not None and rerank.base is not None and len(rerank.base.ids) == rerank.count()


@pytest.mark.parametrize("damage", ["flipped", "truncated", "missing", "unnamed"])
def test_a_damaged_or_missing_file_is_never_trusted(pq_store: Path, damage: str) -> None:  # noqa: F811
    with Store.open(pq_store) as reader:
        expected = answers(reader)
    manifest = snapshot.read_manifest(pq_store)
    path = pq_store / manifest.vectors_file
    if damage == "flipped":  # a row's bytes: only the checksum that check reads tells
        with open(path, "r+b") as handle:
            handle.seek(4096 + 100)
            handle.write(b"\x00\x00\x80\x7f" * 8)  # float32 infinities
    elif damage == "truncated":
        with open(path, "r+b") as handle:
            handle.truncate(path.stat().st_size - 8)
    elif damage == "missing":
        path.unlink()
    else:  # a manifest of the earlier version, which named no vector file
        text = (pq_store / snapshot.MANIFEST_FILE).read_text().replace(manifest.vectors_file, "")
        (pq_store / snapshot.MANIFEST_FILE).write_text(text)
    with Store.open(pq_store) as reader:
        if damage != "flipped":  # read from the database instead: the same answers
            assert reader.vectors.vector_file() is None
            assert_same(answers(reader), expected)
        report = check_store(reader)
        assert "vector_file" in {p.kind for p in report.problems} and not report.ok and report.repairable
    with Store.open(pq_store, writable=True) as writer:
        assert writer.vectors.vector_file() is not None  # a writer writes it again from the database
        repaired = check_store(writer, repair=True)
        assert repaired.ok, repaired.problems
        assert not check_store(writer).problems
    with Store.open(pq_store) as reader:
        assert reader.vectors.vector_file() is not None
        assert overlap(answers(reader)["ids"], expected["ids"]) >= 0.9  # a new index, trained again
    assert vector_files(pq_store) == [snapshot.read_manifest(pq_store).vectors_file]


def test_a_file_too_large_for_the_memory_is_not_kept(pq_store: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
                                                     ) -> None:
    with Store.open(pq_store) as reader:
        expected = answers(reader)
    with monkeypatch.context() as patched:
        patched.setattr(vector_file, "MEMORY_SHARE", 0.0)  # as 10 M float32 rows on a 24 GB machine
        with Store.open(pq_store, writable=True) as writer:
            writer.vectors.save_snapshot()
            assert writer.vectors.vector_file() is None
        assert snapshot.read_manifest(pq_store).vectors_file == "" and vector_files(pq_store) == []
        with Store.open(pq_store) as reader:  # the re-rank reads the database, by design: no problem
            assert reader.vectors.vector_file() is None
            assert_same(answers(reader), expected)
            assert not check_store(reader).problems
    with Store.open(pq_store, writable=True) as writer:  # room again: the writer writes it
        assert writer.vectors.vector_file() is not None
        writer.vectors.save_snapshot()
    with Store.open(pq_store) as reader:
        assert reader.vectors.vector_file() is not None
        assert_same(answers(reader), expected)
        assert not check_store(reader).problems
