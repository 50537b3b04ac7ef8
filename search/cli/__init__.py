"""The command line: ``medsearch`` (``medsearch.cli.main``), one module per command group. The console
script starts in ``medsearch.cli.fast``, which answers a query through a running server before typer is
imported; ``app`` (the typer application) is imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medsearch.cli.main import app

__all__ = ["app"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from medsearch.cli.main import app

        return app
    raise AttributeError(f"module 'medsearch.cli' has no attribute {name!r}")
