"""``medsearch load`` under hostile shards: every malformed shard or row is reported with its name and reason,
nothing stored is damaged, and the other shards still load (``medsearch.indexer.distributed.loading``).

Each case writes a good shard (``0-good.parquet``, loaded first) and one bad one beside it, then runs the real
CLI (``load --json``) over the folder with the images' folder as ``--root``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from medsearch.api import Medsearch

from tests.indexer.shard_files import DIM, row, write_shard

ROOT = "/data/images"  # the files the shards name need not exist on the loading machine
GOOD = f"{ROOT}/good.dcm"
SOURCE = "dicomweb+http://pacs.example:8042/dicom-web"
INSTANCE = f"{SOURCE}/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5"
FLOATS = np.float32


def _vector(values: list[float]) -> bytes:
    return np.array(values, dtype=FLOATS).tobytes()


def _rows(path: Path, rows: list[dict[str, Any]]) -> None:
    write_shard(path, rows)


def _bytes(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def _truncated(path: Path) -> None:
    write_shard(path, [row(f"{ROOT}/t{i}.dcm", i) for i in range(50)])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _schema_without(column: str) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        import pyarrow as pa
        from medsearch.indexer.distributed.shards import schema

        kept = pa.schema([field for field in schema() if field.name != column])
        good = {key: value for key, value in row(f"{ROOT}/a.dcm").items() if key != column}
        write_shard(path, [good], kept)
    return build


def _dim_as_text(path: Path) -> None:
    import pyarrow as pa
    from medsearch.indexer.distributed.shards import schema

    fields = [pa.field("dim", pa.string()) if field.name == "dim" else field for field in schema()]
    write_shard(path, [row(f"{ROOT}/a.dcm", dim="8")], pa.schema(fields))


SHARD_CASES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "truncated file": (_truncated, "bad_shard", "cannot read"),
    "empty file": (_bytes(b""), "bad_shard", "cannot read"),
    "not Parquet": (_bytes(b"PAR1" + b"\x00" * 64), "bad_shard", "cannot read"),
    "no vector column": (_schema_without("vector"), "bad_shard", "no column 'vector'"),
    "dim column of text": (_dim_as_text, "bad_shard", "column 'dim' is string"),
    "dim of zero": (lambda p: _rows(p, [row(f"{ROOT}/a.dcm", dim=0)]), "bad_shard", "bad model columns"),
    "another model": (lambda p: _rows(p, [row(f"{ROOT}/a.dcm", revision="r2")]), "model_mismatch", "(r2)"),
    "unknown precision": (lambda p: _rows(p, [row(f"{ROOT}/a.dcm", precision="x")]), "bad_shard", "precision"),
}

ROW_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "NaN in the vector": ({"vector": _vector([np.nan] + [0.0] * (DIM - 1))}, "NaN or infinity"),
    "infinity in the vector": ({"vector": _vector([np.inf] + [0.0] * (DIM - 1))}, "NaN or infinity"),
    "all-zero vector": ({"vector": _vector([0.0] * DIM)}, "all zeros"),
    "short vector": ({"vector": _vector([1.0] * (DIM - 1))}, f"expected {DIM * 4}"),
    "long vector": ({"vector": _vector([0.0] * DIM + [1.0])}, f"expected {DIM * 4}"),
    "no vector": ({"vector": None}, f"expected {DIM * 4}"),
    "vector far from unit length": ({"vector": _vector([100.0] + [0.0] * (DIM - 1))}, "length 100"),
    "bad date": ({"metadata": json.dumps({"study_date": {"$date": "2020-13-45"}})}, "bad date"),
    "date of a number": ({"metadata": json.dumps({"study_date": {"$date": 5}})}, "ISO date"),
    "bad metadata JSON": ({"metadata": "{not json"}, "not valid JSON"),
    "metadata not an object": ({"metadata": "[1, 2]"}, "JSON object"),
    "deeply nested metadata": ({"metadata": "[" * 100_000}, "metadata"),
    "no metadata": ({"metadata": None}, "metadata"),
    "negative frame number": ({"frame_number": -1}, "frame_number"),
    "thumbnail not a PNG": ({"thumbnail": b"<svg onload=alert(1)>"}, "PNG"),
    "no content hash": ({"content_hash": None}, "content_hash"),
}

PATH_CASES: dict[str, tuple[str, str]] = {
    "a system file": ("/etc/shadow", "outside the roots"),
    "a sibling of the root": ("/data/images-other/a.dcm", "outside the roots"),
    "climbing out of the root": (f"{ROOT}/../../etc/passwd", "absolute and normalised"),
    "a relative path": ("images/a.dcm", "absolute and normalised"),
    "a DICOMweb path of another host": ("dicomweb+http://evil.example/dicom-web/studies/1/series/2/instances/3",
                                        "does not know"),
    "a DICOMweb path of a known host's other prefix": (SOURCE + "-evil/studies/1/series/2/instances/3",
                                                       "does not know"),
    "a DICOMweb path that is not an instance": (f"{SOURCE}/studies/1/../../../other", "not an instance"),
    "a plain URL": ("http://evil.example/a.dcm", "URL"),
}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store that knows the DICOMweb source ``SOURCE``."""
    from medsearch.storage.sources import Cursor, save_cursor

    location = tmp_path / "store"
    with Medsearch.open(location, create=True, writable=True) as ms:
        save_cursor(ms.store, Cursor(SOURCE, "qido"))
    return location


def _load(cli: Any, folder: Path, store: Path, expect: int = 0) -> dict[str, Any]:
    return cli("load", folder, "--store", store, "--root", ROOT, "--json", expect=expect)


def _stored(store: Path) -> dict[str, np.ndarray]:
    """{path: stored vector} of every image in ``store``."""
    from medsearch.storage import queries

    with Medsearch.open(store) as ms:
        stored = queries.embeddings(ms.store, queries.all_ids(ms.store).tolist())
        return dict(stored.values())


def _stored_paths(store: Path) -> set[str]:
    return set(_stored(store))


@pytest.mark.parametrize("case", list(SHARD_CASES))
def test_a_bad_shard_is_named_with_its_reason_and_the_others_load(case: str, tmp_path: Path, store: Path,
                                                                   cli: Any) -> None:
    build, code, reason = SHARD_CASES[case]
    shards = tmp_path / "shards"
    write_shard(shards / "0-good.parquet", [row(GOOD, 1)])
    build(shards / "1-bad.parquet")
    report = _load(cli, shards, store, expect=7)
    assert [failed["shard"] for failed in report["failed_shards"]] == [str(shards / "1-bad.parquet")]
    error = report["failed_shards"][0]["error"]
    assert error["code"] == code and reason in error["message"], error
    assert "Traceback" not in error["message"] and "\n" not in error["message"]
    assert report["added"] == 1 and _stored_paths(store) == {GOOD}


@pytest.mark.parametrize("case", list(ROW_CASES) + list(PATH_CASES))
def test_a_refused_row_is_a_recorded_failure_with_its_reason(case: str, tmp_path: Path, store: Path,
                                                              cli: Any) -> None:
    if case in ROW_CASES:
        changes, reason = ROW_CASES[case]
        bad = row(f"{ROOT}/bad.dcm", 2, **changes)
    else:
        path, reason = PATH_CASES[case]
        bad = row(path, 2)
    shards = tmp_path / "shards"
    write_shard(shards / "0-good.parquet", [row(GOOD, 1)])
    write_shard(shards / "1-mixed.parquet", [bad, row(f"{ROOT}/also-good.dcm", 3)])
    report = _load(cli, shards, store)
    assert report["failed_shards"] == [] and (report["added"], report["failed"]) == (2, 1)
    assert [failure["path"] for failure in report["failures"]] == [bad["path"]]
    assert reason in report["failures"][0]["reason"], report["failures"]
    assert _stored_paths(store) == {GOOD, f"{ROOT}/also-good.dcm"}
    with Medsearch.open(store) as ms:
        assert [f["path"] for f in ms.info()["failures"]] == [bad["path"]]


def test_a_path_unfit_to_store_is_reported_only(tmp_path: Path, store: Path, cli: Any) -> None:
    write_shard(tmp_path / "shards/a.parquet", [row(f"{ROOT}/a\nb.dcm", 1), row(None, 2), row(GOOD, 3)])
    report = _load(cli, tmp_path / "shards", store)
    assert (report["added"], report["failed"]) == (1, 2)
    assert report["failures"] == [{"path": f"'{ROOT}/a\\nb.dcm'", "reason": "path holds control characters"},
                                  {"path": "None", "reason": "path is missing or too long"}]
    with Medsearch.open(store) as ms:
        assert ms.info()["failures"] == []


def test_known_sources_and_given_roots_are_accepted(tmp_path: Path, store: Path, cli: Any) -> None:
    write_shard(tmp_path / "shards/a.parquet", [row(INSTANCE, 1), row(GOOD, 2), row(ROOT, 3)])
    report = _load(cli, tmp_path / "shards", store)
    assert (report["added"], report["failed"]) == (3, 0)
    assert _stored_paths(store) == {INSTANCE, GOOD, ROOT}


def test_without_a_root_every_file_path_is_refused(tmp_path: Path, store: Path, cli: Any) -> None:
    write_shard(tmp_path / "shards/a.parquet", [row(GOOD, 1), row(INSTANCE, 2)])
    report = cli("load", tmp_path / "shards", "--store", store, "--json")
    assert (report["added"], report["failed"]) == (1, 1)
    assert report["failures"] == [{"path": GOOD, "reason": "path is outside the roots given to load (--root)"}]


def test_a_refused_row_never_replaces_what_is_stored(tmp_path: Path, store: Path, cli: Any) -> None:
    write_shard(tmp_path / "first/a.parquet", [row(GOOD, 1)])
    _load(cli, tmp_path / "first", store)
    before = _stored(store)
    zero = row(GOOD, 5, vector=_vector([0.0] * DIM))  # another content hash: it would replace the stored file
    write_shard(tmp_path / "second/a.parquet", [zero])
    report = _load(cli, tmp_path / "second", store)
    assert (report["updated"], report["failed"]) == (0, 1)
    after = _stored(store)
    assert list(after) == list(before) and np.array_equal(after[GOOD], before[GOOD])


def test_a_file_split_between_record_batches_keeps_all_its_frames(tmp_path: Path, store: Path, cli: Any) -> None:
    from medsearch.indexer.distributed.loading import BATCH_ROWS

    frames = [row(f"{ROOT}/multi.dcm", 7, frame=number) for number in range(BATCH_ROWS + 5)]
    write_shard(tmp_path / "shards/a.parquet", frames, row_group_size=100)
    report = _load(cli, tmp_path / "shards", store)
    assert (report["added"], report["frames_added"], report["failed"]) == (1, BATCH_ROWS + 5, 0)
    again = _load(cli, tmp_path / "shards", store)
    assert (again["added"], again["unchanged"]) == (0, 1)


def test_the_cli_prints_no_traceback_for_a_bad_shard(tmp_path: Path, store: Path) -> None:
    shards = tmp_path / "shards"
    write_shard(shards / "0-good.parquet", [row(GOOD, 1)])
    (shards / "1-bad.parquet").write_bytes(b"not parquet at all")
    done = subprocess.run([sys.executable, "-m", "medsearch.cli", "load", str(shards), "--store", str(store),
                           "--root", ROOT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 7, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert f"shard not loaded: {shards / '1-bad.parquet'}: cannot read this shard" in done.stderr
    assert "loaded 1 new" in done.stdout
