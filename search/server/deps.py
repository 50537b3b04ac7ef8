"""Settings read once from the environment, and the FastAPI dependencies that hand the routes what the
lifespan opened (tests may replace them with ``app.dependency_overrides``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from fastapi import Request
from medsearch.errors import StoreError
from medsearch.server.engine import ServerEngine
from medsearch.server.limits import SERVER_MAX_PIXELS

DEFAULT_UPLOAD_LIMIT = 50 * 1024 * 1024


@dataclass(frozen=True)
class ServerSettings:
    """``api_token``: when set, every route but health and the page needs it as a bearer token.
    ``cors_origins``: origins allowed cross-site (none: CORS off). ``upload_limit``: bytes per upload.
    ``allowed_hosts``: Host names accepted besides loopback and the bind address (``medsearch.server.guard``).
    ``max_upload_pixels``: pixels an uploaded picture may have (413 past it, read from its header)."""

    api_token: str | None = None
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    upload_limit: int = DEFAULT_UPLOAD_LIMIT
    allowed_hosts: tuple[str, ...] = field(default_factory=tuple)
    max_upload_pixels: int = SERVER_MAX_PIXELS

    @classmethod
    def from_env(cls) -> ServerSettings:
        """From MEDSEARCH_API_TOKEN, MEDSEARCH_CORS_ORIGINS and MEDSEARCH_ALLOWED_HOSTS (comma-separated)
        and MEDSEARCH_UPLOAD_LIMIT (bytes)."""
        origins = os.environ.get("MEDSEARCH_CORS_ORIGINS", "")
        hosts = os.environ.get("MEDSEARCH_ALLOWED_HOSTS", "")
        limit = os.environ.get("MEDSEARCH_UPLOAD_LIMIT", "")
        return cls(
            api_token=os.environ.get("MEDSEARCH_API_TOKEN") or None,
            cors_origins=tuple(o.strip() for o in origins.split(",") if o.strip()),
            upload_limit=int(limit) if limit.isdigit() else DEFAULT_UPLOAD_LIMIT,
            allowed_hosts=tuple(h.strip() for h in hosts.split(",") if h.strip()),
        )


async def get_engine(request: Request) -> ServerEngine:
    """The engine the lifespan opened. Async: read on the event loop, with no hop to a worker thread.
    Raises StoreError while the app is not started."""
    engine: ServerEngine | None = getattr(request.app.state, "engine", None)
    if engine is None:
        raise StoreError("The server is starting or stopping; try again.")
    return engine


async def get_settings(request: Request) -> ServerSettings:
    settings: ServerSettings = request.app.state.settings
    return settings
