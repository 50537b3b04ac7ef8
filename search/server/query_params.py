"""The HTTP doors of a ``QuerySpec``: a route's query parameters (or an upload's form fields) read into
one, and the OpenAPI description of those parameters, both generated from ``medsearch.query.spec.OPTIONS``.
A mistake gets the spec's own message (400 ``invalid_query``), the same as the CLI and Python give."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from medsearch.errors import InvalidQuery
from medsearch.query.spec import OPTIONS, Kind, QuerySpec, as_bool
from starlette.datastructures import QueryParams

HTTP_NAMES = {"text": "q"}
"""Options whose HTTP parameter has another name (the target of a similar query is in the URL)."""
TYPES = {int: "integer", float: "number", str: "string", bool: "boolean"}


def http_name(name: str) -> str:
    return HTTP_NAMES.get(name, name)


def spec_of(params: QueryParams | Mapping[str, Iterable[str]], kind: Kind, ignore: tuple[str, ...] = (),
            **given: Any) -> QuerySpec:
    """The spec of a request's query parameters (every value of a repeated one), less the route's own
    ``ignore``d names, with ``given`` values (the URL's target) on top, validated. Raises InvalidQuery."""
    by_http = {http_name(option.name): option.name for option in OPTIONS}
    if isinstance(params, QueryParams):
        values = {name: params.getlist(name) for name in params}
    else:
        values = {name: list(texts) for name, texts in params.items()}
    named = {by_http.get(name, name): texts for name, texts in values.items() if name not in ignore}
    spec = QuerySpec.from_strings(kind, named)
    return (spec.with_changes(**given) if given else spec).validate()


def flag(params: QueryParams, name: str) -> bool:
    """A route's own true/false parameter (absent: false). Raises InvalidQuery for another value."""
    given = params.getlist(name)
    if len(given) > 1:
        raise InvalidQuery(f"{name} is given {len(given)} times; give it once")
    return as_bool(name, given[0]) if given else False


def openapi_parameters(kind: Kind, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The OpenAPI ``parameters`` of a route taking ``kind`` specs (in the query string)."""
    found = []
    for option in OPTIONS:
        if kind not in option.kinds or option.name in skip or option.name == "target":
            continue
        schema: dict[str, Any] = {"type": "array", "items": {"type": "string"}} if option.type is tuple \
            else {"type": TYPES[option.type]}
        found.append({"name": http_name(option.name), "in": "query", "required": False, "schema": schema,
                      "description": option.help})
    return found
