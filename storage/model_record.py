"""What produced a store's vectors: the model, its revision and size, and the preprocessing version; and the
model's probability calibration, kept beside them so that a cached query needs no model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medsearch.storage.store import Store
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class ModelRecord:
    """What produced a store's vectors. Two records match when revision, size and preprocessing match."""

    model_id: str
    revision: str
    dim: int
    preprocessing_version: str

    def mismatch(self, other: ModelRecord) -> str | None:
        """A sentence saying how ``other`` differs from this record, or None when they match."""
        if other.dim != self.dim:
            return f"vector size {other.dim} differs from the store's {self.dim}"
        if other.revision != self.revision:
            return f"model {other.model_id} ({other.revision}) is not the store's {self.model_id} ({self.revision})"
        if other.preprocessing_version != self.preprocessing_version:
            return (f"its vectors were made with preprocessing {self.preprocessing_version}, and this medsearch "
                    f"uses {other.preprocessing_version}. Run `medsearch upgrade --store DIR` to re-embed them in "
                    f"place (resumable)")
        return None


def stored_calibration(store: Store) -> tuple[float, float] | None:
    """The model's (logit_scale, logit_bias) as recorded in the store, or None (an empty store, or one whose
    model has not loaded over it since the calibration was first recorded). Raises StoreError."""
    from medsearch.storage.models import StoreInfo

    with store.read_session() as session:
        info = session.get(StoreInfo, 1)
    if info is None or info.logit_scale is None or info.logit_bias is None:
        return None
    return float(info.logit_scale), float(info.logit_bias)


def record_calibration(store: Store, logit_scale: float, logit_bias: float) -> bool:
    """Record the loaded model's calibration in the store's model record, best effort (a read-only or busy
    store is left as it is: the next load tries again). Returns whether it is recorded now."""
    from medsearch.storage.models import StoreInfo
    from medsearch.storage.nowait import write_or_skip

    if stored_calibration(store) == (logit_scale, logit_bias):
        return True

    def write(session: Session) -> None:
        info = session.get(StoreInfo, 1)
        if info is not None:
            info.logit_scale, info.logit_bias = logit_scale, logit_bias

    return write_or_skip(store, write)
