"""The FastAPI app. ``create_app(store_dir)`` builds it; nothing is opened at import or build time: the
lifespan opens the store (read-only) and loads the model once, and the routes get them through
dependencies (``medsearch.server.deps``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from medsearch.indexer.embedder import Embedder
from medsearch.server import (
    routes_cohorts,
    routes_explain,
    routes_items,
    routes_labels,
    routes_learn,
    routes_meta,
    routes_page,
    routes_reports,
    routes_search,
    routes_units,
    routes_viewer,
)
from medsearch.server.admission import admitted_routes, gates
from medsearch.server.deps import ServerSettings
from medsearch.server.engine import ServerEngine
from medsearch.server.errors import install_error_handlers
from medsearch.server.front import FrontDoor, SecurityHeaders
from medsearch.server.guard import RequestGuard
from starlette.concurrency import run_in_threadpool

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
ROUTERS = (routes_meta.public, routes_meta.guarded, routes_meta.icon, routes_search.router, routes_items.router,
           routes_labels.router, routes_cohorts.router, routes_explain.router, routes_learn.router,
           routes_units.router, routes_reports.router, routes_viewer.router, routes_page.router)
"""The API's routers, included in this order (their routes carry their full paths and dependencies)."""
PAGE_POLICY = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'"
log = logging.getLogger("medsearch.server")


def create_app(store_dir: str | Path, model: str | None = None, device: str = "auto",
               embedder: Embedder | None = None, settings: ServerSettings | None = None,
               precision: str = "auto") -> FastAPI:
    """The app for the store in ``store_dir``. ``model``/``device``/``precision`` as in ``Medsearch.open``; ``embedder``
    replaces the model (tests). ``settings`` default to ``ServerSettings.from_env()``. Start-up raises
    StoreError (no store), ModelUnavailable, ModelMismatch."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from medsearch.api import Medsearch

        medsearch = Medsearch.open(store_dir, model, device, embedder=embedder, precision=precision)
        engine = ServerEngine(medsearch, max_upload_pixels=app.state.settings.max_upload_pixels)
        try:
            await run_in_threadpool(engine.start)
        except BaseException:
            engine.close()
            raise
        app.state.engine = engine
        app.state.viewer = routes_viewer.open_viewer(engine)
        log.info("medsearch store ready: %s images", engine.info()["images"])
        try:
            yield
        finally:
            app.state.engine = None
            app.state.viewer.close()
            engine.close()

    app = FastAPI(title="medsearch", version="0.1.0", lifespan=lifespan,
                  description="Semantic search over medical images: text and composed search, similar cases, "
                              "thumbnails, zero-shot labels (model scores, not a diagnosis) and research cohorts.")
    app.state.settings = settings or ServerSettings.from_env()
    app.state.gates = gates()
    app.state.engine = None
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    _add_page(app)
    _add_middleware(app, app.state.settings)
    return app


def _add_page(app: FastAPI) -> None:
    """The web page at ``/`` (its files under ``/web``): plain files, no token needed to load them."""

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        viewer = getattr(app.state, "viewer", None)
        if viewer is not None:  # a click in the viewer may follow: start its decoding worker now
            viewer.workers.warm()
        return FileResponse(WEB_DIR / "index.html", headers={"Content-Security-Policy": PAGE_POLICY})

    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")


def _add_middleware(app: FastAPI, settings: ServerSettings) -> None:
    """Each one added wraps those before it: outermost CORS (when set), then the security headers, the
    request guard, and innermost the front door (``medsearch.server.front``)."""
    admitted = admitted_routes(route for router in ROUTERS for route in router.routes)
    app.add_middleware(FrontDoor, gates=app.state.gates, admitted=admitted, api_token=settings.api_token)
    app.add_middleware(RequestGuard, allowed_hosts=settings.allowed_hosts, api_token=settings.api_token)
    app.add_middleware(SecurityHeaders)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization", "Content-Type"])
