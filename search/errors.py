"""The one error shape of every front end: ``{"error": {"code", "message"[, "position"]}}``, printed by
the CLI (``--json``) and answered by the HTTP API. The exit code of each error type is its ``exit_code``
(``storage.errors``); the HTTP status is the server's mapping (``search.server.errors``)."""

from __future__ import annotations

from typing import Any

from storage.errors import MedsearchError


def error_payload(error: MedsearchError) -> dict[str, Any]:
    """The one JSON error shape, shared by the CLI and the HTTP API."""
    body: dict[str, Any] = {"code": error.code, "message": str(error)}
    position = getattr(error, "position", None)
    if position is not None:
        body["position"] = position
    return {"error": body}
