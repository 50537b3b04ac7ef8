"""The command line: ``medsearch`` (``medsearch.cli.main``), one module per command group."""

from medsearch.cli.main import app

__all__ = ["app"]
