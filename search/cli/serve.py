"""``medsearch serve``: the HTTP API and the web page, on loopback unless told otherwise."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from medsearch.cli.common import (
    DEFAULT_STORE,
    DeviceOption,
    ModelOption,
    PrecisionOption,
    StoreOption,
    cli_errors,
    require_extra,
)
from medsearch.cli.discovery import remove_record, write_record
from medsearch.server.limits import SERVER_MAX_PIXELS


def serve(
    store: StoreOption = DEFAULT_STORE,
    host: Annotated[str, typer.Option(help="Address to listen on; 127.0.0.1 keeps it local.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    model: ModelOption = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    max_upload_pixels: Annotated[int, typer.Option(
        min=1, help="Pixels an uploaded image may have (its header says; larger ones get 413, unread).")
    ] = SERVER_MAX_PIXELS,
) -> None:
    """Serve the search API and the web page (open http://HOST:PORT/ in a browser; API docs at /docs).
    MEDSEARCH_API_TOKEN requires a bearer token; MEDSEARCH_CORS_ORIGINS allows other origins. While it
    runs, `search` and `similar` on this store ask it (it records itself in the store folder)."""
    from medsearch.api import Medsearch

    with cli_errors(False):
        require_extra("uvicorn")
        require_extra("fastapi")
        require_extra("multipart", "server")
        Medsearch.open(Path(store)).close()  # a clear error now rather than a failed start-up later
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: listening on {host}: other machines can reach this server", err=True)
    typer.echo(f"medsearch: http://{host}:{port}/  (API docs: /docs)", err=True)
    import uvicorn
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

    settings = replace(ServerSettings.from_env(), max_upload_pixels=max_upload_pixels)
    app = create_app(store, model, device, settings=settings, precision=precision)
    recorded = _recorded_server(uvicorn.Server, Path(store), host, bool(settings.api_token))
    recorded(uvicorn.Config(app, host=host, port=port, log_level="info")).run()


def _recorded_server(base: type, store: Path, host: str, token_required: bool) -> type:
    """A uvicorn ``Server`` class that records its URL in ``store`` once it listens and removes the record
    when it shuts down (before uvicorn re-raises a stopping signal), ``medsearch.cli.discovery``."""

    class RecordedServer(base):  # type: ignore[misc, valid-type]
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started and self.servers:
                _record(store, host, self.servers[0].sockets[0].getsockname()[1], token_required)

        async def shutdown(self, sockets: Any = None) -> None:
            remove_record(store)
            await super().shutdown(sockets)

    return RecordedServer


def _record(store: Path, host: str, port: int, token_required: bool) -> None:
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "localhost") else "::1" if host == "::" else host
    shown = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
    try:
        write_record(store, f"http://{shown}:{port}", token_required)
    except OSError as error:
        typer.echo(f"note: this server is not recorded in the store ({error}); name it with --server", err=True)


def register(app: typer.Typer) -> None:
    app.command()(serve)
