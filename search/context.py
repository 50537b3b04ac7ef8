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
from medsearch.language import Translator
from medsearch.query.results import embed_file, stored_vector, vector_of_path
from medsearch.query.textcache import TextCache
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

        return cls(store, Encoder(load, embedder), translator or Translator.from_settings())

    @property
    def texts(self) -> TextCache:
        """The text-vector cache (memory, then the store, then the model)."""
        with self._lock:
            if self._texts is None:
                self._texts = TextCache(self.store, self.encoder, translate=self.english)
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

    def check_model(self) -> None:
        """Load the model and check it matches the store's vectors, once (a store's model record never
        changes after it is bound). Raises ModelUnavailable, ModelMismatch."""
        if self._model_checked:
            return
        from medsearch.indexer.embedder import model_record

        record = model_record(self.encoder.loaded())
        if self.store.model_record() is not None:
            self.store.bind_model(record)
            self._model_checked = True

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
