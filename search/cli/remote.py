"""``--server URL`` (or ``MEDSEARCH_SERVER``): ``search``, ``search --count`` and ``similar`` answered by a
running ``medsearch serve`` instead of loading torch and the model here. The token is
``MEDSEARCH_API_TOKEN``; the server's JSON errors become the same one line and exit code as locally."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from medsearch.errors import InvalidQuery, MedsearchError

ServerOption = Annotated[str | None, typer.Option(
    "--server", envvar="MEDSEARCH_SERVER", help="Ask a running `medsearch serve` at this URL (fast: no model "
    "is loaded here); the token is MEDSEARCH_API_TOKEN.")]

EXIT_CODES = {"invalid_query": 2, "model_unavailable": 3, "model_mismatch": 4, "store_error": 5, "store_locked": 5,
              "not_found": 6, "unauthorized": 5, "payload_too_large": 2, "unreadable_file": 2}
"""The CLI's exit code for each error code a server answers (as ``medsearch.errors`` gives them)."""
TIMEOUT_S = 300.0


class ServerError(MedsearchError):
    """The server could not be reached, or answered an error (its code and message are kept)."""

    code = "server_error"


def ask(server: str, method: str, path: str, params: dict[str, Any], files: dict[str, Any] | None = None) -> Any:
    """The JSON answer of ``METHOD server/path``; ``params`` as query parameters (or form fields with
    ``files``). Raises ServerError (unreachable, or the server's error with its code and exit code)."""
    try:
        import httpx
    except ModuleNotFoundError:
        raise ServerError('--server needs httpx: pip install "medsearch[server]"') from None
    token = os.environ.get("MEDSEARCH_API_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    given = {name: value for name, value in params.items() if value not in (None, [], ())}
    url = server.rstrip("/") + path
    try:
        if files:
            response = httpx.request(method, url, headers=headers, timeout=TIMEOUT_S, data=given, files=files)
        else:
            response = httpx.request(method, url, headers=headers, timeout=TIMEOUT_S, params=given)
    except httpx.HTTPError as error:
        raise ServerError(f"cannot reach the medsearch server at {server}: {error}") from None
    if response.is_success:
        return response.json()
    raise _answered(response)


def _answered(response: Any) -> ServerError:
    try:
        body = response.json()["error"]
        code, message = str(body["code"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "server_error", f"the server answered HTTP {response.status_code}"
    error = ServerError(message)
    error.code, error.exit_code = code, EXIT_CODES.get(code, 1)
    return error


@dataclass(frozen=True)
class Ranking:
    """What a search ranks (``unit``: image, series, study; ``method`` for units) and its order
    (``sort``: score, date), as the server's query parameters."""

    unit: str = "image"
    method: str | None = None
    sort: str = "score"

    def params(self) -> dict[str, Any]:
        return {"unit": None if self.unit == "image" else self.unit, "unit_method": self.method,
                "sort": None if self.sort == "score" else self.sort}


def one_where(where: Sequence[str]) -> str | None:
    """The CLI's repeatable ``--where`` as the server's one expression (each in parentheses, and-ed)."""
    return " and ".join(f"({w})" for w in where) if len(where) > 1 else (where[0] if where else None)


def search(server: str, text: str | None, k: int, offset: int, query: dict[str, Any], group_by: str | None,
           count: bool, ranking: Ranking | None = None) -> dict[str, Any]:
    """``GET /api/search``: the server's answer (``results`` or ``count``, and ``searched_as``)."""
    params = {"q": text, "k": k, "offset": offset, "where": one_where(query["where"]), "min_score": query["min_score"],
              "min_prob": query["min_prob"], "group_by": group_by, "like": list(query["like"]),
              "unlike": list(query["unlike"]), "count": "true" if count else None, **(ranking or Ranking()).params()}
    answer: dict[str, Any] = ask(server, "GET", "/api/search", params)
    return answer


def similar(server: str, target: str, k: int, offset: int, where: Sequence[str], min_score: float | None,
            group_by: str | None, include_self: bool, ranking: Ranking | None = None) -> list[dict[str, Any]]:
    """Results closest to a stored id (``GET /api/similar/ID``) or a file (uploaded; without
    ``include_self`` an image result at the file's own path is left out); with ``ranking.unit`` series
    or study, unit results. Raises ServerError, InvalidQuery."""
    ranking = ranking or Ranking()
    params = {"where": one_where(where), "min_score": min_score, "group_by": group_by, **ranking.params()}
    path = Path(target).expanduser()
    if not path.is_file():
        if not target.isdigit():
            with_unit = " (a series or study UID is taken without --server)" if ranking.unit != "image" else ""
            raise InvalidQuery(f"{target} is neither a file nor an image id in the store{with_unit}")
        found = ask(server, "GET", f"/api/similar/{target}", {**params, "k": k, "offset": offset,
                                                               "include_self": str(include_self).lower()})
        return list(found["results"])
    if ranking.unit != "image":
        found = ask(server, "POST", "/api/similar", {**params, "k": k, "offset": offset},
                    files={"file": (path.name, path.read_bytes())})
        return list(found["results"])
    form = {**params, "k": k + offset + (0 if include_self else 1), "offset": 0}
    found = ask(server, "POST", "/api/similar", form, files={"file": (path.name, path.read_bytes())})
    own = str(path.resolve())
    kept = [r for r in found["results"] if include_self or r["path"] != own][offset : offset + k]
    for rank, result in enumerate(kept, start=offset + 1):
        result["rank"] = rank
    return kept


def show_search(server: str, text: str | None, k: int, offset: int, query: dict[str, Any], group_by: str | None,
                count: bool, as_json: bool, show_fields: str | None, paths: bool,
                ranking: Ranking | None = None) -> None:
    """``medsearch search --server``: printed as the local path prints it. Raises ServerError."""
    from medsearch.cli.common import print_json
    from medsearch.cli.results import show_results
    from medsearch.language.present import fields
    from medsearch.language.translator import Translation

    ranking = ranking or Ranking()
    answer = search(server, text, k, offset, query, group_by, count, ranking)
    said = {name: answer[name] for name in ("searched_as", "not_understood") if name in answer}
    english = str(said.get("searched_as") or text or "")
    translation = Translation(text, english, tuple(said.get("not_understood", ()))) if text else None
    if not count and ranking.unit != "image":
        from medsearch.cli.units import show_units

        show_units(f"search: {text or ' '.join(query['like'])}", answer["results"], as_json, fields(translation))
    elif not count:
        show_results(text or " ".join(query["like"]), answer["results"], as_json, "search", translation, show_fields,
                     paths)
    elif as_json:
        print_json({"query": text, **fields(translation), "count": answer["count"]})
    else:
        typer.echo(answer["count"])
