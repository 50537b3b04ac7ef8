"""``medsearch import-metadata``: join a sidecar CSV to the indexed images."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from medsearch.cli.common import DEFAULT_STORE, JsonOption, StoreOption, cli_errors, print_json
from medsearch.errors import InvalidQuery

KeyOption = Annotated[str | None, typer.Option(
    "--key", help="The CSV column that names the images (a path, a file name or a SOP instance UID).")]
RenameOption = Annotated[list[str] | None, typer.Option(
    "--rename", help="OLD=NEW: import column OLD as field NEW (repeat for more).")]
ClashPrefixOption = Annotated[str | None, typer.Option(
    "--clash-prefix", help="Put this before columns named like built-in metadata (modality -> PREFIXmodality).")]
SkipOption = Annotated[list[str] | None, typer.Option("--skip", help="A column not to import (repeat for more).")]
RootOption = Annotated[Path | None, typer.Option(
    "--root", help="The indexed folder that file names and relative paths of the CSV are looked up in.")]


def sidecar_options(key: str | None, rename: list[str] | None, clash_prefix: str | None, skip: list[str] | None,
                    root: Path | None) -> dict[str, Any]:
    """The keyword arguments of ``import_sidecar`` from the CLI's options. Raises InvalidQuery for a
    --rename without '='."""
    pairs = [item.partition("=") for item in rename or []]
    if any(not old.strip() or not new.strip() for old, _eq, new in pairs):
        raise InvalidQuery("--rename takes OLD=NEW, e.g. --rename modality=source_modality")
    return {"key": key, "rename": {old.strip(): new.strip() for old, _eq, new in pairs},
            "clash_prefix": clash_prefix, "skip": list(skip or []), "root": root}


def import_metadata(
    csv_file: Annotated[Path, typer.Argument(help="CSV with a path, file name or sop_instance_uid column.")],
    key: KeyOption = None,
    rename: RenameOption = None,
    clash_prefix: ClashPrefixOption = None,
    skip: SkipOption = None,
    root: RootOption = None,
    store: StoreOption = DEFAULT_STORE,
    as_json: JsonOption = False,
) -> None:
    """Import sidecar metadata (labels, clinical fields) as typed, filterable columns."""
    from medsearch.api import Medsearch

    with cli_errors(as_json), Medsearch.open(store, writable=True) as ms:
        report = ms.import_metadata(csv_file, **sidecar_options(key, rename, clash_prefix, skip, root))
        show_sidecar_report(report, as_json)


def show_sidecar_report(report, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    if as_json:
        print_json(asdict(report))
        return
    typer.echo(f"metadata: {report.matched_rows} of {report.rows} rows matched {report.images_updated} images; "
               f"fields: {', '.join(f'{k} ({v})' for k, v in report.fields.items()) or 'none'}")
    if report.empty:
        typer.echo(f"  not imported (no values for the matched images): {', '.join(report.empty)}", err=True)
    for key in report.unmatched[:20]:
        typer.echo(f"  no image matches: {key}", err=True)
    if len(report.unmatched) > 20:
        typer.echo(f"  ... and {len(report.unmatched) - 20} more unmatched rows", err=True)
    for key, paths in list(report.ambiguous.items())[:20]:
        typer.echo(f"  ambiguous, not imported: {key} names {len(paths)} indexed files: {', '.join(paths[:3])}; "
                   "give a path relative to the CSV, or --root", err=True)
    if report.hint:
        typer.echo(f"  {report.hint}", err=True)


def register(app: typer.Typer) -> None:
    app.command("import-metadata")(import_metadata)
