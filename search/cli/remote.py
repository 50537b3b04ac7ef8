"""``--server URL`` (or ``MEDSEARCH_SERVER``, or the server recorded in the store: ``medsearch.cli.discovery``):
``search``, ``search --count`` and ``similar`` answered by a running ``medsearch serve`` instead of loading
torch and the model here. The token is
``MEDSEARCH_API_TOKEN``; the server's JSON errors become the same one line and exit code as locally.
Neither typer nor httpx is imported for a plain request (the fast client, ``medsearch.cli.fast``, uses this
module as the full CLI does); httpx only uploads a file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from medsearch.errors import InvalidQuery, MedsearchError
from medsearch.query.spec import QuerySpec

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
    ``files``, sent through httpx; a plain request needs only the standard library). Raises ServerError
    (unreachable, or the server's error with its code and exit code)."""
    token = os.environ.get("MEDSEARCH_API_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    given = {name: value for name, value in params.items() if value not in (None, [], ())}
    url = server.rstrip("/") + path
    status, body = _upload(method, url, headers, given, files) if files else _request(method, url, headers, given)
    if 200 <= status < 300:
        return json.loads(body)
    raise _answered(status, body)


def _request(method: str, url: str, headers: dict[str, str], params: dict[str, Any]) -> tuple[int, bytes]:
    """(status, body) of a request without a body, through ``http.client``. Raises ServerError."""
    import http.client
    from urllib.parse import urlencode, urlsplit

    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    target = parts.path + ("?" + urlencode(params, doseq=True) if params else "")
    try:
        connection = kind(parts.hostname or "", parts.port, timeout=TIMEOUT_S)
        try:
            connection.request(method, target, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise ServerError(f"cannot reach the medsearch server at {parts.scheme}://{parts.netloc}: {error}") from None


def _upload(method: str, url: str, headers: dict[str, str], form: dict[str, Any],
            files: dict[str, Any]) -> tuple[int, bytes]:
    """(status, body) of a multipart upload, through httpx. Raises ServerError."""
    try:
        import httpx
    except ModuleNotFoundError:
        raise ServerError('uploading a file to a server needs httpx: pip install "medsearch[server]"') from None
    try:
        response = httpx.request(method, url, headers=headers, timeout=TIMEOUT_S, data=form, files=files)
    except httpx.HTTPError as error:
        raise ServerError(f"cannot reach the medsearch server at {url}: {error}") from None
    return response.status_code, response.content


def _answered(status: int, body: bytes) -> ServerError:
    try:
        error_body = json.loads(body)["error"]
        code, message = str(error_body["code"]), str(error_body["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "server_error", f"the server answered HTTP {status}"
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
    from medsearch.cli.results import echo, print_json, show_found
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
        echo(answer["count"])
