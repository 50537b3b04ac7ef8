"""The Python API: the same operations as the CLI, typed.

    from search.api import Medsearch

    with Medsearch.open("./medsearch-store", model="./medsiglip-448", create=True) as ms:
        ms.index(["./images"])
        for hit in ms.search("left pleural effusion", k=5):
            print(hit.rank, hit.score, hit.path)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from indexer.embedder import DEFAULT_MODEL, Embedder
from indexer.frames import ReadOptions
from indexer.pipeline import IndexReport, IndexSettings, Progress, index_paths
from search.query import Result, embed_file, hydrate, stored_vector, top_k, vector_of_path
from search.textcache import TextCache
from storage import vectors
from storage.errors import InvalidQuery
from storage.models import Failure, Image, Root
from storage.store import Store


def resolve_model(explicit: str | None, store: Store | None) -> str:
    """``--model`` if given, else the store's own model, else ``MEDSEARCH_MODEL``, else MedSigLIP-448."""
    if explicit:
        return explicit
    record = store.model_record() if store is not None else None
    if record is not None:
        return record.model_id
    return os.environ.get("MEDSEARCH_MODEL") or DEFAULT_MODEL


class Medsearch:
    """A store plus the model that reads it; the model is loaded on first need only."""

    def __init__(self, store: Store, model: str | None = None, device: str = "auto",
                 embedder: Embedder | None = None) -> None:
        self.store = store
        self.model_ref = model
        self.device = device
        self._embedder = embedder
        self._texts: TextCache | None = None

    @classmethod
    def open(cls, store: str | Path | None = None, model: str | None = None, device: str = "auto",
             create: bool = False, writable: bool = False, embedder: Embedder | None = None) -> Medsearch:
        """Open the store at ``store`` (default ``MEDSEARCH_STORE`` or ``./medsearch-store``). Raises
        StoreError, StoreLocked."""
        directory = Path(store or os.environ.get("MEDSEARCH_STORE") or "medsearch-store")
        return cls(Store.open(directory, create=create, writable=writable), model, device, embedder)

    def __enter__(self) -> Medsearch:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    @property
    def embedder(self) -> Embedder:
        """The model, loaded on first use. Raises ModelUnavailable, ModelMismatch."""
        if self._embedder is None:
            from indexer.model_loading import load_embedder

            self._embedder = load_embedder(resolve_model(self.model_ref, self.store), self.device)
        return self._embedder

    @property
    def texts(self) -> TextCache:
        if self._texts is None:
            self._texts = TextCache(self.store, self.embedder)
        return self._texts

    def index(self, paths: Sequence[str | Path], settings: IndexSettings | None = None,
              progress: Progress | None = None) -> IndexReport:
        """Index files and folders incrementally. Raises ModelMismatch, FileNotFoundError."""
        return index_paths(self.store, lambda: self.embedder, [Path(p) for p in paths], settings, progress)

    def search(self, text: str, k: int = 10, offset: int = 0) -> list[Result]:
        """The ``k`` images closest to ``text`` by cosine, with the model's pairwise probability."""
        if not text.strip():
            raise InvalidQuery("the search text is empty")
        self.store.index()
        self._check_model()
        query = self.texts.vectors([text])[0]
        calibration = (self.embedder.logit_scale, self.embedder.logit_bias)
        return hydrate(self.store, top_k(self.store, query, k, offset), offset, calibration)

    def similar(self, target: str | Path | int, k: int = 10, offset: int = 0,
                read_options: ReadOptions | None = None) -> list[Result]:
        """Images closest to a stored id, an indexed file (its stored vector) or any image file."""
        query = self.query_vector(target, read_options)
        return hydrate(self.store, top_k(self.store, query, k, offset), offset)

    def query_vector(self, target: str | Path | int, read_options: ReadOptions | None = None) -> Any:
        """The (dim,) vector of an id, an indexed path, or a file embedded now. Raises NotFound,
        UnreadableFile."""
        path = Path(str(target)).expanduser()
        if isinstance(target, int) or (not path.exists() and str(target).isdigit()):
            return stored_vector(self.store, int(target))
        stored = vector_of_path(self.store, path) if path.exists() else None
        if stored is not None:
            return stored
        if not path.exists():
            raise InvalidQuery(f"{target} is neither a file nor an image id in the store")
        self._check_model()
        return embed_file(self.embedder, path, read_options)

    def _check_model(self) -> None:
        from indexer.preprocess import PREPROCESSING_VERSION
        from storage.store import ModelRecord

        embedder = self.embedder
        if self.store.model_record() is not None:
            self.store.bind_model(ModelRecord(embedder.model_id, embedder.revision, embedder.dim,
                                              PREPROCESSING_VERSION))

    def info(self) -> dict[str, Any]:
        """The store's facts: counts, model, dimension, index type, generation, roots and failures."""
        store = self.store
        info = store.info()
        with store.sessions() as session:
            images = session.scalar(select(func.count()).select_from(Image)) or 0
            files = session.scalar(select(func.count(func.distinct(Image.path)))) or 0
            failures = [{"path": p, "reason": r} for p, r in session.execute(
                select(Failure.path, Failure.reason).order_by(Failure.path))]
            roots = list(session.scalars(select(Root.path).order_by(Root.path)))
        manifest_path = store.directory / vectors.MANIFEST_FILE
        snapshot = json.loads(manifest_path.read_text()).get("generation") if manifest_path.exists() else None
        return {
            "store": str(store.directory),
            "images": images,
            "files": files,
            "model": info.model_id if info else None,
            "model_revision": info.model_revision if info else None,
            "dimension": info.dim if info else None,
            "preprocessing_version": info.preprocessing_version if info else None,
            "index_type": info.index_type if info else None,
            "generation": info.generation if info else 0,
            "snapshot_generation": snapshot,
            "roots": roots,
            "failures": failures,
        }
