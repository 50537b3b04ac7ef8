"""The small context every service works on: the store, the model (``Encoder``) and the translator, with
the text-vector cache they share. Services (querying, cohorts, labels, learning, maintenance) take a
``Context``; ``medsearch.api.Medsearch`` builds one and composes the services over it."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.encoder import Encoder
from medsearch.errors import InvalidQuery, ModelUnavailable
from medsearch.indexer.embedder import DEFAULT_MODEL, Embedder
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.model_identity import ModelIdentity, model_identity
from medsearch.language import Translator
from medsearch.query.results import embed_file, stored_vector, vector_of_path
from medsearch.query.textcache import TextCache
from medsearch.storage.calibration import record_calibration, stored_calibration
from medsearch.storage.model_record import ModelRecord
from medsearch.storage.store import Store


def resolve_model(explicit: str | None, store: Store | None) -> str:
    """``--model`` if given, else the store's own model, else ``MEDSEARCH_MODEL``, else MedSigLIP-448."""
    if explicit:
        return explicit
    record = store.model_record() if store is not None else None
    if record is not None:
        return record.model_id
    return os.environ.get("MEDSEARCH_MODEL") or DEFAULT_MODEL


def id_or_path(target: str | Path | int) -> tuple[int | None, Path]:
    """(the image id ``target`` stands for, or None; ``target`` as a path): an int, or digits that name no
    file, is an id."""
    path = Path(str(target)).expanduser()
    if isinstance(target, int) or (not path.exists() and str(target).isdigit()):
        return int(str(target)), path
    return None, path


class Context:
    """A store, the model that reads it and the translator for its texts. The model loads on first need
    (``encoder``); ``check_model`` binds it to the store once. Thread-safe: the encoder and the text cache
    carry their own locks, the store its index's."""

    def __init__(self, store: Store, encoder: Encoder, translator: Translator) -> None:
        self.store = store
        self.encoder = encoder
        self.translator = translator
        self._texts: TextCache | None = None
        self._model_checked = False
        self._files_checked = False
        self._identity: ModelIdentity | bool | None = False  # False: not read yet
        self.model_name: str | None = None
        """``--model`` as asked (None: the store's own); the model's files are read for ``identity``."""
        self._lock = threading.Lock()
        self.reads_files = True
        """Whether query parts and criteria may name files (``image:PATH``); a server turns it off: only ids
        come from its clients."""
        self.writes = threading.Lock()
        """Serialises this process's writes to the store's own tables (cohorts, probes, splits): each is one
        transaction, and SQLite takes one writer at a time."""

    @classmethod
    def over(cls, store: Store, model: str | None = None, device: str = "auto", precision: str = "auto",
             embedder: Embedder | None = None, translator: Translator | None = None) -> Context:
        """A context whose encoder loads ``model`` (default: the store's, see ``resolve_model``) on first need."""
        def load() -> Embedder:
            from medsearch.indexer.model_loading import load_embedder

            chosen = resolve_model(model, store)
            try:
                return load_embedder(chosen, device, precision)
            except ModelUnavailable as error:
                raise _store_model_hint(store, error, chosen) from None

        ctx = cls(store, Encoder(load, embedder), translator or Translator.from_settings())
        ctx.model_name = model
        return ctx

    def identity(self) -> ModelIdentity | None:
        """The id and revision of the model this context would load, read from its files (no torch), or
        None where only loading it tells (``medsearch.indexer.model_identity``)."""
        with self._lock:
            if self._identity is False:
                self._identity = model_identity(resolve_model(self.model_name, self.store))
            return self._identity if isinstance(self._identity, ModelIdentity) else None

    @property
    def texts(self) -> TextCache:
        """The text-vector cache (memory, then the store, then the model)."""
        with self._lock:
            if self._texts is None:
                self._texts = TextCache(self.store, self.encoder, translate=self.english,
                                        identity=self._cache_key, before_model=self.check_model)
            return self._texts

    def text_vectors(self, texts: list[str] | tuple[str, ...]) -> np.ndarray:
        """(n, dim) unit vectors of ``texts``, each translated first, cached in memory and in the store."""
        return self.texts.vectors(list(texts))

    def english(self, text: str) -> str:
        """The English ``text`` is embedded as: every embedded text (queries, label prompts, criteria)
        passes here. Raises InvalidQuery (policy refuse, or no word understood)."""
        return self.translator.translate(text, self.tokenizer()).english

    def tokenizer(self) -> Any:
        """The loaded model's tokenizer (for out-of-vocabulary checks), or None before it is loaded."""
        return getattr(self.encoder.loaded(), "tokenizer", None) if self.encoder.is_loaded else None

    def check_model(self, load: bool = True) -> None:
        """Check that the model matches the store's vectors, once (a store's model record never changes
        after it is bound). ``load``: load the model for it (and record its calibration in the store);
        else, where the model's files tell its identity, check that alone, and load it only when a text
        is not cached (``TextCache`` calls back here). Raises ModelUnavailable, ModelMismatch."""
        if self._model_checked or (not load and self._files_checked):
            return
        record = self.store.model_record()
        identity = self.identity() if not load and not self.encoder.is_loaded else None
        if record is not None and identity is not None:
            from medsearch.indexer.preprocess import PREPROCESSING_VERSION

            self.store.bind_model(ModelRecord(identity.model_id, identity.revision, record.dim,
                                              PREPROCESSING_VERSION))
            self._files_checked = True
            return
        from medsearch.indexer.embedder import model_record

        loaded = self.encoder.loaded()
        if record is not None:
            self.store.bind_model(model_record(loaded))
            record_calibration(self.store, float(loaded.logit_scale), float(loaded.logit_bias))
            self._model_checked = True

    def calibration(self) -> tuple[float, float]:
        """The model's (logit_scale, logit_bias): the loaded model's, else the store's record of it, else
        the model's, loaded now. Raises ModelUnavailable, ModelMismatch."""
        if not self.encoder.is_loaded and self._files_checked:
            recorded = stored_calibration(self.store)
            if recorded is not None:
                return recorded
        self.check_model()
        return float(self.encoder.logit_scale), float(self.encoder.logit_bias)

    def _cache_key(self) -> str | None:
        identity = self.identity()
        return identity.key if identity is not None else None

    def vector_of(self, target: str | Path | int, read_options: ReadOptions | None = None) -> np.ndarray:
        """The (dim,) vector of an id, an indexed path, or a file embedded now (read as the store's images
        were read). Raises NotFound, InvalidQuery (neither a file nor an id), UnreadableFile."""
        image_id, path = id_or_path(target)
        if image_id is not None:
            return stored_vector(self.store, image_id)
        if not self.reads_files:
            raise InvalidQuery("image: parts name files, which this server does not read; use id:N")
        stored = vector_of_path(self.store, path) if path.exists() else None
        if stored is not None:
            return stored
        if not path.exists():
            raise InvalidQuery(f"{target} is neither a file nor an image id in the store")
        self.check_model()
        from medsearch.indexer.read_back import store_read_options

        return embed_file(self.encoder, path, read_options or store_read_options(self.store))


def _store_model_hint(store: Store, error: ModelUnavailable, model: str) -> ModelUnavailable:
    """``error``, naming the store's own model when another one was asked for (and failed to load)."""
    record = store.model_record()
    if record is None or record.model_id == model:
        return error
    return ModelUnavailable(f"This store was built with model {record.model_id!r}, not {model!r}: leave out "
                            f"--model to use the store's model (or index into a new store). {error}")
