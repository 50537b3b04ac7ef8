"""``--executor ray`` against a real local Ray (2 CPUs, no dashboard). Ray listens on every interface, so
this module runs only inside a private network namespace (``test_ray_netns.py`` starts it there)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from medsearch.api import Medsearch
from medsearch.indexer.distributed.executor import RaySettings
from medsearch.indexer.load import load_file
from medsearch.indexer.pipeline import IndexSettings
from medsearch.storage import queries

from tests.conftest import write_png

pytestmark = pytest.mark.skipif(os.environ.get("MEDSEARCH_IN_NETNS") != "1",
                                reason="needs a private network namespace (run through test_ray_netns.py)")


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    import ray

    os.environ.pop("RAY_ADDRESS", None)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _open(store: Path, model: Path) -> Medsearch:
    return Medsearch.open(store, str(model), "cpu", create=True, writable=True)


def _vectors(ms: Medsearch) -> dict[tuple[str, int], np.ndarray]:
    """{(path, frame number): vector} of every stored image."""
    stored = queries.embeddings(ms.store, queries.all_ids(ms.store).tolist())
    frames = queries.images_by_id(ms.store, list(stored))
    return {(path, frames[image_id][1].get("frame_number", 0)): vector
            for image_id, (path, vector) in stored.items()}


def _same_vectors(left: Medsearch, right: Medsearch) -> None:
    ours, theirs = _vectors(left), _vectors(right)
    assert sorted(ours) == sorted(theirs) and ours
    for key, vector in ours.items():
        # as stored: 12 bits, in steps of the largest component over 2047
        np.testing.assert_allclose(vector, theirs[key], atol=5e-4, err_msg=str(key))


def _in_process(folder: Path, store: Path, model: Path) -> Medsearch:
    ms = _open(store, model)
    ms.index([folder], IndexSettings(workers=0))
    return ms


SMALL = IndexSettings(batch_size=2)


def test_streamed_path_equals_the_in_process_path(image_folder: Path, tmp_path: Path, tiny_model: Path) -> None:
    with _in_process(image_folder, tmp_path / "local", tiny_model) as local, \
            _open(tmp_path / "ray", tiny_model) as on_ray:
        report = on_ray.index_on_ray([image_folder], SMALL)
        expected = local.info()
        assert (report.added, report.failed) == (expected["files"], len(expected["failures"]))
        assert sorted(f["path"] for f in on_ray.info()["failures"]) == sorted(f["path"] for f in expected["failures"])
        _same_vectors(local, on_ray)
        index = on_ray.store.vectors.index()
        assert index.ntotal == on_ray.store.image_count()
        ids = set(queries.all_ids(on_ray.store).tolist())
        assert {hit.id for hit in on_ray.similar(str(image_folder / "png/case000.png"), k=50, include_self=True)} == ids


def test_shards_then_load_twice_duplicates_nothing(image_folder: Path, tmp_path: Path, tiny_model: Path,
                                                   cli: Any) -> None:
    shards = tmp_path / "shards"
    store = tmp_path / "sharded"
    written = cli("index", image_folder, "--store", store, "--model", tiny_model, "--device", "cpu",
                  "--executor", "ray", "--shards", shards, "--batch-size", "2", "--json")
    assert written["added"] == 0 and written["sharded"] > 0
    assert sorted(shards.glob("*.parquet")) and not list(shards.glob(".*.tmp"))
    first = cli("load", shards, "--store", store, "--json")
    again = cli("load", shards, "--store", store, "--json")
    assert first["added"] + first["failed"] == written["sharded"]
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, first["added"])
    with _in_process(image_folder, tmp_path / "local", tiny_model) as local, _open(store, tiny_model) as loaded:
        assert loaded.store.image_count() == local.store.image_count()
        assert loaded.info()["files"] == local.info()["files"]
        _same_vectors(local, loaded)
        assert loaded.store.vectors.index().ntotal == loaded.store.image_count()


def _embedding_actors() -> list[int]:
    """Process ids of this namespace's live Ray embedding actors (their title names ``EmbedFiles``)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            title = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if entry.name.isdigit() and "EmbedFiles" in title and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def test_a_killed_actor_costs_nothing(tmp_path: Path, tiny_model: Path) -> None:
    folder = tmp_path / "many"
    for seed in range(12):
        write_png(folder / f"case{seed:02d}.png", seed)
    killed: list[int] = []

    def kill_once(done: int, _total: int) -> None:
        if done >= 2 and not killed:
            killed.extend(_embedding_actors())
            for pid in killed:
                os.kill(pid, signal.SIGKILL)

    with _open(tmp_path / "ray", tiny_model) as on_ray:
        report = on_ray.index_on_ray([folder], IndexSettings(batch_size=1), RaySettings(), progress=kill_once)
        assert killed, "no embedding actor was found to kill"
        assert (report.added, report.failed) == (12, 0)
        stored = queries.embeddings(on_ray.store, queries.all_ids(on_ray.store).tolist())
        paths = [path for path, _vector in stored.values()]
        assert sorted(paths) == sorted(str(p) for p in folder.glob("*.png"))
        with _in_process(folder, tmp_path / "local", tiny_model) as local:
            _same_vectors(local, on_ray)


def test_a_rerun_skips_unchanged_reembeds_changed_removes_missing(image_folder: Path, tmp_path: Path,
                                                                   tiny_model: Path) -> None:
    with _open(tmp_path / "ray", tiny_model) as on_ray:
        first = on_ray.index_on_ray([image_folder], SMALL)
        write_png(image_folder / "png/case000.png", 99)
        (image_folder / "png/case001.png").unlink()
        again = on_ray.index_on_ray([image_folder], SMALL)
        assert (again.updated, again.removed, again.added) == (1, 1, 0)
        assert again.unchanged == first.added - 2
        with _in_process(image_folder, tmp_path / "local", tiny_model) as local:
            _same_vectors(local, on_ray)


def crash_on_bomb(task: Any, options: Any, preprocessor: Any) -> Any:
    """The pipeline's load, except that a file named ``bomb.png`` kills its process as a native decoder
    crash would."""
    if Path(task[0].path).name == "bomb.png":
        os.kill(os.getpid(), signal.SIGSEGV)
    entry, digest = task
    return load_file(entry, options, preprocessor, digest)


def test_a_decoder_crash_costs_one_file(tmp_path: Path, tiny_model: Path) -> None:
    from dataclasses import replace

    from medsearch.indexer.discover import discover
    from medsearch.indexer.distributed.executor import RayExecutor
    from medsearch.indexer.pipeline import IndexReport, plan_work
    from medsearch.indexer.plan import Plan
    from medsearch.indexer.workers import CRASHED

    folder = tmp_path / "crashing"
    for seed in range(4):
        write_png(folder / f"case{seed}.png", seed)
    write_png(folder / "bomb.png", 9)
    work = replace(plan_work(Plan(to_read=list(discover([folder])))), load=crash_on_bomb)
    report = IndexReport()
    with _open(tmp_path / "ray", tiny_model) as on_ray:
        RayExecutor("cpu")(on_ray.store, lambda: on_ray.embedder, work, SMALL, report)
        assert (report.added, report.failed) == (4, 1)
        assert report.failures == [{"path": str(folder / "bomb.png"), "reason": CRASHED}]
        assert on_ray.store.image_count() == 4
