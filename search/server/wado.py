"""Images of DICOMweb sources for the web page: thumbnails fetched through WADO-RS and rendered by the same
pixel pipeline as files, and the "open in viewer" link.

``MEDSEARCH_VIEWER_URL`` is a template such as
``https://viewer.example/viewer?StudyInstanceUIDs={study_instance_uid}``; ``{series_instance_uid}`` and
``{sop_instance_uid}`` may be used too. Credentials for the source come from the server's environment, as
for ``medsearch index`` (see ``medsearch.indexer.dicomweb.source``)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from medsearch.indexer.dicomweb.source import credentials_from_env, parse_source, require_client

VIEWER_FIELDS = ("study_instance_uid", "series_instance_uid", "sop_instance_uid")


class RemoteImages:
    """One DICOMweb client per source, opened on first use. ``png`` raises SourceError, UnreadableFile."""

    def __init__(self, render: Callable[[bytes, str, int], bytes]) -> None:
        """``render(data, filename, size)``: PNG bytes of an instance (the server's capped decoder)."""
        self.render = render
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def png(self, path: str, size: int) -> bytes:
        """A PNG of the instance at the stored ``path`` (a WADO-RS location), at most ``size`` pixels a side."""
        from medsearch.errors import NotFound
        from medsearch.indexer.dicomweb.client import InstanceGone

        try:
            data = self._client(path).retrieve(path)
        except InstanceGone as gone:
            raise NotFound(f"The DICOMweb server no longer has this image: {gone.reason}") from None
        return self.render(data, "instance.dcm", size)

    def _client(self, path: str) -> Any:
        require_client()
        from medsearch.indexer.dicomweb.client import DicomWebClient

        url = path.split("/studies/", 1)[0]
        with self._lock:
            if url not in self._clients:
                self._clients[url] = DicomWebClient(parse_source(url), credentials_from_env())
            return self._clients[url]

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.http.close()
            self._clients.clear()


def viewer_url(metadata: dict[str, Any], template: str | None = None) -> str | None:
    """The "open in viewer" URL of an image from ``MEDSEARCH_VIEWER_URL`` (or ``template``), or None when no
    template is set or the image lacks a UID the template names."""
    template = template if template is not None else os.environ.get("MEDSEARCH_VIEWER_URL")
    if not template:
        return None
    values = {name: metadata.get(name) for name in VIEWER_FIELDS}
    if any("{" + name + "}" in template and not value for name, value in values.items()):
        return None
    return template.format(**{name: quote(str(value or ""), safe=".") for name, value in values.items()})
