"""The command line: ``medsearch`` (``search.cli.main``), one module per command group."""

from search.cli.main import app

__all__ = ["app"]
