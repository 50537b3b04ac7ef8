"""A DICOMweb source: its URL (``dicomweb+http://host/path`` or ``dicomweb+https://...``), the stored path
of an instance under it (validated before it becomes a URL), the single-source credentials and the error
every failure of it raises.

Single-source credentials: ``MEDSEARCH_DICOMWEB_TOKEN`` (a bearer token), or ``MEDSEARCH_DICOMWEB_USER``
and ``MEDSEARCH_DICOMWEB_PASSWORD`` (basic auth), or ``MEDSEARCH_DICOMWEB_AUTH_FILE``: a file whose first
line is ``bearer TOKEN`` or ``basic USER:PASSWORD``; which source gets which credentials is decided by
``medsearch.indexer.dicomweb.credentials``. TLS is always verified. Credentials are never logged, stored or
put in a message.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from medsearch.errors import InvalidQuery, MedsearchError

SCHEME_PREFIX = "dicomweb+"
MAX_UID_LENGTH = 64
UID_PATTERN = re.compile(r"[0-9]+(\.[0-9]+)*")


class SourceError(MedsearchError):
    """The DICOMweb server is unreachable, refuses us, times out or answers something malformed."""

    code = "source_error"
    exit_code = 8


@dataclass(frozen=True)
class Credentials:
    """``kind`` is "bearer", "basic" or "" (none). ``repr`` hides the secret."""

    kind: str = ""
    secret: str = field(default="", repr=False)

    def headers(self) -> dict[str, str]:
        """The Authorization header, or nothing."""
        if self.kind == "bearer":
            return {"Authorization": f"Bearer {self.secret}"}
        if self.kind == "basic":
            return {"Authorization": "Basic " + base64.b64encode(self.secret.encode()).decode()}
        return {}


@dataclass(frozen=True)
class SourceUrl:
    """``url``: as the user gave it (the source's key in the store); ``base``: the plain http(s) URL of the
    DICOMweb root; ``rest_root``: the server's root without a trailing ``/dicom-web`` (Orthanc's REST API)."""

    url: str
    base: str

    @property
    def rest_root(self) -> str:
        base = self.base.rstrip("/")
        return base[: -len("/dicom-web")] if base.endswith("/dicom-web") else base

    def instance_path(self, study: str, series: str, sop: str) -> str:
        """The stored ``path`` of an instance: its WADO-RS URL under the source's own URL."""
        return f"{self.url}/studies/{study}/series/{series}/instances/{sop}"

    def wado_url(self, path: str) -> str:
        """The plain WADO-RS URL of a stored ``path``. Raises SourceError for a path that is not an instance
        of this source with three valid UIDs (so no stored path can point elsewhere on the host)."""
        rest = path[len(self.url):] if path.startswith(self.url + "/") else ""
        parts = rest.split("/")
        if len(parts) != 7 or parts[0] or parts[1::2] != ["studies", "series", "instances"] or \
                not all(valid_uid(uid) for uid in parts[2::2]):
            raise SourceError(f"not an instance of the DICOMweb source {self.url}: {path[:200]!r}")
        return self.base + rest


def valid_uid(text: object) -> bool:
    """Whether ``text`` is a DICOM UID: digits in dot-separated components, at most 64 characters."""
    return isinstance(text, str) and len(text) <= MAX_UID_LENGTH and UID_PATTERN.fullmatch(text) is not None


def require_client() -> None:
    """Raise SourceError when the HTTP client of the ``pacs`` extra is not installed."""
    if importlib.util.find_spec("httpx") is None:
        raise SourceError("DICOMweb sources need the pacs extra: pip install 'medsearch[pacs]'")


def is_source(text: str) -> bool:
    return text.startswith(SCHEME_PREFIX)


def parse_source(text: str) -> SourceUrl:
    """``dicomweb+http(s)://host[:port]/path`` -> SourceUrl. Raises InvalidQuery for another form or a URL
    that holds credentials (they would land in the shell history and the store)."""
    if not is_source(text):
        raise InvalidQuery("not a DICOMweb source: expected dicomweb+http://HOST/PATH or dicomweb+https://...")
    plain = text[len(SCHEME_PREFIX):].rstrip("/")
    parts = urlsplit(plain)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidQuery("a DICOMweb source is dicomweb+http://HOST/PATH or dicomweb+https://HOST/PATH")
    if parts.username or parts.password:
        raise InvalidQuery("credentials in the source URL are refused: set MEDSEARCH_DICOMWEB_TOKEN, "
                           "MEDSEARCH_DICOMWEB_USER/MEDSEARCH_DICOMWEB_PASSWORD or MEDSEARCH_DICOMWEB_AUTH_FILE")
    if parts.query or parts.fragment:
        raise InvalidQuery("a DICOMweb source URL takes no query string; pass filters as options")
    return SourceUrl(SCHEME_PREFIX + plain, plain)


def credentials_from_env(environ: dict[str, str] | None = None) -> Credentials:
    """Credentials from the environment (see the module's docstring). Raises SourceError for an unreadable
    or malformed auth file."""
    env = os.environ if environ is None else environ
    if env.get("MEDSEARCH_DICOMWEB_TOKEN"):
        return Credentials("bearer", env["MEDSEARCH_DICOMWEB_TOKEN"])
    if env.get("MEDSEARCH_DICOMWEB_USER"):
        return Credentials("basic", f"{env['MEDSEARCH_DICOMWEB_USER']}:{env.get('MEDSEARCH_DICOMWEB_PASSWORD', '')}")
    if env.get("MEDSEARCH_DICOMWEB_AUTH_FILE"):
        return _credentials_file(Path(env["MEDSEARCH_DICOMWEB_AUTH_FILE"]))
    return Credentials()


def _credentials_file(path: Path) -> Credentials:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise SourceError(f"cannot read the DICOMweb auth file {path}: {exc.strerror or exc}") from None
    kind, _, secret = (lines[0] if lines else "").strip().partition(" ")
    kind = kind.lower()
    if kind not in ("bearer", "basic") or not secret.strip() or (kind == "basic" and ":" not in secret):
        raise SourceError(f"the DICOMweb auth file {path} must hold one line: 'bearer TOKEN' or "
                          "'basic USER:PASSWORD'")
    return Credentials(kind, secret.strip())
