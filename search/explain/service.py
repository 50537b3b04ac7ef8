"""What the CLI and the HTTP API share: the frame behind an id or a file, and one explanation of it for
a text or a composed query (the composed vector, ``medsearch.query.compose``), with the overlay or the grid."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.explain.explain import NEUTRAL_PROMPT, Heatmap, check_method, explain_pixels
from medsearch.indexer.frames import Frame, ReadOptions
from medsearch.indexer.read_back import image_source
from medsearch.indexer.readers import read_file
from medsearch.storage.pixel_records import text_marks
from medsearch.storage.store import Store


@dataclass
class Explanation:
    """A heatmap and the frame it was computed on ((H, W) or (H, W, 3) float32 in [0, 1])."""

    heatmap: Heatmap
    pixels: np.ndarray

    def png(self) -> bytes:
        """The overlay with its colour bar (``medsearch.explain.render``)."""
        from medsearch.explain.render import overlay_png

        return overlay_png(self.pixels, self.heatmap)

    def as_dict(self, **extra: Any) -> dict[str, Any]:
        return {**extra, **self.heatmap.as_dict()}


def frame_of_id(store: Store, image_id: int, guard: Callable[[str], Path] | None = None,
                options: ReadOptions | None = None) -> tuple[Frame, Marks]:
    """A stored image's frame, read again from its file the way it was indexed (its recorded VOI options;
    ``options`` instead when given), through ``guard``, which may refuse a path, when given; and whether
    the store keeps identity. Raises NotFound, UnreadableFile and what ``guard`` raises."""
    stored, frame_number, recorded = image_source(store, image_id)
    path = guard(stored) if guard else Path(stored)
    if not path.is_file():
        from medsearch.errors import NotFound

        raise NotFound(f"The file of image {image_id} is no longer on disk: {stored}")
    flagged, words, _kept = text_marks(store, image_id)
    return frame_of_file(path, options or recorded, frame_number), Marks(recorded.keep_identity, flagged, words)


def frame_of_file(path: Path, options: ReadOptions | None = None, frame_number: int = 0) -> Frame:
    """The representative frame of ``path`` (or its frame ``frame_number`` when > 0). Raises UnreadableFile."""
    options = options or ReadOptions()
    if frame_number > 0:
        options = ReadOptions(**{**options.__dict__, "frames": "all"})
    frames = read_file(path, options)
    return next((f for f in frames if f.frame_number == frame_number), frames[0])


@dataclass(frozen=True)
class Marks:
    """What decides whether a picture may be shown: identity kept, the Burned In Annotation flag, and the
    words the detector read when the image was indexed (None: not checked then, or not a stored image)."""

    keep_identity: bool
    flagged: bool = False
    words: int | None = None


def shown(explanation: Explanation, frame: Frame, marks: Marks) -> Explanation:
    """``explanation`` with the picture under its overlay as it may be shown: unless the store keeps
    identity, an image flagged as carrying burned-in text, or in which the detector read any when it was
    indexed (or reads any now, for a file or an image not checked then: ``medsearch.indexer.censor``), is
    withheld under the heatmap (a grey square): the overlay's colours and its smaller size let masked words
    show through, so no mask is trusted here. The heatmap itself was computed on the whole image."""
    from medsearch.indexer.censor import blank_like, censor

    if marks.keep_identity:
        return explanation
    flagged = marks.flagged or bool(frame.metadata.get("burned_in_annotation"))
    if marks.words is None and not flagged:
        found = censor(frame.pixels, flagged, keep_identity=False)
        flagged = found.pixels is None or bool(found.text_regions)
    if flagged or marks.words:
        return Explanation(explanation.heatmap, blank_like(frame.pixels))
    return Explanation(explanation.heatmap, frame.pixels)


def explain_frame(embedder: Any, pixels: np.ndarray, query: np.ndarray, method: str,
                  neutral: Callable[[Sequence[str]], np.ndarray]) -> Explanation:
    """The ``method`` map of ``pixels`` for a unit ``query`` vector; ``neutral`` embeds texts (LeGrad's
    neutral prompt). Raises InvalidQuery."""
    check_method(method)
    neutral_vector = neutral([NEUTRAL_PROMPT])[0] if method == "legrad" else None
    return Explanation(explain_pixels(embedder, pixels, query, method, neutral_vector), pixels)

