"""The CLI door of a ``QuerySpec``: ``@query_command(kind)`` gives a command every option of that kind of
query (``medsearch.query.spec.OPTIONS``: its name, type, help and default) and hands the command one
``spec`` instead of a parameter per option. The text of ``search`` and the target of ``similar`` are
arguments, the rest options (``--min-score``, repeatable ``--where``...)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import fields
from typing import Annotated, Any, TypeVar

import typer
from medsearch.query.spec import OPTIONS, Kind, Option, QuerySpec

F = TypeVar("F", bound=Callable[..., Any])
DEFAULTS = {spec_field.name: spec_field.default for spec_field in fields(QuerySpec)}


def query_command(kind: Kind) -> Callable[[F], F]:
    """Decorate a command taking ``spec: QuerySpec`` (and its own options) so that typer shows the query
    options of ``kind`` and the command receives them as one spec (not yet validated)."""
    own = [option for option in OPTIONS if kind in option.kinds]

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        kept = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()
                if p.name != "spec"]
        made = [_parameter(option) for option in own]

        @functools.wraps(command)
        def run(**given: Any) -> Any:
            values = {option.name: _spec_value(option, given.pop(option.name)) for option in own}
            return command(spec=QuerySpec(kind=kind, **values), **given)

        arguments = [p for p, option in zip(made, own, strict=True) if option.flag is None]
        parameters = arguments + [p for p in made if p not in arguments] + kept
        run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        return run  # type: ignore[return-value]

    return decorate


def _parameter(option: Option) -> inspect.Parameter:
    """The typer parameter of one option: an argument (no flag) or an option with its flags."""
    default = DEFAULTS[option.name]
    kind = inspect.Parameter.KEYWORD_ONLY
    if option.flag is None:  # the text or the target: an argument
        if option.name == "target":
            return inspect.Parameter(option.name, kind, annotation=Annotated[str, typer.Argument(help=option.help)])
        return inspect.Parameter(option.name, kind, default=None,
                                 annotation=Annotated[str | None, typer.Argument(help=option.help)])
    info = typer.Option(*option.flags, help=option.help)
    if option.type is tuple:
        return inspect.Parameter(option.name, kind, default=None, annotation=Annotated[list[str] | None, info])
    if option.type is bool:
        return inspect.Parameter(option.name, kind, default=default, annotation=Annotated[bool, info])
    typed: Any = option.type if default is not None else option.type | None
    return inspect.Parameter(option.name, kind, default=default, annotation=Annotated[typed, info])


def _spec_value(option: Option, value: Any) -> Any:
    return tuple(value or ()) if option.type is tuple else value
