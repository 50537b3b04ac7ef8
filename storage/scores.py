"""Stored vectors read in chunks for scoring, and scores written back as number fields (``NAME.LABEL``,
usable in ``--where``); the text-vector cache's table. Functions of a ``Store``; each write is one
transaction."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from medsearch.storage import vector_codec
from medsearch.storage.chunking import chunked
from medsearch.storage.models import Image, ImageField, TextEmbedding
from medsearch.storage.nowait import write_or_skip
from medsearch.storage.store import Store
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session


def stored_vectors(store: Store, ids: Sequence[int] | None,
                   chunk: int = 4096) -> Iterator[tuple[list[int], list[str], np.ndarray]]:
    """(ids, paths, (n, dim) float32 vectors) of stored images in chunks, by id; all images when ``ids``
    is None."""
    query = select(Image.id, Image.path, Image.embedding).order_by(Image.id)
    with store.read_session() as session:
        if ids is not None:
            wanted = list(ids)
            for start in range(0, len(wanted), chunk):
                rows = session.execute(query.where(Image.id.in_(wanted[start : start + chunk]))).all()
                if rows:
                    yield _unpack(rows)
            return
        for rows in session.execute(query.execution_options(yield_per=chunk)).partitions():
            yield _unpack(rows)


def _unpack(rows: Any) -> tuple[list[int], list[str], np.ndarray]:
    return ([r[0] for r in rows], [r[1] for r in rows],
            vector_codec.decode_many(r[2] for r in rows))


def save_scores(store: Store, prefix: str, names: Sequence[str], source: str,
                scored: Sequence[tuple[list[int], np.ndarray]]) -> None:
    """In one transaction: drop ``PREFIX.*`` zero-shot fields made by another ``source`` (other prompts
    or model), then store each (ids, (n, len(names)) probabilities) chunk of ``scored`` as number fields
    ``names``, replacing older values of these fields."""
    with store.write_session() as session:
        session.execute(delete(ImageField).where(ImageField.name.like(f"{prefix}.%"), ImageField.source != source,
                                                 ImageField.source.like("zeroshot:%")))
        for ids, probs in scored:
            session.execute(delete(ImageField).where(ImageField.image_id.in_(ids),
                                                     ImageField.name.in_(list(names))))
            rows = [{"image_id": image_id, "name": name, "kind": "number", "number": float(p), "text": None,
                     "date": None, "source": source}
                    for image_id, row in zip(ids, probs, strict=True) for name, p in zip(names, row, strict=True)]
            if rows:
                session.execute(insert(ImageField), rows)


def text_vectors(store: Store, model_key: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """{text: (dim,) float32 vector} of the ``texts`` cached in the store for ``model_key``."""
    with store.read_session() as session:
        rows = chunked(texts, lambda chunk: session.execute(
            select(TextEmbedding.text, TextEmbedding.embedding).where(
                TextEmbedding.model_key == model_key, TextEmbedding.text.in_(chunk))))
        return {text: np.frombuffer(blob, dtype=np.float32).copy() for text, blob in rows}


def save_text_vectors(store: Store, model_key: str, texts: Sequence[str], vectors: np.ndarray) -> bool:
    """Cache (n, dim) ``vectors`` of ``texts`` in the store; best effort, never waiting: False when the
    store is read-only or another process is writing to it (``medsearch.storage.nowait``), nothing raised."""
    def write(session: Session) -> None:
        for text, vector in zip(texts, vectors, strict=True):
            session.merge(TextEmbedding(model_key=model_key, text=text, embedding=vector.tobytes()))

    return write_or_skip(store, write)
