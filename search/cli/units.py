"""Series and study results on the CLI: their table (``search`` / ``similar`` with ``--unit``), and
``medsearch timeline ID``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from medsearch.cli.common import (
    DEFAULT_STORE,
    JsonOption,
    LikeOption,
    StoreOption,
    UnlikeOption,
    cli_errors,
    print_json,
)


def show_units(title: str, results: list[Any], as_json: bool, extra: dict[str, Any] | None = None) -> None:
    """Print unit results (``UnitResult``, or their dicts as a server answers them) as a table, or as
    ``{"query": ..., "results": [...]}``."""
    rows = [r if isinstance(r, dict) else r.as_dict() for r in results]
    if as_json:
        print_json({"query": title.split(": ", 1)[-1], **(extra or {}), "results": rows})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("rank", "score", "unit", "size", "modality", "date", "description", "best image", "path"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(str(r["rank"]), f"{r['score']:.4f}", f"{r['unit']} {r['key']}", str(r["size"]),
                      r["modality"] or "", r["study_date"] or "", r["description"] or "", str(r["image_id"]),
                      r["path"])
    Console().print(table)
    if not results:
        typer.echo("no results")


def note_left_out(spec: Any, without_unit: int) -> None:
    """On stderr: how many images a series or study query left out, and why."""
    if without_unit:
        count = f"{without_unit} image{'' if without_unit == 1 else 's'}"
        typer.echo(f"note: {count} without a {spec.unit} (no DICOM {spec.unit} UID, e.g. PNG or JPEG files) "
                   f"{'is' if without_unit == 1 else 'are'} left out of --unit {spec.unit} results", err=True)


def timeline(
    target: Annotated[str, typer.Argument(help="An image id, or a series or study UID.")],
    text: Annotated[str | None, typer.Option("--query", help="Pick each study's best image for this text.")] = None,
    like: LikeOption = None,
    unlike: UnlikeOption = None,
    store: StoreOption = DEFAULT_STORE,
    as_json: JsonOption = False,
) -> None:
    """The patient's studies (of an image, series or study) in date order, each with its best-matching
    image; found through the keyed patient hash, never the identity."""
    from medsearch.api import Medsearch
    from rich.console import Console
    from rich.table import Table

    with cli_errors(as_json), Medsearch.open(store) as ms:
        line = ms.timeline(target, text, like or (), unlike or ())
    if as_json:
        print_json(line.as_dict())
        return
    table = Table(title=f"timeline of {target} (patient key {line.patient_key[:12]}...)")
    for column in ("date", "study", "modality", "series", "images", "best image", "score", "path"):
        table.add_column(column, overflow="fold")
    for s in line.studies:
        table.add_row(("* " if s.current else "") + (s.study_date or "undated"), s.study_instance_uid,
                      s.modality or "", str(s.series), str(s.images), str(s.image_id), f"{s.score:.4f}", s.path)
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add ``timeline`` to the ``medsearch`` app."""
    app.command()(timeline)
