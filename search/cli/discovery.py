"""A running ``medsearch serve`` is found, not named: the server records itself in its store folder
(``server.json``: URL, pid, host, whether it needs a token) once it listens, and removes the record when
it stops; ``search``, ``similar`` and ``search --count`` on that store then ask it, with the same output.
A stale record (a dead pid on this host, or a server that does not answer) is ignored and removed.
``--local`` or ``MEDSEARCH_LOCAL=1`` turns discovery off. Only the standard library is imported here."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

RECORD = "server.json"
ANSWER_S = 1.0
"""How long a recorded server may take to answer its health check before it counts as stale."""


def record_path(store: Path) -> Path:
    return Path(store) / RECORD


def write_record(store: Path, url: str, token_required: bool) -> None:
    """Record this process as the server of ``store`` (written aside, then renamed into place). Raises
    OSError (a read-only store: the server runs on, undiscoverable)."""
    target = record_path(store)
    aside = target.with_name(f".{RECORD}.{os.getpid()}")
    aside.write_text(json.dumps({"url": url, "pid": os.getpid(), "host": socket.gethostname(),
                                 "token": token_required}))
    os.replace(aside, target)


def remove_record(store: Path, pid: int | None = None) -> None:
    """Remove the record of ``store``'s server, if it is ``pid``'s (default: this process's). Raises nothing."""
    found = _read(record_path(store))
    if found is not None and found.get("pid") == (pid or os.getpid()):
        record_path(store).unlink(missing_ok=True)


def discovered_server(store: Path) -> str | None:
    """The URL of the server running for ``store``, or None (none recorded, stale, or it needs a token
    this client does not have). Removes a stale record. Raises nothing."""
    found = _read(record_path(store))
    if found is None:
        return None
    url, pid = found.get("url"), found.get("pid")
    if not isinstance(url, str) or not isinstance(pid, int) or isinstance(pid, bool):
        record_path(store).unlink(missing_ok=True)
        return None
    if (found.get("host") == socket.gethostname() and not _alive(pid)) or not _answers(url):
        remove_record(store, pid)
        return None
    if found.get("token") and not os.environ.get("MEDSEARCH_API_TOKEN"):
        return None
    return url


def _read(path: Path) -> dict[str, object] | None:
    try:
        if path.stat().st_size > 4096:
            return None
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


def _answers(url: str) -> bool:
    """Whether ``url``'s ``/api/health`` answers 200 within ``ANSWER_S``."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    try:
        connection = kind(parts.hostname, parts.port, timeout=ANSWER_S)
        try:
            connection.request("GET", parts.path.rstrip("/") + "/api/health")
            return connection.getresponse().status == 200
        finally:
            connection.close()
    except (OSError, http.client.HTTPException, ValueError):
        return False


def chosen_server(named: str | None, local: bool, store: Path, local_model: bool) -> str | None:
    """The server a query goes to: ``--server`` (or ``MEDSEARCH_SERVER``) when named, else the store's
    running server unless ``--local`` or ``local_model`` (``--model``, ``--device`` or ``--precision``
    asked for a model of this process's own)."""
    if named:
        return named
    if local or local_model or os.environ.get("MEDSEARCH_LOCAL", "") not in ("", "0"):
        return None
    return discovered_server(store)
