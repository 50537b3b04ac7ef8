"""Images of DICOMweb sources for the web page: thumbnails fetched through WADO-RS and rendered by the same
pixel pipeline as files, and the "open in viewer" link.

``MEDSEARCH_VIEWER_URL`` is a template such as
``https://viewer.example/viewer?StudyInstanceUIDs={study_instance_uid}``; ``{series_instance_uid}`` and
``{sop_instance_uid}`` may be used too. An image is fetched only from a source the store knows (one it was
synced from), with that source's own credentials (see ``medsearch.indexer.dicomweb.credentials``): a stored
path naming another host (a loaded shard's, say) is refused, and nothing is sent there."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from medsearch.indexer.dicomweb.source import parse_source, require_client

VIEWER_FIELDS = ("study_instance_uid", "series_instance_uid", "sop_instance_uid")


class RemoteImages:
    """One DICOMweb client per source, opened on first use. ``png`` raises SourceError, UnreadableFile."""

    def __init__(self, render: Callable[[bytes, str, int], bytes], sources: Callable[[], list[str]]) -> None:
        """``render(data, filename, size)``: PNG bytes of an instance (the server's capped decoder);
        ``sources()``: the URLs of the sources the store knows."""
        self.render = render
        self.sources = sources
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
        """The client of the known source ``path`` belongs to. Raises NotFound for a path of no known source."""
        require_client()
        from medsearch.errors import NotFound
        from medsearch.indexer.dicomweb.client import DicomWebClient
        from medsearch.indexer.dicomweb.credentials import credentials_for
        from medsearch.indexer.dicomweb.settings import client_settings_from_env

        known = self.sources()
        url = max((source for source in known if path.startswith(source + "/studies/")), key=len, default=None)
        if url is None:
            raise NotFound("This image's DICOMweb location is not under a source this store was synced from; "
                           "it is not fetched")
        with self._lock:
            if url not in self._clients:
                self._clients[url] = DicomWebClient(parse_source(url), credentials_for(url, known),
                                                    client_settings_from_env())
            return self._clients[url]

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
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
