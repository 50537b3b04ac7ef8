"""The Python API: the same operations as the CLI, typed.

    from search.api import Medsearch

    with Medsearch.open("./medsearch-store", model="./medsiglip-448", create=True) as ms:
        ms.index(["./images"])
        for hit in ms.search("left pleural effusion", k=5):
            print(hit.rank, hit.score, hit.path)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from indexer.embedder import DEFAULT_MODEL, Embedder
from indexer.frames import ReadOptions
from indexer.pipeline import IndexReport, IndexSettings, Progress, index_paths
from search.labels.labelsets import LabelSet
from search.labels.zeroshot import Classification

if TYPE_CHECKING:
    from search.labels.evaluate import Evaluation
from search.language import Translation, Translator
from search.query.compose import Part, compose, parse_part
from search.query.ranking import allowed_ids, group_column, grouped, iter_ranked, take
from search.query.results import Result, embed_file, hydrate, stored_vector, vector_of_path
from search.query.scoring import cosine_for_probability
from search.query.textcache import TextCache
from storage import queries, vectors
from storage.errors import InvalidQuery, NotFound
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
                 embedder: Embedder | None = None, precision: str = "auto",
                 translator: Translator | None = None) -> None:
        self.store = store
        self.translator = translator or Translator.from_settings()
        self.model_ref = model
        self.device = device
        self.precision = precision
        self._embedder = embedder
        self._texts: TextCache | None = None
        self._model_checked = False

    @classmethod
    def open(cls, store: str | Path | None = None, model: str | None = None, device: str = "auto",
             create: bool = False, writable: bool = False, embedder: Embedder | None = None,
             precision: str = "auto", translator: Translator | None = None) -> Medsearch:
        """Open the store at ``store`` (default ``MEDSEARCH_STORE`` or ``./medsearch-store``); ``precision``
        is passed to ``load_embedder`` when the model is first needed; ``translator`` defaults to the
        settings' (``Translator.from_settings``). Raises StoreError, StoreLocked, InvalidQuery."""
        directory = Path(store or os.environ.get("MEDSEARCH_STORE") or "medsearch-store")
        translator = translator or Translator.from_settings()  # first: a bad glossary leaves no store open
        return cls(Store.open(directory, create=create, writable=writable), model, device, embedder, precision,
                   translator)

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
            self._texts = TextCache(self.store, self.embedder, translate=self.english)
        return self._texts

    def searched_as(self, query: str) -> Translation:
        """What a search's text part (``"폐렴@0.5"``: its text, without the weight) is embedded as, and the
        words not understood; image and id parts are kept as given. Raises InvalidQuery."""
        if not query.strip():
            raise InvalidQuery("the search text is empty")
        part = parse_part(query)
        if part.kind != "text":
            return Translation(query, query)
        return self.translator.translate(part.value, self._tokenizer())

    def english(self, text: str) -> str:
        """The English ``text`` is embedded as: every embedded text (queries, label prompts, criteria)
        passes here, through the text cache. Raises InvalidQuery (policy refuse, or no word understood)."""
        return self.translator.translate(text, self._tokenizer()).english

    def _tokenizer(self) -> Any:
        """The loaded model's tokenizer (for out-of-vocabulary checks), or None before it is loaded."""
        return getattr(self._embedder, "tokenizer", None)

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
        """The ``k`` best images for a text and/or composed parts (see ``search.query.compose``), restricted to
        ``where`` inside the vector search, above ``min_score`` (cosine) and ``min_prob`` (the model's
        pairwise probability, plain text queries only), one per ``group_by`` group if given. Raises
        InvalidQuery (an empty text, a bad part, an unknown ``group_by`` column, a bad threshold)."""
        if group_by is not None:
            self.group_column(group_by)
        query, calibration = self._query(text, like, unlike, min_prob)
        return self.rank(query, k, offset, where, self._threshold(min_score, min_prob, calibration),
                          group_by, calibration)

    def similar(self, target: str | Path | int, k: int = 10, offset: int = 0, *, where: Sequence[str] = (),
                min_score: float | None = None, group_by: str | None = None,
                read_options: ReadOptions | None = None) -> list[Result]:
        """Images closest to a stored id, an indexed file (its stored vector) or any image file. Raises
        NotFound, InvalidQuery (an unknown ``group_by`` column), UnreadableFile."""
        if group_by is not None:
            self.group_column(group_by)
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

    def parse_parts(self, text: str | None, like: Sequence[str] = (), unlike: Sequence[str] = ()) -> list[Part]:
        """The parts of a query: ``text`` and the ``like`` parts positive, the ``unlike`` parts negative.
        Raises InvalidQuery for an empty text, no part at all, or a malformed part."""
        if text is not None and not text.strip():
            raise InvalidQuery("the search text is empty")
        parts = ([parse_part(text)] if text is not None else []) + [parse_part(p) for p in like]
        parts += [parse_part(p, sign=-1.0) for p in unlike]
        if not parts:
            raise InvalidQuery("the search text is empty: give a text or like parts")
        return parts

    def group_column(self, name: str) -> str:
        """The column a ``group_by`` / ``one_per`` name stands for. Raises InvalidQuery for an unknown
        name, with a did-you-mean."""
        return group_column(self.store, name)

    def composed(self, text: str | None, like: Sequence[str] = (), unlike: Sequence[str] = ()) -> Any:
        """The unit (dim,) query vector of a text and/or composed parts, as ``search`` ranks by."""
        return self._query(text, like, unlike, None)[0]

    def explain(self, target: str | Path | int, text: str | None, method: str = "legrad", *,
                like: Sequence[str] = (), unlike: Sequence[str] = (), read_options: ReadOptions | None = None) -> Any:
        """A heuristic heatmap of where the query lands in an image (a stored id or any file), on the
        padded square the model saw: ``search.explain.service.Explanation``. Raises InvalidQuery,
        NotFound, UnreadableFile."""
        from search.explain.service import explain_frame, frame_of_file, frame_of_id

        query = self.composed(text, like, unlike)
        path = Path(str(target)).expanduser()
        if isinstance(target, int) or (not path.exists() and str(target).isdigit()):
            pixels = frame_of_id(self.store, int(str(target)), options=read_options)
        elif path.is_file():
            pixels = frame_of_file(path, read_options)
        else:
            raise InvalidQuery(f"{target} is neither a file nor an image id in the store")
        self.check_model()
        return explain_frame(self.embedder, pixels, query, method, self.text_vectors)

    def text_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) unit vectors of ``texts``, cached in memory and in the store."""
        return self.texts.vectors(list(texts))

    def _query(self, text: str | None, like: Sequence[str], unlike: Sequence[str],
               min_prob: float | None) -> tuple[np.ndarray, tuple[float, float] | None]:
        parts = self.parse_parts(text, like, unlike)
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

    def rank(self, query: np.ndarray, k: int, offset: int = 0, where: Sequence[str] = (),
             threshold: float | None = None, group_by: str | None = None,
             calibration: tuple[float, float] | None = None) -> list[Result]:
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

    def query_vector(self, target: str | Path | int, read_options: ReadOptions | None = None) -> np.ndarray:
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
        from indexer.read_back import store_read_options  # read it the way the store's images were read

        return embed_file(self.embedder, path, read_options or store_read_options(self.store))

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

    def embed_upload(self, data: bytes, filename: str) -> np.ndarray:
        """The (dim,) vector of an image given as bytes (DICOM or raster), decoded in memory, never
        written. Raises UnreadableFile, ModelUnavailable."""
        from indexer.memory_read import read_bytes

        frames = read_bytes(data, ReadOptions(), filename)
        return self.embed_pixels(self.embedder.preprocessor(frames[0].pixels))

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """The (dim,) vector of one preprocessed (3, size, size) float32 model input."""
        return self.embedder.embed_images(pixels[np.newaxis])[0]

    def classify(self, labels: LabelSet, targets: Sequence[str] = (), *, all_images: bool = False,
                 where: Sequence[str] = (), exclusive: bool = False,
                 save_as: str | None = None) -> list[Classification]:
        """Zero-shot probabilities for files or ids, or stored images (``search.labels.classify``)."""
        from search.labels.classify import classify

        return classify(self, labels, targets, all_images=all_images, where=where, exclusive=exclusive,
                        save_as=save_as)

    def classify_ids(self, ids: Sequence[int], labels: LabelSet, exclusive: bool = False) -> list[Classification]:
        """Zero-shot probabilities of stored images by id (their stored vectors, no file is read), one
        result per id in the given order. Raises NotFound naming every unknown id."""
        from search.labels.classify import classify_ids

        return classify_ids(self, labels, ids, exclusive)

    def evaluate(self, truth_csv: Path, labels: LabelSet, k: int = 10) -> Evaluation:
        """Zero-shot AUCs and retrieval figures of ``labels`` on the images ``truth_csv`` labels
        (``search.labels.evaluate``). Raises InvalidQuery."""
        from search.labels.evaluate import evaluate

        return evaluate(self, truth_csv, labels, k)

    def item(self, image_id: int) -> dict[str, Any]:
        """One image's id, path and typed metadata (never the identity column). Raises NotFound."""
        found = queries.images_by_id(self.store, [image_id]).get(image_id)
        if found is None:
            raise NotFound(f"No image with id {image_id} in the store.")
        return {"id": image_id, "path": found[0], "metadata": found[1]}

    def image_path(self, image_id: int) -> str:
        """The stored path of an image id. Raises NotFound."""
        path = queries.image_path(self.store, image_id)
        if path is None:
            raise NotFound(f"No image with id {image_id} in the store.")
        return path

    def stored_thumbnail(self, image_id: int) -> tuple[bytes, int] | None:
        """(PNG bytes, the file's mtime_ns when it was made) of the thumbnail made at index time, or None."""
        from storage.thumbnails import stored_thumbnail

        return stored_thumbnail(self.store, image_id)

    def facets(self, where: Sequence[str] = ()) -> dict[str, Any]:
        """The values (with counts) of the columns and fields with few values, over the images matching
        ``where``, and the split names (``storage.facets``). Raises InvalidQuery."""
        from storage.facets import facets

        return facets(self.store, where)

    def model_input_png(self, image_id: int) -> bytes:
        """PNG bytes of what the model saw for a stored image (``indexer.preview``), decoded in this
        process (the server decodes it in a capped worker). Raises NotFound, UnreadableFile (the file
        changed or is gone)."""
        from indexer.preview import preview_png

        self.image_path(image_id)  # NotFound before any file is read
        return preview_png(self.store, self.embedder.preprocessor, image_id)

    def info(self) -> dict[str, Any]:
        """The store's facts: counts, model, dimension, index type, generation, roots and failures."""
        from indexer.upgrade import images_to_upgrade
        from storage.pixel_records import read_key_counts

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
            "index_type": info.index_type if info else None,
            "precisions": store.precisions(),
            "generation": info.generation if info else 0,
            "snapshot_generation": queries.snapshot_generation(store),
            "roots": queries.roots(store),
            "sources": source_urls(store),
            "failures": queries.failures(store),
        }
