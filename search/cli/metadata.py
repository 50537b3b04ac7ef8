"""``medsearch import-metadata``: join a sidecar CSV to the indexed images."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from medsearch.cli.common import DEFAULT_STORE, JsonOption, StoreOption, cli_errors, plural, print_json
from medsearch.errors import InvalidQuery

KeyOption = Annotated[str | None, typer.Option(
    "--key", help="The CSV column that names the images (a path, a file name or a SOP instance UID); default: "
    "a column named path, file, filename, file_name or sop_instance_uid, else the one whose values name indexed "
    "images.")]
RenameOption = Annotated[list[str] | None, typer.Option(
    "--rename", help="OLD=NEW: import column OLD as field NEW (repeat for more).")]
ClashPrefixOption = Annotated[str | None, typer.Option(
    "--clash-prefix", help="Put this before columns named like built-in metadata (default csv_: modality -> "
    "csv_modality).")]
VerboseOption = Annotated[bool, typer.Option(
    "--verbose", "-v", help="List every row that names no file in the store (default: their count).")]
UnmatchedOption = Annotated[Path | None, typer.Option(
    "--unmatched", help="Write the keys of the rows that name no file in the store to this file, one a line.")]
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
    csv_file: Annotated[Path, typer.Argument(
        help="CSV with a column naming the images: path, file name or SOP instance UID (found by its values).")],
    key: KeyOption = None,
    rename: RenameOption = None,
    clash_prefix: ClashPrefixOption = None,
    skip: SkipOption = None,
    root: RootOption = None,
    verbose: VerboseOption = False,
    unmatched: UnmatchedOption = None,
    store: StoreOption = DEFAULT_STORE,
    as_json: JsonOption = False,
) -> None:
    """Import sidecar metadata (labels, clinical fields) as typed, filterable columns."""
    from medsearch.api import Medsearch

    with cli_errors(as_json), Medsearch.open(store, writable=True) as ms:
        report = ms.import_metadata(csv_file, **sidecar_options(key, rename, clash_prefix, skip, root))
        if unmatched is not None:
            write_unmatched(report, unmatched)
        show_sidecar_report(report, as_json, verbose, unmatched)


def write_unmatched(report: Any, path: Path) -> None:
    """The keys of the rows that named no stored file, one a line. Raises InvalidQuery."""
    try:
        path.write_text("".join(f"{key}\n" for key in report.unmatched), encoding="utf-8")
    except OSError as exc:
        raise InvalidQuery(f"cannot write {path}: {exc.strerror}") from None


def show_sidecar_report(report: Any, as_json: bool, verbose: bool = False, unmatched_file: Path | None = None,
                        how_to_list: str = "--verbose or --unmatched FILE") -> None:
    """The report as JSON, or a summary line with notes on stderr (unmatched rows listed with ``verbose``;
    ``how_to_list``: the options that list them, as the command at hand takes them)."""
    if as_json:
        print_json(asdict(report))
        return
    how = " (found: its values name indexed files)" if report.key_found else ""
    typer.echo(f"metadata: key column {report.key}{how}; {report.matched_rows} of {report.rows} "
               f"{'row' if report.rows == 1 else 'rows'} matched {plural(report.images_updated, 'image')}; "
               f"fields: {', '.join(f'{k} ({v})' for k, v in report.fields.items()) or 'none'}")
    for column, name in report.renamed.items():
        typer.echo(f"  column {column} imported as {name} ({column} is built-in metadata; choose the name with "
                   f"--rename {column}=NEW, or leave it out with --skip {column})", err=True)
    if report.empty:
        typer.echo(f"  not imported (no values for the matched images): {', '.join(report.empty)}", err=True)
    _show_unmatched(report.unmatched, verbose, unmatched_file, how_to_list)
    for key, paths in list(report.ambiguous.items())[:20]:
        typer.echo(f"  ambiguous, not imported: {key} names {len(paths)} indexed files: {', '.join(paths[:3])}; "
                   "give a path relative to the CSV, or --root", err=True)
    if report.hint:
        typer.echo(f"  {report.hint}", err=True)


def _show_unmatched(keys: list[str], verbose: bool, written_to: Path | None, how_to_list: str) -> None:
    if not keys:
        return
    count = plural(len(keys), "row")
    verb = "names a file" if len(keys) == 1 else "name files"
    where = (f" (listed in {written_to})" if written_to else "" if verbose
             else f" (list them: {how_to_list})")
    typer.echo(f"  {count} {verb} not in the store{where}", err=True)
    for key in keys if verbose else []:
        typer.echo(f"    {key}", err=True)


def register(app: typer.Typer) -> None:
    app.command("import-metadata")(import_metadata)
