"""The pictures a server sends, and the uploads it ranks: thumbnails (made at index time, rendered from
the file, or fetched from a DICOMweb source), the model input of a stored image, and similar cases of an
uploaded image. Every decode runs in a capped worker (``medsearch.server.decoding.Decoder``); only ids
come from the client, and files are read through ``served_path``."""

from __future__ import annotations

from typing import Any

from medsearch.api import Medsearch
from medsearch.errors import InvalidQuery, NotFound
from medsearch.indexer.dicomweb.source import is_source
from medsearch.indexer.thumbnail import THUMBNAIL_SIZE
from medsearch.query.spec import QuerySpec
from medsearch.server.decoding import Decoder
from medsearch.server.limits import SERVER_MAX_PIXELS
from medsearch.server.security import served_path
from medsearch.server.thumbnails import ThumbnailCache
from medsearch.server.wado import RemoteImages, viewer_url
from medsearch.storage.sources import source_urls


class Pictures:
    """Thumbnails, model inputs and uploads for one ``Medsearch``; methods raise the library's errors."""

    def __init__(self, medsearch: Medsearch, max_upload_pixels: int = SERVER_MAX_PIXELS) -> None:
        self.medsearch = medsearch
        self.decoder = Decoder(max_upload_pixels=max_upload_pixels)
        self.thumbnails = ThumbnailCache(render=self.decoder.thumbnail)
        self.remote_images = RemoteImages(self.decoder.bytes_thumbnail, lambda: source_urls(medsearch.store))

    def close(self) -> None:
        self.remote_images.close()

    def item(self, image_id: int) -> dict[str, Any]:
        """``Medsearch.item`` with the "open in viewer" link (``MEDSEARCH_VIEWER_URL``). Raises NotFound."""
        item = self.medsearch.item(image_id)
        return {**item, "viewer_url": viewer_url(item["metadata"])}

    def thumbnail(self, image_id: int, size: int) -> bytes:
        """PNG bytes of an image's thumbnail. Raises NotFound, Forbidden (outside the roots), SourceError."""
        store = self.medsearch.store
        stored = self.medsearch.image_path(image_id)
        if is_source(stored):
            return self.thumbnails.cached((stored, 0, size), lambda: self.remote_images.png(stored, size))
        made = self.medsearch.items.stored_thumbnail(image_id) if size == THUMBNAIL_SIZE else None
        path = served_path(store, stored)
        if made is not None and path.stat().st_mtime_ns == made[1]:  # made at index time from this file
            return made[0]
        return self.thumbnails.get(path, size)

    def model_input(self, image_id: int) -> bytes:
        """PNG bytes of what the model was given for a stored image, decoded by a capped worker. Raises
        NotFound (also for a DICOMweb item, whose file is not kept), Forbidden (outside the roots),
        UnreadableFile."""
        from medsearch.indexer.read_back import image_source

        store = self.medsearch.store
        stored, frame_number, options = image_source(store, image_id)
        if is_source(stored):
            raise NotFound("The model input of a DICOMweb item is not kept; its thumbnail shows the image.")
        return self.decoder.model_input_png(served_path(store, stored), options,
                                            self.medsearch.embedder.preprocessor, frame_number)

    def similar_to_upload(self, data: bytes, filename: str, spec: QuerySpec) -> list[Any]:
        """Images (or, with ``spec.unit``, units) closest to an uploaded image, decoded in memory by a
        capped worker and embedded. The spec is checked before the image is decoded. Raises InvalidQuery,
        UnreadableFile (also over the decode caps)."""
        queries = self.medsearch.queries
        if spec.include_self:
            raise InvalidQuery("include_self keeps a stored query image; an uploaded image is not in the store")
        queries.checked(spec)
        pixels = self.decoder.upload_pixels(data, filename, self.medsearch.embedder.preprocessor)
        return queries.run(spec, self.medsearch.embed_pixels(pixels))
