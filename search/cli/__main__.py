"""``python -m medsearch.cli``: the same start as the console script (``medsearch.cli.fast.main``)."""

from medsearch.cli.fast import main

main()
