"""What the shard loader (``medsearch.indexer.distributed.shards``) asks of the store: the stored content of paths."""

from __future__ import annotations

from collections.abc import Sequence

from medsearch.storage.chunking import chunked
from medsearch.storage.models import Image
from medsearch.storage.store import Store
from sqlalchemy import select


def content_hashes(store: Store, paths: Sequence[str]) -> dict[str, str]:
    """{path: stored content hash (SHA-256 hex)} for those of ``paths`` that have images in the store."""
    with store.read_session() as session:
        rows = chunked(paths, lambda chunk: session.execute(
            select(Image.path, Image.content_hash).where(Image.path.in_(chunk)).distinct()))
        return {path: digest for path, digest in rows}
