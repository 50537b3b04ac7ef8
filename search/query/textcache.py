"""Text vectors cached in memory and in the store, per model revision: a repeated prompt or query costs
no model call, and no model load when the model's identity is known from its files
(``medsearch.indexer.model_identity``). Safe under concurrent callers: the cache's own lock guards memory
and the store's rows, and is never held while the model runs (the encoder has its own rule)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
from medsearch.indexer.embedder import Embedder
from medsearch.storage import scores
from medsearch.storage.store import Store


class TextCache:
    """``vectors(texts)`` -> (n, dim) float32 unit rows, from memory, the store, or the model. Every text
    is first put through ``translate`` (e.g. Korean -> English), and cached under what it became.

    ``identity``: the cache key (``model@revision``) of the model that would load, known without loading it
    (None: unknown, the model is loaded for its key); ``before_model``: called before the model embeds
    anything (the context loads it and checks it against the store there)."""

    def __init__(self, store: Store | None, embedder: Embedder, capacity: int = 4096,
                 translate: Callable[[str], str] = str, identity: Callable[[], str | None] = lambda: None,
                 before_model: Callable[[], None] = lambda: None) -> None:
        self.translate = translate
        self.store = store
        self.embedder = embedder
        self.identity = identity
        self.before_model = before_model
        self.capacity = capacity
        self.memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self.model_calls = 0
        self._key: str | None = None
        self._lock = threading.RLock()

    @property
    def key(self) -> str:
        """The loaded model's ``model@revision``, else the one its files say (the model loads only when
        neither is known). Raises ModelUnavailable."""
        if self._key is None:
            if getattr(self.embedder, "is_loaded", True):
                return f"{self.embedder.model_id}@{self.embedder.revision}"
            known = self.identity()
            if known is not None:
                return known
            self.before_model()
            return f"{self.embedder.model_id}@{self.embedder.revision}"
        return self._key

    @key.setter
    def key(self, value: str) -> None:
        self._key = value

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32 unit rows of ``texts`` (each translated first), in order. Raises
        ModelUnavailable, ModelMismatch (a text not cached needs the model)."""
        typed = list(texts)
        english = [self.translate(text) for text in typed]
        missing = self.missing_english(english)
        if missing:
            self.before_model()
            again = [self.translate(text) for text in typed]  # the model's tokenizer may read a text otherwise
            if again != english:
                english, missing = again, self.missing_english(again)
        found: dict[str, np.ndarray] = {}
        if missing:
            computed = self.embedder.embed_texts(missing)  # outside the lock: other texts are served meanwhile
            found.update(zip(missing, computed, strict=True))
            self.add(missing, computed)
            self.model_calls += 1
        with self._lock:
            for text in english:
                if text in self.memory:
                    found.setdefault(text, self.memory[text])
                    self.memory.move_to_end(text)
        return np.vstack([found[text] for text in english]).astype(np.float32)

    def missing(self, texts: Sequence[str]) -> list[str]:
        """The distinct ``texts`` (translated) whose vectors are neither in memory nor in the store."""
        return self.missing_english([self.translate(text) for text in texts])

    def missing_english(self, texts: Sequence[str]) -> list[str]:
        """The distinct already translated ``texts`` whose vectors are neither in memory nor in the store;
        those found in the store are loaded into memory."""
        translated = list(dict.fromkeys(texts))
        with self._lock:
            missing = [text for text in translated if text not in self.memory]
            if missing and self.store is not None:
                self._load(missing)
                missing = [text for text in missing if text not in self.memory]
        return missing

    def add(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Remember vectors computed elsewhere, in memory and in the store."""
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                self._remember(text, vector)
            self._save(list(texts), vectors)

    def _remember(self, text: str, vector: np.ndarray) -> None:
        self.memory[text] = vector
        while len(self.memory) > self.capacity:
            self.memory.popitem(last=False)

    def _load(self, texts: list[str]) -> None:
        assert self.store is not None
        for text, vector in scores.text_vectors(self.store, self.key, texts).items():
            self._remember(text, vector)

    def _save(self, texts: list[str], computed: np.ndarray) -> None:
        """Best effort: a read-only store still answers, it only forgets the vectors."""
        if self.store is not None:
            scores.save_text_vectors(self.store, self.key, texts, computed)
