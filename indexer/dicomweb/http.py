"""GET requests to a DICOMweb server with httpx, bounded every way a hostile or broken server could stretch
them: a total deadline per request (connect to last byte, not only a read timeout), a size cap on the body
(read streaming, so memory never holds more than the cap), and a bounded number of retries with back-off on
429/502/503/504, timeouts and dropped connections. Every failure is one SourceError line naming the server
(never the credentials) and saying what was retried.

httpx rather than dicomweb-client: dicomweb-client (on requests) has only a per-read timeout, reads a
WADO-RS body whole and parses each instance into a pydicom Dataset in this process, where the workers must
get the Part 10 bytes as they came; Orthanc's change feed is plain REST that it does not speak.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from threading import Lock

import httpx
from medsearch.indexer.dicomweb.source import SourceError

RETRIED_STATUS = frozenset({429, 502, 503, 504})
MiB = 1 << 20
log = logging.getLogger("medsearch.dicomweb")


@dataclass(frozen=True)
class ClientSettings:
    """``timeout_s``: the longest wait for a connection or for any bytes; ``deadline_s``: the longest a
    request may take in all; ``retries`` after the first try, waiting ``backoff_s`` * 2**n (or the server's
    Retry-After, at most ``max_wait_s``); QIDO pages of ``page_size`` results, at most ``max_pages`` pages
    (and change-feed pages) per search and ``max_page_bytes`` each; a WADO-RS body at most
    ``max_part_bytes`` (one instance)."""

    timeout_s: float = 30.0
    deadline_s: float = 300.0
    retries: int = 3
    backoff_s: float = 0.5
    max_wait_s: float = 30.0
    page_size: int = 1000
    max_pages: int = 10_000
    max_page_bytes: int = 64 * MiB
    max_part_bytes: int = 512 * MiB
    ca_bundle: str | None = None


class BodyTooLarge(SourceError):
    """A response body grew past its cap (the request was stopped there)."""


@dataclass(frozen=True)
class Answer:
    """A response read within its bounds: ``body`` is empty for an error status."""

    status: int
    content_type: str
    headers: httpx.Headers
    body: bytes


class Http:
    """One httpx connection pool for one source; thread-safe. Use ``close()`` when done."""

    def __init__(self, source_url: str, headers: dict[str, str], settings: ClientSettings) -> None:
        self.source_url = source_url
        self.settings = settings
        self.retried: list[str] = []  # what was retried, one line each, for the report and the errors
        self._lock = Lock()
        self.client = httpx.Client(headers=headers, verify=settings.ca_bundle or True, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def get(self, url: str, params: dict[str, str] | None, what: str, accept: str, limit: int) -> Answer:
        """GET ``url``; a success body read whole up to ``limit`` bytes. Statuses other than those retried
        come back as they are (the caller judges them). Raises SourceError (unreachable, too slow after
        the retries), BodyTooLarge."""
        tries: list[str] = []
        for attempt in range(self.settings.retries + 1):
            last = attempt == self.settings.retries
            try:
                answer = self._once(url, params, what, accept, limit)
            except (httpx.TimeoutException, _DeadlinePassed):
                tries.append("timed out")
                if last:
                    raise SourceError(f"the DICOMweb server at {self.source_url} did not answer a {what} within "
                                      f"{self.settings.deadline_s:g} s{_tried(tries)}") from None
                wait = self._wait(attempt, None)
            except httpx.TransportError as exc:
                tries.append(_short(exc))
                if last:
                    raise SourceError(f"cannot reach the DICOMweb server at {self.source_url}: "
                                      f"{_short(exc)}{_tried(tries)}") from None
                wait = self._wait(attempt, None)
            else:
                if answer.status not in RETRIED_STATUS or last:
                    if answer.status in RETRIED_STATUS:
                        tries.append(f"HTTP {answer.status}")
                    self._note(what, tries, answer.status < 300)
                    return answer
                tries.append(f"HTTP {answer.status}")
                wait = self._wait(attempt, answer.headers)
            time.sleep(wait)
        raise AssertionError("unreachable")

    def _once(self, url: str, params: dict[str, str] | None, what: str, accept: str, limit: int) -> Answer:
        deadline = time.monotonic() + self.settings.deadline_s
        wait = min(self.settings.timeout_s, self.settings.deadline_s)
        timeout = httpx.Timeout(wait, pool=wait)
        request = self.client.build_request("GET", url, params=params, headers={"Accept": accept}, timeout=timeout)
        response = self.client.send(request, stream=True)
        try:
            kind = response.headers.get("content-type", "")
            if response.status_code >= 300 or response.status_code == 204:
                return Answer(response.status_code, kind, response.headers, b"")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise BodyTooLarge(f"the DICOMweb server at {self.source_url} announced a {what} answer of "
                                   f"{_mib(int(declared))}, over the {_mib(limit)} cap")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise BodyTooLarge(f"the DICOMweb server at {self.source_url} sent a {what} answer over "
                                       f"the {_mib(limit)} cap (stopped there)")
                if time.monotonic() > deadline:
                    raise _DeadlinePassed
            return Answer(response.status_code, kind, response.headers, bytes(body))
        finally:
            response.close()

    def _note(self, what: str, tries: list[str], succeeded: bool) -> None:
        if tries:
            line = f"{what}: {', '.join(tries)}" + (", then answered" if succeeded else "")
            with self._lock:
                self.retried.append(line)
            log.warning("retried a request to %s: %s", self.source_url, line)

    def _wait(self, attempt: int, headers: httpx.Headers | None) -> float:
        retry_after = headers.get("retry-after", "") if headers is not None else ""
        wait = float(retry_after) if retry_after.isdigit() else self.settings.backoff_s * 2**attempt
        return min(wait, self.settings.max_wait_s)


class _DeadlinePassed(Exception):
    pass


def _tried(tries: list[str]) -> str:
    return f" (tried {len(tries)} times: {', '.join(tries)})" if len(tries) > 1 else ""


def _mib(size: int) -> str:
    return f"{size / MiB:.0f} MiB" if size >= MiB else f"{size} bytes"


def _short(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
