"""Series and study results on the CLI: the note on images left out of ``--unit`` results, and
``medsearch timeline ID`` (the unit table itself is ``medsearch.cli.results.show_units``)."""

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
