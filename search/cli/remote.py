"""``--server URL`` (or ``MEDSEARCH_SERVER``): ``search``, ``search --count`` and ``similar`` answered by a
running ``medsearch serve`` instead of loading torch and the model here. The token is
``MEDSEARCH_API_TOKEN``; the server's JSON errors become the same one line and exit code as locally."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from medsearch.errors import InvalidQuery, MedsearchError
from medsearch.query.spec import QuerySpec

ServerOption = Annotated[str | None, typer.Option(
    "--server", envvar="MEDSEARCH_SERVER", help="Ask a running `medsearch serve` at this URL (fast: no model "
    "is loaded here); the token is MEDSEARCH_API_TOKEN.")]

EXIT_CODES = {"invalid_query": 2, "model_unavailable": 3, "model_mismatch": 4, "store_error": 5, "store_locked": 5,
              "busy": 5,
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


def search(server: str, spec: QuerySpec, count: bool) -> dict[str, Any]:
    """``GET /api/search``: the server's answer (``results`` or ``count``, and ``searched_as``)."""
    params = {**spec.http_params(), "count": "true" if count else None}
    answer: dict[str, Any] = ask(server, "GET", "/api/search", params)
    return answer


def similar(server: str, spec: QuerySpec) -> list[dict[str, Any]]:
    """Results closest to a stored id (``GET /api/similar/ID``) or a file (uploaded; without
    ``include_self`` an image result at the file's own path is left out); with ``spec.unit`` series or
    study, unit results. Raises ServerError, InvalidQuery."""
    target = str(spec.target)
    path = Path(target).expanduser()
    params = spec.http_params()
    if not path.is_file():
        if not target.isdigit():
            with_unit = " (a series or study UID is taken without --server)" if spec.is_unit else ""
            raise InvalidQuery(f"{target} is neither a file nor an image id in the store{with_unit}")
        return list(ask(server, "GET", f"/api/similar/{target}", params)["results"])
    upload = {"file": (path.name, path.read_bytes())}
    params.pop("include_self", None)
    if spec.is_unit:
        return list(ask(server, "POST", "/api/similar", params, files=upload)["results"])
    form = {**params, "k": spec.k + spec.offset + (0 if spec.include_self else 1), "offset": 0}
    found = ask(server, "POST", "/api/similar", form, files=upload)
    own = str(path.resolve())
    kept = [r for r in found["results"] if spec.include_self or r["path"] != own][spec.offset : spec.offset + spec.k]
    for rank, result in enumerate(kept, start=spec.offset + 1):
        result["rank"] = rank
    return kept


def show_search(server: str, spec: QuerySpec, count: bool, as_json: bool, show_fields: str | None,
                paths: bool) -> None:
    """``medsearch search --server``: printed as the local path prints it. Raises ServerError."""
    from medsearch.cli.common import print_json
    from medsearch.cli.results import show_found
    from medsearch.language.present import fields
    from medsearch.language.translator import Translation

    answer = search(server, spec, count)
    said = {name: answer[name] for name in ("searched_as", "not_understood") if name in answer}
    english = str(said.get("searched_as") or spec.text or "")
    translation = Translation(spec.text, english, tuple(said.get("not_understood", ()))) if spec.text else None
    if not count:
        show_found(spec, answer["results"], as_json, translation, show_fields, paths)
    elif as_json:
        print_json({"query": spec.text, **fields(translation), "count": answer["count"]})
    else:
        typer.echo(answer["count"])
