"""The model's calibration (``logit_scale``, ``logit_bias``: a pair's probability is
``sigmoid(exp(logit_scale) * cos + logit_bias)``) recorded in the store's model record, so that a query
whose text vectors are cached gives probabilities without loading the model."""

from __future__ import annotations

from medsearch.storage.models import StoreInfo
from medsearch.storage.nowait import write_or_skip
from medsearch.storage.store import Store
from sqlalchemy.orm import Session


def stored_calibration(store: Store) -> tuple[float, float] | None:
    """The model's (logit_scale, logit_bias) as recorded in the store, or None (an empty store, or one whose
    model has not loaded over it since the calibration was first recorded). Raises StoreError."""
    with store.read_session() as session:
        info = session.get(StoreInfo, 1)
    if info is None or info.logit_scale is None or info.logit_bias is None:
        return None
    return float(info.logit_scale), float(info.logit_bias)


def record_calibration(store: Store, logit_scale: float, logit_bias: float) -> bool:
    """Record the loaded model's calibration in the store's model record, best effort (a read-only or busy
    store is left as it is: the next load tries again). Returns whether it is recorded now."""
    if stored_calibration(store) == (logit_scale, logit_bias):
        return True

    def write(session: Session) -> None:
        info = session.get(StoreInfo, 1)
        if info is not None:
            info.logit_scale, info.logit_bias = logit_scale, logit_bias

    return write_or_skip(store, write)
