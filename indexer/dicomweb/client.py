"""DICOMweb operations on one source, over ``medsearch.indexer.dicomweb.http`` (deadlines, size caps,
retries): QIDO-RS searches with bounded paging, WADO-RS instance retrieval, Orthanc's change feed.

A listing is trusted only when it is a proper answer: a JSON array of DICOM JSON objects with a JSON content
type (or 204, no matches). A 404, an HTML page, another content type, a page that repeats an earlier one (a
server that ignores ``offset``) or more than ``max_pages`` pages is a SourceError, never "no instances": a
sync must not read an outage as an empty archive. One instance that cannot be retrieved (gone, refused, a
malformed or oversized body) is an InstanceGone: recorded as that instance's failure, the run goes on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from medsearch.indexer.dicomweb.http import Answer, BodyTooLarge, ClientSettings, Http
from medsearch.indexer.dicomweb.multipart import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    UNDECODABLE_SYNTAXES,
    boundary_of,
    split_parts,
    transfer_syntax_of,
)
from medsearch.indexer.dicomweb.source import Credentials, SourceError, SourceUrl

__all__ = ["ClientSettings", "DicomWebClient", "InstanceGone"]
DICOM_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax={}'
JSON_ACCEPT = "application/dicom+json, application/json"
MULTIPART_SLACK = 1 << 16  # part headers and boundaries around one instance


class InstanceGone(Exception):
    """One instance could not be retrieved (deleted since the search, refused, or a malformed or oversized
    answer); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DicomWebClient:
    """Use as a context manager. Thread-safe (one httpx connection pool)."""

    def __init__(self, source: SourceUrl, credentials: Credentials, settings: ClientSettings | None = None) -> None:
        self.source = source
        self.settings = settings or ClientSettings()
        self.has_credentials = bool(credentials.kind)
        self.http = Http(source.url, credentials.headers(), self.settings)

    def __enter__(self) -> DicomWebClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.http.close()

    def close(self) -> None:
        self.http.close()

    def search(self, level: str, filters: dict[str, str]) -> Iterator[dict[str, Any]]:
        """QIDO-RS: every DICOM JSON object at ``level`` ("studies", "instances") matching ``filters``, page
        by page until a page comes back empty (so servers that cap a page below ``page_size`` are followed).
        Raises SourceError (see the module's docstring)."""
        offset, seen = 0, set()
        for _page in range(self.settings.max_pages):
            params = {**filters, "limit": str(self.settings.page_size), "offset": str(offset)}
            answer = self._listing(f"{self.source.base}/{level}", params, "QIDO-RS search")
            if not answer.body:
                return
            digest = hashlib.sha256(answer.body).digest()
            page = _json_array(answer.body, self.source.url)
            if not page:
                return
            if digest in seen:
                raise SourceError(f"the DICOMweb server at {self.source.url} answered the QIDO-RS page at offset "
                                  f"{offset} with a page it sent before (it ignores offset): the listing cannot "
                                  "be trusted")
            seen.add(digest)
            yield from page
            offset += len(page)
        raise SourceError(f"the DICOMweb server at {self.source.url} still had QIDO-RS pages after "
                          f"{self.settings.max_pages} pages of up to {self.settings.page_size}: stopped there")

    def retrieve(self, path: str) -> bytes:
        """WADO-RS: the Part 10 bytes of the instance at stored ``path``, as stored when medsearch decodes
        that syntax, else as Explicit VR Little Endian. Raises InstanceGone, SourceError."""
        data = self._instance(path, "*")
        if transfer_syntax_of(data) in UNDECODABLE_SYNTAXES:
            data = self._instance(path, EXPLICIT_VR_LITTLE_ENDIAN)
        return data

    def _instance(self, path: str, syntax: str) -> bytes:
        url = self.source.wado_url(path)
        limit = self.settings.max_part_bytes + MULTIPART_SLACK
        try:
            answer = self.http.get(url, None, "WADO-RS retrieve", DICOM_ACCEPT.format(syntax), limit)
        except BodyTooLarge as large:
            raise InstanceGone(str(large)) from None
        if answer.status == 406 and syntax == "*":
            return self._instance(path, EXPLICIT_VR_LITTLE_ENDIAN)
        if answer.status in (404, 406, 410):
            raise InstanceGone(f"the server has no such instance any more (HTTP {answer.status})")
        self._check(answer, "WADO-RS retrieve")
        try:
            parts = split_parts(answer.body, boundary_of(answer.content_type))
        except SourceError as malformed:
            raise InstanceGone(str(malformed)) from None
        if len(parts) != 1 or not parts[0]:
            raise InstanceGone(f"WADO-RS returned {len(parts)} parts for one instance")
        if len(parts[0]) > self.settings.max_part_bytes:
            raise InstanceGone(f"the instance is over the {self.settings.max_part_bytes >> 20} MiB part cap")
        return parts[0]

    def orthanc_last_change(self) -> int | None:
        """Orthanc's latest change number, or None when the server has no Orthanc change feed (any answer
        but a JSON object with an integer ``Last``). Raises SourceError when the server cannot be reached."""
        answer = self.http.get(f"{self.source.rest_root}/changes", {"last": ""}, "change feed",
                               "application/json", self.settings.max_page_bytes)
        if answer.status in (401, 403):
            self._check(answer, "change feed")
        try:
            found = json.loads(answer.body) if answer.status == 200 else None
        except ValueError:
            return None
        last = found.get("Last") if isinstance(found, dict) else None
        return last if isinstance(last, int) else None

    def orthanc_changes(self, since: int, until: int) -> Iterator[dict[str, Any]]:
        """Orthanc's changes after number ``since`` up to ``until``, oldest first, at most ``max_pages``
        pages. Raises SourceError, also for a feed whose ``Last`` does not advance."""
        for _page in range(self.settings.max_pages):
            answer = self._json(f"{self.source.rest_root}/changes", {"since": str(since), "limit": "1000"},
                                "change feed")
            if not isinstance(answer, dict) or not isinstance(answer.get("Changes"), list) or \
                    not isinstance(answer.get("Last", since), int):
                raise SourceError(f"malformed change feed from {self.source.url}: expected Changes, Last, Done")
            yield from answer["Changes"]
            last = answer.get("Last", since)
            if answer.get("Done", True) or not answer["Changes"] or last >= until:
                return
            if last <= since:
                raise SourceError(f"the change feed of {self.source.url} does not advance (Last stays {last}): "
                                  "stopped")
            since = last
        raise SourceError(f"the change feed of {self.source.url} had more than {self.settings.max_pages} pages")

    def orthanc_study_uid(self, resource_type: str, resource_id: str) -> str | None:
        """The StudyInstanceUID of an Orthanc resource, or None when it no longer exists."""
        levels = {"Study": "studies", "Series": "series", "Instance": "instances"}
        if resource_type not in levels or not resource_id.replace("-", "").isalnum():
            return None
        suffix = "" if resource_type == "Study" else "/study"
        answer = self._json(f"{self.source.rest_root}/{levels[resource_type]}/{resource_id}{suffix}", None,
                            "study lookup", missing_ok=True)
        if not isinstance(answer, dict) or not isinstance(answer.get("MainDicomTags"), dict):
            return None
        uid = answer["MainDicomTags"].get("StudyInstanceUID")
        return uid if isinstance(uid, str) else None

    def _listing(self, url: str, params: dict[str, str], what: str) -> Answer:
        """A QIDO answer: 200 with a JSON content type, or 204 (an empty body). Raises SourceError."""
        answer = self.http.get(url, params, what, JSON_ACCEPT, self.settings.max_page_bytes)
        if answer.status == 204:
            return answer
        self._check(answer, what)
        if answer.status != 200 or not _is_json(answer.content_type):
            kind = answer.content_type or "no content type"
            raise SourceError(f"malformed {what} response from {self.source.url}: not JSON (HTTP {answer.status}, "
                              f"{kind[:60]}, {len(answer.body)} bytes)")
        return answer

    def _json(self, url: str, params: dict[str, str] | None, what: str, missing_ok: bool = False) -> Any:
        """The JSON answer of a GET; None for a 404 when ``missing_ok``. Raises SourceError."""
        answer = self.http.get(url, params, what, "application/json", self.settings.max_page_bytes)
        if answer.status == 404 and missing_ok:
            return None
        self._check(answer, what)
        try:
            return json.loads(answer.body)
        except ValueError:
            kind = answer.content_type or "no content type"
            raise SourceError(f"malformed {what} response from {self.source.url}: not JSON ({kind[:60]}, "
                              f"{len(answer.body)} bytes)") from None

    def _check(self, answer: Answer, what: str) -> None:
        status = answer.status
        if status in (401, 403):
            hint = ("the credentials were refused" if self.has_credentials else
                    "it requires credentials: set MEDSEARCH_DICOMWEB_CREDENTIALS (or, for one source, "
                    "MEDSEARCH_DICOMWEB_TOKEN, MEDSEARCH_DICOMWEB_USER and MEDSEARCH_DICOMWEB_PASSWORD, or "
                    "MEDSEARCH_DICOMWEB_AUTH_FILE)")
            raise SourceError(f"the DICOMweb server at {self.source.url} refused access (HTTP {status}): {hint}")
        if status >= 400:
            busy = f" after {self.settings.retries} retries" if status in (429, 502, 503, 504) else ""
            raise SourceError(f"the DICOMweb server at {self.source.url} answered HTTP {status} to a {what}{busy}")
        if 300 <= status < 400:
            raise SourceError(f"the DICOMweb server at {self.source.url} redirects ({status}) to "
                              f"{answer.headers.get('location', '?')[:200]}: give that URL instead")


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    return kind in ("application/json", "application/dicom+json") or kind.endswith("+json")


def _json_array(body: bytes, url: str) -> list[dict[str, Any]]:
    try:
        page = json.loads(body)
    except ValueError:
        raise SourceError(f"malformed QIDO-RS search response from {url}: not JSON ({len(body)} bytes)") from None
    if not isinstance(page, list) or not all(isinstance(item, dict) for item in page):
        raise SourceError(f"malformed QIDO-RS response from {url}: expected a JSON array of DICOM JSON objects")
    return page
