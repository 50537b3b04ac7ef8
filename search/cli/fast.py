"""Where ``medsearch`` starts (the console script and ``python -m medsearch.cli``): a query that a running
``medsearch serve`` answers is sent before typer, click, pydantic or the model's libraries are imported.

``search TEXT``, ``search --count`` and ``similar ID`` are read here with the query options of
``medsearch.query.spec.OPTIONS`` (the same table the full CLI is generated from) and the commands' own
options; the server is the one named (``--server``, ``MEDSEARCH_SERVER``) or recorded in the store folder
(``medsearch.cli.discovery``); the answer is printed by the same functions as the full CLI
(``medsearch.cli.remote``, ``medsearch.cli.results``), and errors as the same line and exit code.
Anything else goes to the full CLI unchanged: other commands, help, a token this reader does not take
exactly as click would (an unknown option, ``--opt`` without its value, a value of the wrong type, ``--``,
a second argument), a file or UID to ``similar``, ``--local``, and a store without a running server."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from medsearch.query.spec import OPTIONS, Kind, QuerySpec

FLAGS = {"--paths": "paths", "--local": "local", "--json": "as_json"}
"""The options of ``search`` and ``similar`` (``medsearch.cli.main``) that take no value."""
VALUED = {"--show-fields": "show_fields", "--server": "server", "--store": "store", "--model": "model",
          "--device": "device", "--precision": "precision"}
"""Their options that take one value (given twice, the last one counts, as in click)."""
OWN_DEFAULTS: dict[str, Any] = {"count": False, "paths": False, "local": False, "as_json": False, "show_fields": None,
                                "server": None, "store": None, "model": None, "device": "auto", "precision": "auto"}
INTERRUPTED = "interrupted: every batch finished before the interrupt is kept"
"""What the full CLI says on Ctrl-C (``medsearch.cli.common.cli_errors``)."""


class Unhandled(Exception):
    """The command line is left to the full CLI."""


def main() -> None:
    """Run ``medsearch`` with ``sys.argv``: through a running server here, else the full CLI."""
    code = answered(sys.argv[1:])
    if code is None:
        from medsearch.cli.main import app

        app()
    sys.exit(code)


def answered(argv: list[str]) -> int | None:
    """The exit code of ``argv`` answered here (printed as the full CLI prints it), or None where the full
    CLI must answer it. Raises nothing of medsearch's own."""
    try:
        kind, values, own = parse(argv)
    except Unhandled:
        return None
    from medsearch.cli.results import echo, show_error
    from medsearch.errors import MedsearchError, not_utf8

    try:
        spec = QuerySpec(kind=kind, **values).validate()  # before a server is asked, as the full CLI does
        server = _server(spec, own)
        if server is None:
            return None
        _show(server, spec, own)
    except MedsearchError as error:
        show_error(error, own["as_json"])
        return error.exit_code
    except UnicodeEncodeError:  # a lone surrogate: bytes that are not UTF-8 in an argument
        show_error(not_utf8(), own["as_json"])
        return 2
    except KeyboardInterrupt:
        echo(INTERRUPTED, err=True)
        return 130
    return 0


def parse(argv: list[str]) -> tuple[Kind, dict[str, Any], dict[str, Any]]:
    """(kind, the query's values by ``QuerySpec`` field, the command's own options) of ``search ...`` or
    ``similar ...``. Raises Unhandled for anything click would read otherwise or refuse."""
    if not argv or argv[0] not in ("search", "similar"):
        raise Unhandled
    kind: Kind = "search" if argv[0] == "search" else "similar"
    flags = {flag: option for option in OPTIONS if kind in option.kinds and option.flag is not None
             for flag in option.flags}
    argument = next(option.name for option in OPTIONS if kind in option.kinds and option.flag is None)
    own_flags = {**FLAGS, **({"--count": "count"} if kind == "search" else {})}
    values: dict[str, Any] = {}
    own = dict(OWN_DEFAULTS)
    tokens = list(argv[1:])
    while tokens:
        token = tokens.pop(0)
        if not token.startswith("-"):
            if argument in values:
                raise Unhandled  # a second argument: click's error
            values[argument] = token
            continue
        name, equals, attached = token.partition("=") if token.startswith("--") else (token, "", "")
        option = flags.get(name)
        if name in own_flags or (option is not None and option.type is bool):
            if equals:
                raise Unhandled  # a flag takes no value
            values.update({option.name: True} if option else {})
            own.update({} if option else {own_flags[name]: True})
            continue
        if name not in VALUED and option is None:
            raise Unhandled  # help, --, an unknown option
        if not equals and not tokens:
            raise Unhandled  # the value is missing
        value = attached if equals else tokens.pop(0)
        if option is None:
            own[VALUED[name]] = value
        elif option.type is tuple:
            values[option.name] = (*values.get(option.name, ()), value)
        else:
            values[option.name] = _typed(option.type, value)
    if kind == "similar" and argument not in values:
        raise Unhandled  # the target is a required argument
    return kind, values, own


def _typed(kind: type, value: str) -> Any:
    """``value`` as click converts it to ``kind`` (str, int or float). Raises Unhandled where click refuses it."""
    if kind is str:
        return value
    try:
        return kind(value)
    except ValueError:
        raise Unhandled from None


def _server(spec: QuerySpec, own: dict[str, Any]) -> str | None:
    """The server that answers ``spec``, or None where this process must (the full CLI's rules)."""
    from medsearch.cli.discovery import chosen_server

    if os.environ.get("MEDSEARCH_LOCAL", "") not in ("", "0"):
        return None  # the full CLI reads the variable as click does
    if spec.kind == "similar" and (not str(spec.target).isdigit() or Path(str(spec.target)).expanduser().is_file()):
        return None  # a file is uploaded (httpx), a UID answered here
    named = own["server"] if own["server"] is not None else os.environ.get("MEDSEARCH_SERVER") or None
    store = own["store"] if own["store"] is not None else os.environ.get("MEDSEARCH_STORE") or "medsearch-store"
    local_model = (own["model"], own["device"], own["precision"]) != (None, "auto", "auto")
    return chosen_server(named, own["local"], Path(store), local_model)


def _show(server: str, spec: QuerySpec, own: dict[str, Any]) -> None:
    """Ask ``server`` and print its answer as ``medsearch search/similar --server`` does. Raises
    MedsearchError (the server's error, or it cannot be reached)."""
    from medsearch.cli import remote
    from medsearch.cli.results import show_found

    if spec.kind == "search":
        remote.show_search(server, spec, own["count"], own["as_json"], own["show_fields"], own["paths"])
    else:
        show_found(spec, remote.similar(server, spec), own["as_json"], None, own["show_fields"], own["paths"])
