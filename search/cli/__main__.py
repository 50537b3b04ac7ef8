"""``python -m search.cli``."""

from search.cli.main import app

app()
