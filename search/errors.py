"""The error types medsearch raises, at the root of the package so that every layer (storage, indexer,
the application) raises the same ones, and the one error shape of every front end:
``{"error": {"code", "message"[, "position"]}}``, printed by the CLI (``--json``) and answered by the HTTP
API. The CLI and the HTTP API translate these, and only these, into an exit code (each type's
``exit_code``) or that shape (the HTTP status is the server's mapping, ``medsearch.server.errors``);
anything else is a bug."""

from __future__ import annotations

from typing import Any


class MedsearchError(Exception):
    """Base of every error medsearch raises on purpose. ``code`` is a stable machine-readable name."""

    code = "error"
    exit_code = 1


class ModelUnavailable(MedsearchError):
    """The model could not be loaded (offline, gated, wrong id, broken folder)."""

    code = "model_unavailable"
    exit_code = 3


class ModelMismatch(MedsearchError):
    """A store holds vectors of another model, size or preprocessing than the one asked for."""

    code = "model_mismatch"
    exit_code = 4


class StoreError(MedsearchError):
    """The store is missing, locked by another writer, unreadable or inconsistent."""

    code = "store_error"
    exit_code = 5


class StoreLocked(StoreError):
    """Another process is writing to the store."""

    code = "store_locked"


class NotFound(MedsearchError):
    """An id, path, cohort or other named thing does not exist."""

    code = "not_found"
    exit_code = 6


class Busy(MedsearchError):
    """Too much model-bound work is already waiting (a server's admission control): try again in
    ``retry_after_s`` seconds."""

    code = "busy"
    exit_code = 5

    def __init__(self, message: str, retry_after_s: int = 2) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InvalidQuery(MedsearchError):
    """A query, filter expression, label file or option is malformed. ``position`` points at the mistake."""

    code = "invalid_query"
    exit_code = 2

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


def not_utf8() -> InvalidQuery:
    """The error for text holding bytes that are not UTF-8 (lone surrogates, as Python decodes them from
    a command line); no store, model or SQL takes such text."""
    return InvalidQuery("the text holds bytes that are not valid UTF-8; type it again or fix its encoding")


class UnreadableFile(MedsearchError):
    """One input file cannot be turned into pixels; ``reason`` says why. The indexer records and skips it."""

    code = "unreadable_file"
    exit_code = 7

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ImageTooLarge(UnreadableFile):
    """An image whose header declares more pixels than ``ReadOptions.max_pixels``; refused unread."""


def error_payload(error: MedsearchError) -> dict[str, Any]:
    """The one JSON error shape, shared by the CLI and the HTTP API."""
    body: dict[str, Any] = {"code": error.code, "message": str(error)}
    position = getattr(error, "position", None)
    if position is not None:
        body["position"] = position
    return {"error": body}
