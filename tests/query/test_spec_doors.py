"""One query spec, three doors: every invalid query option, and every combination no door may take, gets the
same one-line message from the CLI (``--json``, exit 2), the Python API (InvalidQuery) and the HTTP API (400
``invalid_query``). The CLI options and the HTTP parameters are generated from ``medsearch.query.spec``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from medsearch.api import Medsearch
from medsearch.errors import InvalidQuery
from medsearch.query.spec import OPTIONS, QuerySpec

from tests.api_fixtures import store_and_client

store, client = store_and_client("doors")

SEARCH_CASES: list[tuple[dict[str, Any], str]] = [
    ({"k": 0}, "k must be between 1 and 1000, not 0"),
    ({"k": 5000}, "k must be between 1 and 1000, not 5000"),
    ({"offset": -1}, "offset must be between 0 and 100000, not -1"),
    ({"min_score": 2.0}, "min_score is a cosine between -1 and 1, not 2.0"),
    ({"min_score": -1.5}, "min_score is a cosine between -1 and 1, not -1.5"),
    ({"min_prob": 1.5}, "min_prob must be strictly between 0 and 1, not 1.5"),
    ({"unit": "patient"}, "unknown unit 'patient'; expected one of image, series, study"),
    ({"unit": "series", "unit_method": "late"},
     "unknown unit method 'late' for search; expected one of mean, max, top3"),
    ({"unit_method": "max"}, "unit_method scores series or studies: give unit=series or unit=study with it"),
    ({"sort": "newest"}, "unknown sort 'newest'; expected one of score, date"),
    ({"sort": "date"}, "sort=date orders every result above a threshold: give min_score or min_prob too"),
    ({"unit": "study", "group_by": "series"}, "unit= gives one row per series or study already: leave out group_by"),
    ({"like": ("id:1",), "min_prob": 0.5}, "min_prob needs a plain text query: the model's probability is per text"),
    ({"like": ("id:abc",)}, "id parts take an image id, a whole number from 1 to 9223372036854775807: 'id:abc'"),
    ({"like": ("id:99999999999999999999",)},
     "id parts take an image id, a whole number from 1 to 9223372036854775807: 'id:99999999999999999999'"),
    ({"like": ("id:1@1e60",)}, "weights are at most 100: 'id:1@1e60'"),
    ({"unlike": ("x@0",)}, "weights must be positive (use --unlike for negative parts): 'x@0'"),
    ({"text": "   "}, "the search text is empty"),
    ({"group_by": "sitee"}, None),  # the store's own message (did you mean), the same at every door
    ({"where": ("modalty = 'CT'",)}, None),
]
SIMILAR_CASES: list[tuple[dict[str, Any], str]] = [
    ({"unit": "series", "include_self": True},
     "include_self keeps the query image; with unit= the query's own series or study is always left out: leave "
     "out include_self, or rank images (unit=image)"),
    ({"unit": "series", "unit_method": "best"},
     "unknown unit method 'best' for similar; expected one of mean, max, top3, late"),
    ({"k": 0}, "k must be between 1 and 1000, not 0"),
    ({"min_score": 7.0}, "min_score is a cosine between -1 and 1, not 7.0"),
]


def _cli_args(kind: str, given: dict[str, Any]) -> list[str]:
    """The CLI arguments of ``given`` as a user types them (flags from the spec's option table)."""
    options = {option.name: option for option in OPTIONS}
    args = [given.get("text", "a red circle")] if kind == "search" else ["1"]
    for name, value in given.items():
        if name == "text":
            continue
        flag = options[name].flags[-1]
        if isinstance(value, tuple):
            args += [part for item in value for part in (flag, item)]
        elif value is True:
            args.append(flag)
        else:
            args += [flag, str(value)]
    return args


def _http_params(given: dict[str, Any]) -> dict[str, Any]:
    params = {("q" if name == "text" else name): (list(value) if isinstance(value, tuple) else
                                                  str(value).lower() if isinstance(value, bool) else value)
              for name, value in given.items()}
    return params


def _python(ms: Medsearch, kind: str, given: dict[str, Any]) -> str:
    call: Callable[..., Any] = ms.search if kind == "search" else ms.similar
    values = dict(given)
    first = values.pop("text", "a red circle") if kind == "search" else 1
    with pytest.raises(InvalidQuery) as refused:
        call(first, **values)
    return str(refused.value)


@pytest.mark.parametrize(("kind", "given", "message"),
                         [("search", g, m) for g, m in SEARCH_CASES] + [("similar", g, m) for g, m in SIMILAR_CASES])
def test_the_same_mistake_gets_the_same_message_at_every_door(kind: str, given: dict[str, Any], message: str | None,
                                                              store: Path, client: Any, cli: Callable[..., Any],
                                                              tiny_embedder: Any) -> None:
    with Medsearch.open(store, embedder=tiny_embedder) as ms:
        python = _python(ms, kind, given)
    typed = cli(kind, *_cli_args(kind, given), "--store", store, "--json", expect=2)
    url = "/api/search" if kind == "search" else "/api/similar/1"
    params = _http_params(given) if kind == "similar" else {"q": "a red circle", **_http_params(given)}
    answered = client.get(url, params=params)
    assert answered.status_code == 400, answered.text
    assert answered.json()["error"]["code"] == typed["error"]["code"] == "invalid_query"
    assert python == typed["error"]["message"] == answered.json()["error"]["message"]
    assert "Traceback" not in python
    if message is not None:  # the spec's own messages are one line; a where mistake adds a caret line
        assert python == message and "\n" not in python


def test_every_option_is_a_cli_option_and_an_http_parameter(client: Any) -> None:
    """The doors are generated from the option table: each option shows in ``--help`` of its commands and
    in the OpenAPI description of its routes."""
    from medsearch.cli import app
    from typer.testing import CliRunner

    schema = client.get("/openapi.json").json()["paths"]
    for kind, path in (("search", "/api/search"), ("similar", "/api/similar/{image_id}")):
        shown = CliRunner().invoke(app, [kind, "--help"], env={"COLUMNS": "200"}).stdout
        documented = {p["name"] for p in schema[path]["get"]["parameters"]}
        for option in OPTIONS:
            if kind not in option.kinds or option.flag is None:
                continue
            assert option.flags[-1] in shown, (kind, option.name)
            assert option.name in documented, (kind, option.name)


def test_a_valid_spec_round_trips_through_the_http_parameters() -> None:
    spec = QuerySpec("search", "a red circle", k=7, offset=2, where=("modality = 'CT'", "site = 'north'"),
                     min_score=0.1, like=("id:3@0.5",), unlike=("noise",), unit="series", unit_method="top3")
    params = {name: value if isinstance(value, list) else [str(value)] for name, value in spec.http_params().items()}
    params["text"] = params.pop("q")
    assert QuerySpec.from_strings("search", params) == spec.validate()
