"""The Python API: the same operations as the CLI and the HTTP API, typed.

    from medsearch import Medsearch

    with Medsearch.open("./medsearch-store", model="./medsiglip-448", create=True) as ms:
        ms.index(["./images"])
        for hit in ms.search("left pleural effusion", k=5):
            print(hit.rank, hit.score, hit.path)

``Medsearch`` composes the services (``medsearch.services``) over one ``Context`` (store, model,
translator): querying (``ms.queries``, or ``search``/``similar``/``count`` with keyword options, which
build a ``QuerySpec``), cohorts (``ms.cohorts``), labels, learning and maintenance.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from medsearch.context import Context, id_or_path, resolve_model
from medsearch.errors import InvalidQuery
from medsearch.indexer.embedder import Embedder
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.pipeline import IndexReport, IndexSettings, Progress, index_paths
from medsearch.labels.labelsets import LabelSet
from medsearch.labels.zeroshot import Classification
from medsearch.language import Translation, Translator
from medsearch.query.spec import QuerySpec
from medsearch.services import maintenance
from medsearch.services.cohorts import Cohorts
from medsearch.services.items import Items
from medsearch.services.learning import Learning
from medsearch.services.querying import QueryService
from medsearch.services.reports import Reports
from medsearch.storage.store import Store

if TYPE_CHECKING:
    from medsearch.indexer.dicomweb.run import SourceSettings
    from medsearch.indexer.distributed.executor import RaySettings
    from medsearch.labels.evaluate import Evaluation

__all__ = ["Medsearch", "QuerySpec", "resolve_model"]


class Medsearch:
    """A store plus the model that reads it (loaded on first need only), and every operation on them.
    ``ms.ctx`` is the services' context; ``ms.queries`` the query service, ``ms.items`` the look-ups,
    ``ms.cohorts`` the saved cohorts, ``ms.learning`` probes, splits and the leakage audit, ``ms.reports``
    report import (structured reports found while indexing are read through it too)."""

    def __init__(self, store: Store, model: str | None = None, device: str = "auto",
                 embedder: Embedder | None = None, precision: str = "auto",
                 translator: Translator | None = None) -> None:
        self.ctx = Context.over(store, model, device, precision, embedder, translator)
        self.store = store
        self._device = device
        self.queries = QueryService(self.ctx)
        self.items = Items(store)
        self.cohorts = Cohorts(self.ctx)
        self.learning = Learning(self.ctx)
        self.reports = Reports(self.ctx)

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
    def embedder(self) -> Any:
        """The model (``medsearch.encoder.Encoder``: loaded on first use, one call at a time). Raises
        ModelUnavailable, ModelMismatch."""
        self.ctx.encoder.loaded()
        return self.ctx.encoder

    def check_model(self) -> None:
        """Load the model and check it matches the store's vectors. Raises ModelUnavailable, ModelMismatch."""
        self.ctx.check_model()

    # querying (medsearch.services.querying)

    def search(self, text: str | None = None, k: int = 10, offset: int = 0, *, where: Sequence[str] = (),
               min_score: float | None = None, min_prob: float | None = None, group_by: str | None = None,
               like: Sequence[str] = (), unlike: Sequence[str] = (), sort: str = "score", unit: str = "image",
               unit_method: str | None = None, report: str | None = None,
               report_polarity: str | None = None) -> list[Any]:
        """The ``k`` best images for a text and/or composed parts (``medsearch.query.compose``), restricted
        to ``where`` inside the vector search, above ``min_score`` (cosine) and ``min_prob`` (the model's
        pairwise probability, plain text queries only), one per ``group_by`` group if given; ``sort="date"``
        orders the thresholded results newest study first; ``unit`` series or study ranks those instead
        (``UnitResult`` rows, scored by ``unit_method``: max, top3, mean); ``report`` keeps the images whose
        study's report affirms a mention of these words (``report_polarity``: positive, negative, uncertain,
        any; ``medsearch.reports.search``). Raises InvalidQuery."""
        return self.queries.run(QuerySpec(
            "search", text, None, k, offset, tuple(where), min_score, min_prob, group_by, tuple(like),
            tuple(unlike), unit, unit_method, sort, report=report, report_polarity=report_polarity))

    def similar(self, target: str | Path | int, k: int = 10, offset: int = 0, *, where: Sequence[str] = (),
                min_score: float | None = None, group_by: str | None = None, include_self: bool = False,
                sort: str = "score", unit: str = "image", unit_method: str | None = None) -> list[Any]:
        """Images closest to a stored id, an indexed file (its stored vector) or any image file; the query
        image (the id, or every frame of the indexed file) is left out unless ``include_self``. With
        ``unit`` series or study: the units closest to the target's own (an id or a series/study UID; left
        out), or to a file; ``unit_method`` late (default), mean, max, top3. Raises NotFound, InvalidQuery,
        UnreadableFile."""
        return self.queries.run(QuerySpec(
            "similar", None, str(target), k, offset, tuple(where), min_score, None, group_by, (), (), unit,
            unit_method, sort, include_self))

    def count(self, text: str | None = None, *, where: Sequence[str] = (), min_score: float | None = None,
              min_prob: float | None = None, like: Sequence[str] = (), unlike: Sequence[str] = (),
              unit: str = "image", report: str | None = None, report_polarity: str | None = None) -> int:
        """How many images (or series / studies, ``unit``) pass the filter and the thresholds. Raises
        InvalidQuery."""
        return self.queries.count(QuerySpec("search", text, where=tuple(where), min_score=min_score,
                                            min_prob=min_prob, like=tuple(like), unlike=tuple(unlike), unit=unit,
                                            report=report, report_polarity=report_polarity))

    def timeline(self, target: str | int, text: str | None = None, like: Sequence[str] = (),
                 unlike: Sequence[str] = ()) -> Any:
        """The studies of the patient of an image id, series or study UID, oldest first, each with its best
        image for the query (default: the target's own vector). Raises NotFound, InvalidQuery."""
        given = text is not None or like or unlike
        spec = QuerySpec("search", text, like=tuple(like), unlike=tuple(unlike)) if given else None
        return self.queries.timeline(target, spec)

    def searched_as(self, query: str) -> Translation:
        """What a search's text part is embedded as, and the words not understood. Raises InvalidQuery."""
        return self.queries.searched_as(query)

    def english(self, text: str) -> str:
        """The English ``text`` is embedded as. Raises InvalidQuery."""
        return self.ctx.english(text)

    def text_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) unit vectors of ``texts``, cached in memory and in the store."""
        return self.ctx.text_vectors(list(texts))

    def composed(self, text: str | None, like: Sequence[str] = (), unlike: Sequence[str] = ()) -> np.ndarray:
        """The unit (dim,) query vector of a text and/or composed parts, as ``search`` ranks by."""
        return self.queries.composed(QuerySpec("search", text, like=tuple(like), unlike=tuple(unlike)).validate())[0]

    def query_vector(self, target: str | Path | int, read_options: ReadOptions | None = None) -> np.ndarray:
        """The (dim,) vector of an id, an indexed path, or a file embedded now. Raises NotFound,
        InvalidQuery, UnreadableFile."""
        return self.ctx.vector_of(target, read_options)

    def group_column(self, name: str) -> str:
        """The column a ``group_by`` / ``one_per`` name stands for. Raises InvalidQuery (did-you-mean)."""
        from medsearch.query.ranking import group_column

        return group_column(self.store, name)

    def explain(self, target: str | Path | int, text: str | None, method: str = "legrad", *,
                like: Sequence[str] = (), unlike: Sequence[str] = (), read_options: ReadOptions | None = None,
                guard: Callable[[str], Path] | None = None) -> Any:
        """A heuristic heatmap of where the query lands in an image (a stored id or any file), on the
        padded square the model saw: ``medsearch.explain.service.Explanation``. ``guard`` maps a stored
        path to the file that may be read (the server's ``served_path``). Raises InvalidQuery, NotFound,
        UnreadableFile."""
        from medsearch.explain.explain import NEUTRAL_PROMPT, check_method
        from medsearch.explain.service import Marks, explain_frame, frame_of_file, frame_of_id, shown

        check_method(method)
        query = self.composed(text, like, unlike)
        image_id, path = id_or_path(target)
        if image_id is not None:
            frame, marks = frame_of_id(self.store, image_id, guard=guard, options=read_options)
        elif path.is_file():
            frame, marks = frame_of_file(path, read_options), Marks(bool(read_options and read_options.keep_identity))
        else:
            raise InvalidQuery(f"{target} is neither a file nor an image id in the store")
        self.check_model()
        neutral = self.text_vectors([NEUTRAL_PROMPT]) if method == "legrad" else None  # before the model is held
        with self.ctx.encoder.exclusive() as model:
            made = explain_frame(model, frame.pixels, query, method, lambda _texts: neutral)
        return shown(made, frame, marks)

    # reports (medsearch.services.reports)

    def import_reports(self, path: str | Path, key: str | None = None, keep_text: bool = False,
                       label_set: str = "cxr-findings", patient_key: bytes | None = None) -> Any:
        """Import a CSV of reports (``medsearch.reports.importing``): each row's study labelled by the
        report labeller; the text itself stored only with ``keep_text``; ``patient_key``: the key the images
        were indexed with (default: ``medsearch.storage.patient_key``'s). Returns an ``ImportSummary``.
        Raises InvalidQuery, StoreError."""
        return self.reports.import_csv(path, key=key, keep_text=keep_text, label_set=label_set,
                                       patient_key=patient_key)

    # indexing (medsearch.indexer)

    def index(self, paths: Sequence[str | Path], settings: IndexSettings | None = None,
              progress: Progress | None = None) -> IndexReport:
        """Index files and folders incrementally. Raises ModelMismatch, FileNotFoundError."""
        return index_paths(self.store, lambda: self.embedder, [Path(p) for p in paths], settings, progress)

    def index_on_ray(self, paths: Sequence[str | Path], settings: IndexSettings | None = None,
                     ray_settings: RaySettings | None = None, progress: Progress | None = None) -> IndexReport:
        """Index as ``index`` does, with Ray Data reading and embedding (``medsearch.indexer.distributed``;
        joins ``RAY_ADDRESS`` or starts a local Ray). With ``ray_settings.shards`` the vectors go to Parquet
        shards there instead, for ``load_shards``. Raises ModelUnavailable (Ray not installed),
        ModelMismatch, FileNotFoundError."""
        from medsearch.indexer.distributed.executor import RayExecutor, require_ray

        require_ray()
        executor = RayExecutor(self._device, ray_settings)
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
        require_ray("loading shards (`medsearch load`)")
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

        return classify(self.ctx, labels, targets, all_images=all_images, where=where, exclusive=exclusive,
                        save_as=save_as)

    def classify_ids(self, ids: Sequence[int], labels: LabelSet, exclusive: bool = False) -> list[Classification]:
        """Zero-shot probabilities of stored images by id (their stored vectors, no file is read), one
        result per id in the given order. Raises NotFound naming every unknown id."""
        from medsearch.labels.classify import classify_ids

        return classify_ids(self.ctx, labels, ids, exclusive)

    def evaluate(self, truth_csv: Path | None, labels: LabelSet, k: int = 10, *, key: str | None = None,
                 root: Path | None = None, truth_fields: Sequence[str] = ()) -> Evaluation:
        """Zero-shot AUCs and retrieval figures of ``labels`` on the images ``truth_csv`` labels (joined by
        ``key`` and ``root`` as ``import-metadata`` joins), or imported ``truth_fields`` (``FIELD`` or
        ``FIELD=LABEL``) label (``medsearch.labels.evaluate``). Raises InvalidQuery."""
        from medsearch.labels.evaluate import Truth, evaluate

        return evaluate(self.ctx, Truth(truth_csv, key, root, tuple(truth_fields)), labels, k)

    def model_input_png(self, image_id: int) -> bytes:
        """PNG bytes of what the model saw for a stored image (``medsearch.indexer.preview``), decoded in this
        process (the server decodes it in a capped worker). Raises NotFound, UnreadableFile (the file
        changed or is gone)."""
        from medsearch.indexer.preview import preview_png

        self.items.image_path(image_id)  # NotFound before any file is read
        return preview_png(self.store, self.embedder.preprocessor, image_id)

    # look-ups (medsearch.services.items)

    def item(self, image_id: int) -> dict[str, Any]:
        """One image's id, path, typed metadata (never the identity column) and fields. Raises NotFound."""
        return self.items.item(image_id)

    def image_path(self, image_id: int) -> str:
        """The stored path of an image id. Raises NotFound."""
        return self.items.image_path(image_id)

    def facets(self, where: Sequence[str] = ()) -> dict[str, Any]:
        """The values (with counts) of the columns and fields with few values, over the images matching
        ``where``, and the split names. Raises InvalidQuery."""
        return self.items.facets(where)

    def info(self) -> dict[str, Any]:
        """The store's facts: counts, model, dimension, index type, generation, roots and failures."""
        return self.items.info()

    # maintenance (medsearch.services.maintenance)

    def remove_root(self, folder: str | Path) -> Any:
        """Remove an indexed folder from the store: its images (rows and vectors, in step), failure records
        and root, and those of indexed folders inside it. Needs a writable store. Raises InvalidQuery."""
        return self.items.remove_root(folder)

    def reindex(self, index_type: str = "auto", memory_budget_gb: float | None = None) -> dict[str, Any]:
        """Rebuild the vector index as ``index_type`` (flat, hnsw, ivf-sq8, ivf-pq or auto) and save it;
        {index_type, count, seconds}. Needs a writable store. Raises InvalidQuery, StoreError."""
        return maintenance.reindex(self.store, index_type, memory_budget_gb)

    def check(self, repair: bool = False, remote: bool = True) -> Any:
        """Verify the store, and (``remote``) its DICOMweb instances against their sources (with ``repair``
        fix what can be fixed; needs a writable store); the report (``medsearch.storage.check.CheckReport``:
        ``ok``, ``problems``, ``notes``, ``facts``)."""
        return maintenance.check(self.store, repair, remote)

    def upgrade(self, settings: IndexSettings | None = None, vectors_only: bool = False,
                progress: Progress | None = None) -> dict[str, Any]:
        """Re-embed images made with an older preprocessing version, then move older stores' vectors to
        their own table (``medsearch.services.maintenance.upgrade``). Needs a writable store."""
        return maintenance.upgrade(self.ctx, settings, vectors_only, progress)

    def import_metadata(self, csv_file: str | Path, **options: Any) -> Any:
        """Join a sidecar CSV to the indexed images as typed fields (options: key, rename, clash_prefix,
        skip, root; ``medsearch.indexer.sidecar.import_sidecar``). Needs a writable store. Raises
        InvalidQuery."""
        return maintenance.import_metadata(self.store, Path(csv_file), **options)
