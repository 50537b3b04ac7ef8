"""The API's guards: the optional bearer token, the request guard (Host names and body types, against
DNS rebinding and cross-site posts), and the rule that only files inside the indexed roots are
ever read for a client. No route takes a path from the client; ids are looked up in the store and the
stored path is checked again here (symlinks resolved) before it is opened."""

from __future__ import annotations

import hmac
from pathlib import Path

from fastapi import Request
from medsearch.errors import MedsearchError, NotFound
from medsearch.storage import queries
from medsearch.storage.store import Store


class Unauthorized(MedsearchError):
    """A request without the right bearer token while MEDSEARCH_API_TOKEN is set."""

    code = "unauthorized"


class Forbidden(MedsearchError):
    """A stored path that resolves outside every indexed root."""

    code = "forbidden"


class PayloadTooLarge(MedsearchError):
    """An upload over the size limit."""

    code = "payload_too_large"


async def check_token(request: Request) -> None:
    """FastAPI dependency: when the app has a token, require ``Authorization: Bearer <token>``. Async: it
    runs on the event loop, so that a flood of requests refused further on never queues for a thread
    just to have its header read. Raises Unauthorized."""
    if not token_ok(request.headers.get("authorization", ""), request.app.state.settings.api_token):
        raise Unauthorized(TOKEN_NEEDED)


TOKEN_NEEDED = "This server needs an API token: send 'Authorization: Bearer <token>'."


def token_ok(authorization: str, expected: str | None) -> bool:
    """Whether an ``Authorization`` header value carries the bearer token (always, without a token)."""
    if not expected:
        return True
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


def served_path(store: Store, stored: str) -> Path:
    """The real path of an indexed file, only when it lies inside an indexed root. Raises NotFound when
    the file is gone, Forbidden when it (or a symlink on the way) leads outside every root."""
    try:
        real = Path(stored).resolve(strict=True)
    except (OSError, RuntimeError):
        raise NotFound("The image file is no longer on disk.") from None
    if not any(real.is_relative_to(Path(root).resolve()) for root in queries.roots(store)):
        raise Forbidden("This file is outside the indexed folders and is not served.")
    if not real.is_file():
        raise NotFound("The image file is no longer on disk.")
    return real
