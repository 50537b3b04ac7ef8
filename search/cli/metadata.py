"""``medsearch import-metadata``: join a sidecar CSV to the indexed images."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from search.cli.common import DEFAULT_STORE, JsonOption, StoreOption, cli_errors, print_json


def import_metadata(
    csv_file: Annotated[Path, typer.Argument(help="CSV with a path, file name or sop_instance_uid column.")],
    store: StoreOption = DEFAULT_STORE,
    as_json: JsonOption = False,
) -> None:
    """Import sidecar metadata (labels, clinical fields) as typed, filterable columns."""
    from indexer.sidecar import import_sidecar
    from storage.store import Store

    with cli_errors(as_json), Store.open(store, writable=True) as opened:
        report = import_sidecar(opened, csv_file)
        show_sidecar_report(report, as_json)


def show_sidecar_report(report, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    if as_json:
        print_json(asdict(report))
        return
    typer.echo(f"metadata: {report.matched_rows} of {report.rows} rows matched {report.images_updated} images; "
               f"fields: {', '.join(f'{k} ({v})' for k, v in report.fields.items())}")
    for key in report.unmatched[:20]:
        typer.echo(f"  no image matches: {key}", err=True)
    if len(report.unmatched) > 20:
        typer.echo(f"  ... and {len(report.unmatched) - 20} more unmatched rows", err=True)


def register(app: typer.Typer) -> None:
    app.command("import-metadata")(import_metadata)
