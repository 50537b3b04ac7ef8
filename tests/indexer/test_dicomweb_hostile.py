"""A PACS sync that cannot lose the archive (issue 27), against our own misbehaving DICOMweb server on
loopback (``tests/indexer/hostile_dicomweb.py``), through the real CLI: abnormal listings never remove
anything, every hostile answer ends within its deadline with one line and exit 8, memory stays bounded,
one bad instance is a recorded failure, failed fetches are retried by the next ``--since-last``, UIDs are
validated, SOP UIDs de-duplicated, credentials stay with their source, ``check`` passes a healthy store."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.indexer.hostile_dicomweb import HostileDicomWeb, make_archive

Cli = Callable[..., Any]
STUDIES, PER_STUDY = 4, 10
INSTANCES = STUDIES * PER_STUDY
BOUNDS = {"MEDSEARCH_DICOMWEB_DEADLINE_S": "3", "MEDSEARCH_DICOMWEB_TIMEOUT_S": "3", "MEDSEARCH_DICOMWEB_RETRIES": "1"}
HANG_LIMIT_S = 25.0  # 2 tries of a 3 s deadline (+3 s for the last read), the back-off, start-up; generous


@pytest.fixture(scope="module")
def archive() -> dict[tuple[str, str, str], bytes]:
    return make_archive(STUDIES, PER_STUDY)


@pytest.fixture
def hostile(archive: dict[tuple[str, str, str], bytes], monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileDicomWeb]:
    for name, value in BOUNDS.items():
        monkeypatch.setenv(name, value)
    for name in ("MEDSEARCH_DICOMWEB_TOKEN", "MEDSEARCH_DICOMWEB_USER", "MEDSEARCH_DICOMWEB_AUTH_FILE",
                 "MEDSEARCH_DICOMWEB_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    server = HostileDicomWeb(dict(archive))
    yield server
    server.close()


def _base(store: Path, model: Path) -> list[Any]:
    return ["--store", store, "--model", model, "--workers", "0", "--json"]


def _images(store: Path) -> int:
    with sqlite3.connect(store / "medsearch.db") as db:
        return int(db.execute("select count(*) from images").fetchone()[0])


def _one_line_error(cli: Cli, *args: Any) -> tuple[str, float]:
    """(the one error line of a run that must exit 8, its seconds). A request the client retried (on a busy
    machine a loopback answer can be slow) says so on a line of its own before it; nothing else may."""
    started = time.monotonic()
    result = cli(*args, expect=8)
    elapsed = time.monotonic() - started
    lines = [line for line in result.output.strip().splitlines() if not line.startswith("retried a request to ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0], elapsed


def test_abnormal_listings_never_remove_the_archive(hostile: HostileDicomWeb, cli: Cli, tmp_path: Path,
                                                    tiny_model: Path) -> None:
    store = tmp_path / "store"
    assert cli("index", hostile.url, *_base(store, tiny_model))["added"] == INSTANCES
    expected = {"qido-404": "HTTP 404 to a QIDO-RS search", "qido-html": "not JSON (HTTP 200, text/html",
                "qido-wrong-type": "not JSON (HTTP 200, application/octet-stream",
                "qido-204": f"would remove {INSTANCES} of the {INSTANCES} stored instances"}
    for mode, message in expected.items():
        hostile.mode = mode
        for since_last in ((), ("--since-last",)):
            line, _elapsed = _one_line_error(cli, "index", hostile.url, *since_last, "--store", store)
            assert message in line, (mode, line)
            assert _images(store) == INSTANCES
    assert cli("info", "--store", store, "--json")["images"] == INSTANCES
    hostile.mode = "qido-204"
    preview = cli("index", hostile.url, "--dry-run", *_base(store, tiny_model))["sources"][0]
    assert (len(preview["remove"]), preview["add"], preview["stored"]) == (INSTANCES, [], INSTANCES)
    assert _images(store) == INSTANCES
    emptied = cli("index", hostile.url, "--allow-removals", *_base(store, tiny_model))
    assert emptied["removed"] == INSTANCES and _images(store) == 0


def test_removal_guard_share_is_configurable(hostile: HostileDicomWeb, cli: Cli, tmp_path: Path,
                                             tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    cli("index", hostile.url, *_base(store, tiny_model))
    lost = sorted(hostile.archive)[:PER_STUDY]  # one study of four: 25 %
    for key in lost:
        del hostile.archive[key]
    line, _ = _one_line_error(cli, "index", hostile.url, "--since-last", "--store", store)
    assert f"remove {PER_STUDY} of the {INSTANCES}" in line and "--allow-removals" in line
    monkeypatch.setenv("MEDSEARCH_DICOMWEB_MAX_REMOVED", "30%")
    done = cli("index", hostile.url, "--since-last", *_base(store, tiny_model))
    assert done["removed"] == PER_STUDY and _images(store) == INSTANCES - PER_STUDY


@pytest.mark.parametrize("mode", ["repeat-pages", "drip", "feed-stuck", "evil-uid", "huge-page"])
def test_hostile_answers_end_within_their_deadline_in_one_line(hostile: HostileDicomWeb, cli: Cli, tmp_path: Path,
                                                               tiny_model: Path, monkeypatch: pytest.MonkeyPatch,
                                                               mode: str) -> None:
    store = tmp_path / "store"
    monkeypatch.setenv("MEDSEARCH_DICOMWEB_MAX_PAGE_MB", "8")
    args: tuple[str, ...] = ()
    if mode == "feed-stuck":  # a first sync records the feed's cursor; the feed then stops advancing
        hostile.mode = "feed"
        cli("index", hostile.url, *_base(store, tiny_model))
        hostile.feed_last, args = 20, ("--since-last",)
    hostile.mode = mode
    line, elapsed = _one_line_error(cli, "index", hostile.url, *args, "--store", store, "--model", tiny_model)
    assert elapsed < HANG_LIMIT_S, (mode, elapsed)
    assert {"repeat-pages": "a page it sent before (it ignores offset)",
            "drip": "did not answer a QIDO-RS search within 3 s (tried 2 times: timed out, timed out)",
            "feed-stuck": "change feed of", "evil-uid": "'../../../../etc' is not a DICOM UID",
            "huge-page": "over the 8 MiB cap"}[mode] in line, line
    assert hostile.count("/instances?") <= 3 and hostile.count("/changes?since") <= 2
    assert not any("etc" in path for _method, path in hostile.requests if "instances/" in path)


def test_failed_fetches_are_retried_by_the_next_since_last(hostile: HostileDicomWeb, cli: Cli, tmp_path: Path,
                                                           tiny_model: Path) -> None:
    store = tmp_path / "store"
    hostile.mode = "wado-404-some"  # the even-numbered instances answer 404
    first = cli("index", hostile.url, *_base(store, tiny_model))
    assert (first["added"], first["failed"]) == (INSTANCES // 2, INSTANCES // 2)
    pending = cli("info", "--store", store, "--json")["source_failures"][hostile.url]
    assert len(pending) == INSTANCES // 2 and all("HTTP 404" in item["reason"] for item in pending)
    gone = next(key for key in sorted(hostile.archive) if key[2].endswith(".2"))  # failed, then deleted for good
    del hostile.archive[gone]
    hostile.mode = "healthy"
    again = cli("index", hostile.url, "--since-last", *_base(store, tiny_model))
    assert (again["added"], again["failed"], again["removed"]) == (INSTANCES // 2 - 1, 0, 0)
    assert cli("info", "--store", store, "--json")["source_failures"] == {hostile.url: []}
    assert cli("index", hostile.url, "--since-last", *_base(store, tiny_model))["added"] == 0


def test_one_bad_multipart_body_is_that_instance_s_failure(hostile: HostileDicomWeb, cli: Cli, tmp_path: Path,
                                                           tiny_model: Path) -> None:
    hostile.mode = "bad-parts"  # numbers 3, 6, 9 truncated; 1, 4, 7, 10 mis-bounded, per study
    report = cli("index", hostile.url, *_base(tmp_path / "store", tiny_model))
    bad = STUDIES * 7
    assert (report["added"], report["failed"]) == (INSTANCES - bad, bad)
    reasons = {failure["reason"] for failure in report["failures"]}
    assert any("truncated" in reason for reason in reasons) and any("no parts" in reason for reason in reasons)


def test_one_sop_uid_under_two_series_is_stored_once(hostile: HostileDicomWeb, cli: Cli, tmp_path: Path,
                                                     tiny_model: Path) -> None:
    hostile.mode = "dup-sop"
    store = tmp_path / "store"
    assert cli("index", hostile.url, *_base(store, tiny_model))["added"] == INSTANCES
    with sqlite3.connect(store / "medsearch.db") as db:
        assert db.execute("select count(distinct sop_instance_uid) from images").fetchone()[0] == INSTANCES
    assert cli("index", hostile.url, *_base(store, tiny_model))["unchanged"] == INSTANCES


def test_check_passes_a_healthy_pacs_store_and_says_when_it_cannot_ask(hostile: HostileDicomWeb, cli: Cli,
                                                                        tmp_path: Path, tiny_model: Path) -> None:
    store = tmp_path / "store"
    cli("index", hostile.url, *_base(store, tiny_model))
    report = cli("check", "--store", store, "--json")
    assert report["ok"] and report["problems"] == [] and report["facts"]["remote_instances"] == INSTANCES
    assert any(f"{INSTANCES} stored instances are all still listed" in note for note in report["notes"])
    del hostile.archive[sorted(hostile.archive)[0]]
    lost = cli("check", "--store", store, "--json")
    assert lost["ok"] and any("no longer lists 1 of the" in note for note in lost["notes"])
    hostile.mode = "qido-404"
    down = cli("check", "--store", store, "--json")
    assert down["ok"] and any("could not check" in note and "HTTP 404" in note for note in down["notes"])
    assert "missing_file" not in {problem["kind"] for problem in down["problems"]}


def test_credentials_go_only_to_their_own_source(archive: dict[tuple[str, str, str], bytes], cli: Cli,
                                                 tmp_path: Path, tiny_model: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = HostileDicomWeb(dict(archive)), HostileDicomWeb(dict(archive))
    try:
        table = tmp_path / "credentials"
        table.write_text(f"# per source\n{first.url} bearer token-of-first\n")
        monkeypatch.setenv("MEDSEARCH_DICOMWEB_CREDENTIALS", str(table))
        store = tmp_path / "store"
        cli("index", first.url, *_base(store, tiny_model))
        cli("index", second.url, *_base(store, tiny_model))
        assert {headers.get("Authorization") for headers in first.headers} == {"Bearer token-of-first"}
        assert {headers.get("Authorization") for headers in second.headers} == {None}
        monkeypatch.setenv("MEDSEARCH_DICOMWEB_TOKEN", "single-source-token")
        refused = cli("index", second.url, "--store", store, expect=8)
        assert "for a store of one source" in refused.output and "single-source-token" not in refused.output
        assert all(headers.get("Authorization") != "Bearer single-source-token" for headers in second.headers)
    finally:
        first.close()
        second.close()


def test_server_thumbnail_fetches_only_from_known_sources(hostile: HostileDicomWeb, archive: dict[Any, bytes],
                                                          cli: Cli, tmp_path: Path, tiny_model: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A stored path naming another host (as a loaded shard may hold) is never fetched: no request, no token."""
    from medsearch.server.wado import RemoteImages

    store = tmp_path / "store"
    monkeypatch.setenv("MEDSEARCH_DICOMWEB_TOKEN", "the-token")
    cli("index", hostile.url, *_base(store, tiny_model))
    stranger = HostileDicomWeb(dict(archive))
    try:
        images = RemoteImages(lambda data, _name, _size: data[:4], lambda: [hostile.url])
        study, series, sop = sorted(archive)[0]
        own = f"{hostile.url}/studies/{study}/series/{series}/instances/{sop}"
        assert images.png(own, 64) == archive[(study, series, sop)][:4]
        assert hostile.headers[-1].get("Authorization") == "Bearer the-token"
        from medsearch.errors import NotFound
        from medsearch.indexer.dicomweb.source import SourceError

        with pytest.raises(NotFound, match="not under a source"):
            images.png(own.replace(hostile.url, stranger.url), 64)
        with pytest.raises(SourceError, match="not an instance of the DICOMweb source"):
            images.png(f"{hostile.url}/studies/../../../etc/series/1/instances/1", 64)
        assert stranger.requests == []
        images.close()
    finally:
        stranger.close()


def _peak_rss_mb(args: list[str], env: dict[str, str]) -> tuple[int, float, str]:
    """(exit code, peak resident memory in MB of the CLI process and its children, output)."""
    with subprocess.Popen([sys.executable, "-m", "medsearch.cli", *args], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT) as process:
        assert process.stdout is not None
        output = process.stdout.read().decode()
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024, output


def test_sync_memory_stays_within_its_budget(hostile: HostileDicomWeb, tmp_path: Path, tiny_model: Path) -> None:
    """Peak memory of real ``index`` processes: a healthy sync, then an endless WADO-RS body for every
    instance and a QIDO page that never ends. Caps of 16 MiB a part and 8 MiB a page, 4 downloads at a time
    (8 bodies held at most): the hostile syncs stay within the healthy one's peak + 8 x 2 x 16 MiB."""
    env = {**os.environ, **BOUNDS, "HF_HUB_OFFLINE": "1", "MEDSEARCH_DICOMWEB_MAX_PART_MB": "16",
           "MEDSEARCH_DICOMWEB_MAX_PAGE_MB": "8", "MEDSEARCH_DICOMWEB_DEADLINE_S": "60"}
    base = ["--model", str(tiny_model), "--workers", "0", "--json"]
    code, healthy, output = _peak_rss_mb(["index", hostile.url, "--store", str(tmp_path / "a"), *base], env)
    assert code == 0, output
    budget = healthy + 8 * 2 * 16
    hostile.mode = "endless-multipart"
    code, endless, output = _peak_rss_mb(["index", hostile.url, "--store", str(tmp_path / "b"), *base], env)
    assert code == 0 and f'"failed": {INSTANCES}' in output and "over the 16 MiB cap" in output, output
    hostile.mode = "huge-page"
    code, huge, output = _peak_rss_mb(["index", hostile.url, "--store", str(tmp_path / "c"), *base], env)
    assert code == 8 and "over the 8 MiB cap" in output, output
    print(f"peak memory: healthy sync {healthy:.0f} MB, endless multipart {endless:.0f} MB, endless QIDO page "
          f"{huge:.0f} MB; budget {budget:.0f} MB")
    assert endless <= budget and huge <= budget


def test_running_server_never_sends_the_token_to_a_host_a_stored_path_names(
        hostile: HostileDicomWeb, archive: dict[Any, bytes], cli: Cli, tmp_path: Path, tiny_model: Path,
        tiny_embedder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 28 item 1, the server's side: a row whose path names another host (as a loaded shard's may) gets
    a one-line 404 from the real HTTP server, and that host receives no request at all."""
    import httpx
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

    from tests.api_fixtures import running_server

    store = tmp_path / "store"
    monkeypatch.setenv("MEDSEARCH_DICOMWEB_TOKEN", "the-token")
    cli("index", hostile.url, *_base(store, tiny_model))
    stranger = HostileDicomWeb(dict(archive))
    try:
        with sqlite3.connect(store / "medsearch.db") as db:
            own_id, path = db.execute("select id, path from images order by id limit 1").fetchone()
            other_id = db.execute("select id from images order by id limit 1 offset 1").fetchone()[0]
            db.execute("update images set path = ? where id = ?",
                       (path.replace(hostile.url, stranger.url).replace(path.rsplit("/", 1)[1], "9.9"), other_id))
        with running_server(create_app(store, embedder=tiny_embedder, settings=ServerSettings())) as base:
            own = httpx.get(f"{base}/api/items/{own_id}/thumbnail", params={"size": 64}, timeout=60)
            assert own.status_code == 200 and own.headers["content-type"] == "image/png"
            refused = httpx.get(f"{base}/api/items/{other_id}/thumbnail", params={"size": 64}, timeout=60)
        assert refused.status_code == 404 and "not under a source" in refused.json()["error"]["message"]
        assert stranger.requests == []
        assert {headers.get("Authorization") for headers in hostile.headers} == {"Bearer the-token"}
    finally:
        stranger.close()
