"""Health (no auth) and the store's facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from medsearch.server.deps import get_engine
from medsearch.server.engine import ServerEngine
from medsearch.server.front import HEALTH
from medsearch.server.security import check_token

FAVICON = Path(__file__).resolve().parent.parent / "web" / "favicon.ico"

public = APIRouter(prefix="/api", tags=["meta"])
icon = APIRouter()
guarded = APIRouter(prefix="/api", tags=["meta"], dependencies=[Depends(check_token)])


@public.get("/health")
async def health() -> dict[str, str]:
    """Liveness: answers as soon as the server runs, without a token. (The server's front door answers it
    before routing, ``medsearch.server.front``; this route documents it and serves the app without it.)"""
    return HEALTH


@guarded.get("/info")
def info(engine: ServerEngine = Depends(get_engine)) -> dict[str, Any]:
    """Counts, model, dimension, index type, generation, roots, failures, and which search filters this
    server passes on (``server.filters``)."""
    return engine.info()


@icon.get("/favicon.ico", include_in_schema=False)
def favicon() -> FileResponse:
    """The page's icon (browsers ask for it at the root), no token needed."""
    return FileResponse(FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"})
