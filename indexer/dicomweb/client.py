"""HTTP to a DICOMweb server with httpx: QIDO-RS searches with paging, WADO-RS instance retrieval, Orthanc's
change feed; retries with back-off on 429/503/504, timeouts and dropped connections. Every failure becomes
one SourceError line naming the server (never the credentials); one missing instance is an InstanceGone.

httpx rather than dicomweb-client: the worker processes decode the instances, so the client must hand over
the Part 10 bytes as they came (dicomweb-client parses each into a pydicom Dataset in this process), and
Orthanc's change feed is plain REST that dicomweb-client does not speak.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from medsearch.indexer.dicomweb.multipart import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    UNDECODABLE_SYNTAXES,
    boundary_of,
    split_parts,
    transfer_syntax_of,
)
from medsearch.indexer.dicomweb.source import Credentials, SourceError, SourceUrl

RETRIED_STATUS = frozenset({429, 502, 503, 504})
DICOM_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax={}'


class InstanceGone(Exception):
    """One instance could not be retrieved (deleted since the search, or refused); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ClientSettings:
    """``timeout_s`` per request; ``retries`` after the first try, waiting ``backoff_s`` * 2**n (or the
    server's Retry-After, at most ``max_wait_s``); QIDO pages of ``page_size`` results."""

    timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 0.5
    max_wait_s: float = 30.0
    page_size: int = 1000
    ca_bundle: str | None = None


class DicomWebClient:
    """Use as a context manager. Thread-safe (one httpx connection pool)."""

    def __init__(self, source: SourceUrl, credentials: Credentials, settings: ClientSettings | None = None) -> None:
        self.source = source
        self.settings = settings or ClientSettings()
        self.has_credentials = bool(credentials.kind)
        self.http = httpx.Client(headers=credentials.headers(), timeout=self.settings.timeout_s,
                                 verify=self.settings.ca_bundle or True, follow_redirects=False)

    def __enter__(self) -> DicomWebClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.http.close()

    def search(self, level: str, filters: dict[str, str]) -> Iterator[dict[str, Any]]:
        """QIDO-RS: every DICOM JSON object at ``level`` ("studies", "instances") matching ``filters``, page
        by page until a page comes back empty (so servers that cap a page below ``page_size`` are followed).
        Raises SourceError."""
        offset = 0
        while True:
            params = {**filters, "limit": str(self.settings.page_size), "offset": str(offset)}
            page = self._json(f"{self.source.base}/{level}", params, "QIDO-RS search")
            if page is None:
                return
            if not isinstance(page, list) or not all(isinstance(item, dict) for item in page):
                raise SourceError(f"malformed QIDO-RS response from {self.source.url}: expected a JSON array "
                                  "of DICOM JSON objects")
            if not page:
                return
            yield from page
            offset += len(page)

    def retrieve(self, path: str) -> bytes:
        """WADO-RS: the Part 10 bytes of the instance at stored ``path``, as stored when medsearch decodes
        that syntax, else as Explicit VR Little Endian. Raises InstanceGone, SourceError."""
        data = self._instance(path, "*")
        if transfer_syntax_of(data) in UNDECODABLE_SYNTAXES:
            data = self._instance(path, EXPLICIT_VR_LITTLE_ENDIAN)
        return data

    def _instance(self, path: str, syntax: str) -> bytes:
        url = self.source.wado_url(path)
        response = self._get(url, None, "WADO-RS retrieve", {"Accept": DICOM_ACCEPT.format(syntax)})
        if response.status_code == 406 and syntax == "*":
            return self._instance(path, EXPLICIT_VR_LITTLE_ENDIAN)
        if response.status_code in (404, 406, 410):
            raise InstanceGone(f"the server has no such instance any more (HTTP {response.status_code})")
        self._check(response, "WADO-RS retrieve")
        parts = split_parts(response.content, boundary_of(response.headers.get("content-type", "")))
        if len(parts) != 1 or not parts[0]:
            raise InstanceGone(f"WADO-RS returned {len(parts)} parts for one instance")
        return parts[0]

    def orthanc_last_change(self) -> int | None:
        """Orthanc's latest change number, or None when the server has no Orthanc change feed (any answer
        but a JSON object with an integer ``Last``). Raises SourceError when the server cannot be reached."""
        response = self._get(f"{self.source.rest_root}/changes", {"last": ""}, "change feed",
                             {"Accept": "application/json"})
        if response.status_code in (401, 403):
            self._check(response, "change feed")
        try:
            answer = response.json() if response.status_code == 200 else None
        except ValueError:
            return None
        last = answer.get("Last") if isinstance(answer, dict) else None
        return last if isinstance(last, int) else None

    def orthanc_changes(self, since: int) -> Iterator[dict[str, Any]]:
        """Orthanc's changes after number ``since``, oldest first. Raises SourceError."""
        while True:
            answer = self._json(f"{self.source.rest_root}/changes", {"since": str(since), "limit": "1000"},
                                "change feed")
            if not isinstance(answer, dict) or not isinstance(answer.get("Changes"), list):
                raise SourceError(f"malformed change feed from {self.source.url}: expected Changes, Last, Done")
            yield from answer["Changes"]
            since = int(answer.get("Last", since))
            if answer.get("Done", True) or not answer["Changes"]:
                return

    def orthanc_study_uid(self, resource_type: str, resource_id: str) -> str | None:
        """The StudyInstanceUID of an Orthanc resource, or None when it no longer exists."""
        levels = {"Study": "studies", "Series": "series", "Instance": "instances"}
        if resource_type not in levels:
            return None
        suffix = "" if resource_type == "Study" else "/study"
        answer = self._json(f"{self.source.rest_root}/{levels[resource_type]}/{resource_id}{suffix}", None,
                            "study lookup")
        if not isinstance(answer, dict):
            return None
        uid = answer.get("MainDicomTags", {}).get("StudyInstanceUID")
        return uid if isinstance(uid, str) else None

    def _json(self, url: str, params: dict[str, str] | None, what: str) -> Any:
        """The JSON answer of a GET; None for 204 or 404. Raises SourceError."""
        response = self._get(url, params, what, {"Accept": "application/dicom+json, application/json"})
        if response.status_code in (204, 404):
            return None
        self._check(response, what)
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise SourceError(f"malformed {what} response from {self.source.url}: not JSON ({kind}, "
                              f"{len(response.content)} bytes)") from None

    def _get(self, url: str, params: dict[str, str] | None, what: str, headers: dict[str, str]) -> httpx.Response:
        for attempt in range(self.settings.retries + 1):
            last = attempt == self.settings.retries
            try:
                response = self.http.get(url, params=params, headers=headers)
            except httpx.TimeoutException:
                if last:
                    raise SourceError(f"the DICOMweb server at {self.source.url} did not answer within "
                                      f"{self.settings.timeout_s:g} s ({what})") from None
            except httpx.TransportError as exc:
                if last:
                    raise SourceError(f"cannot reach the DICOMweb server at {self.source.url}: "
                                      f"{_short(exc)}") from None
            else:
                if response.status_code not in RETRIED_STATUS or last:
                    return response
                time.sleep(self._wait(attempt, response))
                continue
            time.sleep(self._wait(attempt, None))
        raise AssertionError("unreachable")

    def _wait(self, attempt: int, response: httpx.Response | None) -> float:
        retry_after = response.headers.get("retry-after", "") if response is not None else ""
        wait = float(retry_after) if retry_after.isdigit() else self.settings.backoff_s * 2**attempt
        return min(wait, self.settings.max_wait_s)

    def _check(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if status in (401, 403):
            hint = ("the credentials were refused" if self.has_credentials else
                    "it requires credentials: set MEDSEARCH_DICOMWEB_TOKEN, MEDSEARCH_DICOMWEB_USER and "
                    "MEDSEARCH_DICOMWEB_PASSWORD, or MEDSEARCH_DICOMWEB_AUTH_FILE")
            raise SourceError(f"the DICOMweb server at {self.source.url} refused access (HTTP {status}): {hint}")
        if status >= 400:
            busy = " after retries" if status in RETRIED_STATUS else ""
            raise SourceError(f"the DICOMweb server at {self.source.url} answered HTTP {status} to a {what}{busy}")
        if 300 <= status < 400:
            raise SourceError(f"the DICOMweb server at {self.source.url} redirects ({status}) to "
                              f"{response.headers.get('location', '?')}: give that URL instead")


def _short(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
