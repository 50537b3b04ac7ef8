"""A small DICOMweb server of our own for the tests, on 127.0.0.1, that serves a real archive (CT instances
written with pydicom) and misbehaves on demand, as PACS behind proxies, in maintenance or with vendor quirks
do. ``mode`` picks the misbehaviour and may change between syncs:

healthy, qido-404 (an HTML 404), qido-204, qido-html (200 text/html), qido-wrong-type (JSON sent as
application/octet-stream), repeat-pages (ignores offset), feed (an Orthanc-like change feed), feed-stuck (a
feed whose Last never advances), drip (a QIDO answer dripped byte by byte), endless-multipart (a WADO-RS body
that never ends), huge-page (a QIDO page that never ends), bad-parts (truncated and mis-bounded multipart
bodies for some instances), wado-404-some (WADO-RS 404 for some instances), evil-uid (a listed UID of
``../../../../etc``), dup-sop (one SOP Instance UID listed under two series).

Every request is counted in ``requests`` (method, path); every endless answer stops when the client goes
away or the server is closed.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pydicom

from tests.conftest import pydicom_file

ROOT = "/dicom-web"
BOUNDARY = "medsearch-hostile"


def make_archive(studies: int, per_study: int) -> dict[tuple[str, str, str], bytes]:
    """(study, series, SOP) UIDs -> Part 10 bytes of a real CT instance."""
    archive = {}
    for study in range(1, studies + 1):
        for number in range(1, per_study + 1):
            dataset = pydicom.dcmread(pydicom_file("CT_small.dcm"))
            uids = (f"1.2.826.0.1.3680043.10.543.{study}", f"1.2.826.0.1.3680043.10.543.{study}.1",
                    f"1.2.826.0.1.3680043.10.543.{study}.1.{number}")
            dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID = uids
            dataset.file_meta.MediaStorageSOPInstanceUID = uids[2]
            dataset.InstanceNumber = number
            buffer = io.BytesIO()
            dataset.save_as(buffer, enforce_file_format=True)
            archive[uids] = buffer.getvalue()
    return archive


def _item(study: str, series: str, sop: str) -> dict[str, Any]:
    return {"0020000D": {"vr": "UI", "Value": [study]}, "0020000E": {"vr": "UI", "Value": [series]},
            "00080018": {"vr": "UI", "Value": [sop]}, "00080060": {"vr": "CS", "Value": ["CT"]}}


class QuietServer(ThreadingHTTPServer):
    """A loopback server whose clients may hang up mid-answer (that is what the client's deadlines do):
    a reset connection is not printed (socketserver prints every handler error on stderr, which the
    in-process CLI runs capture as their own output)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        del request, client_address


class HostileDicomWeb:
    """Start with ``HostileDicomWeb(archive)``; ``url`` is the source URL; ``close()`` stops it."""

    def __init__(self, archive: dict[tuple[str, str, str], bytes], mode: str = "healthy") -> None:
        self.archive, self.mode = archive, mode
        self.requests: list[tuple[str, str]] = []
        self.headers: list[dict[str, str]] = []
        self.feed_last = 10
        self.drip_every_s = 0.2
        self.stopping = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner.requests.append(("GET", self.path))
                owner.headers.append(dict(self.headers))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    owner.answer(self)

            def log_message(self, *_args: Any) -> None:
                pass

        self.http = QuietServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"dicomweb+http://127.0.0.1:{self.http.server_address[1]}{ROOT}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stopping.set()
        self.http.shutdown()
        self.http.server_close()
        self.thread.join()

    def count(self, fragment: str) -> int:
        return sum(1 for _method, path in self.requests if fragment in path)

    # --- answers -------------------------------------------------------------------------------------------

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = {key: values[0] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        path = parts.path
        if path == "/changes":
            return self.changes(handler, query)
        if not path.startswith(ROOT + "/"):
            return self.send(handler, 404, "text/html", b"<html>no such page</html>")
        rest = path[len(ROOT) + 1:].split("/")
        if rest in (["instances"], ["studies"]):
            return self.qido(handler, rest[0], query)
        if len(rest) == 6 and rest[0::2] == ["studies", "series", "instances"]:
            return self.wado(handler, (rest[1], rest[3], rest[5]))
        return self.send(handler, 404, "text/html", b"<html>no such page</html>")

    def qido(self, handler: BaseHTTPRequestHandler, level: str, query: dict[str, str]) -> None:
        mode = self.mode
        if mode == "qido-404":
            return self.send(handler, 404, "text/html", b"<html><h1>404 Not Found</h1>maintenance</html>")
        if mode == "qido-204":
            return self.send(handler, 204, "application/dicom+json", b"")
        if mode == "qido-html":
            return self.send(handler, 200, "text/html", b"<html>Please log in</html>")
        if mode == "huge-page":
            item = json.dumps(_item("1.2", "1.2.3", "1.2.3.4")).encode()
            return self.endless(handler, "application/dicom+json", b"[" + item + b",", item + b",")
        limit, offset = int(query.get("limit", "1000")), int(query.get("offset", "0"))
        items = self.listing(level, query.get("StudyInstanceUID"))
        page = items[:limit] if mode == "repeat-pages" else items[offset : offset + limit]
        body = json.dumps(page).encode()
        if mode == "drip":
            return self.drip(handler, "application/dicom+json", body)
        kind = "application/octet-stream" if mode == "qido-wrong-type" else "application/dicom+json"
        return self.send(handler, 200, kind, body)

    def listing(self, level: str, study: str | None) -> list[dict[str, Any]]:
        keys = sorted(key for key in self.archive if study is None or key[0] == study)
        if self.mode == "evil-uid":
            keys.append(("1.2.3", "1.2.3.4", "../../../../etc"))
        if self.mode == "dup-sop" and keys:
            keys.append((keys[0][0], keys[0][1] + ".9", keys[0][2]))
        if level == "studies":
            counts: dict[str, int] = {}
            for key in keys:
                counts[key[0]] = counts.get(key[0], 0) + 1
            return [{"0020000D": {"vr": "UI", "Value": [uid]}, "00201208": {"vr": "IS", "Value": [count]}}
                    for uid, count in sorted(counts.items())]
        return [_item(*key) for key in keys]

    def wado(self, handler: BaseHTTPRequestHandler, key: tuple[str, str, str]) -> None:
        mode = self.mode
        data = next((value for (_study, _series, sop), value in self.archive.items() if sop == key[2]), None)
        kind = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
        if mode == "endless-multipart":
            head = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            return self.endless(handler, kind, head, b"\0" * 65536)
        number = int(key[2].rsplit(".", 1)[1]) if data is not None else 0
        if data is None or (mode == "wado-404-some" and number % 2 == 0):
            return self.send(handler, 404, "text/html", b"<html>gone</html>")
        body = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + \
            f"\r\n--{BOUNDARY}--\r\n".encode()
        if mode == "bad-parts" and number % 3 == 0:
            body = body[: len(body) // 2]  # truncated: no closing boundary
        elif mode == "bad-parts" and number % 3 == 1:
            body = body.replace(f"--{BOUNDARY}".encode(), b"--another-boundary")  # mis-bounded
        return self.send(handler, 200, kind, body)

    def changes(self, handler: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        if self.mode not in ("feed", "feed-stuck"):
            return self.send(handler, 404, "text/html", b"<html>no such page</html>")
        if "last" in query:
            return self.send(handler, 200, "application/json", json.dumps({"Last": self.feed_last}).encode())
        since = int(query.get("since", "0"))
        if self.mode == "feed-stuck":
            answer = {"Changes": [{"Seq": since, "ChangeType": "NewInstance", "ResourceType": "Instance",
                                   "ID": "0a1b"}], "Last": since, "Done": False}
        else:
            answer = {"Changes": [], "Last": self.feed_last, "Done": True}
        return self.send(handler, 200, "application/json", json.dumps(answer).encode())

    # --- transports ----------------------------------------------------------------------------------------

    def send(self, handler: BaseHTTPRequestHandler, status: int, kind: str, body: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if status != 204:
            handler.wfile.write(body)

    def drip(self, handler: BaseHTTPRequestHandler, kind: str, body: bytes) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        for index in range(len(body)):
            if self.stopping.wait(self.drip_every_s):
                return
            handler.wfile.write(body[index : index + 1])
            handler.wfile.flush()

    def endless(self, handler: BaseHTTPRequestHandler, kind: str, head: bytes, chunk: bytes) -> None:
        """A chunked body that never ends (until the client leaves or the server stops)."""
        handler.send_response(200)
        handler.send_header("Content-Type", kind)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        block = chunk * max(1, 1_048_576 // len(chunk))
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(head), head))
        while not self.stopping.is_set():
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
        handler.close_connection = True

