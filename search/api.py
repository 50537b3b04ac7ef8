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
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from indexer.embedder import DEFAULT_MODEL, Embedder
from indexer.frames import ReadOptions
from indexer.pipeline import IndexReport, IndexSettings, Progress, index_paths
from search.compose import compose, parse_part
from search.query import Result, embed_file, hydrate, stored_vector, vector_of_path
from search.ranking import allowed_ids, grouped, iter_ranked, take
from search.scoring import cosine_for_probability
from search.textcache import TextCache
from storage import vectors
from storage.errors import InvalidQuery
from storage.models import Failure, Image, Root
from storage.sources import source_urls
from storage.store import Store

if TYPE_CHECKING:
    from indexer.dicomweb.run import SourceSettings


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
                 embedder: Embedder | None = None, precision: str = "auto") -> None:
        self.store = store
        self.model_ref = model
        self.device = device
        self.precision = precision
        self._embedder = embedder
        self._texts: TextCache | None = None
        self._model_checked = False

    @classmethod
    def open(cls, store: str | Path | None = None, model: str | None = None, device: str = "auto",
             create: bool = False, writable: bool = False, embedder: Embedder | None = None,
             precision: str = "auto") -> Medsearch:
        """Open the store at ``store`` (default ``MEDSEARCH_STORE`` or ``./medsearch-store``); ``precision``
        is passed to ``load_embedder`` when the model is first needed. Raises StoreError, StoreLocked."""
        directory = Path(store or os.environ.get("MEDSEARCH_STORE") or "medsearch-store")
        return cls(Store.open(directory, create=create, writable=writable), model, device, embedder, precision)

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

            self._embedder = load_embedder(resolve_model(self.model_ref, self.store), self.device, self.precision)
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

    def index_source(self, url: str, filters: dict[str, str] | None = None, since_last: bool = False,
                     settings: IndexSettings | None = None, source_settings: SourceSettings | None = None,
                     progress: Progress | None = None) -> IndexReport:
        """Sync a DICOMweb source (``dicomweb+https://host/dicom-web``), filtered by QIDO attributes, or
        only what changed since its last sync. Raises SourceError, InvalidQuery, ModelMismatch."""
        from indexer.dicomweb.source import require_client

        require_client()
        from indexer.dicomweb.run import index_source

        return index_source(self.store, lambda: self.embedder, url, filters or {}, since_last, settings,
                            source_settings, progress)

    def search(self, text: str | None = None, k: int = 10, offset: int = 0, *, where: Sequence[str] = (),
               min_score: float | None = None, min_prob: float | None = None, group_by: str | None = None,
               like: Sequence[str] = (), unlike: Sequence[str] = ()) -> list[Result]:
        """The ``k`` best images for a text and/or composed parts (see ``search.compose``), restricted to
        ``where`` inside the vector search, above ``min_score`` (cosine) and ``min_prob`` (the model's
        pairwise probability, plain text queries only), one per ``group_by`` group if given. Raises
        InvalidQuery."""
        query, calibration = self._query(text, like, unlike, min_prob)
        return self.rank(query, k, offset, where, self._threshold(min_score, min_prob, calibration),
                          group_by, calibration)

    def similar(self, target: str | Path | int, k: int = 10, offset: int = 0, *, where: Sequence[str] = (),
                min_score: float | None = None, group_by: str | None = None,
                read_options: ReadOptions | None = None) -> list[Result]:
        """Images closest to a stored id, an indexed file (its stored vector) or any image file."""
        query = self.query_vector(target, read_options)
        return self.rank(query, k, offset, where, min_score, group_by, None)

    def count(self, text: str | None = None, *, where: Sequence[str] = (), min_score: float | None = None,
              min_prob: float | None = None, like: Sequence[str] = (), unlike: Sequence[str] = ()) -> int:
        """How many images pass the filter and the thresholds."""
        allowed = allowed_ids(self.store, where)
        threshold = None
        if text is not None or like or unlike:
            query, calibration = self._query(text, like, unlike, min_prob)
            threshold = self._threshold(min_score, min_prob, calibration)
        if threshold is None:
            return vectors.live_count(self.store.index()) if allowed is None else len(allowed)
        return sum(1 for _hit in iter_ranked(self.store, query, allowed, threshold, first_round=1024))

    def text_vectors(self, texts: Sequence[str]) -> Any:
        """(n, dim) unit vectors of ``texts``, cached in memory and in the store."""
        return self.texts.vectors(list(texts))

    def _query(self, text: str | None, like: Sequence[str], unlike: Sequence[str],
               min_prob: float | None) -> tuple[Any, tuple[float, float] | None]:
        parts = ([parse_part(text)] if text is not None else []) + [parse_part(p) for p in like]
        parts += [parse_part(p, sign=-1.0) for p in unlike]
        if not parts or (text is not None and not text.strip()):
            raise InvalidQuery("the search text is empty")
        self.store.index()
        if any(part.kind != "id" for part in parts):
            self.check_model()
        plain_text = len(parts) == 1 and parts[0].kind == "text"
        if min_prob is not None and not plain_text:
            raise InvalidQuery("--min-prob needs a plain text query: the model's probability is per text")
        query = compose(parts, self.text_vectors, lambda part: self.query_vector(
            int(part.value) if part.kind == "id" else part.value))
        calibration = (self.embedder.logit_scale, self.embedder.logit_bias) if plain_text else None
        return query, calibration

    @staticmethod
    def _threshold(min_score: float | None, min_prob: float | None,
                   calibration: tuple[float, float] | None) -> float | None:
        bounds = [min_score] if min_score is not None else []
        if min_prob is not None and calibration is not None:
            if not 0.0 < min_prob < 1.0:
                raise InvalidQuery("--min-prob must be strictly between 0 and 1")
            bounds.append(cosine_for_probability(min_prob, *calibration))
        return max(bounds) if bounds else None

    def rank(self, query: Any, k: int, offset: int = 0, where: Sequence[str] = (), threshold: float | None = None,
             group_by: str | None = None, calibration: tuple[float, float] | None = None) -> list[Result]:
        """Results for a (dim,) query vector: filtered inside the search, thresholded, paged, grouped.
        When a writer deletes some of the hits before they are read back, the search runs again on the
        caught-up index (up to 3 times), so that a page is not left short."""
        if group_by is None:
            for _attempt in range(3):
                hits = take(iter_ranked(self.store, query, allowed_ids(self.store, where), threshold), k, offset)
                results = hydrate(self.store, hits, offset, calibration)
                if len(results) == len(hits):
                    break
            return results
        ranked = iter_ranked(self.store, query, allowed_ids(self.store, where), threshold)
        best = grouped(self.store, ranked, group_by, k, offset)
        results = hydrate(self.store, [(i, s) for i, s, _g in best], offset, calibration)
        groups = {i: g for i, _s, g in best}
        for result in results:
            result.group = groups[result.id]
        return results

    def query_vector(self, target: str | Path | int, read_options: ReadOptions | None = None) -> Any:
        """The (dim,) vector of an id, an indexed path, or a file embedded now. Raises NotFound,
        UnreadableFile."""
        path = Path(str(target)).expanduser()
        if isinstance(target, int) or (not path.exists() and str(target).isdigit()):
            return stored_vector(self.store, int(str(target)))
        stored = vector_of_path(self.store, path) if path.exists() else None
        if stored is not None:
            return stored
        if not path.exists():
            raise InvalidQuery(f"{target} is neither a file nor an image id in the store")
        self.check_model()
        return embed_file(self.embedder, path, read_options)

    def check_model(self) -> None:
        """Load the model and check it matches the store's vectors, once (a store's model record never
        changes after it is bound). Raises ModelUnavailable, ModelMismatch."""
        if self._model_checked:
            return
        from indexer.embedder import model_record

        embedder = self.embedder
        if self.store.model_record() is not None:
            self.store.bind_model(model_record(embedder))
            self._model_checked = True

    def info(self) -> dict[str, Any]:
        """The store's facts: counts, model, dimension, index type, generation, roots, DICOMweb sources and
        failures."""
        store = self.store
        info = store.info()
        with store.sessions() as session:
            files = session.scalar(select(func.count(func.distinct(Image.path)))) or 0
            failures = [{"path": p, "reason": r} for p, r in session.execute(
                select(Failure.path, Failure.reason).order_by(Failure.path))]
            roots = list(session.scalars(select(Root.path).order_by(Root.path)))
        manifest_path = store.directory / vectors.MANIFEST_FILE
        snapshot = json.loads(manifest_path.read_text()).get("generation") if manifest_path.exists() else None
        return {
            "store": str(store.directory),
            "images": store.image_count(),
            "files": files,
            "model": info.model_id if info else None,
            "model_revision": info.model_revision if info else None,
            "dimension": info.dim if info else None,
            "preprocessing_version": info.preprocessing_version if info else None,
            "index_type": info.index_type if info else None,
            "precisions": store.precisions(),
            "generation": info.generation if info else 0,
            "snapshot_generation": snapshot,
            "roots": roots,
            "sources": source_urls(store),
            "failures": failures,
        }
