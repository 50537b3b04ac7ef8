"""``python -m medsearch.cli``."""

from medsearch.cli.main import app

app()
