"""``medsearch explain ID|FILE "text"``: where the query lands in one image, as a heatmap over the padded
square the model saw (a PNG with a colour bar) or the patch grid as numbers (``--json``). A heuristic
explanation of the score, not a finding."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from medsearch.cli.common import (
    DEFAULT_STORE,
    DeviceOption,
    JsonOption,
    LikeOption,
    ModelOption,
    PrecisionOption,
    StoreOption,
    UnlikeOption,
    cli_errors,
    print_json,
)
from medsearch.explain import DEFAULT_METHOD, METHODS, NOTE


def explain(
    target: Annotated[str, typer.Argument(help="An image id in the store, or an image file (indexed or not).")],
    text: Annotated[str, typer.Argument(help="The query text, e.g. 'left pleural effusion'.")],
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Write the overlay PNG here (default: explain-<target>.png).")] = None,
    method: Annotated[str, typer.Option(help=f"One of {', '.join(METHODS)}.")] = DEFAULT_METHOD,
    like: LikeOption = None,
    unlike: UnlikeOption = None,
    store: StoreOption = DEFAULT_STORE,
    model: ModelOption = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    as_json: JsonOption = False,
) -> None:
    """Show where a query lands in one image (a heuristic explanation of the score, not a finding)."""
    from medsearch.api import Medsearch

    with cli_errors(as_json), Medsearch.open(store, model, device, precision=precision) as ms:
        result = ms.explain(target, text, method, like=like or (), unlike=unlike or ())
        if as_json:
            print_json(result.as_dict(target=target, query=text))
            return
        path = output or Path(f"explain-{Path(target).stem}.png")
        path.write_bytes(result.png())
        typer.echo(f"{path}: {method} map, score {result.heatmap.score:.4f}. {NOTE}")


def register(app: typer.Typer) -> None:
    """Add ``explain`` to the ``medsearch`` app."""
    app.command()(explain)
