"""What produced a store's vectors: the model, its revision and size, and the preprocessing version."""

from __future__ import annotations

from dataclasses import dataclass


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

