"""What a model is, read from its files without loading it (no torch, no transformers): the id and
revision a store's model record holds, so that a query whose text vectors are all cached can be checked
against the store and answered without the model.

The revision is the one ``medsearch.indexer.model_loading`` records: the hub commit for a hub model (or a
folder inside the hub cache's ``snapshots/COMMIT/``), else a digest of the folder's config and weight
headers."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

_SNAPSHOT = re.compile(r"snapshots/([0-9a-f]{40})/")


@dataclass(frozen=True)
class ModelIdentity:
    """A model's id (a hub id, or a folder's absolute path) and revision."""

    model_id: str
    revision: str

    @property
    def key(self) -> str:
        """The text-vector cache's key for this model's vectors."""
        return f"{self.model_id}@{self.revision}"


def folder_digest(folder: Path) -> str:
    """``sha256:...`` of the names, first MiB and sizes of a folder's ``*.json`` and ``*.safetensors``
    files: a moved folder keeps it, a retrained one does not. Raises OSError."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.json")) + sorted(folder.glob("*.safetensors")):
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            digest.update(handle.read(1 << 20))
        digest.update(str(path.stat().st_size).encode())
    return "sha256:" + digest.hexdigest()[:32]


def model_identity(model: str) -> ModelIdentity | None:
    """The identity ``load_embedder(model)`` would record, or None where it cannot be known without
    loading (a hub model while the hub may be asked for a newer revision, a missing folder). Raises
    nothing."""
    try:
        folder = Path(model).expanduser()
        if folder.is_dir():
            return _folder_identity(folder)
        if os.environ.get("HF_HUB_OFFLINE", "") in ("", "0") or model.count("/") != 1:
            return None
        return _cached_hub_identity(model)
    except OSError:
        return None


def _folder_identity(folder: Path) -> ModelIdentity | None:
    config = folder / "config.json"
    if not config.is_file():
        return None
    found = _SNAPSHOT.search(str(config.resolve().parent) + "/")  # as transformers names a cached snapshot
    revision = found.group(1) if found else folder_digest(folder)
    return ModelIdentity(str(folder.resolve()), revision)


def _hub_cache() -> Path:
    """The Hugging Face hub cache folder, as huggingface_hub finds it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _cached_hub_identity(model: str) -> ModelIdentity | None:
    """An offline hub model: the commit its cached ``main`` points at (what transformers loads offline)."""
    ref = _hub_cache() / ("models--" + model.replace("/", "--")) / "refs" / "main"
    if not ref.is_file():
        return None
    commit = ref.read_text().strip()
    return ModelIdentity(model, commit) if re.fullmatch(r"[0-9a-f]{40}", commit) else None
