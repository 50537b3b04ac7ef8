"""The bounds of a DICOMweb sync, from the environment (each has a default; a malformed value is an
InvalidQuery naming the variable):

=================================  ===========================================================  =======
``MEDSEARCH_DICOMWEB_TIMEOUT_S``   longest wait for a connection or for the next bytes            30
``MEDSEARCH_DICOMWEB_DEADLINE_S``  longest one request may take, connect to last byte             300
``MEDSEARCH_DICOMWEB_RETRIES``     retries of a request that timed out, dropped or got 429/50x    3
``MEDSEARCH_DICOMWEB_MAX_PAGES``   QIDO-RS (and change feed) pages per search                     10000
``MEDSEARCH_DICOMWEB_MAX_PAGE_MB`` size of one QIDO-RS page                                       64
``MEDSEARCH_DICOMWEB_MAX_PART_MB`` size of one instance (one WADO-RS body)                        512
``MEDSEARCH_DICOMWEB_MAX_REMOVED`` percent of a source's stored instances a sync may remove       5
``MEDSEARCH_DICOMWEB_CA_BUNDLE``   a CA file for TLS (always verified)                            -
=================================  ===========================================================  =======
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from medsearch.errors import InvalidQuery
from medsearch.indexer.dicomweb.http import ClientSettings, MiB

PREFIX = "MEDSEARCH_DICOMWEB_"


def client_settings_from_env(environ: Mapping[str, str] | None = None) -> ClientSettings:
    """ClientSettings with the environment's bounds. Raises InvalidQuery."""
    env = os.environ if environ is None else environ
    default = ClientSettings()
    return ClientSettings(
        timeout_s=_number(env, "TIMEOUT_S", default.timeout_s),
        deadline_s=_number(env, "DEADLINE_S", default.deadline_s),
        retries=int(_number(env, "RETRIES", default.retries, minimum=0)),
        max_pages=int(_number(env, "MAX_PAGES", default.max_pages)),
        max_page_bytes=int(_number(env, "MAX_PAGE_MB", default.max_page_bytes / MiB) * MiB),
        max_part_bytes=int(_number(env, "MAX_PART_MB", default.max_part_bytes / MiB) * MiB),
        ca_bundle=env.get(PREFIX + "CA_BUNDLE") or None,
    )


def share_from_env(environ: Mapping[str, str] | None = None) -> float:
    """The share (0-1) of a source's stored instances one sync may remove. Raises InvalidQuery."""
    env = os.environ if environ is None else environ
    percent = _number(env, "MAX_REMOVED", 5.0, minimum=0.0, text=env.get(PREFIX + "MAX_REMOVED", "").rstrip("% "))
    if percent > 100:
        raise InvalidQuery(f"{PREFIX}MAX_REMOVED is a percentage from 0 to 100")
    return percent / 100


def _number(env: Mapping[str, str], name: str, default: float, minimum: float = 1e-9,
            text: str | None = None) -> float:
    text = env.get(PREFIX + name, "") if text is None else text
    if not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= minimum or value == float("inf"):
        raise InvalidQuery(f"{PREFIX}{name} must be a number of at least {minimum:g}, not {text[:40]!r}")
    return value
