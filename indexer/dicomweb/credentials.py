"""Credentials belong to a source. ``MEDSEARCH_DICOMWEB_CREDENTIALS`` names a file of lines
``SOURCE_URL bearer TOKEN`` or ``SOURCE_URL basic USER:PASSWORD`` (``#`` starts a comment); a source gets
the line of the longest URL that is the source's URL or a prefix of it ending at a ``/``, so one host's
credentials never go to another host. The single-source variables (``MEDSEARCH_DICOMWEB_TOKEN``,
``MEDSEARCH_DICOMWEB_USER``/``PASSWORD``, ``MEDSEARCH_DICOMWEB_AUTH_FILE``, see
``medsearch.indexer.dicomweb.source``) still work for a store that knows one source only; with a second
source they are refused, since nothing says which source they are for.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from medsearch.errors import InvalidQuery
from medsearch.indexer.dicomweb.source import Credentials, SourceError, credentials_from_env, parse_source

FILE_VARIABLE = "MEDSEARCH_DICOMWEB_CREDENTIALS"
SINGLE_SOURCE_VARIABLES = ("MEDSEARCH_DICOMWEB_TOKEN", "MEDSEARCH_DICOMWEB_USER", "MEDSEARCH_DICOMWEB_AUTH_FILE")


def credentials_for(url: str, known: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> Credentials:
    """The credentials to send to source ``url`` (as ``parse_source`` gives it); ``known``: the sources the
    store already holds. Raises SourceError for an unreadable or malformed credentials file, or for
    single-source variables while the store knows another source."""
    env = os.environ if environ is None else environ
    if env.get(FILE_VARIABLE):
        match = _best_match(url, read_credentials_file(Path(env[FILE_VARIABLE])))
        if match is not None:
            return match
    if not any(env.get(name) for name in SINGLE_SOURCE_VARIABLES):
        return Credentials()
    others = sorted(source for source in known if source != url)
    if others:
        raise SourceError(f"MEDSEARCH_DICOMWEB_TOKEN, _USER and _AUTH_FILE are for a store of one source, and this "
                          f"store also knows {others[0]}: give each source its own line in {FILE_VARIABLE} "
                          "('URL bearer TOKEN' or 'URL basic USER:PASSWORD')")
    return credentials_from_env(dict(env))


def read_credentials_file(path: Path) -> dict[str, Credentials]:
    """Source URL -> credentials of the file at ``path``. Raises SourceError (never quoting a secret)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise SourceError(f"cannot read the DICOMweb credentials file {path}: {exc.strerror or exc}") from None
    found: dict[str, Credentials] = {}
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        url, kind, secret = [*text.split(None, 2), "", ""][:3]
        kind = kind.lower()
        if kind not in ("bearer", "basic") or not secret.strip() or (kind == "basic" and ":" not in secret):
            raise SourceError(f"line {number} of {path} must be 'SOURCE_URL bearer TOKEN' or "
                              "'SOURCE_URL basic USER:PASSWORD'")
        try:
            source = parse_source(url)
        except InvalidQuery:
            raise SourceError(f"line {number} of {path} does not start with a source URL "
                              "(dicomweb+https://HOST/PATH)") from None
        found[source.url] = Credentials(kind, secret.strip())
    return found


def _best_match(url: str, table: dict[str, Credentials]) -> Credentials | None:
    matching = [prefix for prefix in table if url == prefix or url.startswith(prefix + "/")]
    return table[max(matching, key=len)] if matching else None
