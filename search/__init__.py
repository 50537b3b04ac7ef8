"""medsearch: semantic search over medical images with MedSigLIP-448, FAISS and SQL.

    from medsearch import Medsearch

    with Medsearch.open("./medsearch-store", create=True) as ms:
        ms.index(["./images"])
        for hit in ms.search("left pleural effusion", k=5):
            print(hit.rank, hit.score, hit.path)

``Medsearch`` (``medsearch.api``) is the whole Python API; the error types are in ``medsearch.errors``.
Importing this package loads neither torch nor the store: ``Medsearch`` is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from medsearch.errors import (
    ImageTooLarge,
    InvalidQuery,
    MedsearchError,
    ModelMismatch,
    ModelUnavailable,
    NotFound,
    StoreError,
    StoreLocked,
    UnreadableFile,
)

if TYPE_CHECKING:
    from medsearch.api import Medsearch

__all__ = [
    "ImageTooLarge",
    "InvalidQuery",
    "Medsearch",
    "MedsearchError",
    "ModelMismatch",
    "ModelUnavailable",
    "NotFound",
    "StoreError",
    "StoreLocked",
    "UnreadableFile",
]


def __getattr__(name: str) -> Any:
    if name == "Medsearch":
        from medsearch.api import Medsearch

        return Medsearch
    raise AttributeError(f"module 'medsearch' has no attribute {name!r}")
