"""``medsearch check [--repair]``: verify the store and repair what can be repaired."""

from __future__ import annotations

from typing import Annotated

import typer
from medsearch.cli.common import DEFAULT_STORE, JsonOption, StoreOption, cli_errors, print_json

PROBLEMS_EXIT_CODE = 5
"""Exit code when problems remain after the check (the same as a store error)."""


def check(
    store: StoreOption = DEFAULT_STORE,
    repair: Annotated[bool, typer.Option("--repair", help="Rebuild the FAISS snapshot from the database, "
                                         "drop damaged vectors and stale temporary files.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Verify the store: database integrity, model record, vectors, FAISS snapshot, ids, files on disk, and
    the instances of DICOMweb sources against their sources. Exits non-zero when problems remain."""
    from medsearch.api import Medsearch

    with cli_errors(as_json), Medsearch.open(store, writable=repair) as ms:
        report = ms.check(repair)
    if as_json:
        print_json(report.as_dict())
    else:
        for key, value in report.facts.items():
            typer.echo(f"{key}: {value}")
        for note in report.notes:
            typer.echo(f"note: {note}")
        for problem in report.problems:
            state = "repaired" if problem.repaired else "repairable" if problem.repairable else "manual"
            typer.echo(f"problem [{problem.kind}, {state}]: {problem.message}")
        typer.echo("ok" if report.ok else "problems remain" + ("; try --repair" if report.repairable else ""))
    if not report.ok:
        raise typer.Exit(PROBLEMS_EXIT_CODE)


def register(app: typer.Typer) -> None:
    """Add ``check`` to the ``medsearch`` app."""
    app.command()(check)
