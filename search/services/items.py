"""Image records and the store's facts: the look-ups of ``Medsearch`` (``ms.items``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medsearch.errors import InvalidQuery, NotFound
from medsearch.storage import queries
from medsearch.storage.sources import source_failures, source_urls
from medsearch.storage.store import Store

if TYPE_CHECKING:
    from medsearch.storage.roots import RootRemoval


class Items:
    """Look-ups by image id, the store's summary and the removal of an indexed folder, over one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def item(self, image_id: int) -> dict[str, Any]:
        """One image's id, path, typed metadata (never the identity column) and its sidecar/label
        ``fields`` (typed as imported). Raises NotFound."""
        found = queries.images_by_id(self.store, [image_id]).get(image_id)
        if found is None:
            raise NotFound(f"No image with id {image_id} in the store.")
        fields = queries.fields_by_id(self.store, [image_id]).get(image_id, {})
        return {"id": image_id, "path": found[0], "metadata": found[1], "fields": fields}

    def image_path(self, image_id: int) -> str:
        """The stored path of an image id. Raises NotFound."""
        path = queries.image_path(self.store, image_id)
        if path is None:
            raise NotFound(f"No image with id {image_id} in the store.")
        return path

    def stored_thumbnail(self, image_id: int) -> tuple[bytes, int] | None:
        """(PNG bytes, the file's mtime_ns when it was made) of the thumbnail made at index time, or None."""
        from medsearch.storage.thumbnails import stored_thumbnail

        return stored_thumbnail(self.store, image_id)

    def remove_root(self, folder: str | Path) -> RootRemoval:
        """Remove an indexed folder from the store: its images (rows and vectors, in step), failure records
        and root, and those of indexed folders inside it. Needs a writable store. Raises InvalidQuery
        for a folder that is not an indexed root, or that lies inside another one."""
        from medsearch.storage.roots import remove_root

        given = Path(folder).expanduser()
        roots = queries.roots(self.store)
        wanted = next((root for root in roots if root in (str(given), str(given.resolve()))), None)
        if wanted is None:
            raise InvalidQuery(f"{folder} is not an indexed folder; indexed: {', '.join(roots) or 'none'}")
        outer = [root for root in roots if root != wanted and Path(wanted).is_relative_to(root)]
        if outer:
            raise InvalidQuery(f"{wanted} lies inside the indexed folder {outer[0]}, whose next index would add "
                               f"its images again; remove {outer[0]} instead")
        return remove_root(self.store, wanted)

    def facets(self, where: Sequence[str] = ()) -> dict[str, Any]:
        """The values (with counts) of the columns and fields with few values, over the images matching
        ``where``, and the split names (``medsearch.storage.facets``). Raises InvalidQuery."""
        from medsearch.storage.facets import facets

        return facets(self.store, where)

    def info(self) -> dict[str, Any]:
        """The store's facts: counts, model, dimension, index type, generation, roots and failures."""
        from medsearch.indexer.upgrade import images_to_upgrade
        from medsearch.storage.pixel_records import read_key_counts, text_counts

        store = self.store
        info = store.info()
        return {
            "store": str(store.directory),
            "images": store.image_count(),
            "files": queries.file_count(store),
            "model": info.model_id if info else None,
            "model_revision": info.model_revision if info else None,
            "dimension": info.dim if info else None,
            "preprocessing_version": info.preprocessing_version if info else None,
            "images_to_upgrade": images_to_upgrade(store),  # another preprocessing version: `medsearch upgrade`
            "voi_options": read_key_counts(store),  # greyscale DICOMs per VOI options they were read with
            "burned_in_text": text_counts(store),  # images whose pixels carry text: thumbnails masked or withheld
            "index_type": info.index_type if info else None,
            "search_width": queries.snapshot_width(store),  # hnsw efSearch / ivf-sq8 probes, measured at build
            "precisions": store.precisions(),
            "generation": info.generation if info else 0,
            "snapshot_generation": queries.snapshot_generation(store),
            "added_after_training": queries.snapshot_training(store),  # ivf-sq8 / ivf-pq: retrain past a share
            "roots": queries.roots(store),
            "sources": source_urls(store),
            "source_failures": source_failures(store),  # fetches that failed, retried by the next --since-last
            "failures": queries.failures(store),
        }
