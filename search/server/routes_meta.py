"""Health (no auth) and the store's facts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from search.server.deps import get_engine
from search.server.engine import ServerEngine
from search.server.security import check_token

public = APIRouter(prefix="/api", tags=["meta"])
guarded = APIRouter(prefix="/api", tags=["meta"], dependencies=[Depends(check_token)])


@public.get("/health")
def health() -> dict[str, str]:
    """Liveness: answers as soon as the server runs, without a token."""
    return {"status": "ok"}


@guarded.get("/info")
def info(engine: ServerEngine = Depends(get_engine)) -> dict[str, Any]:
    """Counts, model, dimension, index type, generation, roots, failures, and which search filters this
    server passes on (``server.filters``)."""
    return engine.info()
