"""Frame pixels -> the model's input tensor, the same way for indexing and for image queries.

Order (as in Google's MedSigLIP serving code, Google-Health/medsiglip ``python/serving/``): [0, 1] pixels
-> zero-pad to a centred square -> resize to the model's size with bicubic resampling -> normalise with the
processor's mean and std -> (3, S, S).
Resizing is done on float32 planes with Pillow (mode "F"), so 16-bit precision is kept; the Hugging Face
processor goes through 8-bit PIL images, which costs precision and time. Greyscale is resized once and
then repeated to three channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from medsearch.indexer.pixels import pad_to_square

PREPROCESSING_VERSION = "google-voi-pad-square-bicubic-f32/3"
"""Bumped whenever the pixels given to the model change for the same file; stored with the store's model
record and with each image. 3: Google's served CR/DX VOI (``medsearch.indexer.voi``) by default."""


@dataclass(frozen=True)
class Preprocessor:
    """Turns (H, W) or (H, W, 3) float32 pixels in [0, 1] into a (3, size, size) float32 array.
    Picklable, so worker processes can run it."""

    size: int
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        square = pad_to_square(pixels)
        if square.ndim == 2:
            plane = _resize_plane(square, self.size)
            planes = [plane, plane, plane]
        else:
            planes = [_resize_plane(square[:, :, c], self.size) for c in range(3)]
        out = np.empty((3, self.size, self.size), dtype=np.float32)
        for channel, plane in enumerate(planes):
            np.subtract(plane, self.mean[channel], out=out[channel])
            out[channel] /= self.std[channel]
        return out


def _resize_plane(plane: np.ndarray, size: int) -> np.ndarray:
    """(S, S) float -> (size, size) float32, bicubic (antialiased when shrinking), clipped to [0, 1]."""
    from PIL import Image

    if plane.shape == (size, size):
        return plane.astype(np.float32, copy=False)
    image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    resized = np.asarray(image.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
    return np.clip(resized, 0.0, 1.0)
