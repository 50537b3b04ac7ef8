"""The Python API: the same operations as the CLI, typed.

    from medsearch.api import Medsearch

    with Medsearch.open("./medsearch-store", model="./medsiglip-448", create=True) as ms:
        ms.index(["./images"])
        for hit in ms.search("left pleural effusion", k=5):
            print(hit.rank, hit.score, hit.path)
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from medsearch.errors import InvalidQuery, ModelUnavailable, not_utf8
from medsearch.facade.cohorts import Cohorts
from medsearch.facade.items import ItemsMixin
from medsearch.facade.units import UnitsMixin
from medsearch.indexer.embedder import DEFAULT_MODEL, Embedder
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.pipeline import IndexReport, IndexSettings, Progress, index_paths
from medsearch.labels.labelsets import LabelSet
from medsearch.labels.zeroshot import Classification
from medsearch.language import Translation, Translator
from medsearch.query.compose import Part, compose, parse_part
from medsearch.query.ranking import allowed_ids, group_column, iter_ranked, ranked_results
from medsearch.query.results import Result, embed_file, stored_vector, vector_of_path
from medsearch.query.scoring import threshold as threshold_of
from medsearch.query.textcache import TextCache
from medsearch.storage import queries, vectors
from medsearch.storage.store import Store

if TYPE_CHECKING:
    from medsearch.indexer.dicomweb.run import SourceSettings
    from medsearch.indexer.distributed.executor import RaySettings
    from medsearch.labels.evaluate import Evaluation


def resolve_model(explicit: str | None, store: Store | None) -> str:
    """``--model`` if given, else the store's own model, else ``MEDSEARCH_MODEL``, else MedSigLIP-448."""
    if explicit:
        return explicit
    record = store.model_record() if store is not None else None
    if record is not None:
        return record.model_id
    return os.environ.get("MEDSEARCH_MODEL") or DEFAULT_MODEL


def _check_utf8(text: str) -> None:
    """Raise InvalidQuery for text holding lone surrogates (bytes that were not UTF-8 on a command line),
    before a tokenizer or the store sees it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise not_utf8() from None


def _id_or_path(target: str | Path | int) -> tuple[int | None, Path]:
    """(the image id ``target`` stands for, or None; ``target`` as a path): an int, or digits that name no
    file, is an id."""
    path = Path(str(target)).expanduser()
    if isinstance(target, int) or (not path.exists() and str(target).isdigit()):
        return int(str(target)), path
    return None, path


class Medsearch(ItemsMixin, UnitsMixin):
    """A store plus the model that reads it; the model is loaded on first need only. Look-ups by id and
    ``info`` come from ``medsearch.facade.items``; ``ms.cohorts`` is ``medsearch.facade.cohorts.Cohorts``."""

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
        self.cohorts = Cohorts(self)

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
            from medsearch.indexer.model_loading import load_embedder

            model = resolve_model(self.model_ref, self.store)
            try:
                self._embedder = load_embedder(model, self.device, self.precision)
            except ModelUnavailable as error:
                raise self._store_model_hint(error, model) from None
        return self._embedder

    def _store_model_hint(self, error: ModelUnavailable, model: str) -> ModelUnavailable:
        """``error``, naming the store's own model when another one was asked for (and failed to load)."""
        record = self.store.model_record()
        if record is None or record.model_id == model:
            return error
        return ModelUnavailable(f"This store was built with model {record.model_id!r}, not {model!r}: leave out "
                                f"--model to use the store's model (or index into a new store). {error}")

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
        _check_utf8(query)
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

    def index_on_ray(self, paths: Sequence[str | Path], settings: IndexSettings | None = None,
                     ray_settings: RaySettings | None = None, progress: Progress | None = None) -> IndexReport:
        """Index as ``index`` does, with Ray Data reading and embedding (``medsearch.indexer.distributed``; joins
        ``RAY_ADDRESS`` or starts a local Ray). With ``ray_settings.shards`` the vectors go to Parquet shards
        there instead, for ``load_shards``. Raises ModelUnavailable (Ray not installed), ModelMismatch,
        FileNotFoundError."""
        from medsearch.indexer.distributed.executor import RayExecutor, require_ray

        require_ray()
        executor = RayExecutor(self.device, ray_settings)
        return index_paths(self.store, lambda: self.embedder, [Path(p) for p in paths], settings, progress, executor)

    def load_shards(self, source: str, progress: Progress | None = None,
                    roots: Sequence[str | Path] = ()) -> IndexReport:
        """Load the Parquet shards under ``source`` (a folder or an object-store URI) written by
        ``index_on_ray``; files already stored with the same content are skipped. A file path is accepted
        only under ``roots`` or a root the store indexes, a DICOMweb path only under a source the store
        knows; refused rows and unreadable shards are in the report (``failures``, ``failed_shards``).
        Raises InvalidQuery (no shards there, Ray Data's pyarrow missing)."""
        from medsearch.indexer.distributed.executor import require_ray

        if not source or not source.strip():
            raise InvalidQuery("give the folder or URI of the shards to load")
        require_ray()
        from medsearch.indexer.distributed.loading import LoadReport, load_shards

        report = LoadReport()
        started = time.perf_counter()
        load_shards(self.store, source.strip(), report, progress, [str(root) for root in roots])
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def index_source(self, url: str, filters: dict[str, str] | None = None, since_last: bool = False,
                     settings: IndexSettings | None = None, source_settings: SourceSettings | None = None,
                     progress: Progress | None = None) -> IndexReport:
        """Sync a DICOMweb source (``dicomweb+https://host/dicom-web``), filtered by QIDO attributes, or
        only what changed since its last sync. Raises SourceError, InvalidQuery, ModelMismatch."""
        from medsearch.indexer.dicomweb.source import require_client

        require_client()
        from medsearch.indexer.dicomweb.run import index_source

        return index_source(self.store, lambda: self.embedder, url, filters or {}, since_last, settings,
                            source_settings, progress)

    def search(self, text: str | None = None, k: int = 10, offset: int = 0, *, where: Sequence[str] = (),
               min_score: float | None = None, min_prob: float | None = None, group_by: str | None = None,
               like: Sequence[str] = (), unlike: Sequence[str] = (), sort: str = "score") -> list[Result]:
        """The ``k`` best images for a text and/or composed parts (see ``medsearch.query.compose``), restricted to
        ``where`` inside the vector search, above ``min_score`` (cosine) and ``min_prob`` (the model's
        pairwise probability, plain text queries only), one per ``group_by`` group if given; ``sort="date"``
        orders the thresholded results newest study first. Raises InvalidQuery (an empty text, a bad part,
        an unknown ``group_by`` column, a bad threshold, ``date`` without a threshold)."""
        if group_by is not None:
            self.group_column(group_by)
        query, calibration = self._query(text, like, unlike, min_prob)
        threshold = threshold_of(min_score, min_prob, calibration)
        return self._sorted(lambda first, n: self.rank(query, n, first, where, threshold, group_by, calibration),
                            sort, threshold, k, offset)

    def similar(self, target: str | Path | int, k: int = 10, offset: int = 0, *, where: Sequence[str] = (),
                min_score: float | None = None, group_by: str | None = None,
                read_options: ReadOptions | None = None, include_self: bool = False,
                sort: str = "score") -> list[Result]:
        """Images closest to a stored id, an indexed file (its stored vector) or any image file; the query
        image (the id, or every frame of the indexed file) is left out unless ``include_self``; ``sort``
        as for ``search``. Raises NotFound, InvalidQuery (an unknown ``group_by`` column), UnreadableFile."""
        if group_by is not None:
            self.group_column(group_by)
        query = self.query_vector(target, read_options)
        own = set() if include_self else self._own_ids(target)

        def page(first: int, n: int) -> list[Result]:
            if not own:
                return self.rank(query, n, first, where, min_score, group_by, None)
            ranked = self.rank(query, first + n + len(own), 0, where, min_score, group_by, None)
            kept = [result for result in ranked if result.id not in own][first : first + n]
            for rank, result in enumerate(kept, start=first + 1):
                result.rank = rank
            return kept

        return self._sorted(page, sort, min_score, k, offset)

    def _own_ids(self, target: str | Path | int) -> set[int]:
        """The stored ids of a query target: the id itself, or the frames of an indexed file."""
        image_id, path = _id_or_path(target)
        if image_id is not None:
            return {image_id}
        return set(queries.ids_of_path(self.store, str(path.resolve()))) if path.exists() else set()

    def count(self, text: str | None = None, *, where: Sequence[str] = (), min_score: float | None = None,
              min_prob: float | None = None, like: Sequence[str] = (), unlike: Sequence[str] = (),
              unit: str = "image") -> int:
        """How many images pass the filter and the thresholds; with ``unit`` series or study, how many of
        those units (``count_units``). Raises InvalidQuery."""
        if unit != "image":
            return self.count_units(unit, text, where=where, min_score=min_score, min_prob=min_prob, like=like,
                                    unlike=unlike)
        allowed, passing = self._passing(text, where, min_score, min_prob, like, unlike)
        if passing is None:
            return vectors.live_count(self.store.index()) if allowed is None else len(allowed)
        return sum(1 for _id in passing)

    def _passing(self, text: str | None, where: Sequence[str], min_score: float | None, min_prob: float | None,
                 like: Sequence[str], unlike: Sequence[str]) -> tuple[np.ndarray | None, Iterator[int] | None]:
        """(the ids ``where`` allows or None, the allowed ids above the thresholds or None without one)."""
        allowed = allowed_ids(self.store, where)
        threshold = None
        if text is not None or like or unlike:
            query, calibration = self._query(text, like, unlike, min_prob)
            threshold = threshold_of(min_score, min_prob, calibration)
        if threshold is None:
            return allowed, None
        return allowed, (i for i, _s in iter_ranked(self.store, query, allowed, threshold, first_round=1024))

    def parse_parts(self, text: str | None, like: Sequence[str] = (), unlike: Sequence[str] = ()) -> list[Part]:
        """The parts of a query: ``text`` and the ``like`` parts positive, the ``unlike`` parts negative.
        Raises InvalidQuery for an empty text, no part at all, or a malformed part."""
        if text is not None and not text.strip():
            raise InvalidQuery("the search text is empty")
        for given in (text or "", *like, *unlike):
            _check_utf8(given)
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
        padded square the model saw: ``medsearch.explain.service.Explanation``. Raises InvalidQuery,
        NotFound, UnreadableFile."""
        from medsearch.explain.service import explain_frame, frame_of_file, frame_of_id

        query = self.composed(text, like, unlike)
        image_id, path = _id_or_path(target)
        if image_id is not None:
            pixels = frame_of_id(self.store, image_id, options=read_options)
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

    def allowed(self, where: Sequence[str]) -> np.ndarray | None:
        """The sorted int64 ids passing every ``where`` expression, or None for no filter (remembered per
        store generation). Raises InvalidQuery pointing at the mistake."""
        return allowed_ids(self.store, where)

    def rank(self, query: np.ndarray, k: int, offset: int = 0, where: Sequence[str] = (),
             threshold: float | None = None, group_by: str | None = None,
             calibration: tuple[float, float] | None = None, sort: str = "score") -> list[Result]:
        """Results for a (dim,) query vector (``medsearch.query.ranking.ranked_results``); ``sort`` as for
        ``search``. Raises InvalidQuery."""
        def page(first: int, n: int) -> list[Result]:
            return ranked_results(self.store, query, n, first, where, threshold, group_by, calibration)

        return self._sorted(page, sort, threshold, k, offset)

    def query_vector(self, target: str | Path | int, read_options: ReadOptions | None = None) -> np.ndarray:
        """The (dim,) vector of an id, an indexed path, or a file embedded now. Raises NotFound,
        UnreadableFile."""
        image_id, path = _id_or_path(target)
        if image_id is not None:
            return stored_vector(self.store, image_id)
        stored = vector_of_path(self.store, path) if path.exists() else None
        if stored is not None:
            return stored
        if not path.exists():
            raise InvalidQuery(f"{target} is neither a file nor an image id in the store")
        self.check_model()
        from medsearch.indexer.read_back import store_read_options  # read it the way the store's images were read

        return embed_file(self.embedder, path, read_options or store_read_options(self.store))

    def check_model(self) -> None:
        """Load the model and check it matches the store's vectors, once (a store's model record never
        changes after it is bound). Raises ModelUnavailable, ModelMismatch."""
        if self._model_checked:
            return
        from medsearch.indexer.embedder import model_record

        embedder = self.embedder
        if self.store.model_record() is not None:
            self.store.bind_model(model_record(embedder))
            self._model_checked = True

    def embed_upload(self, data: bytes, filename: str) -> np.ndarray:
        """The (dim,) vector of an image given as bytes (DICOM or raster), decoded in memory, never
        written. Raises UnreadableFile, ModelUnavailable."""
        from medsearch.indexer.memory_read import read_bytes

        frames = read_bytes(data, ReadOptions(), filename)
        return self.embed_pixels(self.embedder.preprocessor(frames[0].pixels))

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """The (dim,) vector of one preprocessed (3, size, size) float32 model input."""
        return self.embedder.embed_images(pixels[np.newaxis])[0]

    def classify(self, labels: LabelSet, targets: Sequence[str] = (), *, all_images: bool = False,
                 where: Sequence[str] = (), exclusive: bool = False,
                 save_as: str | None = None) -> list[Classification]:
        """Zero-shot probabilities for files or ids, or stored images (``medsearch.labels.classify``)."""
        from medsearch.labels.classify import classify

        return classify(self, labels, targets, all_images=all_images, where=where, exclusive=exclusive,
                        save_as=save_as)

    def classify_ids(self, ids: Sequence[int], labels: LabelSet, exclusive: bool = False) -> list[Classification]:
        """Zero-shot probabilities of stored images by id (their stored vectors, no file is read), one
        result per id in the given order. Raises NotFound naming every unknown id."""
        from medsearch.labels.classify import classify_ids

        return classify_ids(self, labels, ids, exclusive)

    def evaluate(self, truth_csv: Path | None, labels: LabelSet, k: int = 10, *, key: str | None = None,
                 root: Path | None = None, truth_fields: Sequence[str] = ()) -> Evaluation:
        """Zero-shot AUCs and retrieval figures of ``labels`` on the images ``truth_csv`` labels (joined by
        ``key`` and ``root`` as ``import-metadata`` joins), or imported ``truth_fields`` (``FIELD`` or
        ``FIELD=LABEL``) label (``medsearch.labels.evaluate``). Raises InvalidQuery."""
        from medsearch.labels.evaluate import Truth, evaluate

        return evaluate(self, Truth(truth_csv, key, root, tuple(truth_fields)), labels, k)

    def model_input_png(self, image_id: int) -> bytes:
        """PNG bytes of what the model saw for a stored image (``medsearch.indexer.preview``), decoded in this
        process (the server decodes it in a capped worker). Raises NotFound, UnreadableFile (the file
        changed or is gone)."""
        from medsearch.indexer.preview import preview_png

        self.image_path(image_id)  # NotFound before any file is read
        return preview_png(self.store, self.embedder.preprocessor, image_id)
