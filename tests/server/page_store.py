"""A store for the page's tests: 45 PNGs and three real DICOMs (more than one page of 40 results), a
sidecar CSV (``finding`` text, ``grade`` number, ``body-site``: a name the filter language must quote)
and a split field made by ``medsearch split``."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from tests.api_fixtures import index_store, make_images

IMAGES = 48
"""45 PNGs + 3 DICOMs."""


def labelled_store(root: Path, embedder: Any) -> Path:
    """Index, join the sidecar and split; returns the store folder."""
    from medsearch.api import Medsearch
    from medsearch.indexer.sidecar import import_sidecar

    images = make_images(root / "images", range(45))
    sheet = images / "labels.csv"
    with open(sheet, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["file", "finding", "grade", "body-site"])
        for seed in range(45):
            writer.writerow([f"case{seed:03d}.png", "round" if seed % 3 == 0 else "square", seed % 2 + 1,
                             "left" if seed % 4 == 0 else "right"])
    index_store(root / "store", images, embedder)
    with Medsearch.open(root / "store", writable=True, embedder=embedder) as ms:
        import_sidecar(ms.store, sheet)
        ms.learning.split("split", by="path", ratios=(0.5, 0.5), names=("train", "test"), seed=1)
    return root / "store"
