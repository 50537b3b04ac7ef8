"""``medsearch remove-root DIR``: take an indexed folder out of the store."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from medsearch.cli.common import DEFAULT_STORE, JsonOption, StoreOption, cli_errors, print_json


def remove_root(
    folder: Annotated[Path, typer.Argument(help="An indexed folder, as `medsearch info` lists it under roots.")],
    store: StoreOption = DEFAULT_STORE,
    as_json: JsonOption = False,
) -> None:
    """Remove an indexed folder's images (rows and vectors together), failure records and root from the
    store; the files themselves are not touched. Safe to interrupt: run it again to finish."""
    from medsearch.api import Medsearch

    with cli_errors(as_json), Medsearch.open(store, writable=True) as ms:
        done = ms.remove_root(folder)
        if as_json:
            print_json(asdict(done))
            return
        typer.echo(f"removed {done.images} image(s) of {done.files} file(s) and {done.failures} failure record(s); "
                   f"roots removed: {', '.join(done.roots)}")


def register(app: typer.Typer) -> None:
    app.command("remove-root")(remove_root)
