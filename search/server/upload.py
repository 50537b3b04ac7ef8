"""Reading an uploaded image into memory with a size limit: the declared Content-Length is checked first,
then the bytes are counted as they arrive. A multipart form is parsed in memory (Starlette's own form
parser would spool large files to a temporary file), off the event loop and with at most ``MAX_PARTS``
parts; any other body is taken as the image itself."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from medsearch.errors import InvalidQuery
from medsearch.server.security import PayloadTooLarge
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

MULTIPART_OVERHEAD = 16 * 1024
"""Room for the form's boundaries and part headers on top of the file size limit."""
MAX_PARTS = 16
"""Parts a form may have (the file and a few search fields); parsing stops at the first one past it."""
MAX_FIELD = 4000
"""Bytes a form field other than the file may hold (a ``where`` expression)."""


@dataclass
class Upload:
    """The uploaded image, and the form's other fields by name (each name's values in order)."""

    data: bytes
    filename: str
    fields: dict[str, list[str]] = field(default_factory=dict)


async def read_upload(request: Request, limit: int) -> Upload:
    """The uploaded file: the part named ``file`` of a multipart form, else the raw body. Raises
    PayloadTooLarge past ``limit`` bytes of file (413), InvalidQuery when no file was sent."""
    body = await _read_body(request, limit)
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type == b"multipart/form-data":
        upload = await run_in_threadpool(_file_part, body, params.get(b"boundary", b""))
    else:
        upload = Upload(body, request.headers.get("x-filename", "upload"))
    if len(upload.data) > limit:
        raise PayloadTooLarge(f"The upload is larger than the limit of {limit} bytes.")
    if not upload.data:
        raise InvalidQuery("No image was uploaded: send a form with a 'file' field, or the image itself.")
    return upload


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused past ``limit`` bytes of file plus the form's ``MULTIPART_OVERHEAD``; the message
    states ``limit``, the configured one."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise PayloadTooLarge(f"The upload is larger than the limit of {limit} bytes.")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit + MULTIPART_OVERHEAD:
            raise PayloadTooLarge(f"The upload is larger than the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _file_part(body: bytes, boundary: bytes) -> Upload:
    """The ``file`` part of a multipart body held in memory. Raises InvalidQuery (also past MAX_PARTS)."""
    if not boundary:
        raise InvalidQuery("The multipart form has no boundary.")
    parts: list[dict[str, bytearray]] = []
    header: dict[str, bytearray] = {}

    def on_part_begin() -> None:
        if len(parts) == MAX_PARTS:
            raise InvalidQuery(f"The form has more than {MAX_PARTS} parts; send one 'file' field.")
        parts.append({"headers": bytearray(), "data": bytearray()})

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] = bytearray(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        if bytes(header.get("field", b"")).lower() == b"content-disposition":
            parts[-1]["headers"] += data[start:end]

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1]["data"] += data[start:end]

    callbacks = {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                 "on_header_value": on_header_value, "on_part_data": on_part_data}
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    parser.write(body)
    parser.finalize()
    upload: Upload | None = None
    fields: dict[str, list[str]] = {}
    for part in parts:
        _kind, options = parse_options_header(bytes(part["headers"]))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == "file":
            upload = Upload(bytes(part["data"]), options.get(b"filename", b"upload").decode("utf-8", "replace"))
        elif len(part["data"]) > MAX_FIELD:
            raise InvalidQuery(f"The form field {name!r} is longer than {MAX_FIELD} bytes.")
        else:
            fields.setdefault(name, []).append(bytes(part["data"]).decode("utf-8", "replace"))
    if upload is None:
        raise InvalidQuery("The form has no 'file' field.")
    upload.fields = fields
    return upload
