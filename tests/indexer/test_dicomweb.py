"""The DICOMweb source without Orthanc: URLs and credentials, QIDO filters, multipart bodies, and a small
loopback HTTP server that answers garbage, errors or is busy, through the real CLI and client."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from medsearch.errors import InvalidQuery
from medsearch.indexer.dicomweb.client import ClientSettings, DicomWebClient
from medsearch.indexer.dicomweb.multipart import boundary_of, split_parts, transfer_syntax_of
from medsearch.indexer.dicomweb.query import date_range, each_search, make_filters, since
from medsearch.indexer.dicomweb.source import Credentials, SourceError, credentials_from_env, parse_source

from tests.conftest import pydicom_file

Cli = Callable[..., Any]


def test_source_url_forms_and_refusals() -> None:
    source = parse_source("dicomweb+https://pacs.example:8443/dicom-web/")
    assert (source.url, source.base) == ("dicomweb+https://pacs.example:8443/dicom-web",
                                         "https://pacs.example:8443/dicom-web")
    assert source.rest_root == "https://pacs.example:8443"
    path = source.instance_path("1.2", "1.2.3", "1.2.3.4")
    assert path == "dicomweb+https://pacs.example:8443/dicom-web/studies/1.2/series/1.2.3/instances/1.2.3.4"
    assert source.wado_url(path) == "https://pacs.example:8443/dicom-web/studies/1.2/series/1.2.3/instances/1.2.3.4"
    with pytest.raises(InvalidQuery, match="credentials in the source URL are refused"):
        parse_source("dicomweb+https://alice:secret@pacs.example/dicom-web")
    for bad in ("https://pacs.example/dicom-web", "dicomweb+ftp://pacs.example/x", "dicomweb+http:///x",
                "dicomweb+http://pacs.example/x?Modality=CT"):
        with pytest.raises(InvalidQuery):
            parse_source(bad)


def test_credentials_from_environment_and_file(tmp_path: Path) -> None:
    assert credentials_from_env({}) == Credentials()
    bearer = credentials_from_env({"MEDSEARCH_DICOMWEB_TOKEN": "tok-123"})
    assert bearer.headers() == {"Authorization": "Bearer tok-123"} and "tok-123" not in repr(bearer)
    basic = credentials_from_env({"MEDSEARCH_DICOMWEB_USER": "alice", "MEDSEARCH_DICOMWEB_PASSWORD": "pw"})
    assert basic.headers() == {"Authorization": "Basic YWxpY2U6cHc="}
    secret = tmp_path / "auth"
    secret.write_text("basic bob:pa ss\n")
    assert credentials_from_env({"MEDSEARCH_DICOMWEB_AUTH_FILE": str(secret)}).secret == "bob:pa ss"
    secret.write_text("token-without-kind\n")
    with pytest.raises(SourceError, match="must hold one line") as caught:
        credentials_from_env({"MEDSEARCH_DICOMWEB_AUTH_FILE": str(secret)})
    assert "token-without-kind" not in str(caught.value)
    with pytest.raises(SourceError, match="cannot read"):
        credentials_from_env({"MEDSEARCH_DICOMWEB_AUTH_FILE": str(tmp_path / "missing")})


def test_filters_from_options() -> None:
    filters = make_filters("cr, dx", "20240101-20241231", "chest", ["InstitutionName=General", "00080090=Dr X"])
    assert filters == {"Modality": "CR,DX", "StudyDate": "20240101-20241231", "BodyPartExamined": "CHEST",
                       "InstitutionName": "General", "ReferringPhysicianName": "Dr X"}
    assert [f["Modality"] for f in each_search(filters)] == ["CR", "DX"]
    assert list(each_search({"Modality": "CT"})) == [{"Modality": "CT"}]
    import datetime as dt

    assert date_range("20240101") == (dt.date(2024, 1, 1), dt.date(2024, 1, 1))
    assert date_range("-20240101") == (None, dt.date(2024, 1, 1))
    assert since({"StudyDate": "20240101-20241231"}, dt.date(2024, 6, 1)) == {"StudyDate": "20240601-20241231"}
    assert since({}, dt.date(2024, 6, 1)) == {"StudyDate": "20240601-"}
    assert since({"StudyDate": "-20240101"}, dt.date(2024, 6, 1)) is None
    for bad in ("2024", "20241301", "2024010120241231", "-", "yesterday"):
        with pytest.raises(InvalidQuery, match="bad study date"):
            make_filters(study_date=bad)
    with pytest.raises(InvalidQuery, match="unknown DICOM attribute"):
        make_filters(extra=["NotAKeyword=1"])
    with pytest.raises(InvalidQuery, match="KEYWORD=VALUE"):
        make_filters(extra=["Modality"])


def test_multipart_parts_and_transfer_syntax() -> None:
    data = pydicom_file("CT_small.dcm").read_bytes()
    body = b"--b1\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n--b1--\r\n"
    assert boundary_of('multipart/related; type="application/dicom"; boundary="b1"') == "b1"
    assert split_parts(body, "b1") == [data]
    assert transfer_syntax_of(data) == "1.2.840.10008.1.2.1"
    assert transfer_syntax_of(pydicom_file("JPEG2000.dcm").read_bytes()) == "1.2.840.10008.1.2.4.91"
    assert transfer_syntax_of(b"not dicom") is None
    with pytest.raises(SourceError, match="truncated"):
        split_parts(body[: len(body) // 2], "b1")
    with pytest.raises(SourceError, match="no multipart boundary"):
        boundary_of("application/dicom")


class _Server:
    """A loopback HTTP server answering every GET with the next of ``answers`` (the last one repeats)."""

    def __init__(self, answers: list[tuple[int, str, bytes]]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append((self.path, dict(self.headers)))
                status, kind, body = owner.answers[min(len(owner.requests), len(owner.answers)) - 1]
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"dicomweb+http://127.0.0.1:{self.http.server_address[1]}/dicom-web"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def server() -> Iterator[Callable[[list[tuple[int, str, bytes]]], _Server]]:
    started: list[_Server] = []

    def start(answers: list[tuple[int, str, bytes]]) -> _Server:
        started.append(_Server(answers))
        return started[-1]

    yield start
    for each in started:
        each.close()


def test_garbage_response_gives_one_clear_line(server: Any, cli: Cli, tmp_path: Path, tiny_model: Path) -> None:
    garbage = server([(200, "text/html", b"<html>maintenance</html>")])
    result = cli("index", garbage.url, "--store", tmp_path / "store", "--model", tiny_model, expect=8)
    assert result.output.strip().splitlines() == [
        f"error: malformed QIDO-RS search response from {garbage.url}: not JSON (HTTP 200, text/html, 24 bytes)"]
    wrong_shape = server([(200, "application/dicom+json", b'{"not": "a list"}')])
    answer = cli("index", wrong_shape.url, "--store", tmp_path / "store", "--json", expect=8)
    assert answer["error"] == {"code": "source_error", "message": f"malformed QIDO-RS response from "
                               f"{wrong_shape.url}: expected a JSON array of DICOM JSON objects"}


def test_unreachable_server_and_busy_server(server: Any, cli: Cli, tmp_path: Path) -> None:
    gone = server([(200, "application/json", b"[]")])
    url = gone.url
    gone.close()
    result = cli("index", url, "--store", tmp_path / "store", expect=8)
    assert result.output.startswith(f"error: cannot reach the DICOMweb server at {url}")
    assert result.output.count("\n") == 1

    busy = server([(503, "text/plain", b"busy"), (429, "text/plain", b"slow down"),
                   (200, "application/dicom+json", b"[]")])
    client = DicomWebClient(parse_source(busy.url), Credentials("bearer", "t0k"),
                            ClientSettings(retries=3, backoff_s=0.01))
    with client:
        assert list(client.search("instances", {"Modality": "CT"})) == []
    assert len(busy.requests) == 3
    assert all(headers.get("Authorization") == "Bearer t0k" for _path, headers in busy.requests)
    assert "Modality=CT" in busy.requests[-1][0] and "limit=1000" in busy.requests[-1][0]


def test_paging_follows_servers_that_cap_pages(server: Any) -> None:
    def page(uids: list[str]) -> tuple[int, str, bytes]:
        items = [{"0020000D": {"vr": "UI", "Value": ["1"]}, "0020000E": {"vr": "UI", "Value": ["1.1"]},
                  "00080018": {"vr": "UI", "Value": [uid]}} for uid in uids]
        return 200, "application/dicom+json", json.dumps(items).encode()

    capped = server([page(["1.1.1", "1.1.2"]), page(["1.1.3"]), page([])])
    from medsearch.indexer.dicomweb.sync import list_instances

    with DicomWebClient(parse_source(capped.url), Credentials(), ClientSettings(page_size=5)) as client:
        found = list_instances(client, {})
    assert [path.rsplit("/", 1)[1] for path in found] == ["1.1.1", "1.1.2", "1.1.3"]
    assert [path.split("offset=")[1] for path, _headers in capped.requests] == ["0", "2", "3"]


def test_viewer_url_template() -> None:
    from medsearch.server.wado import viewer_url

    metadata = {"study_instance_uid": "1.2.3", "series_instance_uid": None, "sop_instance_uid": "1.2.3.4"}
    assert viewer_url(metadata, "https://v.example/?StudyInstanceUIDs={study_instance_uid}") == \
        "https://v.example/?StudyInstanceUIDs=1.2.3"
    assert viewer_url(metadata, "https://v.example/{series_instance_uid}") is None
    assert viewer_url(metadata, "") is None


def _multipart(data: bytes) -> tuple[int, str, bytes]:
    body = b"--xyz\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n--xyz--\r\n"
    return 200, 'multipart/related; type="application/dicom"; boundary=xyz', body


def test_retrieve_asks_again_as_explicit_little_endian_when_stored_syntax_is_undecodable(server: Any) -> None:
    import struct

    uid = b"1.2.840.10008.1.2.4.100"  # MPEG-2: medsearch cannot decode it
    mpeg = b"\0" * 128 + b"DICM" + struct.pack("<HH", 2, 0x10) + b"UI" + struct.pack("<H", len(uid) + 1) + uid + b"\0"
    real = pydicom_file("CT_small.dcm").read_bytes()
    answers = server([_multipart(mpeg), _multipart(real)])
    source = parse_source(answers.url)
    with DicomWebClient(source, Credentials()) as client:
        assert client.retrieve(source.instance_path("1", "1.1", "1.1.1")) == real
    accepts = [headers["Accept"] for _path, headers in answers.requests]
    assert accepts == ['multipart/related; type="application/dicom"; transfer-syntax=*',
                       'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1']
    assert answers.requests[0][0] == "/dicom-web/studies/1/series/1.1/instances/1.1.1"


def test_credentials_per_source_prefix_never_cross_hosts(tmp_path: Path) -> None:
    from medsearch.indexer.dicomweb.credentials import credentials_for

    table = tmp_path / "credentials"
    table.write_text("# two PACS\ndicomweb+https://a.example/dicom-web bearer token-a\n"
                     "dicomweb+https://a.example bearer token-host-a\n"
                     "dicomweb+https://b.example:8443/pacs basic bob:pw\n")
    env = {"MEDSEARCH_DICOMWEB_CREDENTIALS": str(table)}
    assert credentials_for("dicomweb+https://a.example/dicom-web", [], env).secret == "token-a"
    assert credentials_for("dicomweb+https://a.example/other", [], env).secret == "token-host-a"
    assert credentials_for("dicomweb+https://b.example:8443/pacs/dicom-web", [], env).secret == "bob:pw"
    for stranger in ("dicomweb+https://a.example.evil/dicom-web", "dicomweb+http://a.example/dicom-web",
                     "dicomweb+https://b.example/pacs", "dicomweb+https://b.example:8443/pacsx"):
        assert credentials_for(stranger, [], env) == Credentials()
    single = {"MEDSEARCH_DICOMWEB_TOKEN": "t0k"}
    assert credentials_for("dicomweb+https://c.example", ["dicomweb+https://c.example"], single).secret == "t0k"
    with pytest.raises(SourceError, match="for a store of one source") as caught:
        credentials_for("dicomweb+https://c.example", ["dicomweb+https://d.example"], single)
    assert "t0k" not in str(caught.value)
    table.write_text("dicomweb+https://a.example bearer\n")
    with pytest.raises(SourceError, match="line 1 of"):
        credentials_for("dicomweb+https://a.example", [], env)


def test_stored_paths_and_listed_uids_are_validated() -> None:
    from medsearch.indexer.dicomweb.query import identity

    source = parse_source("dicomweb+http://pacs.example/dicom-web")
    good = source.instance_path("1.2", "1.2.3", "1.2.3.4")
    assert source.wado_url(good) == "http://pacs.example/dicom-web/studies/1.2/series/1.2.3/instances/1.2.3.4"
    for bad in (good.replace("1.2.3.4", "../../etc"), good + "/frames/1", good.replace("/series/", "/x/"),
                "dicomweb+http://pacs.example/dicom-web-other/studies/1/series/1/instances/1",
                good.replace("1.2.3.4", "1" * 65)):
        with pytest.raises(SourceError, match="not an instance of the DICOMweb source"):
            source.wado_url(bad)

    def item(sop: str) -> dict[str, Any]:
        return {"0020000D": {"Value": ["1.2"]}, "0020000E": {"Value": ["1.2.3"]}, "00080018": {"Value": [sop]}}

    assert identity(item("1.2.3.4")) == ("1.2", "1.2.3", "1.2.3.4")
    for bad_uid in ("../../../../etc", "1.2.3.", "1..2", "1.2/3", "1.2.3 ", "x"):
        with pytest.raises(SourceError, match="is not a DICOM UID"):
            identity(item(bad_uid))


def test_bounds_from_the_environment() -> None:
    from medsearch.indexer.dicomweb.settings import client_settings_from_env, share_from_env

    settings = client_settings_from_env({"MEDSEARCH_DICOMWEB_DEADLINE_S": "7.5", "MEDSEARCH_DICOMWEB_MAX_PART_MB": "2",
                                         "MEDSEARCH_DICOMWEB_RETRIES": "0"})
    assert (settings.deadline_s, settings.max_part_bytes, settings.retries) == (7.5, 2 << 20, 0)
    assert client_settings_from_env({}).max_page_bytes == 64 << 20
    assert share_from_env({}) == 0.05 and share_from_env({"MEDSEARCH_DICOMWEB_MAX_REMOVED": "12.5 %"}) == 0.125
    for name, value in (("DEADLINE_S", "0"), ("DEADLINE_S", "soon"), ("MAX_PART_MB", "inf"), ("MAX_REMOVED", "101")):
        with pytest.raises(InvalidQuery, match=f"MEDSEARCH_DICOMWEB_{name}"):
            client_settings_from_env({f"MEDSEARCH_DICOMWEB_{name}": value})
            share_from_env({f"MEDSEARCH_DICOMWEB_{name}": value})


def test_multipart_bodies_that_are_truncated_or_mis_bounded_are_refused() -> None:
    body = b"--b1\r\nContent-Type: application/dicom\r\n\r\nDATA\r\n--b1--\r\n"
    assert split_parts(b"preamble\r\n" + body, "b1") == [b"DATA"]
    for bad, reason in ((body.replace(b"--b1--", b""), "no closing boundary"), (body.replace(b"b1", b"b2"), "no parts"),
                        (b"--b1\r\nno header end\r\n--b1--", "no header end")):
        with pytest.raises(SourceError, match=reason):
            split_parts(bad, "b1")
